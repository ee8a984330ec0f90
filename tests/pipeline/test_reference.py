"""The configuration reference (`phangs-products config`): complete, valid, and loads into a run."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import tomli_w

from phangs_products.cli import main
from phangs_products.pipeline.config import CONFIG_SCHEMA, load_config
from phangs_products.pipeline.graph import STAGE_CONFIGS, build_stages
from phangs_products.pipeline.options import option_docs, stage_options
from phangs_products.pipeline.reference import config_reference
from phangs_products.registry import load_document


def test_every_stage_option_has_a_meaning():
    options = [o for cls in STAGE_CONFIGS.values() for o in stage_options(cls, "stages")]
    assert len(options) > 80
    undocumented = [f"{o.table}.{o.name}" for o in options if not o.meaning]
    assert undocumented == []
    units = {o.name: o.unit for o in options}
    assert units["pixscale"] == "arcsec" and units["phot_radius"] == "px"
    assert units["threshold"] == ""  # a doc shared by two options states no single unit


def test_shared_attribute_entries_name_every_option():
    from phangs_products.pipeline.imaging.exposures import ImagingConfig

    docs = option_docs(ImagingConfig)
    assert docs["nclip"].startswith("nclip, sigma:") and docs["sigma"] == docs["nclip"]


def _filled(tmp_path: Path) -> dict:
    """The printed reference with the settings a real run must give filled in."""
    doc = tomllib.loads(config_reference())
    (tmp_path / "ngc628c" / "flc").mkdir(parents=True, exist_ok=True)
    (tmp_path / "ngc628c" / "gaia_dr3.txt").write_text("# ra dec\n24.17 15.78\n")
    doc["run"]["ebv_mw"] = 0.0
    doc["run"]["ebv_mw_source"] = "test: no correction"
    return doc


def test_reference_parses_and_validates_against_the_schema():
    doc = tomllib.loads(config_reference())
    schema = load_document(CONFIG_SCHEMA)
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert set(doc["stages"]) == {str(s) for s in STAGE_CONFIGS}
    assert "ebv_mw" not in doc["run"]  # never an example value for the foreground


def test_reference_round_trips_into_a_run_with_the_defaults(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(tomli_w.dumps(_filled(tmp_path)))
    config = load_config(path)
    configs = {s.name: s.config for s in build_stages(config)}
    for name, cls in STAGE_CONFIGS.items():
        assert configs[name] == cls(), name
    assert config.output == (tmp_path / "ngc628c-v1" / "delivery").resolve()


def test_config_check_accepts_the_filled_reference_and_names_a_bad_option(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text(tomli_w.dumps(_filled(tmp_path)))
    assert main(["config", "--check", str(good)]) == 0
    assert f"valid ({CONFIG_SCHEMA})" in capsys.readouterr().out
    doc = _filled(tmp_path)
    doc["stages"]["photometry"]["photometry"]["fwhm"] = "wide"
    bad = tmp_path / "bad.toml"
    bad.write_text(tomli_w.dumps(doc))
    assert main(["config", "--check", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "[stages.photometry.photometry] fwhm" in err, err


def test_config_out_never_replaces_a_file(tmp_path, capsys):
    out = tmp_path / "reference.toml"
    assert main(["config", "--out", str(out)]) == 0
    assert tomllib.loads(out.read_text())["run"]["target"] == "ngc628"
    out.write_text("mine\n")
    assert main(["config", "--out", str(out)]) == 1
    assert out.read_text() == "mine\n"


@pytest.mark.parametrize("name", ["run-config", CONFIG_SCHEMA])
def test_schemas_show_run_config(name):
    result = subprocess.run(
        [sys.executable, "-m", "phangs_products.cli", "schemas", "show", name],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(CONFIG_SCHEMA)
    assert "run.ebv_mw" in result.stdout and "run.hlsp.preset" in result.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "phangs_products.cli", "schemas", "list"],
        capture_output=True,
        text=True,
    ).stdout
    assert any(
        line.split()[:3] == ["run-config", CONFIG_SCHEMA.rsplit("-", 1)[1], "config"]
        for line in listed.splitlines()
    )


def test_readme_lists_the_settings_as_tables_with_units():
    from phangs_products.bands import galaxy
    from phangs_products.docs import render_readme, render_steps
    from phangs_products.pipeline.options import settings_rows
    from phangs_products.pipeline.publish.publish import _settings

    configs = {str(k): cls() for k, cls in STAGE_CONFIGS.items()}
    clusters = configs["clusters"]
    configs["clusters"] = type(clusters)(human_table="/home/someone/private/classes.ecsv")
    steps = render_steps(
        {k: _settings(c) for k, c in configs.items()},
        rows={k: settings_rows(c) for k, c in configs.items()},
    )
    text = render_readme(
        galaxy_=galaxy("ngc628"), field="ngc628c", version="v1", files=[], steps=steps
    )
    assert "| `pixscale` | 0.04 | arcsec |" in text
    assert "| `photometry.radii` | 1, 1.5, 2, 2.5, 3, 4, 5 | px |" in text
    assert "| `human_table` | classes.ecsv |  |" in text and "/home/someone" not in text
    assert "{'" not in text and "dolphot_phot = ," not in text  # no Python reprs


def test_simulate_writes_the_run_configuration_that_runs_it(tmp_path, capsys):
    """`simulate` ends with a run configuration `config --check` accepts (pointings too)."""
    out = tmp_path / "sim"
    args = ["simulate", "--out", str(out), "--bands", "F555W", "--pointings", "2"]
    assert main([*args, "--ebv-mw", "0.07"]) == 0
    assert f"run configuration:  {out / 'run.toml'}" in capsys.readouterr().out
    config = load_config(out / "run.toml")
    assert [p.field for p in config.pointings] == ["ngc628c", "ngc628e"]
    assert config.simulated and config.foreground()[0] == 0.07 and config.bands == ("F555W",)
    assert not config.identity().dois  # simulated data never carries the survey's DOIs
    assert main(["config", "--check", str(out / "run.toml")]) == 0

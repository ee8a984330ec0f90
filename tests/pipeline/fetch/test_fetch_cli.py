"""``phangs-products fetch`` end to end: recorded MAST and Gaia answers, a local download server."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
from fetchkit import EXPOSURES, TARGET

from phangs_products.cli import main
from phangs_products.pipeline.config import ConfigError, load_config
from phangs_products.pipeline.graph import build_stages


def _fetch(out, url, *extra) -> list[str]:
    return ["fetch", TARGET, "--out", str(out), "--download-url", url, *extra]


@pytest.mark.vcr("ngc1087_gaia.yaml")
@pytest.mark.default_cassette("ngc1087_mast")
def test_fetch_writes_a_runnable_configuration(flc_server, tmp_path, capsys):
    url, _, _ = flc_server
    out = tmp_path / "ngc1087"
    assert main(_fetch(out, url, "--ebv-mw", "0.03", "--ebv-mw-source", "IRSA DUST")) == 0
    printed = capsys.readouterr().out
    assert f"({len(EXPOSURES)} downloaded, 0 kept)" in printed
    assert sorted(p.name for p in (out / "flc").iterdir()) == sorted(
        f"{r}_flc.fits" for r, _ in EXPOSURES
    )
    radec = np.loadtxt(out / "gaia_dr3.txt", usecols=(0, 1), comments="#")
    assert radec.shape == (12, 2)

    config = load_config(out / "ngc1087.toml")
    assert config.target == TARGET and config.field == TARGET
    assert config.input == out / "flc"
    assert config.reference_catalog == out / "gaia_dr3.txt"
    assert config.output == out / "delivery"
    assert config.foreground() == (0.03, "IRSA DUST")
    assert config.identity().preset == "phangs-hst"
    assert config.bands == ("F275W", "F336W", "F438W", "F555W", "F814W")
    build_stages(config)  # every stage accepts it, as `run` checks before starting


@pytest.mark.vcr("ngc1087_gaia.yaml", allow_playback_repeats=True)  # MAST is asked twice
@pytest.mark.default_cassette("ngc1087_mast")
def test_second_run_downloads_nothing_and_keeps_the_config(flc_server, tmp_path, capsys):
    url, _, log = flc_server
    out = tmp_path / "ngc1087"
    assert main(_fetch(out, url)) == 0
    config_text = (out / "ngc1087.toml").read_text()
    log.clear()
    capsys.readouterr()
    assert main(_fetch(out, url, "--ebv-mw", "0.1")) == 0
    printed = capsys.readouterr().out
    assert log == []  # not even a HEAD request
    assert f"(0 downloaded, {len(EXPOSURES)} kept)" in printed
    assert "gaia_dr3.txt (kept)" in printed
    assert "ngc1087.toml (kept)" in printed
    assert "--ebv-mw not written into it" in printed
    assert (out / "ngc1087.toml").read_text() == config_text  # the user's file is not replaced


@pytest.mark.vcr("ngc1087_gaia.yaml")
@pytest.mark.default_cassette("ngc1087_mast")
def test_without_ebv_the_run_stops_with_one_line(flc_server, tmp_path, capsys):
    url, _, _ = flc_server
    out = tmp_path / "ngc1087"
    assert main(_fetch(out, url)) == 0
    assert "set ebv_mw" in capsys.readouterr().out
    text = (out / "ngc1087.toml").read_text()
    assert "ebv_mw" not in tomllib.loads(text)["run"]
    assert "# REQUIRED before running: the Milky Way foreground E(B-V)" in text
    with pytest.raises(ConfigError, match=r"run\.ebv_mw: not given") as exc:
        load_config(out / "ngc1087.toml")
    assert "\n" not in str(exc.value)
    capsys.readouterr()
    assert main(["run", str(out / "ngc1087.toml")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run.ebv_mw: not given" in err[0]


@pytest.mark.default_cassette("ngc1087_mast")
@pytest.mark.vcr
def test_dry_run_lists_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "ngc1087"
    assert main(["fetch", TARGET, "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = [line.split()[1] for line in lines if line.strip().startswith("download")]
    assert listed == sorted(f"{r}_flc.fits" for r, _ in EXPOSURES)
    assert any("gaia_dr3.txt" in line for line in lines)
    assert "  by program: 15654 (6)" in lines
    assert not out.exists()


@pytest.mark.default_cassette("ngc1087_mast_hostile")
@pytest.mark.vcr
def test_hostile_product_name_is_one_line(tmp_path, capsys):
    out = tmp_path / "ngc1087"
    assert main(["fetch", TARGET, "--out", str(out), "--no-gaia"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: MAST Mast.Caom.Products: productFilename '../x'")
    assert not (tmp_path / "x").exists() and not (out / "flc").exists()


def test_mosaic_galaxy_without_radius_is_one_line(tmp_path, capsys):
    assert main(["fetch", "ngc628", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--radius" in err[0]


@pytest.mark.default_cassette("ngc1087_mast_error")
@pytest.mark.vcr
def test_mast_outage_is_one_line(tmp_path, capsys):
    assert main(["fetch", TARGET, "--out", str(tmp_path / "out"), "--dry-run"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    expected = "error: MAST Mast.Caom.Filtered.Position: request failed (HTTPError: 503"
    assert err[0].startswith(expected)

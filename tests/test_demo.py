"""The main job end to end: `phangs-products demo`, resuming a killed run, Dask scale-out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from factories import assert_same_deliveries, manifest_stages

import phangs_products as pp
from phangs_products.cli import main
from phangs_products.validation import validate_delivery

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out)]) == 0
    return out


def test_demo_delivery_is_complete_and_validates(demo):
    field = demo / "delivery" / "ngc628c"
    report = validate_delivery(field)
    assert report.ok, report.summary()
    names = sorted(p.name for p in field.iterdir())
    assert any(n.endswith("_f555w_v1_drc-sci.fits") for n in names)
    assert any(n.endswith("_cl-hum-c12.fits") for n in names)
    assert any(n.endswith("_asc-nuv-64pc-msk.fits") for n in names)
    assert (demo / "docs" / "index.html").exists()
    readme = next(field.glob("hlsp_*_readme.md")).read_text()
    assert "## How the products were made" in readme and "simulated" in readme
    cat = pp.open(next(field.glob("*_cl-cand.fits")), strict=True)
    assert len(cat.table) > 0
    assert (cat.table["PHANGS_AGE_MINCHISQ"] > 0).any()


def test_delivery_folder_holds_only_hlsp_products(demo):
    """Walk the delivery: field folders only, and in them only files MAST's rules accept."""
    from phangs_products.naming import check_name

    delivery = demo / "delivery"
    assert sorted(p.name for p in demo.iterdir() if p.is_dir()) == [
        "delivery",
        "docs",
        "input",
        "work",
    ]
    fields = list(delivery.iterdir())
    assert [f.name for f in fields] == ["ngc628c"] and fields[0].is_dir()
    files = list(fields[0].rglob("*"))
    assert len(files) > 60 and all(f.is_file() and f.parent == fields[0] for f in files)
    broken = {f.name: check_name(f.name) for f in files if check_name(f.name)}
    assert broken == {}
    assert any(f.name.endswith("_multi_v1_sha256sums.txt") for f in files)
    # the whole root validates too (no scratch or site beside the field folders)
    report = validate_delivery(delivery)
    assert report.ok and not report.problems, report.summary()


def test_killed_run_resumes_without_redoing_finished_stages(demo, tmp_path):
    # reuse the simulated input; a fresh output folder
    out = tmp_path / "run"
    config = demo / "demo.toml"
    text = config.read_text().replace('output = "."', f'output = "{out}"')
    cfg = tmp_path / "run.toml"
    cfg.write_text(text)
    work = out / "work" / "ngc628c"
    proc = subprocess.Popen(
        [sys.executable, "-m", "phangs_products.cli", "run", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while time.time() < deadline:
        stages = manifest_stages(work)
        if stages.get("photometry", {}).get("status") == "running":
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = manifest_stages(work)
    assert before["imaging"]["status"] == "done"
    assert before["photometry"]["status"] == "running"
    assert not (out / "delivery" / "ngc628c").exists()  # nothing reached the delivery
    result = subprocess.run(
        [sys.executable, "-m", "phangs_products.cli", "run", str(cfg)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    after = manifest_stages(work)
    assert after["imaging"]["finished"] == before["imaging"]["finished"]  # not redone
    assert after["photometry"]["status"] == "done"
    assert "skipped imaging" in result.stdout.replace("  ", " ").replace("  ", " ")
    # the end of the run: validation result and where the README and HTML are, paths whole
    assert "valid: 0 error(s)" in result.stdout, result.stdout[-2000:]
    assert f"HTML documentation: {out / 'docs' / 'index.html'}" in result.stdout
    assert "README: " in result.stdout and "\r" not in result.stdout  # no bars in a pipe
    assert validate_delivery(out / "delivery" / "ngc628c").ok


def test_two_galaxies_on_dask_match_sequential_runs(demo, tmp_path):
    from phangs_products.pipeline.config import load_config
    from phangs_products.pipeline.scaleout import run_many
    from phangs_products.pipeline.sim.config import SimConfig
    from phangs_products.pipeline.sim.simulate import simulate

    # galaxy 1: the demo field again; galaxy 2: another field simulated with another seed
    cfg1 = tmp_path / "a.toml"
    cfg1.write_text(
        (demo / "demo.toml").read_text().replace('output = "."', f'output = "{tmp_path / "dask"}"')
    )
    sim2 = simulate(SimConfig(field="ngc628e", seed=2), tmp_path / "sim2")
    cfg2 = tmp_path / "b.toml"
    cfg2.write_text(
        cfg1.read_text()
        .replace('field = "ngc628c"', 'field = "ngc628e"')
        .replace(str((demo / "input" / "flc").resolve()), str(sim2.flc_dir.resolve()))
        .replace(
            str((demo / "input" / "reference_catalog.txt").resolve()),
            str(sim2.reference_catalog.resolve()),
        )
    )
    configs = [load_config(cfg1), load_config(cfg2)]
    t0 = time.perf_counter()
    outcomes = run_many(configs, scheduler="local", n_workers=2)
    wall = time.perf_counter() - t0
    assert [o.ok for o in outcomes] == [True, True], [o.error for o in outcomes]
    print(f"two galaxies on a 2-worker LocalCluster: {wall:.1f} s")
    dask_field = tmp_path / "dask" / "delivery" / "ngc628c"
    seq_field = demo / "delivery" / "ngc628c"
    assert assert_same_deliveries(dask_field, seq_field) > 40
    assert validate_delivery(tmp_path / "dask" / "delivery" / "ngc628e").ok


def test_cli_validate_on_demo(demo):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "phangs_products.cli",
            "validate",
            str(demo / "delivery" / "ngc628c"),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stdout[-2000:]

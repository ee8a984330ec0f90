"""Shared pipeline fixtures: one small simulated field and one pipeline run per test session."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import phangs_products as pp
from phangs_products.pipeline.config import RunConfig
from phangs_products.pipeline.pipeline import build_stages
from phangs_products.pipeline.runner import Stage, run_stages
from phangs_products.pipeline.simulate import SimConfig, SimResult, simulate, true_wcs


@pytest.fixture(scope="session")
def sim_small(tmp_path_factory) -> SimResult:
    """The default demo field at small size (seed 1)."""
    return simulate(SimConfig(), tmp_path_factory.mktemp("sim"))


@pytest.fixture(scope="session")
def small_run(sim_small, tmp_path_factory) -> RunConfig:
    """Run configuration of the small simulated field (one work folder per test session)."""
    out = tmp_path_factory.mktemp("run")
    return RunConfig(
        target="ngc628",
        field="ngc628c",
        input=sim_small.flc_dir,
        reference_catalog=sim_small.reference_catalog,
        output=out / "delivery",
        work=out / "work",
        simulated=True,
    )


def _stages(run: RunConfig, names: tuple[str, ...]) -> list[Stage]:
    """The pipeline's own stages (default settings) of the given names."""
    return [s for s in build_stages(run) if s.name in names]


@pytest.fixture(scope="session")
def imaging_run(small_run):
    """Imaging stage outputs on the small simulated field."""
    (result,) = run_stages(small_run, _stages(small_run, ("imaging",)))
    return result.outputs


@pytest.fixture(scope="session")
def science_run(small_run, imaging_run) -> dict[str, dict]:
    """Outputs of every science stage by name (the imaging run is reused, not redone)."""
    stages = _stages(small_run, ("imaging", "photometry", "clusters", "associations"))
    return {r.name: r.outputs for r in run_stages(small_run, stages)}


def by_filter(paths: list[Path], filt: str) -> Path:
    """The product of one filter from a list of HLSP file names."""
    (path,) = [p for p in paths if f"_{filt.lower()}_" in p.name]
    return path


def offsets_from_true_wcs(
    truth_exposures, ref: np.ndarray, rootname: str, chip: int, path: Path
) -> np.ndarray:
    """Distance (FLC px) between where the WCS of ``path`` and the simulator's true WCS of
    ``rootname`` put the reference stars (``ref``: RA, Dec in deg) that fall on ``chip``."""
    true = true_wcs(truth_exposures, rootname, chip)
    x, y = true.world_to_pixel_values(ref[:, 0], ref[:, 1])
    product = pp.open(path)
    ny, nx = product.hdus["SCI", chip].data.shape
    on = (x >= 0) & (x < nx) & (y >= 0) & (y < ny)
    xa, ya = product.chip_wcs(chip).world_to_pixel_values(ref[on, 0], ref[on, 1])
    return np.hypot(xa - x[on], ya - y[on])


#: skip marker for tests that need the Debian DS9 and xvfb packages
needs_ds9 = pytest.mark.skipif(
    shutil.which("ds9") is None or shutil.which("xvfb-run") is None,
    reason="Debian saods9/xvfb not installed",
)


def ds9_load_and_save(image: Path, regions: Path, out: Path) -> subprocess.CompletedProcess:
    """Open ``image`` in DS9 under xvfb, load ``regions``, save them again to ``out``, exit."""
    command = ["xvfb-run", "-a", "ds9", str(image), "-regions", "load", str(regions)]
    command += ["-regions", "save", str(out), "-exit"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def assert_shared_grid(products: dict[str, list[Path]], bands: tuple[str, ...]) -> pp.ImageModel:
    """Every DRC science/ERR/EXP product of ``bands`` is on the F555W science grid.

    Same shape, CRVAL, CD and CRPIX, 0.04"/px, north up.  Returns the F555W science model.
    """
    ref = pp.open(by_filter(products["drc-sci"], "F555W"))
    for filt in bands:
        for kind in ("drc-sci", "drc-err", "drc-exp"):
            model = pp.open(by_filter(products[kind], filt))
            assert model.data.shape == ref.data.shape
            np.testing.assert_allclose(model.wcs.wcs.crval, ref.wcs.wcs.crval, rtol=0, atol=1e-10)
            np.testing.assert_allclose(
                model.wcs.pixel_scale_matrix, ref.wcs.pixel_scale_matrix, rtol=1e-9, atol=1e-16
            )
            np.testing.assert_allclose(model.wcs.wcs.crpix, ref.wcs.wcs.crpix, atol=1e-6)
    scale = np.sqrt(abs(np.linalg.det(ref.wcs.pixel_scale_matrix))) * 3600
    assert scale == pytest.approx(0.04, rel=1e-6)
    assert ref.wcs.pixel_scale_matrix[0, 1] == pytest.approx(0.0, abs=1e-12)  # north up
    return ref

"""Shared pipeline fixtures: one small simulated field and one imaging run per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from phangs_products.pipeline.config import RunConfig
from phangs_products.pipeline.imaging import ImagingConfig
from phangs_products.pipeline.imaging_stage import imaging_stage
from phangs_products.pipeline.runner import Stage, run_stages
from phangs_products.pipeline.simulate import SimConfig, SimResult, simulate


@pytest.fixture(scope="session")
def sim_small(tmp_path_factory) -> SimResult:
    """The default demo field at small size (seed 1)."""
    return simulate(SimConfig(), tmp_path_factory.mktemp("sim"))


@pytest.fixture(scope="session")
def imaging_run(sim_small, tmp_path_factory):
    """Imaging stage outputs on the small simulated field."""
    out = tmp_path_factory.mktemp("imaging")
    run = RunConfig(
        target="ngc628",
        field="ngc628c",
        input=sim_small.flc_dir,
        reference_catalog=sim_small.reference_catalog,
        output=out / "delivery",
        work=out / "work",
        simulated=True,
    )
    (result,) = run_stages(run, [Stage("imaging", imaging_stage, config=ImagingConfig())])
    return result.outputs


def by_filter(paths: list[Path], filt: str) -> Path:
    """The product of one filter from a list of HLSP file names."""
    (path,) = [p for p in paths if f"_{filt.lower()}_" in p.name]
    return path

"""Shared pipeline fixtures: one small simulated field and one pipeline run per test session."""

from __future__ import annotations

import pytest
from factories import sim_run

from phangs_products.pipeline.config import RunConfig
from phangs_products.pipeline.graph import build_stages
from phangs_products.pipeline.runner import Stage, run_stages
from phangs_products.pipeline.sim.config import SimConfig
from phangs_products.pipeline.sim.simulate import SimResult, simulate


@pytest.fixture(scope="session")
def sim_small(tmp_path_factory) -> SimResult:
    """The default demo field at small size (seed 1)."""
    return simulate(SimConfig(), tmp_path_factory.mktemp("sim"))


@pytest.fixture(scope="session")
def small_run(sim_small, tmp_path_factory) -> RunConfig:
    """Run configuration of the small simulated field (one work folder per test session)."""
    out = tmp_path_factory.mktemp("run")
    return sim_run(sim_small, out)


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

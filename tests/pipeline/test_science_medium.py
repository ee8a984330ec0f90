"""Science on a field larger than the demo: the medium simulated field (2 chips of 1024 px).

The small field holds about a dozen bright clusters and a handful of associations; selection and
recovery problems that grow with the number of sources (the stellar region of the MCI plane,
crowding, the association kernels) only show on a field like this one.  Figures are printed
(``pytest -s``) and recorded in the README's science table.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from factories import cluster_figures, sim_run

import phangs_products as pp
from phangs_products.bands import galaxy
from phangs_products.pipeline.graph import build_stages
from phangs_products.pipeline.runner import run_stages
from phangs_products.pipeline.sim.config import SimConfig
from phangs_products.pipeline.sim.recovery import (
    catalogs_in,
    nearest_scales,
    on_image,
    recovery,
    recovery_lines,
)
from phangs_products.pipeline.sim.simulate import simulate

# One medium field for the whole module, on one xdist worker.
pytestmark = pytest.mark.xdist_group("medium-field")

SCIENCE = ("imaging", "photometry", "clusters", "associations")


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    """The medium simulated field through the science stages: truth, outputs, V DRC."""
    sim = simulate(SimConfig(size="medium"), tmp_path_factory.mktemp("sim-medium"))
    run = sim_run(sim, tmp_path_factory.mktemp("run-medium"))
    stages = [s for s in build_stages(run) if s.name in SCIENCE]
    outputs = {r.name: r.outputs for r in run_stages(run, stages)}
    (v,) = [p for p in outputs["imaging"]["drc-sci"] if "_f555w_" in p.name]
    return sim, outputs, pp.open(v)


@pytest.fixture(scope="module")
def clusters(medium):
    sim, outputs, drc = medium
    return cluster_figures(sim.truth, outputs["clusters"], drc)


def test_bright_clusters_are_candidates(clusters):
    """>= 90% of the clusters with M_V < -8 and r_eff >= 1 pc on the image are candidates."""
    assert clusters["target"].sum() >= 100
    assert clusters["completeness"] >= 0.9


def test_few_candidates_are_single_stars(clusters):
    """Fewer than 10% of all candidates are single, unblended stars."""
    assert clusters["single_share"] < 0.10


def test_selected_clusters_have_good_ages(clusters):
    """The SED ages of the bright clusters found are within 0.3 dex of truth for most."""
    assert clusters["age_within_03dex"] >= 0.75


def test_associations_are_recovered(medium):
    """>= 80% of injected associations at 32-64 pc are recovered in each selection.

    At 8-16 pc the figure is printed: such groups hold a few stars within 1-2 kernel widths of
    each other, the same size as chance groupings of the field stars, and the chance-peak test
    removes most of them (README, "Stellar associations").
    """
    sim, outputs, drc = medium
    truth = Table.read(sim.truth_associations)
    truth = truth[on_image(truth, drc)]
    folder = outputs["associations"]["assoc-catalog"][0].parent
    found = recovery(truth, catalogs_in(folder), galaxy("ngc628").distance_mpc)
    print("\n" + "\n".join(recovery_lines(truth, found)))
    large = nearest_scales(np.asarray(truth["fwhm_pc"], float)) >= 32
    assert set(found) == {"v", "nuv"} and large.sum() >= 10
    for selection, hit in found.items():
        assert hit[large].mean() >= 0.8, (selection, hit[large].mean())

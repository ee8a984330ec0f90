"""Cluster candidates on the simulated field: completeness and star contamination vs truth."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from factories import cluster_figures, ds9_load_and_save, needs_ds9
from regions import CircleSkyRegion, Regions

import phangs_products as pp
from phangs_products.pipeline.clusters.selection import ClusterSelectionConfig, mci_out_limit


def _path(science_run):
    (path,) = [
        p for p in science_run["clusters"]["cluster-catalog"] if p.name.endswith("cl-cand.fits")
    ]
    return path


def _candidates(science_run) -> Table:
    return pp.open(_path(science_run)).table


def _drc(science_run):
    (path,) = [p for p in science_run["imaging"]["drc-sci"] if "_f555w_" in p.name]
    return pp.open(path)


@pytest.fixture(scope="module")
def recovered(sim_small, science_run) -> dict:
    return cluster_figures(sim_small.truth, science_run["clusters"], _drc(science_run))


def test_bright_extended_clusters_are_selected(recovered):
    """>= 90% of injected clusters with M_V < -8 and r_eff >= 1 pc become candidates."""
    assert recovered["target"].sum() >= 10
    assert recovered["completeness"] >= 0.9


def test_single_star_contamination_is_low(recovered):
    """Fewer than 10% of candidates are single, unblended stars (definition:
    :mod:`phangs_products.pipeline.sim.recovery`); groups of blended association stars are the
    compact associations (class 3) that the candidate list must keep."""
    assert recovered["single_share"] < 0.10


def test_selection_routes_and_calibration(science_run):
    cand = _candidates(science_run)
    routes = np.asarray(cand["PHANGS_SELECTION"])
    assert set(np.unique(routes)) <= {1, 2, 3} and (routes & 1).any()
    # the bright rescue: total M_V < -10 (aperture-corrected 4 px magnitude), MCI_in window
    mv = np.asarray(cand["PHANGS_F555W_VEGA"]) - np.asarray(cand["PHANGS_DM"])
    rescued = (routes & 2) > 0
    assert np.all(mv[rescued] < -10)
    lo, hi = ClusterSelectionConfig().bright_mci_in
    assert np.all((cand["PHANGS_MCI_IN"][rescued] >= lo) & (cand["PHANGS_MCI_IN"][rescued] <= hi))
    # S/N and band cuts of route 1
    first = (routes & 1) > 0
    good = [np.asarray(cand[f"PHANGS_{f}_VEGA_ERR"])[first] for f in ("F275W", "F336W", "F438W")]
    good.append(np.asarray(cand["PHANGS_F814W_VEGA_ERR"])[first])
    n_other = np.sum([(g >= 0) & (g <= 0.3) for g in good], axis=0)
    assert np.all(n_other >= 2)
    calib = Table.read(science_run["clusters"]["mci-calibration"][0])
    assert len(calib) == 216 * ClusterSelectionConfig().per_profile
    assert mci_out_limit(9.84) == -1.1 and mci_out_limit(5.0) == -1.7 and mci_out_limit(15) == -0.7


def test_region_files_read_back_with_regions(science_run):
    for path in science_run["clusters"]["ds9-regions"]:
        regs = Regions.read(path, format="ds9")
        subset = path.name.split("_cl-")[1].removesuffix("-reg.reg")
        catalogs = science_run["clusters"]["cluster-catalog"]
        (cat,) = [p for p in catalogs if p.name.endswith(f"cl-{subset}.fits")]
        assert len(regs) == len(pp.open(cat).table), path.name
        assert all(isinstance(r, CircleSkyRegion) for r in regs)


@needs_ds9
def test_cluster_regions_load_in_ds9(science_run, tmp_path):
    reg = next(p for p in science_run["clusters"]["ds9-regions"] if "cl-cand" in p.name)
    result = ds9_load_and_save(_drc(science_run).path, reg, tmp_path / "saved.reg")
    assert result.returncode == 0, result.stderr
    saved = (tmp_path / "saved.reg").read_text()
    assert saved.count("circle(") == reg.read_text().count("circle(") > 0

"""Cluster candidates on the simulated field: completeness and star contamination vs truth."""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table
from factories import ds9_load_and_save, needs_ds9
from regions import CircleSkyRegion, Regions

import phangs_products as pp
from phangs_products.pipeline.clusters.selection import ClusterSelectionConfig, mci_out_limit


def _candidates(science_run) -> Table:
    (path,) = [
        p for p in science_run["clusters"]["cluster-catalog"] if p.name.endswith("cl-cand.fits")
    ]
    return pp.open(path).table


def _drc(science_run):
    (path,) = [p for p in science_run["imaging"]["drc-sci"] if "_f555w_" in p.name]
    return pp.open(path)


def test_bright_extended_clusters_are_selected(sim_small, science_run):
    """>= 90% of injected clusters with M_V < -8 and r_eff >= 1 pc become candidates."""
    truth = Table.read(sim_small.truth)
    cand = _candidates(science_run)
    drc = _drc(science_run)
    tc = SkyCoord(truth["ra"], truth["dec"], unit="deg")
    x, y = drc.wcs.world_to_pixel(tc)
    ny, nx = drc.data.shape
    on = (x > 20) & (x < nx - 20) & (y > 20) & (y < ny - 20)
    mv = np.asarray(truth["F555W_vega"]) - float(cand["PHANGS_DM"][0])
    target = on & (truth["kind"] == "cluster") & (mv < -8) & (truth["r_eff_pc"] >= 1.0)
    _, sep, _ = tc.match_to_catalog_sky(SkyCoord(cand["PHANGS_RA"], cand["PHANGS_DEC"], unit="deg"))
    found = sep.arcsec < 0.1
    completeness = found[target].mean()
    beyond = target & (truth["r_eff_pc"] >= 5)
    print(
        f"completeness M_V < -8, r_eff >= 1 pc: {completeness:.2f} "
        f"({found[target].sum()}/{target.sum()}); r_eff >= 5 pc: "
        f"{found[beyond].sum()}/{beyond.sum()}"
    )
    assert target.sum() >= 10
    assert completeness >= 0.9


def test_single_star_contamination_is_low(sim_small, science_run):
    """Fewer than 10% of candidates are single, unblended stars.

    A candidate is a single star when its nearest truth object (within 0.06") is a star and the
    other truth objects within 0.2" (5 px, the CI aperture) add less than 20% of its V flux.
    Groups of blended association stars are not single stars: they are the compact
    associations (class 3) that the candidate list must keep.
    """
    truth = Table.read(sim_small.truth)
    cand = _candidates(science_run)
    tc = SkyCoord(truth["ra"], truth["dec"], unit="deg")
    cc = SkyCoord(cand["PHANGS_RA"], cand["PHANGS_DEC"], unit="deg")
    j, sep, _ = cc.match_to_catalog_sky(tc)
    kind = np.where(sep.arcsec < 0.06, np.asarray(truth["kind"])[j], "none")
    rate = np.asarray(truth["F555W_rate"], float)
    ci, ti, _, _ = tc.search_around_sky(cc, 0.2 * u.arcsec)
    near = np.bincount(ci, weights=rate[ti], minlength=len(cand)) - rate[j]
    starlike = np.isin(kind, ("star", "assoc_star"))
    single = starlike & (near < 0.2 * rate[j])
    field_stars = kind == "star"
    print(
        f"{len(cand)} candidates: single stars {single.sum()} ({single.mean():.1%}), "
        f"matched to field stars {field_stars.sum()} ({field_stars.mean():.1%}), "
        f"to clusters {(kind == 'cluster').sum()}, to association members "
        f"{(kind == 'assoc_star').sum()}"
    )
    assert single.mean() < 0.10


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

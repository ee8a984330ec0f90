"""Photometry units: the vectorised annulus sky, coverage and the parallel bands."""

from __future__ import annotations

import numpy as np
from astropy.stats import sigma_clipped_stats
from astropy.table import Table
from scipy.spatial import cKDTree

import phangs_products as pp
from phangs_products.pipeline.photometry import aperture as photometry
from phangs_products.pipeline.photometry.bandpool import band_processes
from phangs_products.testing import make_drc_products


def _reference(data: np.ndarray, x: float, y: float, r_in: float, r_out: float):
    """Per-source loop with astropy: pixels whose centres are r_in..r_out from the nearest pixel."""
    cx, cy = int(np.rint(x)), int(np.rint(y))
    yy, xx = np.mgrid[0 : data.shape[0], 0 : data.shape[1]]
    d = np.hypot(xx - cx, yy - cy)
    vals = data[(d >= r_in) & (d <= r_out)]
    return sigma_clipped_stats(vals, sigma=3.0, maxiters=3), vals.size


def test_annulus_sky_matches_astropy_including_edges_and_outliers(monkeypatch):
    rng = np.random.default_rng(7)
    data = rng.normal(1.0, 0.1, (120, 150))
    # bright neighbours inside some annuli: several clipping passes are needed
    data[rng.integers(0, 120, 300), rng.integers(0, 150, 300)] += rng.uniform(0.5, 20, 300)
    x = np.r_[rng.uniform(0, 149, 200), 0.2, 149.0, 3.0, 75.0]
    y = np.r_[rng.uniform(0, 119, 200), 0.4, 119.0, 60.0, 1.6]
    monkeypatch.setattr(photometry, "_SKY_BLOCK", 37)  # several blocks, mixed edge/interior
    med, std, n = photometry.annulus_sky(data, x, y, (7.0, 9.0))
    clipped = 0
    for i in range(x.size):
        (_, ref_med, ref_std), size = _reference(data, x[i], y[i], 7.0, 9.0)
        assert abs(med[i] - ref_med) < 1e-12, i
        assert abs(std[i] - ref_std) < 1e-12, i
        clipped += int(n[i] < size)
    print(f"{clipped} of {x.size} annuli lost pixels to the clipping")
    assert clipped > 20


def test_clipped_stats_rows_handles_missing_values_and_empty_rows():
    rng = np.random.default_rng(3)
    vals = rng.normal(0, 1, (50, 40))
    vals[:, :5] = np.nan
    vals[0] = np.nan
    vals[1, 7] = 50.0
    med, std, n = photometry.clipped_stats_rows(vals)
    assert np.isnan(med[0]) and np.isnan(std[0]) and n[0] == 0
    for i in range(1, 50):
        _, ref_med, ref_std = sigma_clipped_stats(vals[i][np.isfinite(vals[i])], maxiters=3)
        assert abs(med[i] - ref_med) < 1e-12 and abs(std[i] - ref_std) < 1e-12
    assert n[1] == 34  # the 50-sigma value is clipped


def test_coverage_flags_apertures_touching_missing_data():
    bad = np.zeros((300, 400), bool)
    bad[:, :50] = True  # a footprint edge
    bad[200:203, 300:303] = True  # a small hole
    rng = np.random.default_rng(5)
    x, y = rng.uniform(0, 399, 4000), rng.uniform(0, 299, 4000)
    covered = photometry._coverage(bad, x, y, 4.0)
    # geometry: the nearest bad pixel centre is column 49, or the 3x3 hole's nearest pixel
    near_edge = (x - 49) <= 4.0
    near_hole = np.hypot(np.clip(x, 300, 302) - x, np.clip(y, 200, 202) - y) <= 4.0
    expected = ~(near_edge | near_hole)
    assert np.array_equal(covered, expected), np.flatnonzero(covered != expected)[:5]
    assert (~covered).sum() > 400


def test_parallel_bands_equal_sequential(tmp_path):
    folder = make_drc_products(tmp_path, size=160, bands=("F438W", "F555W", "F814W"))
    images, errors = {}, {}
    for path in sorted(folder.glob("*_drc-s*.fits")) + sorted(folder.glob("*_drc-err.fits")):
        model = pp.open(path)
        (errors if path.stem.endswith("err") else images)[model.meta.filter] = model
    rng = np.random.default_rng(1)
    sources = Table({"x": rng.uniform(12, 147, 300), "y": rng.uniform(12, 147, 300)})
    one = photometry.PhotometryConfig(workers=1)
    two = photometry.PhotometryConfig(workers=2)
    assert band_processes(images, errors, two.workers, 300, two.parallel_min_sources) == 2
    seq, apc_seq = photometry.measure_bands(sources, images, errors, one, apcorr_fallback_v=-0.7)
    par, apc_par = photometry.measure_bands(sources, images, errors, two, apcorr_fallback_v=-0.7)
    assert apc_seq == apc_par
    for name in seq.colnames:
        np.testing.assert_array_equal(np.asarray(seq[name]), np.asarray(par[name]), err_msg=name)


def test_object_types_follow_the_stellar_locus():
    """Extended/too-sharp limits move with the SHARP of the point sources of the catalog."""
    from phangs_products.pipeline.photometry.psf_phot import object_type, stellar_locus

    rng = np.random.default_rng(3)
    for locus in (0.0, -0.023):
        stars = locus + rng.normal(0.0, 0.004, 300)
        clusters = locus - rng.uniform(0.025, 0.08, 60)
        sharp = np.r_[stars, clusters]
        snr = np.full(sharp.size, 30.0)
        assert abs(stellar_locus(snr, sharp) - locus) < 0.003
        kind = object_type(snr, sharp, np.zeros(sharp.size))
        assert np.mean(kind[:300] == 1) > 0.99
        assert np.all(kind[300:] == 5)
    few = np.full(10, 30.0)
    assert stellar_locus(few, np.full(10, -0.05)) == 0.0  # too few bright sources: no shift


def test_isolation_allows_faint_neighbours_only_when_asked():
    x = np.array([0.0, 10.0, 100.0, 105.0, 200.0])
    y = np.zeros(5)
    flux = np.array([100.0, 0.5, 100.0, 5.0, np.nan])
    assert photometry.isolated_sources(x, y, 15.0).tolist() == [False, False, False, False, True]
    relaxed = photometry.isolated_sources(x, y, 15.0, flux, 0.01)
    assert relaxed.tolist() == [True, False, False, False, True]  # 0.5% neighbour allowed, 5% not
    only_bright = photometry.isolated_sources(x, y, 15.0, flux, 0.01, among=flux > 50)
    assert only_bright.tolist() == [True, False, False, False, False]


def test_calibrators_are_found_in_a_crowded_field(caplog):
    """0.03 sources/px^2 with a rising luminosity function (a 500k-source 4k x 4k pointing):
    almost no source is alone within 15 px, but bright ones with only faint neighbours are."""
    rng = np.random.default_rng(3)
    n = int(0.03 * 1000 * 1000)
    x, y = rng.uniform(0, 1000, n), rng.uniform(0, 1000, n)
    mag = 27.0 - rng.exponential(1.0 / (0.3 * np.log(10)), n)  # dlog N / dm = 0.3
    flux = 10 ** (-0.4 * (mag - 25.0))
    bright = mag < 21.5
    config = photometry.PhotometryConfig()
    strict = photometry.isolated_sources(x, y, config.apcorr_annulus[1])
    with caplog.at_level("INFO", logger="phangs_products.pipeline.photometry"):
        chosen = photometry.calibrator_isolation(x, y, flux, bright, config)
    print(f"{bright.sum()} bright: {np.sum(strict & bright)} alone, {chosen.sum()} allowed")
    assert np.sum(strict & bright) < config.apcorr_min_isolated
    assert chosen.sum() >= config.apcorr_min_isolated and not (chosen & ~bright).any()
    assert "allowing neighbours below 1%" in caplog.text
    # every allowed calibrator's neighbours hold at most 1% of its flux each
    tree = cKDTree(np.c_[x, y])
    for i in np.flatnonzero(chosen):
        near = [j for j in tree.query_ball_point([x[i], y[i]], 15.0) if j != i]
        assert (flux[near] <= 0.01 * flux[i]).all()

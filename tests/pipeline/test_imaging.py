"""Imaging stage on the simulated field: alignment, grid, photometry, ERR, EXP, validity."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.stats import sigma_clipped_stats
from astropy.table import Table
from conftest import by_filter
from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture
from photutils.centroids import centroid_2dg, centroid_sources

import phangs_products as pp
from phangs_products.pipeline.imaging_stage import input_files
from phangs_products.pipeline.sim_psf import psf_for

BANDS = ("F275W", "F336W", "F438W", "F555W", "F814W")


def isolated_stars(truth: Table, vmax: float, min_sep: float = 0.6) -> Table:
    coords = SkyCoord(truth["ra"], truth["dec"], unit="deg")
    _, sep, _ = coords.match_to_catalog_sky(coords, nthneighbor=2)
    return truth[(truth["kind"] == "star") & (sep.arcsec > min_sep) & (truth["F555W_vega"] < vmax)]


def star_offsets(drc: pp.ImageModel, stars: Table) -> np.ndarray:
    x, y = drc.wcs.world_to_pixel(SkyCoord(stars["ra"], stars["dec"], unit="deg"))
    ny, nx = drc.data.shape
    ok = (x > 15) & (x < nx - 15) & (y > 15) & (y < ny - 15)
    data = np.asarray(drc.data, float)
    xc, yc = centroid_sources(data, x[ok], y[ok], box_size=7, centroid_func=centroid_2dg)
    return np.hypot(xc - x[ok], yc - y[ok])


def test_alignment_brings_stars_onto_truth(sim_small, imaging_run):
    truth = Table.read(sim_small.truth)
    stars = isolated_stars(truth, 24.5)
    drc = pp.open(by_filter(imaging_run["drc-sci"], "F555W"))
    after = np.sqrt(np.mean(star_offsets(drc, stars) ** 2))
    # before: where the same stars fall with the FLC's original (unaligned) header WCS
    coords = SkyCoord(stars["ra"], stars["dec"], unit="deg")
    flc_in = next(p for p in input_files(sim_small.flc_dir) if "isim130" in p.name)
    flc_out = next(p for p in imaging_run["flc"] if "isim130aq" in p.name)
    wcs_in = pp.open(flc_in).chip_wcs(1)
    wcs_out = pp.open(flc_out).chip_wcs(1)
    x0, y0 = wcs_in.world_to_pixel(coords)
    x1, y1 = wcs_out.world_to_pixel(coords)
    before = np.sqrt(np.mean((x1 - x0) ** 2 + (y1 - y0) ** 2)) * 0.0396 / 0.04
    print(
        f"astrometric rms vs truth: before {before:.3f} DRC px, after {after:.4f} DRC px "
        f"({len(stars)} stars)"
    )
    assert after < 0.05
    assert before > 10 * after


def test_all_bands_share_the_f555w_grid(imaging_run):
    ref = pp.open(by_filter(imaging_run["drc-sci"], "F555W"))
    for filt in BANDS:
        for kind in ("drc-sci", "drc-err", "drc-exp"):
            model = pp.open(by_filter(imaging_run[kind], filt))
            assert model.data.shape == ref.data.shape
            np.testing.assert_allclose(model.wcs.wcs.crval, ref.wcs.wcs.crval, rtol=0, atol=1e-10)
            np.testing.assert_allclose(
                model.wcs.pixel_scale_matrix, ref.wcs.pixel_scale_matrix, rtol=1e-9, atol=1e-16
            )
            np.testing.assert_allclose(model.wcs.wcs.crpix, ref.wcs.wcs.crpix, atol=1e-6)
    scale = np.sqrt(abs(np.linalg.det(ref.wcs.pixel_scale_matrix))) * 3600
    assert scale == pytest.approx(0.04, rel=1e-6)
    assert ref.wcs.pixel_scale_matrix[0, 1] == pytest.approx(0.0, abs=1e-12)  # north up


def test_drc_photometry_of_isolated_stars_matches_truth(sim_small, imaging_run):
    truth = Table.read(sim_small.truth)
    for filt in ("F555W", "F814W"):
        drc = pp.open(by_filter(imaging_run["drc-sci"], filt))
        stars = isolated_stars(truth, 24.0)
        x, y = drc.wcs.world_to_pixel(SkyCoord(stars["ra"], stars["dec"], unit="deg"))
        ny, nx = drc.data.shape
        ok = (x > 20) & (x < nx - 20) & (y > 20) & (y < ny - 20)
        pos = np.c_[x[ok], y[ok]]
        data = np.asarray(drc.data, float)
        sky = ApertureStats(data, CircularAnnulus(pos, 10, 15)).median
        aper = CircularAperture(pos, 6.0)
        flux = ApertureStats(data, aper).sum - sky * aper.area
        ee = psf_for(filt).ee(6.0 * 0.04 / 0.0396)
        ratio = flux / ee / np.asarray(stars[f"{filt}_rate"])[ok]
        print(f"{filt}: {ok.sum()} isolated stars, median DRC/truth flux {np.median(ratio):.4f}")
        assert abs(np.median(ratio) - 1) < 0.02


def test_err_matches_sky_scatter_and_exp_is_exposure_time(sim_small, imaging_run):
    for filt in ("F555W", "F336W"):
        sci = np.asarray(pp.open(by_filter(imaging_run["drc-sci"], filt)).data, float)
        err = np.asarray(pp.open(by_filter(imaging_run["drc-err"], filt)).data, float)
        exp = pp.open(by_filter(imaging_run["drc-exp"], filt))
        full = np.asarray(exp.data) > 0.99 * np.asarray(exp.data).max()
        # sky at full depth away from every simulated object: scatter of 8x8 block means
        # (drizzle correlates neighbouring pixels; block sums carry the per-pixel variance)
        truth = Table.read(sim_small.truth)
        tx, ty = exp.wcs.world_to_pixel(SkyCoord(truth["ra"], truth["dec"], unit="deg"))
        clear = full.copy()
        yy, xx = np.mgrid[-6:7, -6:7]
        for dx, dy in zip(xx.ravel(), yy.ravel(), strict=True):
            ix, iy = np.round(tx).astype(int) + dx, np.round(ty).astype(int) + dy
            ok = (ix >= 0) & (ix < sci.shape[1]) & (iy >= 0) & (iy < sci.shape[0])
            clear[iy[ok], ix[ok]] = False
        n = 8
        ny, nx = (s // n * n for s in sci.shape)
        blocks = sci[:ny, :nx].reshape(ny // n, n, nx // n, n).mean(axis=(1, 3))
        good = clear[:ny, :nx].reshape(ny // n, n, nx // n, n).all(axis=(1, 3))
        # differences of horizontally adjacent clear blocks remove the smooth disk light
        pair = good[:, :-1] & good[:, 1:]
        diff = (blocks[:, 1:] - blocks[:, :-1])[pair]
        _, _, std = sigma_clipped_stats(diff, sigma=3.0, maxiters=10)
        scatter = std / np.sqrt(2) * n
        predicted = np.median(err[:ny, :nx][np.repeat(np.repeat(good, n, 0), n, 1)])
        print(
            f"{filt}: sky block scatter {scatter:.4f}, ERR {predicted:.4f} e-/s per pixel "
            f"({good.sum()} blocks)"
        )
        assert scatter == pytest.approx(predicted, rel=0.2)
        assert np.median(np.asarray(exp.data)[full]) == pytest.approx(exp.meta.exptime, rel=1e-3)


def test_products_validate_and_pass_fitsverify(imaging_run):
    paths = [p for kind in ("drc-sci", "drc-err", "drc-exp", "flc") for p in imaging_run[kind]]
    for path in paths:
        pp.open(path, strict=True).validate()
        assert "/" not in str(pp.open(path).meta.get("FILENAME", ""))
    if shutil.which("fitsverify") is None:
        pytest.skip("fitsverify is not installed (make test installs it)")
    for path in [*paths[:4], imaging_run["flc"][0]]:
        out = subprocess.run(["fitsverify", "-e", "-q", str(path)], capture_output=True, text=True)
        assert "0 error" in out.stdout or out.returncode == 0, out.stdout

"""Imaging stage on the simulated field: alignment, grid, photometry, ERR, EXP, validity."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.stats import sigma_clipped_stats
from astropy.table import Table
from factories import assert_shared_grid, by_filter, offsets_from_true_wcs
from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture
from photutils.centroids import centroid_2dg, centroid_sources

import phangs_products as pp
from phangs_products.pipeline.imaging.stage import input_files
from phangs_products.pipeline.instrument import psf_for

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
    """Aligned FLC WCS vs the true WCS of every exposure, at the reference stars on its chip.

    The simulator records each exposure's true WCS, so the alignment error is measured
    exactly (no centroiding noise): where the aligned WCS puts the reference stars minus where
    they really fall, in DRC pixels.  The DRC centroids of isolated stars are printed too;
    they add the centroid noise of V < 24.5 stars (about 0.03 px).  With 42 reference stars
    per chip the small field fits shifts only (see ``ImagingConfig.min_refstars_rscale``).
    """
    exposures = Table.read(sim_small.truth_exposures)
    ref = np.loadtxt(sim_small.reference_catalog, usecols=(0, 1))
    scale = 0.0396 / 0.04
    before, after, filters = [], [], []
    for row in exposures:
        filters.append(row["filter"])
        flc_in = next(p for p in input_files(sim_small.flc_dir) if row["rootname"] in p.name)
        flc_out = next(p for p in imaging_run["flc"] if row["rootname"] in p.name)
        for path, out in ((flc_in, before), (flc_out, after)):
            offsets = offsets_from_true_wcs(
                exposures, ref, row["rootname"], int(row["extver"]), path
            )
            out.append(offsets * scale)
    rms_before = np.sqrt(np.mean(np.concatenate(before) ** 2))
    rms_after = np.sqrt(np.mean(np.concatenate(after) ** 2))
    worst = max(np.sqrt(np.mean(a**2)) for a in after)
    ref_band = np.concatenate([a for a, f in zip(after, filters, strict=True) if f == "F555W"])
    rms_ref = np.sqrt(np.mean(ref_band**2))
    stars = isolated_stars(Table.read(sim_small.truth), 24.5)
    drc = pp.open(by_filter(imaging_run["drc-sci"], "F555W"))
    centroids = np.sqrt(np.mean(star_offsets(drc, stars) ** 2))
    print(
        f"alignment rms vs the true WCS over {len(exposures)} exposure chips: before "
        f"{rms_before:.3f} DRC px, after {rms_after:.4f} DRC px (F555W, the grid's band, "
        f"{rms_ref:.4f}; worst exposure {worst:.4f}); "
        f"F555W DRC centroids of {len(stars)} isolated stars vs truth: {centroids:.4f} px"
    )
    assert rms_ref < 0.05  # the reference band defines the DRC grid and the detections
    assert rms_after < 0.1 and worst < 0.2
    assert rms_before > 10 * rms_after
    assert centroids < 0.1


def test_all_bands_share_the_f555w_grid(imaging_run):
    assert_shared_grid(imaging_run, BANDS)


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


def test_drizzle_writes_only_inside_its_scratch_folder(sim_small, tmp_path):
    """Concurrent runs must not share files: AstroDrizzle's static masks are named after the
    output up to its last underscore, so an underscore in a parent folder once put them in
    that parent (two galaxies on Dask then read each other's half-written mask)."""
    from phangs_products.pipeline.imaging.drizzle import drizzle_band
    from phangs_products.pipeline.imaging.exposures import (
        ImagingConfig,
        copy_inputs,
        group_exposures,
    )

    groups, _ = group_exposures(input_files(sim_small.flc_dir), ["F555W"])
    scratch = tmp_path / "my_run" / "field_a" / "scratch"
    exposures = copy_inputs(groups["F555W"], scratch)
    before = {p for p in tmp_path.rglob("*")}
    images = drizzle_band(exposures, scratch, ImagingConfig())
    new = {p for p in tmp_path.rglob("*")} - before
    assert images.sci.exists() and images.sci.parent == scratch
    outside = sorted(str(p) for p in new if scratch not in p.parents)
    assert not outside, outside
    # the masks are deleted at the end (clean=True): where they were written is in the log
    log = (scratch / "astrodrizzle_f555w.log").read_text()
    masks = [
        line.split("disk:")[1].strip()
        for line in log.splitlines()
        if "static mask to disk:" in line
    ]
    assert masks
    for mask in masks:
        assert (scratch / mask).resolve().parent == scratch.resolve(), mask

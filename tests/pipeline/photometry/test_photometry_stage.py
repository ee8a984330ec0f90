"""Detection, aperture photometry, CI/MCI and DOLPHOT ingestion on the simulated field."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from factories import by_filter, measure

import phangs_products as pp
from phangs_products.errors import PhangsProductsError
from phangs_products.pipeline.photometry.config import PhotometryConfig
from phangs_products.pipeline.photometry.detect import detect_sources
from phangs_products.pipeline.photometry.dolphot_io import DolphotError, read_dolphot

BANDS = ("F275W", "F336W", "F438W", "F555W", "F814W")


@pytest.fixture(scope="module")
def measured(imaging_run):
    images = {f: pp.open(by_filter(imaging_run["drc-sci"], f)) for f in BANDS}
    errors = {f: pp.open(by_filter(imaging_run["drc-err"], f)) for f in BANDS}
    return measure(images, errors)


def test_completeness_and_concentration(sim_small, measured, imaging_run):
    table, _ = measured
    images = {"F555W": pp.open(by_filter(imaging_run["drc-sci"], "F555W"))}
    truth = Table.read(sim_small.truth)
    tc = SkyCoord(truth["ra"], truth["dec"], unit="deg")
    sc = SkyCoord(table["ra"], table["dec"], unit="deg")
    idx, sep, _ = tc.match_to_catalog_sky(sc)
    # V < 25 is S/N >= 10 in the 670 s F555W exposure of the simulation; objects on the image,
    # away from the detection edge margin
    x, y = images["F555W"].wcs.world_to_pixel(tc)
    ny, nx = images["F555W"].data.shape
    margin = PhotometryConfig().edge + 2
    on = (x > margin) & (x < nx - margin) & (y > margin) & (y < ny - margin)
    bright = on & (truth["kind"] != "assoc_star") & (truth["F555W_vega"] < 25.0)
    completeness = np.mean(sep.arcsec[bright] < 0.08)
    print(f"completeness V < 25: {completeness:.3f} ({bright.sum()} objects)")
    assert completeness >= 0.9
    hit = sep.arcsec < 0.06
    stars = hit & (truth["kind"] == "star")
    clusters = hit & (truth["kind"] == "cluster") & (truth["r_eff_pc"] >= 2.0)
    ci_star = np.nanmedian(np.asarray(table["CI"])[idx[stars]])
    ci_cl = np.nanmedian(np.asarray(table["CI"])[idx[clusters]])
    print(f"median CI: stars {ci_star:.3f}, clusters r_eff >= 2 pc {ci_cl:.3f}")
    assert ci_cl - ci_star > 0.2
    # MCI: point sources are more compact than the fiducial cluster profile
    assert np.nanmedian(np.asarray(table["MCI_IN"])[idx[stars]]) > np.nanmedian(
        np.asarray(table["MCI_IN"])[idx[clusters]]
    )


def test_isolated_star_photometry_is_unbiased(sim_small, measured):
    table, _ = measured
    truth = Table.read(sim_small.truth)
    tc = SkyCoord(truth["ra"], truth["dec"], unit="deg")
    sc = SkyCoord(table["ra"], table["dec"], unit="deg")
    _, nn, _ = tc.match_to_catalog_sky(tc, nthneighbor=2)
    idx, sep, _ = tc.match_to_catalog_sky(sc)
    iso = (
        (truth["kind"] == "star")
        & (nn.arcsec > 0.5)
        & (sep.arcsec < 0.06)
        & (truth["F555W_vega"] < 25)
    )
    diff = np.asarray(table["F555W_mag"])[idx[iso]] - np.asarray(truth["F555W_vega"])[iso]
    err = np.asarray(table["F555W_mag_err"])[idx[iso]]
    z = (diff - np.median(diff)) / err
    width = 1.4826 * np.median(np.abs(z))  # robust: two 3-sigma stars of 27 gave chi2 1.8
    print(
        f"{iso.sum()} isolated stars: V bias {np.median(diff):+.4f} mag, "
        f"normalised scatter {width:.2f} (robust), reduced chi2 {np.mean(z**2):.2f}"
    )
    assert abs(np.median(diff)) < 0.02
    assert 0.7 < width < 1.5  # scatter consistent with the reported errors
    assert np.mean(np.abs(z) > 3.5) < 0.1


def _write_dolphot(tmp_path, nfilters=3, extra_column=False):
    lines = [
        "1. Extension (zero for base image)",
        "2. Chip (for three-dimensional FITS image)",
        "3. Object X position on reference image (or first image, if no reference)",
        "4. Object Y position on reference image (or first image, if no reference)",
        "5. Chi for fit",
        "6. Signal-to-noise",
        "7. Object sharpness",
        "8. Object roundness",
        "9. Direction of major axis (if not round)",
        "10. Crowding",
        "11. Object type (1=bright star, 2=faint, 3=elongated, 4=hot pixel, 5=extended)",
    ]
    per = [
        "Total counts",
        "Total sky level",
        "Normalized count rate",
        "Normalized count rate uncertainty",
        "Instrumental VEGAMAG magnitude",
        "Transformed UBVRI magnitude",
        "Magnitude uncertainty",
        "Chi",
        "Signal-to-noise",
        "Sharpness",
        "Roundness",
        "Crowding",
        "Photometry quality flag",
    ]
    filters = ["WFC3_F275W", "WFC3_F555W", "ACS_F814W"][:nfilters]
    for filt in filters:
        for desc in per:
            lines.append(f"{len(lines) + 1}. {desc}, {filt}")
    lines.append(f"{len(lines) + 1}. Measured counts, ib01_flc.chip1 (F555W, 223.3 sec)")
    (tmp_path / "x.phot.columns").write_text("\n".join(lines) + "\n")
    ncol = len(lines) + (1 if extra_column else 0)
    rng = np.random.default_rng(0)
    rows = rng.uniform(1, 20, (4, ncol))
    rows[:, 11 + 5 - 1] = [20.5, 21.0, 99.999, 22.1]  # F275W VEGAMAG (column 16), 99.999 = none
    rows[:, 10] = [1, 2, 1, 5]
    np.savetxt(tmp_path / "x.phot", rows, fmt="%.3f")
    return tmp_path / "x.phot", tmp_path / "x.phot.columns", rows


def test_dolphot_ingestion_maps_every_column(tmp_path):
    phot, cols, rows = _write_dolphot(tmp_path)
    table = read_dolphot(phot, cols)
    assert [b.filter for b in table.meta["bands"]] == ["F275W", "F555W", "F814W"]
    assert table.meta["bands"][2].instrument == "ACS/WFC"
    assert np.allclose(table["X"], np.round(rows[:, 2], 3) - 0.5)
    assert list(table["F275W_VEGA"]) == pytest.approx([20.5, 21.0, 99.999, 22.1])
    schema = pp.get_schema("dolphot-catalog")
    names = {c.name for c in schema.expand_columns(table.meta["bands"])}
    missing = names - set(table.colnames) - {"RA", "DEC", "ID"}
    assert missing == set()
    assert table.meta["version"] == "unstated"  # no file states it: never an assumed number


def test_dolphot_version_comes_from_its_own_files(tmp_path):
    phot, cols, _ = _write_dolphot(tmp_path)
    (tmp_path / "x.phot.info").write_text("DOLPHOT version 3.1 (c) A. Dolphin\nx.phot\n")
    assert read_dolphot(phot, cols).meta["version"] == "3.1"


def test_dolphot_width_mismatch_is_a_clear_error(tmp_path):
    phot, cols, _ = _write_dolphot(tmp_path, extra_column=True)
    with pytest.raises(DolphotError, match=r"x.phot: \d+ columns but x.phot.columns describes"):
        read_dolphot(phot, cols)


def test_empty_and_nan_images(imaging_run):
    drc = pp.open(by_filter(imaging_run["drc-sci"], "F555W"))
    empty = pp.ImageModel.create(
        "drc-sci", np.full((50, 50), np.nan), drc.wcs, drc.meta.schema_items()
    )
    with pytest.raises(PhangsProductsError, match="no valid pixels"):
        detect_sources(empty, PhotometryConfig())
    holes = np.asarray(drc.data, float).copy()
    holes[100:200, 100:200] = np.nan
    island = pp.ImageModel.create("drc-sci", holes, drc.wcs, drc.meta.schema_items())
    found = detect_sources(island, PhotometryConfig())
    inside = (found["x"] > 100) & (found["x"] < 200) & (found["y"] > 100) & (found["y"] < 200)
    assert len(found) > 100 and not inside.any()


def test_psf_bands_in_processes_equal_the_sequential_fit(imaging_run):
    """The PSF fallback fits the bands in worker processes with the sequential catalog, bit for bit.

    Three bands of the simulated field, the brightest 400 sources of the F555W detection.
    """
    from phangs_products.pipeline.photometry.bandpool import band_processes
    from phangs_products.pipeline.photometry.psf_phot import PSFPhotConfig, psf_catalog

    bands = ("F336W", "F555W", "F814W")
    images = {f: pp.open(by_filter(imaging_run["drc-sci"], f)) for f in bands}
    errors = {f: pp.open(by_filter(imaging_run["drc-err"], f)) for f in bands}
    found = detect_sources(images["F555W"], PhotometryConfig())
    sources = found[np.argsort(-np.asarray(found["peak"]))[:400]]
    config = PSFPhotConfig(parallel_min_sources=0)
    assert band_processes(images, errors, 0, len(sources), config.parallel_min_sources) >= 2
    one, bands_one = psf_catalog(sources, images, errors, "F555W", config, workers=1)
    two, bands_two = psf_catalog(sources, images, errors, "F555W", config, workers=2)
    assert bands_one == bands_two and [b.filter for b in bands_one] == list(bands)
    assert one.colnames == two.colnames and len(one) == 400
    for name in one.colnames:
        np.testing.assert_array_equal(np.asarray(one[name]), np.asarray(two[name]), err_msg=name)
    assert np.median(np.asarray(one["F555W_SNR"])) > 10  # real fits, not sentinels

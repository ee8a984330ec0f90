"""The simulator: valid FLC files, fitsverify, drizzle and aperture fluxes vs truth, determinism."""

from __future__ import annotations

import shutil
import subprocess
import warnings

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.stats import SigmaClip
from astropy.table import Table
from astropy.wcs import WCS
from photutils.aperture import (
    ApertureStats,
    CircularAnnulus,
    CircularAperture,
    aperture_photometry,
)
from scipy.ndimage import uniform_filter

import phangs_products as pp
from phangs_products.cli import main as cli_main
from phangs_products.errors import PhangsProductsError, ProductError
from phangs_products.pipeline.instrument import PSF, psf_for
from phangs_products.pipeline.sim.config import SimConfig
from phangs_products.pipeline.sim.exposure import render_clusters
from phangs_products.pipeline.sim.psf import render_sources
from phangs_products.pipeline.sim.scene import eff_shape
from phangs_products.pipeline.sim.simulate import simulate, true_to_header_radec

V_ONLY = ("F555W",)
# fewer stars than the default so that enough bright stars are isolated
NOISY = SimConfig(bands=V_ONLY, seed=4, n_stars=300)


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """F555W only, with noise, cosmic rays, defects and a pointing error (seed 4)."""
    return simulate(NOISY, tmp_path_factory.mktemp("noisy"))


@pytest.fixture(scope="module")
def noiseless(tmp_path_factory):
    """F555W and F275W, expected counts only (seed 5)."""
    config = SimConfig(
        bands=("F275W", "F555W"), seed=5, noiseless=True, diffuse=False, n_stars=200, n_clusters=10
    )
    return simulate(config, tmp_path_factory.mktemp("noiseless"))


def isolated(truth: Table, filt: str, mag_max: float, r_ap: float, tol: float) -> Table:
    """Stars whose neighbours put less than ``tol`` of the star's flux into its aperture.

    A neighbour at distance d (px) contributes at most its PSF surface density at d - r_ap
    times the aperture area (its whole flux when closer than r_ap + 3 px).
    """
    psf = psf_for(filt)
    alpha = psf.core_fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / psf.core_beta) - 1.0))
    coords = SkyCoord(truth["ra"], truth["dec"], unit="deg")
    rate = np.asarray(truth[f"{filt}_rate"])
    keep = []
    for i in np.flatnonzero((truth["kind"] == "star") & (truth[f"{filt}_vega"] < mag_max)):
        d = coords[i].separation(coords).arcsec / 0.0396
        d[i] = np.inf
        edge = np.maximum(d - r_ap, 0.0)
        density = (
            (psf.core_beta - 1) / (np.pi * alpha**2) * (1 + (edge / alpha) ** 2) ** (-psf.core_beta)
        )
        frac = np.where(d < r_ap + 3, 1.0, np.minimum(1.0, density * np.pi * r_ap**2))
        if (rate * frac).sum() < tol * rate[i]:
            keep.append(i)
    return truth[keep]


def aperture_rates(image, x, y, r, r_in, r_out):
    """Aperture sums minus the annulus median (robust to neighbours; exact for gradients)."""
    ap = CircularAperture(np.column_stack([x, y]), r)
    an = CircularAnnulus(np.column_stack([x, y]), r_in, r_out)
    total = np.asarray(aperture_photometry(image, ap, method="exact")["aperture_sum"])
    stats = ApertureStats(image, an, sigma_clip=SigmaClip(sigma=2.5, maxiters=10))
    bkg = np.asarray(stats.median) * ap.area
    return total - bkg, ap.area / an.area


def pixel_ee(psf: PSF, radii, step: float = 0.05, extent: float = 16.0) -> np.ndarray:
    """Encircled energy of the PSF seen through square pixels (PSF convolved with the pixel).

    Computed independently of the renderer: the analytic Moffat on a fine grid, convolved with a
    1 x 1 px box, summed inside each radius.
    """
    n = int(extent / step)
    c = (np.arange(-n, n + 1)) * step
    r2 = c[None, :] ** 2 + c[:, None] ** 2
    alpha = psf.core_fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / psf.core_beta) - 1.0))
    prof = (psf.core_beta - 1) / (np.pi * alpha**2) * (1 + r2 / alpha**2) ** (-psf.core_beta)
    prof = uniform_filter(prof, size=int(np.round(1 / step)), mode="constant") * step**2
    r = np.sqrt(r2)
    return np.array([prof[r <= radius].sum() for radius in np.atleast_1d(radii)])


def expected_fraction(psf: PSF, r, r_in, r_out, ratio, pixels: bool = False):
    """Fraction of a star's counts the background-subtracted aperture measures.

    The renderer keeps the light inside its 25 x 25 px stamp, scaled to ``psf.ee(12.5)``.
    """
    if pixels:
        ee_ap, ee_in, ee_out, square = pixel_ee(psf, [r, r_in, r_out, 12.5])
        ee_ap, ee_in, ee_out = np.array([ee_ap, ee_in, ee_out]) * psf.ee(12.5) / square
    else:
        ee_ap, ee_in, ee_out = psf.ee(r), psf.ee(r_in), psf.ee(r_out)
    return ee_ap - ratio * (ee_out - ee_in)


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": "huge"}, "size 'huge' is not one of"),
        ({"bands": ("F999W",)}, "not a PHANGS-HST band"),
        ({"target": "ngc9999"}, "not in the PHANGS-HST table"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"n_stars": -5}, "n_stars must be >= 0"),
        ({"exptime_scale": 0.0}, "exptime_scale must be > 0"),
    ],
)
def test_bad_config_gives_one_line_error(kwargs, message):
    with pytest.raises(PhangsProductsError, match=message) as info:
        SimConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_config_defaults_are_the_papers():
    config = SimConfig()
    assert config.bands == ("F275W", "F336W", "F438W", "F555W", "F814W")
    totals = {f: 3 * config.exptime(f) for f in config.bands}
    assert totals == pytest.approx(
        {"F275W": 2200, "F336W": 1100, "F438W": 1100, "F555W": 670, "F814W": 830}, abs=0.2
    )
    assert config.target == "ngc628" and config.field == "ngc628c"


# ----------------------------------------------------------------------------- files
def test_flc_files_open_strictly_and_look_real(noisy):
    assert len(noisy.flc_files) == 3
    for path in noisy.flc_files:
        model = pp.open(path, strict=True)
        assert isinstance(model, pp.FlcModel)
        model.validate()
        with fits.open(path) as hdul:
            names = [(h.name, h.ver) for h in hdul]
            assert names[:4] == [("PRIMARY", 1), ("SCI", 1), ("ERR", 1), ("DQ", 1)]
            prim, sci = hdul[0].header, hdul["SCI", 1].header
            for key in (
                "TELESCOP",
                "INSTRUME",
                "DETECTOR",
                "FILTER",
                "EXPTIME",
                "EXPSTART",
                "EXPEND",
                "ROOTNAME",
                "DATE-OBS",
                "TIME-OBS",
                "PROPOSID",
                "TARGNAME",
                "RA_TARG",
                "DEC_TARG",
                "ATODGNA",
                "ATODGND",
                "READNSEA",
                "READNSED",
            ):
                assert key in prim, key
            assert prim["INSTRUME"] == "WFC3" and prim["DETECTOR"] == "UVIS"
            assert prim["SIMULATD"] is True and prim["HLSPID"] == "phangs-hst"
            for key in (
                "CD1_1",
                "CD2_2",
                "CCDCHIP",
                "EXPNAME",
                "NGOODPIX",
                "MEANDARK",
                "ORIENTAT",
                "IDCSCALE",
                "WCSNAME",
                "PHOTFLAM",
                "PHOTPLAM",
                "PHOTFNU",
                "PHOTZPT",
                "LTV1",
                "LTM1_1",
            ):
                assert key in sci, key
            assert "PC1_1" not in sci and "CDELT1" not in sci
            assert sci["BUNIT"] == "ELECTRONS"
            assert hdul["SCI", 1].data.dtype == np.dtype(">f4")
            assert hdul["DQ", 1].data.dtype == np.dtype(">i2")
            dq = hdul["DQ", 1].data
            assert sci["NGOODPIX"] == int((dq == 0).sum())
            assert (dq & 16).any() and (dq & 4).any()  # hot pixels, bad column


def test_fitsverify_reports_no_errors(noisy, noiseless):
    if shutil.which("fitsverify") is None:
        pytest.skip("fitsverify is not installed (Debian package fitsverify)")
    for path in noisy.flc_files + noiseless.flc_files[:1]:
        out = subprocess.run(["fitsverify", str(path)], capture_output=True, text=True).stdout
        assert "0 warning(s) and 0 error(s)" in out, out[-800:]


def test_truth_tables(noisy):
    truth = Table.read(noisy.truth)
    kinds = set(truth["kind"])
    assert kinds == {"star", "assoc_star", "cluster"}
    for col in (
        "id",
        "ra",
        "dec",
        "F555W_rate",
        "F555W_vega",
        "r_eff_pc",
        "age_myr",
        "mass",
        "ebv",
        "assoc_id",
        "eff_gamma",
    ):
        assert col in truth.colnames
    cl = truth[truth["kind"] == "cluster"]
    assert 0.5 <= cl["r_eff_pc"].min() and cl["r_eff_pc"].max() <= 10.0
    assert 1.0 <= cl["age_myr"].min() and cl["age_myr"].max() <= 3000.0
    assert (cl["mass"] > 0).all() and ((cl["ebv"] >= 0) & (cl["ebv"] <= 0.5)).all()
    assoc = Table.read(noisy.truth_associations)
    members = truth[truth["kind"] == "assoc_star"]
    assert set(members["assoc_id"]) == set(assoc["assoc_id"])
    assert ((assoc["fwhm_pc"] >= 10) & (assoc["fwhm_pc"] <= 100)).all()
    # Vega magnitudes and rates agree through the PHANGS zero point
    zp = pp.bands.band("F555W").zp_vega
    assert np.allclose(truth["F555W_vega"], zp - 2.5 * np.log10(truth["F555W_rate"]))


def test_reference_catalog_is_tweakreg_text_of_true_positions(noisy):
    lines = noisy.reference_catalog.read_text().splitlines()
    assert lines[0].startswith("#")
    cat = np.loadtxt(noisy.reference_catalog, comments="#")
    assert cat.shape[0] >= 15 and cat.shape[1] == 3
    truth = Table.read(noisy.truth)
    tc = SkyCoord(truth["ra"], truth["dec"], unit="deg")
    _, sep, _ = SkyCoord(cat[:, 0], cat[:, 1], unit="deg").match_to_catalog_sky(tc)
    assert sep.arcsec.max() < 1e-4


def test_header_carries_the_pointing_error_truth_the_real_one(noisy):
    exposures = Table.read(noisy.truth_exposures)
    row = exposures[0]
    err = np.hypot(row["err_east_arcsec"], row["err_north_arcsec"])
    assert 0.01 < err < 1.5
    truth = Table.read(noisy.truth)
    star = isolated(truth, "F555W", 24.5, 3.0, 0.05)
    with fits.open(noisy.flc_files[0]) as hdul:
        data = hdul["SCI", 1].data.astype(float)
        w_hdr = WCS(hdul["SCI", 1].header)
    ra_h, dec_h = true_to_header_radec(exposures, row["rootname"], star["ra"], star["dec"])
    x, y = w_hdr.all_world2pix(ra_h, dec_h, 0)
    x_naive, y_naive = w_hdr.all_world2pix(star["ra"], star["dec"], 0)
    inside = (x > 8) & (x < 504) & (y > 8) & (y < 504)
    # centroid of each star near its predicted position (true WCS -> header frame)
    offsets = []
    for xi, yi in zip(x[inside], y[inside], strict=True):
        ix, iy = int(np.round(xi)), int(np.round(yi))
        cut = data[iy - 3 : iy + 4, ix - 3 : ix + 4]
        cut = cut - np.median(data[iy - 8 : iy + 9, ix - 8 : ix + 9])
        yy, xx = np.mgrid[iy - 3 : iy + 4, ix - 3 : ix + 4]
        offsets.append(((cut * xx).sum() / cut.sum() - xi, (cut * yy).sum() / cut.sum() - yi))
    assert len(offsets) >= 5
    assert np.median(np.abs(offsets)) < 0.15  # px: the truth puts the stars where they are
    naive = np.hypot(x_naive - x, y_naive - y)
    assert np.median(naive) == pytest.approx(err / 0.0396, rel=0.1, abs=0.3)


# ----------------------------------------------------------------------------- fluxes
def test_noiseless_aperture_flux_equals_truth_after_ee_correction(noiseless):
    truth = Table.read(noiseless.truth)
    for filt in ("F555W", "F275W"):
        path = next(p for p in noiseless.flc_files if fits.getval(p, "FILTER") == filt)
        with fits.open(path) as hdul:
            data = hdul["SCI", 1].data.astype(float)
            w = WCS(hdul["SCI", 1].header)
            exptime = hdul[0].header["EXPTIME"]
        stars = isolated(truth, filt, 25.0 if filt == "F555W" else 24.5, 4.0, 0.001)
        x, y = w.all_world2pix(stars["ra"], stars["dec"], 0)
        inside = (x > 20) & (x < 491) & (y > 20) & (y < 491)
        assert inside.sum() >= 5, f"{filt}: too few isolated stars"
        measured, ratio = aperture_rates(data, x[inside], y[inside], 4.0, 10.0, 14.0)
        psf = psf_for(filt)
        expect = (
            stars[f"{filt}_rate"][inside]
            * exptime
            * expected_fraction(psf, 4, 10, 14, ratio, pixels=True)
        )
        rel = measured / expect - 1
        print(
            f"{filt}: {inside.sum()} stars, aperture/truth - 1: median {np.median(rel):+.5f}, "
            f"max |.| {np.abs(rel).max():.5f}"
        )
        assert np.abs(rel).max() < 0.005


def test_compact_cluster_renders_like_a_star_and_r_eff_is_the_half_light_radius():
    psf = psf_for("F555W")
    star, cluster = np.zeros((64, 64)), np.zeros((64, 64))
    render_sources(star, [30.3], [31.7], [1000.0], psf)
    a, rt = eff_shape(np.array([0.01]), np.array([3.0]))
    render_clusters(cluster, [30.3], [31.7], [1000.0], a, [3.0], rt, psf)
    assert np.abs(star - cluster).max() < 1e-3 * star.max()
    point = PSF(core_fwhm=0.05)  # ~no PSF: the intrinsic profile binned to pixels
    for r_eff, gamma in ((3.0, 2.2), (5.3, 3.2)):
        image = np.zeros((201, 201))
        a, rt = eff_shape(np.array([r_eff]), np.array([gamma]))
        render_clusters(image, [100.2], [100.6], [1.0], a, [gamma], rt, point)
        assert image.sum() == pytest.approx(1.0, abs=1e-4)
        radii = np.linspace(0.5, 15, 300)
        apertures = [CircularAperture((100.2, 100.6), r) for r in radii]
        growth = [float(aperture_photometry(image, ap)["aperture_sum"][0]) for ap in apertures]
        assert np.interp(0.5, growth, radii) == pytest.approx(r_eff, rel=0.03)


@pytest.mark.slow
def test_astrodrizzle_output_flux_of_isolated_stars_matches_truth(noisy, tmp_path, monkeypatch):
    astrodrizzle = pytest.importorskip("drizzlepac.astrodrizzle")
    scratch = tmp_path / "driz"
    scratch.mkdir()
    inputs = [shutil.copy(p, scratch) for p in noisy.flc_files]
    monkeypatch.chdir(scratch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        astrodrizzle.AstroDrizzle(
            [str(p) for p in inputs],
            output=str(scratch / "f555w"),
            final_scale=0.04,
            final_rot=0,
            skymethod="globalmin+match",
            final_units="cps",
            final_wht_type="EXP",
            build=False,
            clean=True,
            preserve=False,
            num_cores=1,
        )
    with fits.open(scratch / "f555w_drc_sci.fits") as hdul:
        drc = hdul[0].data.astype(float)
        w = WCS(hdul[0].header)
    truth = Table.read(noisy.truth)
    exposures = Table.read(noisy.truth_exposures)
    stars = isolated(truth, "F555W", 24.5, 6.0, 0.02)
    ra, dec = true_to_header_radec(exposures, exposures["rootname"][0], stars["ra"], stars["dec"])
    x, y = w.all_world2pix(ra, dec, 0)
    ny, nx = drc.shape
    inside = (x > 30) & (x < nx - 30) & (y > 30) & (y < ny - 30)
    assert inside.sum() >= 5
    scale = 0.04 / 0.0396  # FLC px per DRC px
    # 0.24" aperture, 0.48-0.64" sigma-clipped annulus (larger apertures collect more of the
    # crowded background's bias than of the star's remaining light)
    measured, ratio = aperture_rates(drc, x[inside], y[inside], 6.0, 12.0, 16.0)
    frac = expected_fraction(psf_for("F555W"), 6 * scale, 12 * scale, 16 * scale, ratio)
    rel = measured / (stars["F555W_rate"][inside] * frac) - 1
    print(
        f"DRC vs truth, {inside.sum()} isolated stars: median {np.median(rel):+.4f}, "
        f"scatter {np.std(rel):.4f}"
    )
    assert abs(np.median(rel)) < 0.02
    assert np.mean(np.abs(rel) < 0.06) > 0.8


# ----------------------------------------------------------------------------- determinism
def test_same_seed_same_bytes_other_seed_other_scene(noisy, tmp_path):
    again = simulate(NOISY, tmp_path / "again")
    skip = {"DATE", "CHECKSUM", "DATASUM"}
    for p1, p2 in zip(noisy.flc_files, again.flc_files, strict=True):
        with fits.open(p1) as h1, fits.open(p2) as h2:
            assert len(h1) == len(h2)
            for a, b in zip(h1, h2, strict=True):
                assert [tuple(c) for c in a.header.cards if c.keyword not in skip] == [
                    tuple(c) for c in b.header.cards if c.keyword not in skip
                ]
                if a.data is not None:
                    assert np.asarray(a.data).tobytes() == np.asarray(b.data).tobytes()
    for name in ("truth", "truth_associations", "truth_exposures", "reference_catalog"):
        assert getattr(noisy, name).read_bytes() == getattr(again, name).read_bytes()
    other = simulate(SimConfig(bands=V_ONLY, seed=6, n_stars=300), tmp_path / "other")
    t1, t2 = Table.read(noisy.truth), Table.read(other.truth)
    assert len(t1) != len(t2) or not np.allclose(t1["ra"], t2["ra"])
    d1 = fits.getdata(noisy.flc_files[0], ("SCI", 1))
    d2 = fits.getdata(other.flc_files[0], ("SCI", 1))
    assert not np.array_equal(d1, d2)


def test_rerun_reuses_and_other_config_needs_overwrite(noisy):
    mtimes = [p.stat().st_mtime_ns for p in noisy.flc_files]
    again = simulate(NOISY, noisy.out_dir)
    assert [p.stat().st_mtime_ns for p in again.flc_files] == mtimes
    with pytest.raises(ProductError, match="overwrite=True"):
        simulate(SimConfig(bands=V_ONLY, seed=7), noisy.out_dir)


def test_simulate_command_line(tmp_path, capsys):
    """``phangs-products simulate`` (the installed entry point's main) takes every option."""
    out = tmp_path / "cli"
    argv = ["simulate", "--out", str(out), "--bands", "F814W", "--seed", "2", "--noiseless"]
    assert cli_main([*argv, "--no-arms", "--size", "small", "--target", "ngc628"]) == 0
    flcs = sorted((out / "flc").glob("*_flc.fits"))
    assert [fits.getval(p, "FILTER") for p in flcs] == ["F814W"] * 3
    assert fits.getval(flcs[0], "ROOTNAME") == "isim200aq"
    assert "3 exposures" in capsys.readouterr().out
    config = (out / "simulation.txt").read_text()
    assert "noiseless=True" in config and "spiral_arms=False" in config


def test_associations_stay_resolvable():
    """Members are capped so that HST resolves each association (mean separation inside the
    half-light radius >= 2 F555W PSF FWHMs); the truth table counts the members kept."""
    from phangs_products.pipeline.sim.scene import build_scene, resolved_members

    truth, assoc, _ = build_scene(SimConfig(seed=11, size="medium", n_associations=6), (0.04, 0.04))
    pc_per_arcsec = pp.bands.galaxy("ngc628").distance_mpc * 1e6 / 206264.806
    fwhm_arcsec = np.asarray(assoc["fwhm_pc"], float) / pc_per_arcsec
    counts = np.bincount(truth["assoc_id"][truth["kind"] == "assoc_star"], minlength=len(assoc) + 1)
    assert (counts[1:] == assoc["n_members"]).all()
    assert (assoc["n_members"] <= np.maximum(resolved_members(fwhm_arcsec), 2)).all()
    assert assoc["n_members"].min() >= 2 and assoc["n_members"].max() <= 45
    compact = assoc["fwhm_pc"] < 20
    assert compact.any() and (assoc["n_members"][compact] <= 15).all()
    assert (assoc["n_members"][assoc["fwhm_pc"] > 40] >= 15).all()  # wide ones keep all drawn

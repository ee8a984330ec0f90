"""The PSF measured on the data (photutils ePSF) against known PSFs and independent fits."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.modeling import fitting, models
from factories import by_filter, sim_run

import phangs_products as pp
from phangs_products.pipeline.graph import build_stages
from phangs_products.pipeline.instrument import FLC_SCALE, psf_for
from phangs_products.pipeline.photometry.aperture import aperture_fluxes, fiducial_ci
from phangs_products.pipeline.psf import (
    MeasuredPSF,
    PSFMeasureConfig,
    _star_positions,
    measure_psf,
    profile_fwhm,
)
from phangs_products.pipeline.runner import run_stages
from phangs_products.pipeline.sim.config import SimConfig
from phangs_products.pipeline.sim.simulate import simulate


def _moffat_image(shape, xs, ys, fluxes, fwhm, beta, sub=5):
    """Pixel-integrated Moffat stars (``sub`` x ``sub`` sub-sampling)."""
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    image = np.zeros(shape)
    off = (np.arange(sub) + 0.5) / sub - 0.5
    for x, y, f in zip(xs, ys, fluxes, strict=True):
        ix, iy = round(x), round(y)
        yy, xx = np.mgrid[iy - 20 : iy + 21, ix - 20 : ix + 21]
        acc = np.zeros(yy.shape)
        for dy in off:
            for dx in off:
                r2 = (xx + dx - x) ** 2 + (yy + dy - y) ** 2
                acc += (1 + r2 / alpha**2) ** (-beta)
        acc *= (beta - 1) / (np.pi * alpha**2) / sub**2
        image[iy - 20 : iy + 21, ix - 20 : ix + 21] += f * acc
    return image


def test_profile_fwhm_of_a_gaussian():
    yy, xx = np.mgrid[:61, :61]
    sigma = 2.0
    img = np.exp(-((xx - 30) ** 2 + (yy - 30) ** 2) / (2 * sigma**2))
    assert profile_fwhm(img) == pytest.approx(2.3548 * sigma, rel=0.02)
    # oversampled by 2: the same image is a PSF half as wide in native pixels
    assert profile_fwhm(img, oversampling=2) == pytest.approx(2.3548 * sigma / 2, rel=0.02)


@pytest.mark.parametrize("fwhm", [2.5, 3.6])
def test_measured_psf_follows_the_data(fwhm):
    """A field whose PSF is broader than the instrument model: the ePSF FWHM is the data's."""
    rng = np.random.default_rng(3)
    shape = (600, 600)
    n = 60
    xs = rng.uniform(40, 560, n)
    ys = rng.uniform(40, 560, n)
    grid = np.column_stack(
        [np.repeat(np.arange(6), 10) * 90 + 50, np.tile(np.arange(10), 6) * 55 + 40]
    )
    xs, ys = grid[:, 0] + rng.uniform(-3, 3, n), grid[:, 1] + rng.uniform(-3, 3, n)
    image = _moffat_image(shape, xs, ys, rng.uniform(2e3, 2e4, n), fwhm, 2.5)
    noiseless = _moffat_image((61, 61), [30.0], [30.0], [1.0], fwhm, 2.5)
    truth = profile_fwhm(noiseless)
    image += rng.normal(0, 1.0, shape) + 5.0
    psf = measure_psf(image, "F555W", 0.04)
    assert psf.source == "image" and psf.n_stars >= 30
    assert psf.fwhm_px == pytest.approx(truth, rel=0.05)
    model = psf_for("F555W").core_fwhm * FLC_SCALE / 0.04
    if fwhm > 3:  # broader than the instrument model: the measurement does not fall back to it
        assert psf.fwhm_px > 1.4 * model


def test_too_few_stars_fall_back_to_the_instrument_model():
    rng = np.random.default_rng(0)
    image = rng.normal(0, 1.0, (300, 300)) + 5.0
    psf = measure_psf(image, "F814W", 0.04)
    assert psf.source == "instrument" and psf.n_stars == 0
    assert psf.fwhm_px == pytest.approx(psf_for("F814W").core_fwhm * FLC_SCALE / 0.04)


def test_drc_psfsize_is_measured_on_the_image(imaging_run):
    """PSFSIZE of every band is the ePSF FWHM; independent Moffat fits of stars agree."""
    for filt in ("F275W", "F336W", "F438W", "F555W", "F814W"):
        drc = pp.open(by_filter(imaging_run["drc-sci"], filt))
        assert drc.meta.psfsize is not None and 0.06 < drc.meta.psfsize < 0.16, filt
    drc = pp.open(by_filter(imaging_run["drc-sci"], "F555W"))
    data = np.asarray(drc.data, float)
    psf = measure_psf(data, "F555W", 0.04)
    assert drc.meta.psfsize == pytest.approx(psf.fwhm_px * 0.04, abs=1e-4)
    # independent check: 2-D Moffat fits to the 15 brightest isolated stars the ePSF used
    stars = _star_positions(data, 2.0, PSFMeasureConfig())[:15]
    fitter = fitting.LMLSQFitter()
    widths = []
    for row in stars:
        x0, y0 = round(row["x_centroid"]), round(row["y_centroid"])
        cut = data[y0 - 8 : y0 + 9, x0 - 8 : x0 + 9]
        yy, xx = np.mgrid[-8:9, -8:9]
        init = models.Moffat2D(cut.max(), 0, 0, 1.5, 2.5) + models.Const2D(np.median(cut))
        fit = fitter(init, xx, yy, cut)
        widths.append(fit[0].fwhm)
    assert psf.fwhm_px == pytest.approx(np.median(widths), rel=0.08)


def test_science_follows_a_broader_psf_than_the_model(tmp_path):
    """A field simulated with a PSF 1.5x broader than the instrument model: PSFSIZE, the CI
    normalisation and the stellar CI locus follow the data, not the model."""
    sim = simulate(SimConfig(seed=5, psf_scale=1.5, bands=("F555W",)), tmp_path / "sim")
    run = sim_run(sim, tmp_path, bands=("F555W",))
    stages = [s for s in build_stages(run) if s.name == "imaging"]
    (result,) = run_stages(run, stages)
    drc = pp.open(by_filter(result.outputs["drc-sci"], "F555W"))
    data = np.asarray(drc.data, float)
    psf = measure_psf(data, "F555W", 0.04)
    model = psf_for("F555W").core_fwhm * FLC_SCALE / 0.04
    assert psf.source == "image"
    assert drc.meta.psfsize == pytest.approx(psf.fwhm_px * 0.04, abs=1e-4)
    assert psf.fwhm_px > 1.3 * model  # the instrument model would have said ~2 px
    # the stellar CI locus: isolated bright stars measured with the pipeline's apertures have
    # the CI of the measured PSF (to 0.05 mag); the model's PSF would be >= 0.1 mag off
    truth = (
        pp.open(sim.truth).table
        if False
        else __import__("astropy.table").table.Table.read(sim.truth)
    )
    stars = truth[(truth["kind"] == "star") & (truth["F555W_vega"] < 23.0)]
    x, y = drc.wcs.world_to_pixel_values(stars["ra"], stars["dec"])
    ny, nx = data.shape
    on = (x > 20) & (x < nx - 20) & (y > 20) & (y < ny - 20)
    x, y = x[on], y[on]
    sep = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    alone = (sep < 12).sum(axis=1) == 1
    err = np.ones_like(data)
    flux, _, _, _ = aperture_fluxes(
        np.nan_to_num(data), err, x[alone], y[alone], (1.0, 3.0), (7.0, 9.0)
    )
    ci_stars = float(np.median(-2.5 * np.log10(flux[:, 0] / flux[:, 1])))
    kernel = psf.kernel()
    c = kernel.shape[0] // 2
    kflux, _, _, _ = aperture_fluxes(
        kernel, np.ones_like(kernel), np.array([c]), np.array([c]), (1.0, 3.0), (9.0, 11.0)
    )
    ci_kernel = float(-2.5 * np.log10(kflux[0, 0] / kflux[0, 1]))
    old = MeasuredPSF(model, "instrument").kernel()
    oflux, _, _, _ = aperture_fluxes(
        old, np.ones_like(old), np.array([c]), np.array([c]), (1.0, 3.0), (9.0, 11.0)
    )
    ci_model = float(-2.5 * np.log10(oflux[0, 0] / oflux[0, 1]))
    assert alone.sum() >= 8
    assert ci_stars == pytest.approx(ci_kernel, abs=0.05)
    assert abs(ci_stars - ci_model) > 0.1
    # the CI normalisation (fiducial profile through the PSF) is broader than with the model
    fid = fiducial_ci(psf.fwhm_px, (1.0, 3.0))
    fid_model = fiducial_ci(model, (1.0, 3.0))
    assert fid[0] - fid[1] > fid_model[0] - fid_model[1]


def test_kernel_is_centred_normalised_and_as_wide_as_measured():
    rng = np.random.default_rng(3)
    xs = np.repeat(np.arange(6), 10) * 90 + 50 + rng.uniform(-3, 3, 60)
    ys = np.tile(np.arange(10), 6) * 55 + 40 + rng.uniform(-3, 3, 60)
    image = _moffat_image((600, 600), xs, ys, rng.uniform(2e3, 2e4, 60), 3.0, 2.5)
    image += rng.normal(0, 1.0, image.shape) + 5.0
    for psf in (measure_psf(image, "F555W", 0.04), MeasuredPSF(3.0, "instrument")):
        kernel = psf.kernel()
        assert kernel.shape == (25, 25) and kernel.sum() == pytest.approx(1.0)
        assert np.unravel_index(kernel.argmax(), kernel.shape) == (12, 12)
        assert profile_fwhm(kernel) == pytest.approx(psf.fwhm_px, rel=0.12)

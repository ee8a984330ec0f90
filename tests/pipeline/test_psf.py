"""The PSF measured on the data (photutils ePSF) against known PSFs and independent fits."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.modeling import fitting, models
from factories import by_filter

import phangs_products as pp
from phangs_products.pipeline.instrument import FLC_SCALE, psf_for
from phangs_products.pipeline.psf import measure_psf, profile_fwhm


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
    from phangs_products.pipeline.psf import PSFMeasureConfig, _star_positions

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

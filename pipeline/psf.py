"""The PSF of a drizzled image, measured on the image itself (photutils ePSF).

Bright, isolated, compact point sources are found with DAOStarFinder, cut out and stacked with
photutils' :class:`~photutils.psf.EPSFBuilder` (Anderson & King 2000 empirical PSF, oversampled
2x).  The FWHM is read off the azimuthally averaged profile of the ePSF (the radius where it
falls to half its peak, linearly interpolated), so it carries the drizzle kernel, the pixel
response and any halo of the data, not a model's.

Fallback when fewer than ``min_stars`` usable stars exist (a sparse or very crowded field): the
instrument's PSF model, whose Moffat widths were fitted to the STScI WFC3/UVIS encircled-energy
curves (:mod:`phangs_products.pipeline.instrument`), scaled from FLC to output pixels.  The
result says which of the two it is (``source``), and the products record it.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.nddata import NDData
from astropy.stats import sigma_clipped_stats
from astropy.table import Table
from photutils.detection import DAOStarFinder
from photutils.psf import EPSFBuilder, extract_stars
from scipy.spatial import cKDTree

from phangs_products.pipeline.instrument import CORE_BETA, FLC_SCALE, moffat_alpha, psf_for

__all__ = ["MeasuredPSF", "PSFMeasureConfig", "measure_psf", "profile_fwhm"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PSFMeasureConfig:
    """How stars are chosen for the ePSF.

    Attributes
    ----------
    box : int
        Cutout size in px (odd); also the isolation radius: no other detection within it.
    min_stars, max_stars : int
        Fewest stars for an ePSF (else the fallback) and most used (the brightest).
    min_snr : float
        Peak signal-to-noise of a star over the clipped image noise.
    max_roundness : float
        Largest DAOStarFinder |roundness| of a star.
    oversampling : int
        ePSF oversampling factor.
    width_tolerance : float
        Largest FWHM of a star relative to the 20th percentile of the candidates' FWHMs
        (point sources are the narrowest population; resolved clusters are broader).
    """

    box: int = 25
    min_stars: int = 10
    max_stars: int = 150
    min_snr: float = 30.0
    max_roundness: float = 0.3
    oversampling: int = 2
    width_tolerance: float = 1.15


@dataclass(frozen=True)
class MeasuredPSF:
    """A band's PSF.

    Attributes
    ----------
    fwhm_px : float
        FWHM in output pixels.
    source : str
        ``'image'`` (ePSF of the image's stars) or ``'instrument'`` (the fallback model).
    n_stars : int
        Stars stacked (0 for the fallback).
    epsf : ndarray or None
        The normalised ePSF (sum 1 over its native pixels), oversampled by ``oversampling``.
    oversampling : int
        Oversampling of ``epsf``.
    """

    fwhm_px: float
    source: str
    n_stars: int = 0
    epsf: np.ndarray | None = None
    oversampling: int = 1

    def kernel(self, half: int = 12) -> np.ndarray:
        """The PSF on the image's pixel grid, centred in a ``2 half + 1`` square, sum 1.

        The ePSF sampled at native pixel centres; for the instrument fallback, a Moffat of the
        model's slope and ``fwhm_px`` integrated over pixels.
        """
        if self.epsf is None:
            alpha = float(moffat_alpha(self.fwhm_px, CORE_BETA))
            sub = 5
            f = (np.arange(sub) + 0.5) / sub - 0.5
            g = (np.arange(-half, half + 1)[:, None] + f[None, :]).ravel()
            r2 = g[None, :] ** 2 + g[:, None] ** 2
            n = 2 * half + 1
            image = ((1.0 + r2 / alpha**2) ** -CORE_BETA).reshape(n, sub, n, sub).mean(axis=(1, 3))
        else:
            o = self.oversampling
            c = (self.epsf.shape[0] - 1) // 2
            native = self.epsf[c % o :: o, c % o :: o]
            mid = (native.shape[0] - 1) // 2
            lo = max(mid - half, 0)
            image = np.zeros((2 * half + 1, 2 * half + 1))
            cut = native[lo : mid + half + 1, lo : mid + half + 1]
            start = half - (mid - lo)
            image[start : start + cut.shape[0], start : start + cut.shape[1]] = cut
            image = np.clip(image, 0.0, None)
        return image / image.sum()


def profile_fwhm(image: np.ndarray, oversampling: int = 1) -> float:
    """FWHM (native px) of a centred PSF image from its azimuthally averaged profile.

    The profile is binned in annuli of one (oversampled) pixel around the flux-weighted
    centre; the half-maximum radius is interpolated linearly between the two bins around it.
    """
    img = np.asarray(image, float)
    yy, xx = np.indices(img.shape)
    positive = np.clip(img, 0, None)
    total = positive.sum()
    cy, cx = (yy * positive).sum() / total, (xx * positive).sum() / total
    r = np.hypot(yy - cy, xx - cx)
    edges = np.arange(0.0, r.max() + 1.0, 1.0)
    idx = np.digitize(r.ravel(), edges) - 1
    counts = np.bincount(idx, minlength=edges.size)
    sums = np.bincount(idx, weights=img.ravel(), minlength=edges.size)
    good = counts > 0
    radius = (np.bincount(idx, weights=r.ravel(), minlength=edges.size)[good]) / counts[good]
    profile = sums[good] / counts[good]
    peak = img.max()
    below = np.flatnonzero(profile < peak / 2.0)
    if below.size == 0 or below[0] == 0:
        return float("nan")
    i = below[0]
    r0, r1, p0, p1 = radius[i - 1], radius[i], profile[i - 1], profile[i]
    half = r0 + (p0 - peak / 2.0) * (r1 - r0) / (p0 - p1)
    return float(2.0 * half / oversampling)


def _star_positions(data: np.ndarray, fwhm_guess: float, config: PSFMeasureConfig) -> Table:
    finite = np.isfinite(data) & (data != 0)
    _, median, std = sigma_clipped_stats(data[finite], sigma=3.0, maxiters=5)
    image = np.where(finite, data - median, 0.0)
    finder = DAOStarFinder(
        threshold=config.min_snr * std, fwhm=fwhm_guess, exclude_border=True, n_brightest=5000
    )
    found = finder(image)
    if found is None or len(found) == 0:
        return Table()
    x = np.asarray(found["x_centroid"], float)
    y = np.asarray(found["y_centroid"], float)
    half = config.box // 2
    ny, nx = data.shape
    inside = (x > half + 1) & (x < nx - half - 2) & (y > half + 1) & (y < ny - half - 2)
    tree = cKDTree(np.column_stack([x, y]))
    neighbours = np.array([len(n) for n in tree.query_ball_point(np.column_stack([x, y]), half)])
    isolated = neighbours == 1
    compact = np.abs(np.asarray(found["roundness1"], float)) < config.max_roundness
    keep = inside & isolated & compact
    # cutouts must be fully covered (no chip gap or image edge inside)
    for k in np.flatnonzero(keep):
        ix, iy = round(x[k]), round(y[k])
        if not finite[iy - half : iy + half + 1, ix - half : ix + half + 1].all():
            keep[k] = False
    chosen = found[keep]
    if len(chosen) == 0:
        return chosen
    # point sources are the narrowest population; star clusters (resolved at PHANGS distances)
    # are broader: keep the sources within `width_tolerance` of the narrow end of the widths
    widths = np.array(
        [
            profile_fwhm(image[iy - half : iy + half + 1, ix - half : ix + half + 1])
            for ix, iy in zip(
                np.round(chosen["x_centroid"]).astype(int),
                np.round(chosen["y_centroid"]).astype(int),
                strict=True,
            )
        ]
    )
    narrow = np.nanpercentile(widths, 20.0)
    chosen = chosen[np.isfinite(widths) & (widths <= config.width_tolerance * narrow)]
    chosen.sort("flux", reverse=True)
    return chosen[: config.max_stars]


def measure_psf(
    data: np.ndarray,
    filter_name: str,
    pixscale: float,
    config: PSFMeasureConfig | None = None,
) -> MeasuredPSF:
    """Measure the PSF of a drizzled image on its own stars (fallback: the instrument model).

    Parameters
    ----------
    data : ndarray
        The image (count rate; NaN or 0 where there is no data).
    filter_name : str
        Band (for the fallback model and the first FWHM guess of the star finder).
    pixscale : float
        Output pixel scale, arcsec/px.
    config : PSFMeasureConfig, optional
        Star selection (defaults).

    Returns
    -------
    MeasuredPSF
    """
    config = config or PSFMeasureConfig()
    model_fwhm = psf_for(filter_name).core_fwhm * FLC_SCALE / pixscale
    data = np.asarray(data, float)
    stars = _star_positions(data, model_fwhm, config)
    if len(stars) < config.min_stars:
        log.info(
            "%s: %d isolated bright stars (< %d): PSF from the instrument model, FWHM %.2f px",
            filter_name,
            len(stars),
            config.min_stars,
            model_fwhm,
        )
        return MeasuredPSF(model_fwhm, "instrument")
    finite = np.isfinite(data) & (data != 0)
    _, median, _ = sigma_clipped_stats(data[finite], sigma=3.0, maxiters=5)
    nddata = NDData(np.where(finite, data - median, 0.0))
    positions = Table({"x": stars["x_centroid"], "y": stars["y_centroid"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # photutils notes stars it drops near edges
        cutouts = extract_stars(nddata, positions, size=config.box)
        builder = EPSFBuilder(
            oversampling=config.oversampling,
            maxiters=5,
            progress_bar=False,
            smoothing_kernel="quartic",
        )
        epsf, fitted = builder(cutouts)
    image = np.asarray(epsf.data, float)
    fwhm = profile_fwhm(image, config.oversampling)
    if not np.isfinite(fwhm) or fwhm <= 0:
        log.warning("%s: ePSF profile has no half-maximum: instrument PSF used", filter_name)
        return MeasuredPSF(model_fwhm, "instrument")
    log.info("%s: ePSF of %d stars, FWHM %.2f px", filter_name, len(fitted), fwhm)
    return MeasuredPSF(fwhm, "image", len(fitted), image / image.sum(), config.oversampling)

"""Point-source selection and the smoothed tracer maps of the association method.

Sources of one selection (NUV or V) are placed on the DRC grid, smoothed with Gaussian kernels
of each scale's FWHM (FFT), high-pass filtered and compared with the peak of a single star and
with the chance-grouping threshold of the local field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from scipy import fft
from scipy.stats import poisson

from phangs_products.pipeline.associations.config import (
    FWHM_SIGMA,
    SELECTION_FILTER,
    AssociationConfig,
)


def select_sources(dolphot: Table, selection: str, config: AssociationConfig) -> Table:
    """Point sources of a selection passing the quality cuts.

    Parameters
    ----------
    dolphot : Table
        DOLPHOT point-source catalog.
    selection : str
        ``nuv`` or ``v``.
    config : AssociationConfig
        Quality cuts.

    Returns
    -------
    Table
        The selected rows.
    """
    filt = SELECTION_FILTER[selection]
    snr = np.asarray(dolphot[f"{filt}_SNR"], float)
    sharp = np.asarray(dolphot[f"{filt}_SHARP"], float)
    flag = np.asarray(dolphot[f"{filt}_FLAG"], int)
    objtype = np.asarray(dolphot["OBJTYPE"], int)
    keep = (
        (snr >= config.min_snr)
        & (np.abs(sharp) <= config.max_sharp)
        & (flag <= 2)
        & np.isin(objtype, config.object_types)
    )
    if config.max_crowd is not None:
        keep &= np.asarray(dolphot[f"{filt}_CROWD"], float) <= config.max_crowd
    return dolphot[keep]


class MapSmoother:
    """Gaussian smoothing of point-source maps by FFT, with the data footprint.

    The tracer map and the footprint (1 where the DRC has data) are zero-padded by
    ``pad`` pixels (so nothing wraps around) and transformed once; every Gaussian is then
    one multiplication by its analytic transform exp(-2 pi^2 sigma^2 f^2) and one inverse
    transform, whatever its width (``scipy.ndimage.gaussian_filter`` costs grow with sigma,
    the 256 pc background kernel would dominate a full field).

    Parameters
    ----------
    image : ndarray
        Tracer map (stars per pixel).
    footprint : ndarray of bool
        Pixels with data (same shape).
    pad : int
        Zero padding on each side, px (>= 4 sigma of the widest kernel).
    workers : int
        Threads of ``scipy.fft``.
    """

    def __init__(
        self, image: np.ndarray, footprint: np.ndarray, pad: int, workers: int = 2
    ) -> None:

        self._fft, self.workers = fft, workers
        self.shape = image.shape
        size = tuple(fft.next_fast_len(n + 2 * pad, real=True) for n in image.shape)
        self.size, self.pad = size, pad
        fy = fft.fftfreq(size[0])[:, None]
        fx = fft.rfftfreq(size[1])[None, :]
        self._f2 = (fy**2 + fx**2).astype(np.float32)
        self._image = fft.rfft2(self._padded(image), workers=workers)
        self._foot = fft.rfft2(self._padded(footprint.astype(np.float32)), workers=workers)

    def _padded(self, array: np.ndarray) -> np.ndarray:
        out = np.zeros(self.size, np.float32)
        out[self.pad : self.pad + self.shape[0], self.pad : self.pad + self.shape[1]] = array
        return out

    def _smooth(self, transform: np.ndarray, sigma: float) -> np.ndarray:
        kernel = np.exp(self._f2 * np.float32(-2.0 * np.pi**2 * sigma**2))
        full = self._fft.irfft2(transform * kernel, s=self.size, workers=self.workers)
        return full[self.pad : self.pad + self.shape[0], self.pad : self.pad + self.shape[1]]

    def highpass(self, fwhm_px: float, factor: float) -> tuple[np.ndarray, np.ndarray]:
        """High-passed map and local background density at one scale.

        Parameters
        ----------
        fwhm_px : float
            Kernel FWHM, px.
        factor : float
            Background kernel = ``factor`` x the kernel (the paper's 4).

        Returns
        -------
        highpass : ndarray
            ``G_k * N - (G_k * F) rho``: the map smoothed with the kernel minus the local
            background, zero outside the footprint.  Inside a fully covered area
            ``G_k * F = 1`` and ``rho = G_4k * N``, the paper's map minus the map smoothed at
            4x; near the footprint edges the background is the local density times the
            covered part of the kernel, so edges make no spurious ridge.
        density : ndarray
            ``rho = (G_4k * N) / (G_4k * F)``, the local background density, stars/px^2.
        """
        sigma = fwhm_px / FWHM_SIGMA
        small = self._smooth(self._image, sigma)
        large = self._smooth(self._image, sigma * factor)
        cover_large = self._smooth(self._foot, sigma * factor)
        density = large / np.maximum(cover_large, np.float32(1e-6))
        cover = self._smooth(self._foot, sigma)
        del large, cover_large
        highpass = small - cover * density
        inside = cover > np.float32(1e-3)
        highpass[~inside] = 0.0
        density[~inside] = 0.0
        return highpass, np.maximum(density, np.float32(0.0))


def single_object(fwhm_px: float, factor: float) -> tuple[float, float]:
    """Peak of one isolated source on the high-passed map, and the map level at FWHM/2.

    The same filters as :meth:`MapSmoother.highpass` applied to one star far from any edge:
    the peak is the paper's "single-object maximum" at this scale, the level at half the FWHM
    from the star the region edge ("edges at the FWHM level").

    Parameters
    ----------
    fwhm_px : float
        Kernel FWHM, px.
    factor : float
        Background kernel size in kernel FWHMs.

    Returns
    -------
    peak, edge : float
        Map values at the star and at FWHM/2 from it.
    """
    half = int(np.ceil(fwhm_px * factor * 3 / FWHM_SIGMA * 2.5)) + 2
    delta = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
    delta[half, half] = 1.0
    smoother = MapSmoother(delta, np.ones_like(delta, bool), pad=0, workers=1)
    filtered, _ = smoother.highpass(fwhm_px, factor)
    peak = float(filtered[half, half])
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    ring = np.abs(np.hypot(xx, yy) - fwhm_px / 2.0) < 0.5
    return peak, float(filtered[ring].mean())


def tracer_map(x: np.ndarray, y: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Number of point sources per pixel (positions rounded to the nearest pixel).

    Parameters
    ----------
    x, y : ndarray
        0-based pixel positions.
    shape : (int, int)
        Map shape (rows, columns).

    Returns
    -------
    ndarray of float32
        Counts.
    """
    ix, iy = np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)
    ok = (ix >= 0) & (ix < shape[1]) & (iy >= 0) & (iy < shape[0])
    flat = np.bincount(iy[ok] * shape[1] + ix[ok], minlength=shape[0] * shape[1])
    return flat.reshape(shape).astype(np.float32)


def chance_threshold(density: np.ndarray, radius_px: float, rate_px2: float) -> np.ndarray:
    """Fewest stars within ``radius_px`` of a peak that chance groupings rarely reach.

    Under a uniform Poisson field of the local density the count inside a circle of radius
    ``radius_px`` is Poisson with mean ``mu = density pi radius^2``.  Counting the map as
    independent circles, the smallest ``k`` with ``P(N >= k) <= rate_px2 pi radius^2`` keeps
    the expected number of chance peaks at or below ``rate_px2`` per px^2 of the map, so a
    field twice as large gets twice the chance peaks and the same threshold.

    Parameters
    ----------
    density : ndarray
        Local field density at the peaks, stars/px^2.
    radius_px : float
        Counting radius, px.
    rate_px2 : float
        Expected chance peaks per px^2 of the map and per scale.

    Returns
    -------
    ndarray of int
        Minimum counts (at least 2: an association has more than one star).
    """
    circle = np.pi * radius_px**2
    q = min(1.0, rate_px2 * circle)
    mu = np.asarray(density, float) * circle
    k = poisson.isf(q, mu) + 1
    return np.maximum(np.asarray(k, np.int64), 2)


@dataclass
class ScaleMaps:
    """Intermediate products of one selection and scale (for diagnostics and tests).

    Attributes
    ----------
    highpass, density : ndarray
        See :meth:`MapSmoother.highpass`.
    peak1, edge : float
        Single-object peak and edge level (:func:`single_object`).
    candidates : ndarray
        (N, 2) y, x of local maxima above ``peak_factor * peak1``.
    counts, needed : ndarray
        Stars within the counting radius of each candidate, and the chance threshold.
    """

    highpass: np.ndarray
    density: np.ndarray
    peak1: float
    edge: float
    candidates: np.ndarray
    counts: np.ndarray
    needed: np.ndarray


def _local_background(
    tree,
    x: np.ndarray,
    y: np.ndarray,
    peaks: np.ndarray,
    density: np.ndarray,
    sigma_l: float,
    radius: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Counts within ``radius`` of each peak and the background density without them.

    The 4x-smoothed density at a peak contains the candidate itself; its members (the stars
    within the counting radius, weighted by the wide Gaussian) are removed from it so that a
    rich association does not raise its own threshold.
    """
    yx = peaks.astype(float)
    members = tree.query_ball_point(yx[:, ::-1], radius, workers=1)
    counts = np.fromiter((len(m) for m in members), np.int64, len(members))
    owner = np.repeat(np.arange(len(members)), counts)
    flat = np.fromiter((i for m in members for i in m), np.int64, int(counts.sum()))
    r2 = (x[flat] - yx[owner, 1]) ** 2 + (y[flat] - yx[owner, 0]) ** 2
    g0 = 1.0 / (2.0 * np.pi * sigma_l**2)
    own = np.bincount(owner, weights=g0 * np.exp(-r2 / (2 * sigma_l**2)), minlength=len(counts))
    inner = 1.0 - np.exp(-(radius**2) / (2 * sigma_l**2))
    rho = density[peaks[:, 0], peaks[:, 1]].astype(float)
    rho_bg = np.maximum(rho - own, 0.0) / (1.0 - inner)
    return counts, rho_bg

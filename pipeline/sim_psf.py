"""The simulator's point-spread function and source renderer.

PSF model (documented approximation of WFC3/UVIS): a Moffat profile with beta = 2.15 and FWHM
2.0 FLC pixels, from a least-squares fit of a scaled Moffat to the STScI UVIS2 encircled-energy
curves of F336W, F438W and F555W within 0.5" (fitted beta 2.14-2.16, FWHM 1.97-2.05 px).  F275W
and F814W, whose curves a Moffat fits worse, get a 10% wider core.  The real PSF's extended halo
(the fits leave 8% of the light outside the Moffat) is not modelled: ``CORE_FRACTION = 1``.
Extended sources (clusters) are Moffat/EFF profiles whose FWHM adds in quadrature to the core's.

Rendering integrates each profile over pixels by 3x3 sub-sampling on a stamp and scales the
stamp to the profile's analytic enclosed flux, so the total flux is exact to < 0.1%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PSF", "psf_for", "render_sources"]

CORE_BETA = 2.15
CORE_FRACTION = 1.0
HALO_BETA = 1.5
HALO_FWHM = 8.0
CORE_FWHM = {"F275W": 2.2, "F336W": 2.0, "F438W": 2.0, "F555W": 2.0, "F814W": 2.2}
SUB = 3


def moffat_alpha(fwhm: float | np.ndarray, beta: float) -> np.ndarray:
    """Moffat core width alpha from the FWHM."""
    return np.asarray(fwhm) / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))


def moffat_ee(radius: float | np.ndarray, fwhm: float | np.ndarray, beta: float) -> np.ndarray:
    """Fraction of a Moffat profile's flux within ``radius`` (px)."""
    alpha = moffat_alpha(fwhm, beta)
    return 1.0 - (1.0 + (np.asarray(radius) / alpha) ** 2) ** (1.0 - beta)


@dataclass(frozen=True)
class PSF:
    """Moffat PSF of one band in FLC pixels (optionally with a halo component)."""

    core_fwhm: float
    core_beta: float = CORE_BETA
    core_fraction: float = CORE_FRACTION
    halo_fwhm: float = HALO_FWHM
    halo_beta: float = HALO_BETA

    def ee(self, radius: float | np.ndarray, extra_fwhm: float | np.ndarray = 0.0) -> np.ndarray:
        """Encircled energy within ``radius`` px of a source of intrinsic FWHM ``extra_fwhm``."""
        core = np.sqrt(self.core_fwhm**2 + np.asarray(extra_fwhm) ** 2)
        halo = np.sqrt(self.halo_fwhm**2 + np.asarray(extra_fwhm) ** 2)
        return self.core_fraction * moffat_ee(radius, core, self.core_beta) + (
            1.0 - self.core_fraction
        ) * moffat_ee(radius, halo, self.halo_beta)


def psf_for(filter_name: str) -> PSF:
    """The PSF of a band."""
    return PSF(core_fwhm=CORE_FWHM.get(filter_name.upper(), 2.0))


def _profile(r2: np.ndarray, fwhm: np.ndarray, beta: float) -> np.ndarray:
    alpha = moffat_alpha(fwhm, beta)[:, None, None]
    norm = (beta - 1.0) / (np.pi * alpha**2)
    return norm * (1.0 + r2 / alpha**2) ** (-beta)


def render_sources(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    counts: np.ndarray,
    psf: PSF,
    extra_fwhm: np.ndarray | float = 0.0,
    half: int = 12,
) -> None:
    """Add sources to ``image`` in place (vectorised over sources, chunked for memory).

    Parameters
    ----------
    image : ndarray
        2-D image (counts).
    x, y : ndarray
        0-based pixel centres of the sources.
    counts : ndarray
        Total counts of each source.
    psf : PSF
        The band's PSF.
    extra_fwhm : float or ndarray
        Intrinsic FWHM (px) of extended sources, added in quadrature (0 for stars).
    half : int
        Stamp half-size in pixels.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    counts = np.asarray(counts, float)
    extra = np.broadcast_to(np.asarray(extra_fwhm, float), x.shape)
    ny, nx = image.shape
    inside = (x > -half) & (x < nx + half) & (y > -half) & (y < ny + half) & (counts > 0)
    x, y, counts, extra = x[inside], y[inside], counts[inside], extra[inside]
    if x.size == 0:
        return
    offs = np.arange(-half, half + 1)
    sub = (np.arange(SUB) + 0.5) / SUB - 0.5
    # sub-pixel grid offsets relative to the pixel centre
    fine = (offs[:, None] + sub[None, :]).ravel()
    chunk = max(1, 4_000_000 // (fine.size**2))
    for start in range(0, x.size, chunk):
        sl = slice(start, start + chunk)
        xc, yc, cc, ec = x[sl], y[sl], counts[sl], extra[sl]
        ix, iy = np.round(xc).astype(int), np.round(yc).astype(int)
        dx = (ix - xc)[:, None, None] + fine[None, None, :]
        dy = (iy - yc)[:, None, None] + fine[None, :, None]
        r2 = dx**2 + dy**2
        core = np.sqrt(psf.core_fwhm**2 + ec**2)
        halo = np.sqrt(psf.halo_fwhm**2 + ec**2)
        prof = psf.core_fraction * _profile(r2, core, psf.core_beta) + (
            1.0 - psf.core_fraction
        ) * _profile(r2, halo, psf.halo_beta)
        n = offs.size
        pix = prof.reshape(len(xc), n, SUB, n, SUB).mean(axis=(2, 4))
        # scale so the stamp holds the analytic flux inside it (radius ~ stamp half-size)
        total = pix.sum(axis=(1, 2))
        expect = psf.ee(half + 0.5, ec) * cc
        pix *= (expect / np.where(total > 0, total, 1.0))[:, None, None]
        yy = iy[:, None, None] + offs[None, :, None]
        xx = ix[:, None, None] + offs[None, None, :]
        ok = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
        yy_b, xx_b = np.broadcast_arrays(yy, xx)
        np.add.at(image, (yy_b[ok], xx_b[ok]), pix[ok])

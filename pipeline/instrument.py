"""Instrument facts the science steps use: band order and the WFC3/UVIS PSF model.

PSF model (documented approximation of WFC3/UVIS): a Moffat profile with beta = 2.15 and FWHM
2.0 FLC pixels, from a least-squares fit of a scaled Moffat to the STScI UVIS2 encircled-energy
curves of F336W, F438W and F555W within 0.5" (fitted beta 2.14-2.16, FWHM 1.97-2.05 px).  F275W
and F814W, whose curves a Moffat fits worse, get a 10% wider core.  The real PSF's extended halo
(the fits leave 8% of the light outside the Moffat) is not modelled: ``CORE_FRACTION = 1``.
Extended sources (clusters) are Moffat/EFF profiles whose FWHM adds in quadrature to the core's.

The cluster selection's synthetic profiles and the fiducial CI normalisation use this model; the
simulator renders its stars with it too (:mod:`phangs_products.pipeline.sim.psf`), which is why
they share it here rather than the science importing the simulator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from phangs_products.bands import band
from phangs_products.spec import BandInfo

__all__ = ["FLC_SCALE", "PSF", "band_order", "moffat_alpha", "moffat_ee", "psf_for"]

#: arcsec per WFC3/UVIS FLC pixel (IDCSCALE of the real FLC header); the PSF widths below are
#: in these pixels.
FLC_SCALE = 0.0396
CORE_BETA = 2.15
CORE_FRACTION = 1.0
HALO_BETA = 1.5
HALO_FWHM = 8.0
CORE_FWHM = {"F275W": 2.2, "F336W": 2.0, "F438W": 2.0, "F555W": 2.0, "F814W": 2.2}


def band_order(bands: Sequence[BandInfo]) -> list[BandInfo]:
    """Bands sorted by wavelength (the survey's NUV-U-B-V-I order)."""
    return sorted(bands, key=lambda b: band(b.filter, b.instrument).pivot)


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

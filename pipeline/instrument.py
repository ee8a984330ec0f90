"""Instrument facts the science steps use: band order and the WFC3/UVIS PSF model.

PSF model (documented approximation of WFC3/UVIS): a Moffat profile with beta = 2.15 and FWHM
2.0 FLC pixels, from a least-squares fit of a scaled Moffat to the STScI UVIS2 encircled-energy
curves of F336W, F438W and F555W within 0.5" (fitted beta 2.14-2.16, FWHM 1.97-2.05 px).  F275W
and F814W, whose curves a Moffat fits worse, get a 10% wider core.  The real PSF's extended halo
(the fits leave 8% of the light outside the Moffat) is not modelled: ``CORE_FRACTION = 1``.
Extended sources (clusters) are Moffat/EFF profiles whose FWHM adds in quadrature to the core's.

ACS/WFC (0.05"/px, IDCSCALE of the real ACS/WFC FLC header excerpt in
``reference/real/hst``): the reference holds no ACS encircled-energy table, so its model is the
same Moffat at the same angular FWHM, expressed in ACS pixels (a documented approximation; the
science measures the PSF on the drizzled data, :mod:`phangs_products.pipeline.psf`).

The cluster selection's synthetic profiles and the fiducial CI normalisation use this model; the
simulator renders its stars with it too (:mod:`phangs_products.pipeline.sim.psf`), which is why
they share it here rather than the science importing the simulator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from phangs_products.bands import band
from phangs_products.spec import BandInfo

__all__ = [
    "FLC_SCALE",
    "FLC_SCALES",
    "PSF",
    "band_of",
    "band_order",
    "flc_scale",
    "moffat_alpha",
    "moffat_ee",
    "psf_for",
]

#: arcsec per WFC3/UVIS FLC pixel (IDCSCALE of the real FLC header); the PSF widths below are
#: in these pixels.
FLC_SCALE = 0.0396
#: arcsec per FLC pixel per instrument (IDCSCALE of the real WFC3/UVIS and ACS/WFC headers).
FLC_SCALES = {"WFC3/UVIS": FLC_SCALE, "ACS/WFC": 0.05}
CORE_BETA = 2.15
CORE_FRACTION = 1.0
HALO_BETA = 1.5
HALO_FWHM = 8.0
CORE_FWHM = {"F275W": 2.2, "F336W": 2.0, "F438W": 2.0, "F555W": 2.0, "F814W": 2.2}


def band_of(model: Any) -> BandInfo:
    """The band (instrument and filter) of an image product, from its own header.

    ``INSTRUME`` and ``DETECTOR`` give the instrument (``ACS`` + ``WFC`` -> ``ACS/WFC``),
    ``FILTER`` the filter.
    """
    meta = model.meta
    return BandInfo(str(meta.filter), f"{meta.instrume}/{meta.get('DETECTOR', '')}")


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


def flc_scale(instrument: str = "WFC3/UVIS") -> float:
    """FLC pixel scale (arcsec) of an instrument/detector.

    Raises
    ------
    KeyError
        For an instrument other than WFC3/UVIS and ACS/WFC.
    """
    return FLC_SCALES[instrument]


def psf_for(filter_name: str, instrument: str = "WFC3/UVIS") -> PSF:
    """The PSF model of a band in the instrument's FLC pixels (module doc)."""
    fwhm = CORE_FWHM.get(filter_name.upper(), 2.0)
    return PSF(core_fwhm=fwhm * FLC_SCALE / flc_scale(instrument))

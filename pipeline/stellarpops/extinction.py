"""Milky Way foreground extinction per band: A_band for a foreground E(B-V).

A_band is computed from each band's total-system throughput on a reference spectrum reddened with
the Cardelli, Clayton & Mathis (1989, ApJ 345, 245) law with R_V = 3.1: the shipped SSP grid
(:mod:`phangs_products.pipeline.stellarpops.ssp`) already holds the magnitudes of BC03 spectra
reddened with that law *before* integration through each band, so

    A_band(E) = m_band(age_ref, E) - m_band(age_ref, 0),

interpolated linearly in E(B-V) between the grid's nodes (0.02 mag apart).

Reference spectrum: the BC03 solar-metallicity SSP at ``REFERENCE_AGE_MYR`` = 1 Gyr.  Its light is
dominated by A/F main-sequence stars, close to the 7000 K source spectrum that Schlafly &
Finkbeiner (2011, ApJ 737, 103) adopted for their band tables, and it lies inside the age range
of the catalogued clusters.  The choice matters little: at E(B-V) = 0.1, A_band of a 3 Myr and a
10 Gyr SSP differ by 0.033 mag in F275W (whose red leak sees the SED) and by at most 0.015 mag in
the other bands; the 1 Gyr value sits between them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from phangs_products.errors import PhangsProductsError
from phangs_products.pipeline.stellarpops.ssp import FilterLike, absolute_magnitudes, load_grid

__all__ = ["REFERENCE", "REFERENCE_AGE_MYR", "foreground_extinction"]

#: Age of the reference spectrum (BC03 solar-metallicity SSP), Myr.
REFERENCE_AGE_MYR = 1000.0

#: One-line description of the method, for headers and the README.
REFERENCE = "CCM89 RV=3.1 on a BC03 solar 1 Gyr SSP, through each band"


def foreground_extinction(ebv: float, filters: Sequence[FilterLike]) -> np.ndarray:
    """A_band (mag) of a foreground E(B-V) in each band.

    Parameters
    ----------
    ebv : float
        Milky Way foreground E(B-V) in mag, 0 to the grid's largest value (1.5).
    filters : sequence
        Filter names (WFC3/UVIS by default) or objects with ``filter`` and ``instrument``.

    Returns
    -------
    ndarray
        A_band in mag, shape (len(filters),); zeros for E(B-V) = 0.

    Raises
    ------
    PhangsProductsError
        If E(B-V) is negative, not finite or beyond the grid, or a band is not in the grid.
    """
    e = float(ebv)
    top = float(load_grid().ebv[-1])
    if not np.isfinite(e) or e < 0 or e > top:
        raise PhangsProductsError(f"E(B-V)_MW must be 0 to {top} mag, got {ebv!r}")
    reddened = absolute_magnitudes(REFERENCE_AGE_MYR, e, filters)[0]
    intrinsic = absolute_magnitudes(REFERENCE_AGE_MYR, 0.0, filters)[0]
    return reddened - intrinsic

"""The BC03 simple-stellar-population magnitude grid shared by the simulator and the SED fitter.

``phangs_products/data/ssp_bc03_solar.fits`` holds absolute Vega magnitudes at 10 pc of 1 M_sun
(Chabrier IMF) of BC03 solar-metallicity SSPs, for each age, E(B-V) (Cardelli et al. 1989,
R_V = 3.1, applied to the spectra before integrating through the bands) and WFC3/UVIS band.  It is
built by ``scripts/build_ssp_grid.py``; the file's primary header records its provenance.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from astropy.io import fits

from phangs_products.errors import PhangsProductsError
from phangs_products.spec import BandInfo

__all__ = ["SSPGrid", "absolute_magnitudes", "cluster_magnitudes", "load_grid"]

GRID_FILE = "ssp_bc03_solar.fits"


@dataclass(frozen=True)
class SSPGrid:
    """The SSP magnitude grid.

    Attributes
    ----------
    ages_myr : ndarray
        Ages in Myr, increasing.
    ebv : ndarray
        E(B-V) values in mag, increasing.
    filters : tuple of str
        WFC3/UVIS filters of the last axis.
    mags : ndarray
        Absolute Vega magnitudes at 10 pc per 1 M_sun, shape (n_age, n_ebv, n_band).
    header : fits.Header
        Provenance of the grid.
    """

    ages_myr: np.ndarray
    ebv: np.ndarray
    filters: tuple[str, ...]
    mags: np.ndarray
    header: fits.Header

    def band_index(self, filters: Sequence[str | BandInfo]) -> np.ndarray:
        """Indices of the filters on the band axis.

        Raises
        ------
        PhangsProductsError
            If a filter is not in the grid.
        """
        names = [f.filter if isinstance(f, BandInfo) else str(f).upper() for f in filters]
        missing = [n for n in names if n not in self.filters]
        if missing:
            raise PhangsProductsError(
                f"SSP grid {GRID_FILE}: no magnitudes for {missing} (has {list(self.filters)})"
            )
        return np.array([self.filters.index(n) for n in names])


def grid_path() -> Path:
    """Path of the shipped grid file."""
    return Path(str(resources.files("phangs_products") / "data" / GRID_FILE))


@functools.cache
def load_grid(path: str | None = None) -> SSPGrid:
    """Load (once) the SSP grid."""
    source = Path(path) if path else grid_path()
    with fits.open(source) as hdul:
        mags = np.asarray(hdul["MAGS"].data, dtype=np.float64)
        ages = np.asarray(hdul["AGES"].data["AGE_MYR"], dtype=np.float64)
        ebv = np.asarray(hdul["EBV"].data["EBV"], dtype=np.float64)
        filters = tuple(str(f).strip() for f in hdul["BANDS"].data["FILTER"])
        header = hdul[0].header.copy()
    return SSPGrid(ages, ebv, filters, mags, header)


def absolute_magnitudes(
    age_myr: np.ndarray, ebv: np.ndarray, filters: Sequence[str | BandInfo]
) -> np.ndarray:
    """Absolute Vega magnitudes (10 pc, 1 M_sun) interpolated in log(age) and E(B-V).

    Parameters
    ----------
    age_myr : array_like
        Ages in Myr (clipped to the grid range).
    ebv : array_like
        E(B-V) in mag (clipped to the grid range).
    filters : sequence
        Filter names or BandInfo.

    Returns
    -------
    ndarray
        Shape (N, n_filters).
    """
    grid = load_grid()
    idx = grid.band_index(filters)
    la = np.log10(
        np.clip(np.atleast_1d(np.asarray(age_myr, float)), grid.ages_myr[0], grid.ages_myr[-1])
    )
    e = np.clip(np.atleast_1d(np.asarray(ebv, float)), grid.ebv[0], grid.ebv[-1])
    log_ages = np.log10(grid.ages_myr)
    i = np.clip(np.searchsorted(log_ages, la) - 1, 0, log_ages.size - 2)
    j = np.clip(np.searchsorted(grid.ebv, e) - 1, 0, grid.ebv.size - 2)
    ta = ((la - log_ages[i]) / (log_ages[i + 1] - log_ages[i]))[:, None]
    te = ((e - grid.ebv[j]) / (grid.ebv[j + 1] - grid.ebv[j]))[:, None]
    m = grid.mags[:, :, idx]
    return (
        (1 - ta) * (1 - te) * m[i, j]
        + ta * (1 - te) * m[i + 1, j]
        + (1 - ta) * te * m[i, j + 1]
        + ta * te * m[i + 1, j + 1]
    )


def cluster_magnitudes(
    age_myr: np.ndarray,
    mass_msun: np.ndarray,
    ebv: np.ndarray,
    distance_mpc: float,
    filters: Sequence[str | BandInfo],
) -> np.ndarray:
    """Apparent Vega magnitudes of star clusters, shape (N, n_filters).

    m = M(age, E(B-V)) - 2.5 log10(mass) + 5 log10(d / 10 pc).
    """
    absolute = absolute_magnitudes(age_myr, ebv, filters)
    dm = 5.0 * np.log10(distance_mpc * 1e5)
    mass = np.atleast_1d(np.asarray(mass_msun, float))
    return absolute - 2.5 * np.log10(mass)[:, None] + dm

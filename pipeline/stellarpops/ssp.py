"""The BC03 simple-stellar-population magnitude grid shared by the simulator and the SED fitter.

``phangs_products/data/ssp_bc03_solar.fits`` holds absolute Vega magnitudes at 10 pc of 1 M_sun
formed (Chabrier IMF) of BC03 solar-metallicity SSPs, for 177 ages (1 Myr to 13.75 Gyr),
E(B-V) = 0-1.5 mag in steps of 0.02 (Cardelli et al. 1989, R_V = 3.1, applied to the spectra
before integrating through the bands) and eight bands: WFC3/UVIS F275W, F336W, F438W, F555W,
F814W and ACS/WFC F435W, F555W, F814W.  It is built by ``scripts/build_ssp_grid.py``; the primary
header and the ``BANDS`` extension record its provenance.

Magnitudes between grid nodes are bilinear in (log10 age, E(B-V)).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from astropy.io import fits

from phangs_products.errors import PhangsProductsError
from phangs_products.spec import BandInfo

log = logging.getLogger(__name__)


GRID_FILE = "ssp_bc03_solar.fits"


DEFAULT_INSTRUMENT = "WFC3/UVIS"


FilterLike = str | BandInfo  # or any object with .filter and .instrument (bands.Band)


@dataclass(frozen=True)
class SSPGrid:
    """The SSP magnitude grid.

    Attributes
    ----------
    ages_myr : ndarray
        Ages in Myr, increasing, shape (n_age,).
    ebv : ndarray
        E(B-V) values in mag, increasing, shape (n_ebv,).
    filters : tuple of str
        Filter of each band (``F555W``).
    instruments : tuple of str
        Instrument/detector of each band (``WFC3/UVIS`` or ``ACS/WFC``).
    mags : ndarray
        Absolute Vega magnitudes at 10 pc per 1 M_sun formed, shape (n_age, n_ebv, n_band),
        float64.
    living_frac : ndarray
        Fraction of the formed mass still in living stars at each age (BC03, Kroupa IMF).
    pivots : ndarray
        Pivot wavelengths in Angstrom of the bandpasses used to build the grid.
    header : fits.Header
        Primary header of the grid file: provenance.
    """

    ages_myr: np.ndarray
    ebv: np.ndarray
    filters: tuple[str, ...]
    instruments: tuple[str, ...]
    mags: np.ndarray
    living_frac: np.ndarray
    pivots: np.ndarray
    header: fits.Header

    @property
    def log_ages(self) -> np.ndarray:
        """log10(age / Myr) of the grid nodes."""
        return np.log10(self.ages_myr)

    def band_index(self, filters: Sequence[FilterLike]) -> np.ndarray:
        """Band-axis indices of the given filters.

        Parameters
        ----------
        filters : sequence
            Filter names (``"F555W"``: WFC3/UVIS unless only another instrument has it),
            ``BandInfo`` objects or anything with ``filter`` and ``instrument`` attributes.

        Returns
        -------
        ndarray
            Integer indices, shape (len(filters),).

        Raises
        ------
        PhangsProductsError
            If a filter is not in the grid.
        """
        keys = list(zip(self.instruments, self.filters, strict=True))
        out = []
        for f in filters:
            if isinstance(f, str):
                name, inst = f.strip().upper(), None
            else:
                name = str(getattr(f, "filter", f)).strip().upper()
                inst = getattr(f, "instrument", None)
            if inst is not None and (inst, name) in keys:
                out.append(keys.index((inst, name)))
            elif inst is None and (DEFAULT_INSTRUMENT, name) in keys:
                out.append(keys.index((DEFAULT_INSTRUMENT, name)))
            elif inst is None and self.filters.count(name) == 1:
                out.append(self.filters.index(name))
            else:
                have = [f"{i} {n}" for i, n in keys]
                raise PhangsProductsError(
                    f"SSP grid {GRID_FILE}: no band {inst or DEFAULT_INSTRUMENT} {name} "
                    f"(has {have})"
                )
        return np.asarray(out, dtype=int)


def grid_path() -> Path:
    """Path of the shipped grid file."""
    return Path(str(resources.files("phangs_products") / "data" / GRID_FILE))


@functools.cache
def load_grid(path: str | None = None) -> SSPGrid:
    """Load the SSP grid (cached per path).

    Parameters
    ----------
    path : str, optional
        Grid file; default the shipped ``ssp_bc03_solar.fits``.

    Returns
    -------
    SSPGrid
        The grid, magnitudes as float64.

    Raises
    ------
    PhangsProductsError
        If the file is missing or malformed.
    """
    source = Path(path) if path else grid_path()
    try:
        with fits.open(source) as hdul:
            mags = np.asarray(hdul["MAGS"].data, dtype=np.float64)
            ages_t, bands_t = hdul["AGES"].data, hdul["BANDS"].data
            ages = np.asarray(ages_t["AGE_MYR"], dtype=np.float64)
            living = (
                np.asarray(ages_t["LIVING_FRAC"], dtype=np.float64)
                if "LIVING_FRAC" in ages_t.names
                else np.full(ages.size, np.nan)
            )
            ebv = np.asarray(hdul["EBV"].data["EBV"], dtype=np.float64)
            filters = tuple(str(f).strip() for f in bands_t["FILTER"])
            instruments = tuple(str(i).strip() for i in bands_t["INSTRUMENT"])
            pivots = np.asarray(bands_t["PIVOT"], dtype=np.float64)
            header = hdul[0].header.copy()
    except (OSError, KeyError) as exc:
        raise PhangsProductsError(f"SSP grid {source}: cannot read ({exc})") from exc
    if mags.shape != (ages.size, ebv.size, len(filters)):
        raise PhangsProductsError(
            f"SSP grid {source}: MAGS {mags.shape} != (ages, ebv, bands) "
            f"({ages.size}, {ebv.size}, {len(filters)})"
        )
    log.debug("SSP grid %s: %s ages x %s E(B-V) x %s bands", source, *mags.shape)
    return SSPGrid(ages, ebv, filters, instruments, mags, living, pivots, header)


def distance_modulus(distance_mpc: float) -> float:
    """Distance modulus 5 log10(d / 10 pc) in mag.

    Raises
    ------
    PhangsProductsError
        If the distance is not a positive finite number of Mpc.
    """
    d = float(distance_mpc)
    if not np.isfinite(d) or d <= 0:
        raise PhangsProductsError(f"distance must be a positive number of Mpc, got {distance_mpc}")
    return 5.0 * np.log10(d * 1e5)


def absolute_magnitudes(
    age_myr: np.ndarray | Sequence[float] | float,
    ebv: np.ndarray | Sequence[float] | float,
    filters: Sequence[FilterLike],
) -> np.ndarray:
    """Absolute Vega magnitudes (10 pc, 1 M_sun formed), bilinear in log(age) and E(B-V).

    Parameters
    ----------
    age_myr : array_like
        Ages in Myr, > 0; values outside 1-13750 Myr are clamped to the grid (logged).
    ebv : array_like
        E(B-V) in mag, >= 0; values above the grid's 1.5 are clamped (logged).  Broadcast
        against ``age_myr``.
    filters : sequence
        Filter names or BandInfo (see :meth:`SSPGrid.band_index`).

    Returns
    -------
    ndarray
        Shape (N, len(filters)), mag.

    Raises
    ------
    PhangsProductsError
        For non-finite or non-positive ages, negative or non-finite E(B-V), shapes that do
        not broadcast, or unknown filters.
    """
    grid = load_grid()
    idx = grid.band_index(filters)
    try:
        age, e = np.broadcast_arrays(
            np.atleast_1d(np.asarray(age_myr, dtype=float)),
            np.atleast_1d(np.asarray(ebv, dtype=float)),
        )
    except ValueError as exc:
        raise PhangsProductsError(
            f"age_myr {np.shape(age_myr)} and ebv {np.shape(ebv)} do not broadcast"
        ) from exc
    age, e = age.ravel(), e.ravel()
    if not (np.all(np.isfinite(age)) and np.all(age > 0)):
        raise PhangsProductsError("age_myr must be finite and > 0 Myr")
    if not (np.all(np.isfinite(e)) and np.all(e >= 0)):
        raise PhangsProductsError("ebv must be finite and >= 0 mag")
    outside = (age < grid.ages_myr[0]) | (age > grid.ages_myr[-1]) | (e > grid.ebv[-1])
    if outside.any():
        log.warning(
            "SSP grid: %d of %d (age, E(B-V)) outside %.3g-%.5g Myr, E(B-V) <= %.2f: clamped",
            int(outside.sum()),
            age.size,
            grid.ages_myr[0],
            grid.ages_myr[-1],
            grid.ebv[-1],
        )
    log_ages = grid.log_ages
    la = np.clip(np.log10(age), log_ages[0], log_ages[-1])
    e = np.clip(e, grid.ebv[0], grid.ebv[-1])
    i = np.clip(np.searchsorted(log_ages, la, side="right") - 1, 0, log_ages.size - 2)
    j = np.clip(np.searchsorted(grid.ebv, e, side="right") - 1, 0, grid.ebv.size - 2)
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
    age_myr: np.ndarray | Sequence[float] | float,
    mass_msun: np.ndarray | Sequence[float] | float,
    ebv: np.ndarray | Sequence[float] | float,
    distance_mpc: float,
    filters: Sequence[FilterLike],
) -> np.ndarray:
    """Apparent Vega magnitudes of star clusters.

    m = M(age, E(B-V)) - 2.5 log10(mass / M_sun) + 5 log10(d / 10 pc).

    Parameters
    ----------
    age_myr : array_like
        Ages in Myr.
    mass_msun : array_like
        Masses formed in M_sun (Chabrier IMF), > 0.
    ebv : array_like
        E(B-V) in mag (Cardelli R_V = 3.1).
    distance_mpc : float
        Distance in Mpc.
    filters : sequence
        Filter names (WFC3/UVIS by default) or BandInfo.

    Returns
    -------
    ndarray
        Shape (N, len(filters)), apparent Vega mag; N is the broadcast length of the inputs.

    Raises
    ------
    PhangsProductsError
        For bad inputs (see :func:`absolute_magnitudes`), non-positive masses or distance.
    """
    dm = distance_modulus(distance_mpc)
    try:
        age, mass, e = np.broadcast_arrays(
            np.atleast_1d(np.asarray(age_myr, dtype=float)),
            np.atleast_1d(np.asarray(mass_msun, dtype=float)),
            np.atleast_1d(np.asarray(ebv, dtype=float)),
        )
    except ValueError as exc:
        raise PhangsProductsError(
            f"age_myr {np.shape(age_myr)}, mass_msun {np.shape(mass_msun)} and ebv "
            f"{np.shape(ebv)} do not broadcast"
        ) from exc
    mass = mass.ravel()
    if not (np.all(np.isfinite(mass)) and np.all(mass > 0)):
        raise PhangsProductsError("mass_msun must be finite and > 0 Msun")
    absolute = absolute_magnitudes(age.ravel(), e.ravel(), filters)
    return absolute - 2.5 * np.log10(mass)[:, None] + dm

"""Vectorised chi-square SED fitting of clusters and associations on the BC03 SSP grid.

Paper Sect. 4.6: BC03 SSPs, solar metallicity, Chabrier IMF, Cardelli extinction (R_V = 3.1)
with E(B-V) from 0 to 1.5 mag, five bands (NUV, U, B, V, I).  Every (age, E(B-V)) node of the
grid in :mod:`phangs_products.pipeline.stellarpops.ssp` is a model; in flux space the best mass
of each model is analytic::

    mass = S_fF / S_FF,   chi2 = S_ff - S_fF^2 / S_FF

with S_ff = sum f^2 / s^2, S_fF = sum f F / s^2, S_FF = sum F^2 / s^2 (f, s the observed fluxes
and errors, F the model flux of 1 M_sun formed).  S_fF and S_FF are matrix products of blocks of
objects against all models, so there is no Python loop over objects.

Outputs per object: age, mass and E(B-V) of the minimum-chi2 model, the reduced chi2 and the
16th/84th percentiles of the likelihood exp(-chi2/2) over the grid (marginalised over the other
parameters; the mass distribution is that of the best mass of every model, as in CIGALE).  By
default the age nodes are weighted by their width in log(age), i.e. a prior flat in log(age)
independent of the uneven BC03 age sampling; ``SEDConfig(age_prior="grid")`` weights every node
equally as CIGALE does.  Upper limits are not modelled: a band without a measurement is skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from phangs_products.errors import PhangsProductsError
from phangs_products.pipeline.stellarpops.ssp import FilterLike, distance_modulus, load_grid

log = logging.getLogger(__name__)


_LN10_2P5 = np.log(10.0) / 2.5  # sigma_flux / flux per mag of error


_M_REF = 25.0  # fluxes are 10^(-0.4 (m - _M_REF)): O(1) numbers


# models with chi2 - chi2_min above this have likelihood < 1e-13 of the best: left out
_DCHI2_MAX = 60.0


@dataclass(frozen=True)
class SEDConfig:
    """SED-fit settings (defaults: Lee et al. 2022 Sect. 4.6).

    Attributes
    ----------
    ebv_min, ebv_max : float
        E(B-V) range of the models, mag (paper: up to 1.5).
    age_min_myr, age_max_myr : float
        Age range of the models, Myr (default: the whole grid, 1 Myr to 13.75 Gyr).
    error_floor : float
        Magnitude error added in quadrature to every band, mag.  Default 0.01: the grid's own
        resolution; fitting noiseless off-node models (log-uniform ages, E(B-V) 0-1.5) with
        the nodes leaves per-band rms residuals of 0.005 (median), 0.011 (90th percentile)
        and 0.015 mag (99th), measured in ``tests/pipeline/test_sed.py``.
    min_bands : int
        Fewest measured bands for a fit, else the sentinel (3: the catalogue cut of V plus two
        further bands, Sect. 4.4).
    n_free : int
        Fitted parameters (age, E(B-V), mass) subtracted from the band count for the reduced
        chi2; the divisor is never below 1.
    age_prior : {"log_uniform", "grid"}
        Weight of the age nodes in the likelihood percentiles.
    mass_bin_dex : float
        Resolution of the log(mass) likelihood histogram, dex.
    block : int
        Objects per matrix block (memory ~ 8 x block x n_models x 8 bytes).
    """

    ebv_min: float = 0.0
    ebv_max: float = 1.5
    age_min_myr: float = 1.0
    age_max_myr: float = 13750.0
    error_floor: float = 0.01
    min_bands: int = 3
    n_free: int = 3
    age_prior: Literal["log_uniform", "grid"] = "log_uniform"
    mass_bin_dex: float = 0.005
    block: int = 256

    def __post_init__(self) -> None:
        if not 0.0 <= self.ebv_min <= self.ebv_max:
            raise PhangsProductsError(
                f"SEDConfig: need 0 <= ebv_min <= ebv_max, got {self.ebv_min}, {self.ebv_max}"
            )
        if not 0.0 < self.age_min_myr <= self.age_max_myr:
            raise PhangsProductsError(
                f"SEDConfig: need 0 < age_min_myr <= age_max_myr, got "
                f"{self.age_min_myr}, {self.age_max_myr}"
            )
        if self.error_floor < 0 or self.mass_bin_dex <= 0:
            raise PhangsProductsError("SEDConfig: error_floor must be >= 0, mass_bin_dex > 0")
        if self.min_bands < 1 or self.n_free < 0 or self.block < 1:
            raise PhangsProductsError("SEDConfig: min_bands and block must be >= 1, n_free >= 0")
        if self.age_prior not in ("log_uniform", "grid"):
            raise PhangsProductsError(
                f"SEDConfig: age_prior must be 'log_uniform' or 'grid', got {self.age_prior!r}"
            )


@dataclass(frozen=True)
class SEDModels:
    """The model set of one fit: grid nodes within the configured ranges.

    Attributes
    ----------
    ages_myr : ndarray
        Model ages in Myr, (n_age,).
    ebv : ndarray
        Model E(B-V) in mag, (n_ebv,).
    abs_mags : ndarray
        Absolute Vega magnitudes at 10 pc of 1 M_sun, (n_age, n_ebv, n_band).
    age_weight : ndarray
        Prior weight of each age node, (n_age,), sums to 1.
    """

    ages_myr: np.ndarray
    ebv: np.ndarray
    abs_mags: np.ndarray
    age_weight: np.ndarray


@dataclass(frozen=True)
class SEDResult:
    """Per-object fit results: arrays of length N, the sentinel where no fit was possible.

    Attributes
    ----------
    age_myr, age_lo, age_hi : ndarray
        Age of the minimum-chi2 model and the 16th/84th likelihood percentiles, Myr.
    mass, mass_lo, mass_hi : ndarray
        Mass formed (Chabrier IMF), same statistics, M_sun.
    ebv, ebv_lo, ebv_hi : ndarray
        E(B-V), same statistics, mag.
    reduced_chi2 : ndarray
        chi2_min / max(n_bands - n_free, 1).
    chi2 : ndarray
        chi2_min.
    n_bands : ndarray
        Bands used per object (int).
    """

    age_myr: np.ndarray
    age_lo: np.ndarray
    age_hi: np.ndarray
    mass: np.ndarray
    mass_lo: np.ndarray
    mass_hi: np.ndarray
    ebv: np.ndarray
    ebv_lo: np.ndarray
    ebv_hi: np.ndarray
    reduced_chi2: np.ndarray
    chi2: np.ndarray
    n_bands: np.ndarray
    sentinel: float = -9999.0

    def _half(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        ok = (lo != self.sentinel) & (hi != self.sentinel)
        return np.where(ok, (hi - lo) / 2.0, self.sentinel)

    @property
    def age_err(self) -> np.ndarray:
        """Half the 16-84 percentile range of age, Myr (PHANGS_AGE_MINCHISQ_ERR)."""
        return self._half(self.age_lo, self.age_hi)

    @property
    def mass_err(self) -> np.ndarray:
        """Half the 16-84 percentile range of mass, M_sun."""
        return self._half(self.mass_lo, self.mass_hi)

    @property
    def ebv_err(self) -> np.ndarray:
        """Half the 16-84 percentile range of E(B-V), mag."""
        return self._half(self.ebv_lo, self.ebv_hi)


def sed_models(filters: Sequence[FilterLike], config: SEDConfig | None = None) -> SEDModels:
    """The grid nodes used as models for the given bands and settings.

    Parameters
    ----------
    filters : sequence
        Filter names or BandInfo, in the column order of the photometry.
    config : SEDConfig, optional
        Ranges and prior.

    Returns
    -------
    SEDModels
        Models and prior weights.

    Raises
    ------
    PhangsProductsError
        If a filter is not in the grid or the ranges select no node.
    """
    config = config or SEDConfig()
    grid = load_grid()
    idx = grid.band_index(filters)
    tol = 1e-9
    sel_a = (grid.ages_myr >= config.age_min_myr * (1 - tol)) & (
        grid.ages_myr <= config.age_max_myr * (1 + tol)
    )
    sel_e = (grid.ebv >= config.ebv_min - tol) & (grid.ebv <= config.ebv_max + tol)
    if not sel_a.any() or not sel_e.any():
        raise PhangsProductsError(
            f"SEDConfig ranges select no grid node (ages {grid.ages_myr[0]:.3g}-"
            f"{grid.ages_myr[-1]:.5g} Myr, E(B-V) {grid.ebv[0]}-{grid.ebv[-1]})"
        )
    ages = grid.ages_myr[sel_a]
    if config.age_prior == "log_uniform" and ages.size > 1:
        la = np.log10(ages)
        edges = np.concatenate([[la[0]], (la[1:] + la[:-1]) / 2, [la[-1]]])
        weight = np.diff(edges)
    else:
        weight = np.ones(ages.size)
    abs_mags = grid.mags[np.ix_(np.flatnonzero(sel_a), np.flatnonzero(sel_e), idx)]
    return SEDModels(ages, grid.ebv[sel_e], abs_mags, weight / weight.sum())


def _cdf_quantiles(values: np.ndarray, weights: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Row-wise quantiles of point masses ``weights`` (n, K) at sorted ``values`` (K,).

    The cumulative distribution is interpolated linearly between nodes.  Returns (len(qs), n).
    """
    cum = np.cumsum(weights, axis=1)
    total = cum[:, -1:]
    cum = cum / np.where(total > 0, total, 1.0)
    rows = np.arange(weights.shape[0])
    out = np.empty((len(qs), weights.shape[0]))
    for n, q in enumerate(qs):
        k = np.argmax(cum >= q, axis=1)
        km = np.maximum(k - 1, 0)
        c0 = np.where(k > 0, cum[rows, km], 0.0)
        c1 = cum[rows, k]
        frac = np.where(c1 > c0, (q - c0) / np.where(c1 > c0, c1 - c0, 1.0), 1.0)
        v0 = np.where(k > 0, values[km], values[0])
        out[n] = v0 + np.clip(frac, 0.0, 1.0) * (values[k] - v0)
    return out


def _validate(
    mags: np.ndarray, errors: np.ndarray, filters: Sequence[FilterLike]
) -> tuple[np.ndarray, np.ndarray]:
    mags = np.asarray(mags, dtype=float)
    errors = np.asarray(errors, dtype=float)
    if mags.ndim == 1 and len(filters) == mags.size:
        mags = mags[None, :]
    if errors.ndim == 1 and len(filters) == errors.size:
        errors = errors[None, :]
    if mags.ndim != 2 or mags.shape != errors.shape or mags.shape[1] != len(filters):
        raise PhangsProductsError(
            f"SED fit: magnitudes {mags.shape} and errors {errors.shape} must both be "
            f"(N, {len(filters)}) for the {len(filters)} filters {[str(f) for f in filters]}"
        )
    return mags, errors


def fit_sed(
    mags: np.ndarray,
    errors: np.ndarray,
    filters: Sequence[FilterLike],
    distance_mpc: float,
    config: SEDConfig | None = None,
    sentinel: float = -9999.0,
) -> SEDResult:
    """Fit Vega magnitudes of N objects with BC03 SSPs (chi2 in flux space, mass analytic).

    Parameters
    ----------
    mags : ndarray
        Shape (N, n_bands), Vega magnitudes.
    errors : ndarray
        Shape (N, n_bands), 1-sigma magnitude errors.  A band is missing where the magnitude
        or error is NaN/inf or the sentinel, or the error is <= 0.
    filters : sequence
        Filters of the columns: names (WFC3/UVIS by default) or BandInfo.
    distance_mpc : float
        Distance of the galaxy, Mpc.
    config : SEDConfig, optional
        Settings (paper defaults).
    sentinel : float
        Missing-value marker on input and output.

    Returns
    -------
    SEDResult
        Ages in Myr, masses in M_sun (formed, Chabrier), E(B-V) in mag, reduced chi2.

    Raises
    ------
    PhangsProductsError
        If the arrays do not match the number of filters, a filter is not in the grid or
        the distance is not positive.
    """
    config = config or SEDConfig()
    mags, errors = _validate(mags, errors, filters)
    dm = distance_modulus(distance_mpc)
    models = sed_models(filters, config)
    n_age, n_ebv, n_band = models.abs_mags.shape
    flux_model = 10.0 ** (-0.4 * (models.abs_mags.reshape(-1, n_band) + dm - _M_REF))
    flux_model_sq_t = (flux_model**2).T.copy()  # (B, M)
    flux_model_t = flux_model.T.copy()
    prior = np.repeat(models.age_weight, n_ebv)  # (M,)

    valid = (
        np.isfinite(mags)
        & np.isfinite(errors)
        & (errors > 0)
        & (mags != sentinel)
        & (errors != sentinel)
    )
    flux = np.where(valid, 10.0 ** (-0.4 * (np.where(valid, mags, _M_REF) - _M_REF)), 0.0)
    sig_mag = np.sqrt(np.where(valid, errors, 1.0) ** 2 + config.error_floor**2)
    sigma_flux = np.where(valid, flux, 1.0) * _LN10_2P5 * sig_mag
    weight = np.where(valid, 1.0 / sigma_flux**2, 0.0)
    n_bands = valid.sum(axis=1)

    n = mags.shape[0]
    keys = ("age", "age_lo", "age_hi", "mass", "mass_lo", "mass_hi", "ebv", "ebv_lo", "ebv_hi")
    out = {k: np.full(n, sentinel, dtype=float) for k in (*keys, "rchi2", "chi2")}
    fit_rows = np.flatnonzero(n_bands >= config.min_bands)
    log_ages = np.log10(models.ages_myr)
    half_range = 6.0  # dex either side of the best mass covered by the histogram
    n_bins = int(np.ceil(2 * half_range / config.mass_bin_dex))
    bin_centres = (np.arange(n_bins) + 0.5) * config.mass_bin_dex - half_range

    for start in range(0, fit_rows.size, config.block):
        rows = fit_rows[start : start + config.block]
        nb = rows.size
        r = np.arange(nb)
        w = weight[rows]
        fw = flux[rows] * w
        s_ff = np.einsum("ij,ij->i", flux[rows], fw)
        s_fF = fw @ flux_model_t  # (nb, M)
        s_FF = w @ flux_model_sq_t  # (nb, M), > 0: every model flux is positive
        mass = s_fF / s_FF
        chi2 = np.maximum(s_ff[:, None] - s_fF * mass, 0.0)
        best = np.argmin(chi2, axis=1)
        chi2_min = chi2[r, best]
        best_mass = mass[r, best]
        out["chi2"][rows] = chi2_min
        out["rchi2"][rows] = chi2_min / np.maximum(n_bands[rows] - config.n_free, 1)
        out["age"][rows] = models.ages_myr[best // n_ebv]
        out["ebv"][rows] = models.ebv[best % n_ebv]
        out["mass"][rows] = best_mass

        # likelihood exp(-dchi2/2) of the models that matter (sparse: dchi2 < _DCHI2_MAX)
        ri, mj = np.nonzero(chi2 < (chi2_min + _DCHI2_MAX)[:, None])
        like = np.exp(-0.5 * (chi2[ri, mj] - chi2_min[ri])) * prior[mj]
        like_age = np.bincount(ri * n_age + mj // n_ebv, like, nb * n_age).reshape(nb, n_age)
        like_ebv = np.bincount(ri * n_ebv + mj % n_ebv, like, nb * n_ebv).reshape(nb, n_ebv)
        lo, hi = _cdf_quantiles(log_ages, like_age, (0.16, 0.84))
        out["age_lo"][rows], out["age_hi"][rows] = 10.0**lo, 10.0**hi
        lo, hi = _cdf_quantiles(models.ebv, like_ebv, (0.16, 0.84))
        out["ebv_lo"][rows], out["ebv_hi"][rows] = lo, hi
        # mass: likelihood histogram of log10(best mass of each model) around the best fit
        offset = np.log10(mass[ri, mj] / best_mass[ri])
        ibin = np.clip(
            ((offset + half_range) / config.mass_bin_dex).astype(np.int64), 0, n_bins - 1
        )
        hist = np.bincount(ri * n_bins + ibin, like, nb * n_bins).reshape(nb, n_bins)
        lo, hi = _cdf_quantiles(bin_centres, hist, (0.16, 0.84))
        out["mass_lo"][rows] = best_mass * 10.0**lo
        out["mass_hi"][rows] = best_mass * 10.0**hi

    log.info(
        "SED fit: %d of %d objects with >= %d bands, %d models (%d ages x %d E(B-V))",
        fit_rows.size,
        n,
        config.min_bands,
        n_age * n_ebv,
        n_age,
        n_ebv,
    )
    return SEDResult(
        age_myr=out["age"],
        age_lo=out["age_lo"],
        age_hi=out["age_hi"],
        mass=out["mass"],
        mass_lo=out["mass_lo"],
        mass_hi=out["mass_hi"],
        ebv=out["ebv"],
        ebv_lo=out["ebv_lo"],
        ebv_hi=out["ebv_hi"],
        reduced_chi2=out["rchi2"],
        chi2=out["chi2"],
        n_bands=n_bands,
        sentinel=sentinel,
    )

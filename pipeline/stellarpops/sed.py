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

import dataclasses
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


_MASS_HALF_RANGE = 6.0  # dex either side of the best mass covered by the mass histogram


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
        Objects per matrix block (memory ~ 17 x block x n_models bytes; 32 keeps a block's
        arrays in the cache).  An object's result never depends on the other objects fitted
        with it (the last block is padded), but may differ in the last bit from one block size
        to another: BLAS may round the products of differently shaped blocks differently.
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
    block: int = 32

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

    Notes
    -----
    Every block of objects is padded to ``config.block`` rows, so the matrix products of an
    object do not depend on how many other objects are fitted with it.
    """
    config = config or SEDConfig()
    mags, errors = _validate(mags, errors, filters)
    dm = distance_modulus(distance_mpc)
    models = sed_models(filters, config)
    n_age, n_ebv, n_band = models.abs_mags.shape
    flux_model = 10.0 ** (-0.4 * (models.abs_mags.reshape(-1, n_band) + dm - _M_REF))
    grid = _Grid(
        flux_t=flux_model.T.copy(),  # (B, M)
        flux_sq_t=(flux_model**2).T.copy(),
        prior=np.repeat(models.age_weight, n_ebv),  # (M,)
        age_of=np.repeat(np.arange(n_age), n_ebv),
        ebv_of=np.tile(np.arange(n_ebv), n_age),
        log_ages=np.log10(models.ages_myr),
        ebv=models.ebv,
    )

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
    nb = config.block
    chunk = nb * max(1, _CHUNK // nb)
    work = _Work.allocate(nb if fit_rows.size else 0, grid.prior.size)
    for first in range(0, fit_rows.size, chunk):
        done = fit_rows[first : first + chunk]
        # the last block is padded with copies of the last object: every product is (nb, M)
        rows = np.concatenate([done, np.full(-done.size % nb, done[-1])])
        fits = [
            _search_block(
                flux[rows[i : i + nb]], weight[rows[i : i + nb]], i, done.size, grid, work
            )
            for i in range(0, done.size, nb)
        ]
        cand = _Candidates.concatenate(fits)
        age_q, ebv_q, mass_q = _percentiles(cand, grid, config)
        out["chi2"][done] = cand.chi2_min
        out["rchi2"][done] = cand.chi2_min / np.maximum(n_bands[done] - config.n_free, 1)
        out["age"][done] = models.ages_myr[grid.age_of[cand.best]]
        out["ebv"][done] = models.ebv[grid.ebv_of[cand.best]]
        out["mass"][done] = cand.best_mass
        out["age_lo"][done], out["age_hi"][done] = 10.0 ** age_q[0], 10.0 ** age_q[1]
        out["ebv_lo"][done], out["ebv_hi"][done] = ebv_q
        out["mass_lo"][done] = cand.best_mass * 10.0 ** mass_q[0]
        out["mass_hi"][done] = cand.best_mass * 10.0 ** mass_q[1]

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


@dataclass(frozen=True)
class _Grid:
    """The models of one fit in the layout the blocks use (M models, B bands)."""

    flux_t: np.ndarray  # (B, M) model fluxes of 1 M_sun
    flux_sq_t: np.ndarray  # (B, M) their squares
    prior: np.ndarray  # (M,) prior weight of each model
    age_of: np.ndarray  # (M,) age index of each model
    ebv_of: np.ndarray  # (M,) E(B-V) index of each model
    log_ages: np.ndarray  # (n_age,)
    ebv: np.ndarray  # (n_ebv,)


@dataclass(frozen=True)
class _Work:
    """Buffers reused by every block: (block, M) products and the candidate mask."""

    a: np.ndarray
    b: np.ndarray
    mask: np.ndarray  # flat, its length a multiple of 8

    @classmethod
    def allocate(cls, nb: int, n_models: int) -> _Work:
        shape = (nb, n_models)
        mask = np.zeros(-(-nb * n_models // 8) * 8, dtype=bool)
        return cls(np.empty(shape), np.empty(shape), mask)


def _flat_true(mask: np.ndarray, size: int) -> np.ndarray:
    """``np.flatnonzero(mask[:size])`` of a sparse flat mask, eight bytes at a time.

    ``mask`` is a flat boolean buffer whose length is a multiple of 8; the bytes from
    ``size`` on are cleared here.
    """
    end = -(-size // 8) * 8
    mask[size:end] = False
    (words,) = np.nonzero(mask[:end].view(np.uint64) != 0)
    (hits,) = np.nonzero(mask[:end].reshape(-1, 8)[words].ravel())
    return words[hits >> 3] * 8 + (hits & 7)


_CHUNK = 1024  # objects whose likelihood histograms are built together


@dataclass(frozen=True)
class _Candidates:
    """Best fits of n objects and their likely models (chi2 within ``_DCHI2_MAX``).

    ``obj``, ``model``, ``chi2``, ``mass``: one entry per likely model, by object then model.
    """

    best: np.ndarray
    chi2_min: np.ndarray
    best_mass: np.ndarray
    obj: np.ndarray
    model: np.ndarray
    chi2: np.ndarray
    mass: np.ndarray

    @classmethod
    def concatenate(cls, parts: Sequence[_Candidates]) -> _Candidates:
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in names))


def _search_block(
    flux: np.ndarray,
    weight: np.ndarray,
    start: int,
    stop: int,
    grid: _Grid,
    work: _Work,
) -> _Candidates:
    """Best model and likely models of one block of objects (rows of ``flux``/``weight``).

    The objects are numbered ``start`` on; those from ``stop`` on are padding.  Per model
    the best mass is ``s_fF / s_FF`` and ``chi2 = max(s_ff - s_fF * mass, 0)``; every value
    that reaches the result is computed by exactly these floating-point operations.  Four
    passes go over the (block, M) arrays besides the two matrix products: the mass,
    ``p = s_fF * mass``, the maximum of ``p`` per object and the candidate mask.  As
    ``fl(s_ff - p)`` never increases with ``p``, the minimum chi2 is
    ``max(fl(s_ff - max p), 0)``, and every model within ``_DCHI2_MAX`` of it has ``p`` above
    ``s_ff - threshold`` less a margin far wider than the rounding error: chi2 is evaluated on
    those candidates only (about 2% of the models), then cut exactly as before.
    """
    a, b, mask = work.a, work.b, work.mask
    real = min(a.shape[0], stop - start)
    n_models = a.shape[1]
    fw = flux * weight
    s_ff = np.einsum("ij,ij->i", flux, fw)
    np.matmul(fw, grid.flux_t, out=a)  # s_fF
    np.matmul(weight, grid.flux_sq_t, out=b)  # s_FF > 0: every model flux is positive
    np.divide(a, b, out=b)  # best mass of every model
    np.multiply(a, b, out=a)  # p = s_fF * mass
    s_ff = s_ff[:real]
    chi2_min = np.maximum(s_ff - a[:real].max(axis=1), 0.0)
    limit = chi2_min + _DCHI2_MAX
    floor = (s_ff - limit) - 1e-9 * (np.abs(s_ff) + np.abs(limit))
    np.greater(a[:real], floor[:, None], out=mask[: real * n_models].reshape(real, n_models))
    flat = _flat_true(mask, real * n_models)  # by object, then model
    ri = flat // n_models
    chi2 = np.maximum(s_ff[ri] - a.ravel()[flat], 0.0)
    keep = chi2 < limit[ri]
    flat, ri, chi2 = flat[keep], ri[keep], chi2[keep]
    mj = flat - ri * n_models
    # the best model: the first (lowest index) of an object's models at its minimum chi2
    at_min = np.flatnonzero(chi2 == chi2_min[ri])
    first = at_min[np.concatenate([[True], np.diff(ri[at_min]) > 0])] if at_min.size else at_min
    best = np.zeros(real, dtype=np.int64)
    found = np.zeros(real, dtype=bool)
    best[ri[first]] = mj[first]
    found[ri[first]] = True
    if not found.all():  # NaN, or chi2 so large that adding _DCHI2_MAX changes nothing
        missing = np.flatnonzero(~found)
        ri, mj, chi2 = _dense_rows(missing, (ri, mj, chi2), s_ff, a, best, chi2_min, limit)
    b = b.ravel()
    best_mass = b[np.arange(real) * n_models + best]
    return _Candidates(best, chi2_min, best_mass, ri + start, mj, chi2, b[ri * n_models + mj])


def _percentiles(
    cand: _Candidates, grid: _Grid, config: SEDConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """16th/84th likelihood percentiles of log10(age), E(B-V) and log10(mass / best mass).

    The likelihood exp(-dchi2/2) times the prior of the likely models, binned per object
    on the age nodes, the E(B-V) nodes and a log(mass) histogram around the best mass.
    Returns three (2, n) arrays.
    """
    n = cand.best.size
    ri, mj = cand.obj, cand.model
    n_age, n_ebv = grid.log_ages.size, grid.ebv.size
    like = np.exp(-0.5 * (cand.chi2 - cand.chi2_min[ri])) * grid.prior[mj]
    like_age = np.bincount(ri * n_age + grid.age_of[mj], like, n * n_age).reshape(n, n_age)
    like_ebv = np.bincount(ri * n_ebv + grid.ebv_of[mj], like, n * n_ebv).reshape(n, n_ebv)
    age_q = _cdf_quantiles(grid.log_ages, like_age, (0.16, 0.84))
    ebv_q = _cdf_quantiles(grid.ebv, like_ebv, (0.16, 0.84))
    half_range = _MASS_HALF_RANGE
    n_bins = int(np.ceil(2 * half_range / config.mass_bin_dex))
    bin_centres = (np.arange(n_bins) + 0.5) * config.mass_bin_dex - half_range
    offset = np.log10(cand.mass / cand.best_mass[ri])
    ibin = np.clip(((offset + half_range) / config.mass_bin_dex).astype(np.int64), 0, n_bins - 1)
    mass_q = _sparse_cdf_quantiles(bin_centres, ri, ibin, like, n, (0.16, 0.84))
    return age_q, ebv_q, mass_q


def _dense_rows(
    rows: np.ndarray,
    candidates: tuple[np.ndarray, np.ndarray, np.ndarray],
    s_ff: np.ndarray,
    p: np.ndarray,
    best: np.ndarray,
    chi2_min: np.ndarray,
    limit: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best model and likely models of ``rows`` from every model's chi2 (the rare cases).

    For NaN or a chi2 so large that adding ``_DCHI2_MAX`` changes nothing.  Sets ``best``,
    ``chi2_min`` and ``limit`` of those rows; returns the candidates (object, model, chi2)
    with the entries of those rows replaced (appended: the histograms add up per object).
    """
    ri, mj, chi2 = candidates
    drop = np.isin(ri, rows)
    parts_r, parts_m, parts_c = [ri[~drop]], [mj[~drop]], [chi2[~drop]]
    for i in rows:
        row_chi2 = np.maximum(s_ff[i] - p[i], 0.0)
        best[i] = np.argmin(row_chi2)
        chi2_min[i] = row_chi2[best[i]]
        limit[i] = chi2_min[i] + _DCHI2_MAX
        (sel,) = np.nonzero(row_chi2 < limit[i])
        parts_r.append(np.full(sel.size, i))
        parts_m.append(sel)
        parts_c.append(row_chi2[sel])
    return np.concatenate(parts_r), np.concatenate(parts_m), np.concatenate(parts_c)


def _sparse_cdf_quantiles(
    values: np.ndarray,
    rows: np.ndarray,
    index: np.ndarray,
    weights: np.ndarray,
    n: int,
    qs: Sequence[float],
) -> np.ndarray:
    """:func:`_cdf_quantiles` of the histogram ``bincount(rows * K + index, weights)``.

    Only the columns from the one before the lowest occupied index to the highest are built:
    the cumulative sums over the empty columns outside are zero or the total, so the result
    is that of the full (n, K) histogram, bit for bit.
    """
    if rows.size == 0:
        return np.full((len(qs), n), values[0])
    lo = max(int(index.min()) - 1, 0)
    width = int(index.max()) + 1 - lo
    hist = np.bincount(rows * width + (index - lo), weights, n * width).reshape(n, width)
    out = _cdf_quantiles(values[lo : lo + width], hist, qs)
    empty = ~(hist.sum(axis=1) > 0)
    out[:, empty] = values[0]  # the full histogram's answer for a row without weight
    return out

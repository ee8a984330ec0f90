"""The SED fitter gives, bit for bit, the results of its previous implementation.

``reference_fit_sed`` below is a frozen copy of ``fit_sed`` before the speed-up (commit
952fe4d: chi2 of every model, dense histograms).  The current fitter only evaluates chi2 on the
models near each minimum; these tests hold that it still returns identical arrays: the 10,000
clusters of ``benchmarks/bench_sed.py``, noisy clusters with missing bands and sentinels, other
priors and ranges, and every block size.

Both take their matrix products in blocks of the same shape (``SEDConfig.block`` objects, the
last block padded with copies of its last object): BLAS may round a product differently with
the shape of the block (OpenBLAS 0.3.34 does, for 88 of 256 x 2,652 products between blocks of
32 and 256 rows), so only the same blocks give the same last bits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from phangs_products.pipeline.stellarpops.sed import (
    SEDConfig,
    SEDResult,
    _validate,
    fit_sed,
    sed_models,
)
from phangs_products.pipeline.stellarpops.ssp import (
    FilterLike,
    cluster_magnitudes,
    distance_modulus,
)

FILTERS = ["F275W", "F336W", "F438W", "F555W", "F814W"]
DIST = 9.84
FIELDS = (
    "age_myr",
    "age_lo",
    "age_hi",
    "mass",
    "mass_lo",
    "mass_hi",
    "ebv",
    "ebv_lo",
    "ebv_hi",
    "reduced_chi2",
    "chi2",
    "n_bands",
)


@pytest.fixture(autouse=True)
def one_thread():
    """One BLAS thread, as the runner runs stages (and as the benchmark compares)."""
    with threadpool_limits(limits=1):
        yield


# constants of the frozen implementation
_LN10_2P5 = np.log(10.0) / 2.5
_M_REF = 25.0
_DCHI2_MAX = 60.0


def _reference_cdf_quantiles(
    values: np.ndarray, weights: np.ndarray, qs: Sequence[float]
) -> np.ndarray:
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


def reference_fit_sed(
    mags: np.ndarray,
    errors: np.ndarray,
    filters: Sequence[FilterLike],
    distance_mpc: float,
    config: SEDConfig | None = None,
    sentinel: float = -9999.0,
) -> SEDResult:
    """``fit_sed`` as it was before the candidate search (frozen; do not edit)."""
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

    block = config.block
    for start in range(0, fit_rows.size, block):
        rows = fit_rows[start : start + block]
        nb = rows.size
        r = np.arange(nb)
        padded = np.concatenate([rows, np.full(block - nb, rows[-1])])
        w = weight[padded]
        fw = flux[padded] * w
        s_ff = np.einsum("ij,ij->i", flux[rows], fw[:nb])
        s_fF = (fw @ flux_model_t)[:nb]  # (nb, M)
        s_FF = (w @ flux_model_sq_t)[:nb]  # (nb, M), > 0: every model flux is positive
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
        lo, hi = _reference_cdf_quantiles(log_ages, like_age, (0.16, 0.84))
        out["age_lo"][rows], out["age_hi"][rows] = 10.0**lo, 10.0**hi
        lo, hi = _reference_cdf_quantiles(models.ebv, like_ebv, (0.16, 0.84))
        out["ebv_lo"][rows], out["ebv_hi"][rows] = lo, hi
        # mass: likelihood histogram of log10(best mass of each model) around the best fit
        offset = np.log10(mass[ri, mj] / best_mass[ri])
        ibin = np.clip(
            ((offset + half_range) / config.mass_bin_dex).astype(np.int64), 0, n_bins - 1
        )
        hist = np.bincount(ri * n_bins + ibin, like, nb * n_bins).reshape(nb, n_bins)
        lo, hi = _reference_cdf_quantiles(bin_centres, hist, (0.16, 0.84))
        out["mass_lo"][rows] = best_mass * 10.0**lo
        out["mass_hi"][rows] = best_mass * 10.0**hi

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


def bench_clusters(n: int = 10_000, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """The clusters of ``benchmarks/bench_sed.py``: grid SSPs, 3% errors and noise."""
    rng = np.random.default_rng(seed)
    mags = cluster_magnitudes(
        10 ** rng.uniform(0, 4, n), 10 ** rng.uniform(3, 6, n), rng.uniform(0, 1, n), DIST, FILTERS
    )
    errs = np.full_like(mags, 0.03)
    return mags + rng.normal(size=mags.shape) * errs, errs


def awkward_clusters(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Faint and bright clusters, large errors, missing bands (NaN, sentinel, error <= 0)."""
    rng = np.random.default_rng(seed)
    mags = cluster_magnitudes(
        10 ** rng.uniform(0, 4.1, n),
        10 ** rng.uniform(2, 7, n),
        rng.uniform(0, 1.5, n),
        DIST,
        FILTERS,
    )
    errs = 10 ** rng.uniform(-2.5, -0.5, mags.shape)
    mags = mags + rng.normal(size=mags.shape) * errs * rng.uniform(0.5, 3.0, (n, 1))
    holes = rng.random(mags.shape)
    mags[holes < 0.05] = np.nan
    mags[(holes >= 0.05) & (holes < 0.08)] = -9999.0
    errs[(holes >= 0.08) & (holes < 0.1)] = 0.0
    mags[rng.random(n) < 0.05, :3] = np.nan  # too few bands: not fitted
    return mags, errs


def assert_identical(new: SEDResult, old: SEDResult) -> None:
    """Every result array equal bit for bit (NaN where NaN)."""
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(new, name), getattr(old, name), err_msg=name)


def test_bench_clusters_identical():
    mags, errs = bench_clusters()
    assert_identical(
        fit_sed(mags, errs, FILTERS, DIST), reference_fit_sed(mags, errs, FILTERS, DIST)
    )


@pytest.mark.parametrize(
    "config",
    [
        SEDConfig(),
        SEDConfig(age_prior="grid", error_floor=0.0),
        SEDConfig(ebv_max=0.5, age_min_myr=3.0, age_max_myr=2000.0, mass_bin_dex=0.02),
        SEDConfig(min_bands=4, n_free=2),
    ],
)
def test_awkward_clusters_identical(config):
    mags, errs = awkward_clusters(1500, seed=11)
    new = fit_sed(mags, errs, FILTERS, DIST, config)
    assert_identical(new, reference_fit_sed(mags, errs, FILTERS, DIST, config))
    assert (new.n_bands < config.min_bands).any() and (new.n_bands == 5).any()


def test_exact_nodes_identical():
    """Noiseless clusters on grid nodes: chi2 of 0 (ties between models) and the clamp."""
    models = sed_models(FILTERS)
    rng = np.random.default_rng(5)
    ia = rng.integers(0, models.ages_myr.size, 600)
    ie = rng.integers(0, models.ebv.size, 600)
    mags = cluster_magnitudes(models.ages_myr[ia], 1e4, models.ebv[ie], DIST, FILTERS)
    errs = np.full_like(mags, 0.01)
    config = SEDConfig(error_floor=0.0)
    new = fit_sed(mags, errs, FILTERS, DIST, config)
    assert_identical(new, reference_fit_sed(mags, errs, FILTERS, DIST, config))


@pytest.mark.parametrize("block", [2, 7, 64, 256, 1000])
def test_block_size_identical(block):
    """Any block size gives the result of the frozen implementation with the same blocks."""
    mags, errs = awkward_clusters(700, seed=2)
    config = SEDConfig(block=block)
    new = fit_sed(mags, errs, FILTERS, DIST, config)
    assert_identical(new, reference_fit_sed(mags, errs, FILTERS, DIST, config))

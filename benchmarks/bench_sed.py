"""SED fitting speed: 10,000 clusters against the bare arithmetic of the fit, one thread.

Baseline in the same run: the bare arithmetic of the best-fit search, the two float64 matrix
products S_fF = (f w) F^T and S_FF = w (F^2)^T of every cluster against every model (all grid
nodes: 177 ages x 76 E(B-V), five WFC3 bands), written out in blocks of clusters (the fastest of
several block sizes).  ``fit_sed`` is timed on the same clusters and so is, when the test tree
is present, the frozen previous implementation (``reference_fit_sed`` in
``tests/pipeline/stellarpops/test_sed_identity.py``); their arrays must be identical.  The
straightforward per-cluster loop checks the best fits independently (timed on a subset).
Every timing is the best of ``REPEATS`` runs, interleaved, under ``threadpool_limits(1)`` as
the pipeline runs stages.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from phangs_products.pipeline.stellarpops.sed import SEDConfig, SEDResult, fit_sed, sed_models
from phangs_products.pipeline.stellarpops.ssp import cluster_magnitudes, distance_modulus

FILTERS = ["F275W", "F336W", "F438W", "F555W", "F814W"]
DIST = 9.84
N = 10_000
N_LOOP = 300
REPEATS = 5
BARE_BLOCKS = (16, 32, 64, 256)
REFERENCE = Path(__file__).parents[1] / "tests/pipeline/stellarpops/test_sed_identity.py"
FIELDS = ("age_myr", "age_lo", "age_hi", "mass", "mass_lo", "mass_hi", "ebv", "ebv_lo", "ebv_hi")


def synthetic(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Grid clusters with 3 per cent errors and Gaussian noise (S/N ~ 36 in every band)."""
    rng = np.random.default_rng(seed)
    mags = cluster_magnitudes(
        10 ** rng.uniform(0, 4, n), 10 ** rng.uniform(3, 6, n), rng.uniform(0, 1, n), DIST, FILTERS
    )
    errs = np.full_like(mags, 0.03)
    return mags + rng.normal(size=mags.shape) * errs, errs


def _percentiles(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return np.interp([0.16, 0.84], cum / cum[-1], values[order])


def fit_loop(mags: np.ndarray, errs: np.ndarray, config: SEDConfig) -> np.ndarray:
    """Per-cluster loop: (age, E(B-V), mass) of the minimum chi2 plus percentiles."""
    models = sed_models(FILTERS, config)
    n_age, n_ebv, n_band = models.abs_mags.shape
    flux_model = 10.0 ** (-0.4 * (models.abs_mags.reshape(-1, n_band) + distance_modulus(DIST)))
    age_of = np.repeat(models.ages_myr, n_ebv)
    ebv_of = np.tile(models.ebv, n_age)
    prior = np.repeat(models.age_weight, n_ebv)
    out = np.empty((mags.shape[0], 3))
    for i in range(mags.shape[0]):
        f = 10.0 ** (-0.4 * mags[i])
        s = f * np.log(10) / 2.5 * np.sqrt(errs[i] ** 2 + config.error_floor**2)
        w = 1.0 / s**2
        mass = (flux_model * f * w).sum(axis=1) / (flux_model**2 * w).sum(axis=1)
        chi2 = ((f - mass[:, None] * flux_model) ** 2 * w).sum(axis=1)
        best = np.argmin(chi2)
        like = np.exp(-0.5 * (chi2 - chi2[best])) * prior
        _percentiles(np.log10(age_of), like)
        _percentiles(ebv_of, like)
        _percentiles(np.log10(mass), like)
        out[i] = age_of[best], ebv_of[best], mass[best]
    return out


def bare_products(mags: np.ndarray, errs: np.ndarray, config: SEDConfig) -> Callable[[], None]:
    """The two matrix products of every cluster against every model, per block sizes."""
    models = sed_models(FILTERS, config)
    n_band = models.abs_mags.shape[-1]
    flux_model = 10.0 ** (-0.4 * (models.abs_mags.reshape(-1, n_band) + distance_modulus(DIST)))
    flux_t, flux_sq_t = flux_model.T.copy(), (flux_model**2).T.copy()
    flux = 10.0 ** (-0.4 * mags)
    weight = 1.0 / (flux * np.log(10) / 2.5 * np.sqrt(errs**2 + config.error_floor**2)) ** 2
    fw = flux * weight

    def run(block: int) -> None:
        s_fF = np.empty((block, flux_t.shape[1]))
        s_FF = np.empty_like(s_fF)
        for start in range(0, len(mags) - block + 1, block):
            np.matmul(fw[start : start + block], flux_t, out=s_fF)
            np.matmul(weight[start : start + block], flux_sq_t, out=s_FF)

    return run


def load_reference() -> Callable[..., SEDResult] | None:
    """The frozen previous ``fit_sed`` kept by the identity test, if the tests are present."""
    if not REFERENCE.exists():
        return None
    spec = importlib.util.spec_from_file_location("sed_reference", REFERENCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_fit_sed


def best_time(jobs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each job over ``repeats`` rounds (jobs interleaved)."""
    best = dict.fromkeys(jobs, np.inf)
    for _ in range(repeats):
        for name, job in jobs.items():
            t0 = time.perf_counter()
            job()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main() -> None:
    """Time the fit, the bare arithmetic and the previous fit; print rates and ratios."""
    mags, errs = synthetic(N)
    config = SEDConfig()
    reference = load_reference()
    bare = bare_products(mags, errs, config)
    with threadpool_limits(limits=1):
        fit = fit_sed(mags, errs, FILTERS, DIST, config)
        jobs: dict[str, Callable[[], object]] = {
            f"bare {b}": (lambda b=b: bare(b)) for b in BARE_BLOCKS
        }
        jobs["fit"] = lambda: fit_sed(mags, errs, FILTERS, DIST, config)
        if reference is not None:
            jobs["previous"] = lambda: reference(mags, errs, FILTERS, DIST, config)
        seconds = best_time(jobs, REPEATS)
        previous = None if reference is None else reference(mags, errs, FILTERS, DIST, config)
        identical = previous is None or all(
            np.array_equal(getattr(fit, k), getattr(previous, k)) for k in FIELDS
        )
        t0 = time.perf_counter()
        loop = fit_loop(mags[:N_LOOP], errs[:N_LOOP], config)
        t_loop = (time.perf_counter() - t0) * N / N_LOOP

    same = (
        np.array_equal(loop[:, 0], fit.age_myr[:N_LOOP])
        and np.array_equal(loop[:, 1], fit.ebv[:N_LOOP])
        and np.allclose(loop[:, 2], fit.mass[:N_LOOP], rtol=1e-8)
    )
    block = min(BARE_BLOCKS, key=lambda b: seconds[f"bare {b}"])
    t_bare = seconds[f"bare {block}"]
    n_models = sed_models(FILTERS, config).abs_mags[..., 0].size
    print(f"SED fit of {N} clusters x {n_models} models, 5 bands, one thread")
    print(
        "  bare arithmetic (two matrix products), blocks of "
        + ", ".join(f"{b}: {seconds[f'bare {b}']:.3f} s" for b in BARE_BLOCKS)
    )
    print(f"  bare arithmetic : {N / t_bare:9.0f} clusters/s  ({t_bare:.3f} s, blocks of {block})")
    t_fit = seconds["fit"]
    print(
        f"  fit_sed         : {N / t_fit:9.0f} clusters/s  ({t_fit:.3f} s, block {config.block})"
        f"  = {t_fit / t_bare:.2f}x the bare arithmetic"
    )
    if reference is not None:
        t_prev = seconds["previous"]
        print(
            f"  previous fit_sed: {N / t_prev:9.0f} clusters/s  ({t_prev:.3f} s, same blocks)"
            f"  = {t_prev / t_bare:.2f}x the bare arithmetic; arrays identical: {identical}"
        )
    print(
        f"  per-cluster loop: {N / t_loop:9.0f} clusters/s  (from {N_LOOP}); same best fits: {same}"
    )


if __name__ == "__main__":
    main()

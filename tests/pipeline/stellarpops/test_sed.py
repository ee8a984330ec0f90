"""SED fitter: exact recovery on grid nodes, recovery under realistic noise, the age-extinction
degeneracy, missing bands and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from phangs_products.bands import band
from phangs_products.errors import PhangsProductsError
from phangs_products.pipeline.stellarpops.sed import SEDConfig, fit_sed, sed_models
from phangs_products.pipeline.stellarpops.ssp import cluster_magnitudes, load_grid

FILTERS = ["F275W", "F336W", "F438W", "F555W", "F814W"]
DIST = 9.84  # Mpc, NGC 628
MAG_PER_SNR = 2.5 / np.log(10)


def synthetic(n: int, seed: int, ebv_max: float = 0.5, min_snr_v: float = 20.0):
    """Clusters drawn from the grid with background-limited photon noise.

    Counts from the PHANGS Vega zero points and 3-orbit exposure times of hst_bands.ecsv; one
    background B (electrons, all bands) set so that V = 24.6 mag has S/N = 10 (the paper's
    catalogue faint end for the 670 s V exposure, Sect. 4.4).  Clusters with V S/N < min_snr_v
    are dropped; bands with sigma_mag > 0.3 (Sect. 4.4 detection cut) are marked missing (NaN).
    """
    rng = np.random.default_rng(seed)
    age = 10 ** rng.uniform(0.0, 4.0, n)
    mass = 10 ** rng.uniform(3.0, 6.0, n)
    ebv = rng.uniform(0.0, ebv_max, n)
    true = cluster_magnitudes(age, mass, ebv, DIST, FILTERS)
    zp = np.array([band(f).zp_vega for f in FILTERS])
    texp = np.array([band(f).exptime for f in FILTERS])
    counts = 10 ** (-0.4 * (true - zp)) * texp
    c_lim = 10 ** (-0.4 * (24.6 - zp[3])) * texp[3]
    background = c_lim**2 / 10.0**2 - c_lim
    noise = np.sqrt(counts + background)
    keep = counts[:, 3] / noise[:, 3] >= min_snr_v
    observed = counts + rng.normal(size=counts.shape) * noise
    pos = observed > 0
    safe = np.where(pos, observed, 1.0)
    mags = np.where(pos, -2.5 * np.log10(safe / texp) + zp, np.nan)
    errs = np.where(pos, MAG_PER_SNR * noise / safe, np.nan)
    missing = ~(errs <= 0.3)
    mags[missing] = np.nan
    errs[missing] = np.nan
    return age[keep], mass[keep], ebv[keep], mags[keep], errs[keep]


def test_exact_recovery_on_grid_nodes():
    grid = load_grid()
    rng = np.random.default_rng(0)
    ia = rng.integers(0, grid.ages_myr.size, 300)
    ie = rng.integers(0, grid.ebv.size, 300)
    mass = 10 ** rng.uniform(3, 6, 300)
    mags = cluster_magnitudes(grid.ages_myr[ia], mass, grid.ebv[ie], DIST, FILTERS)
    fit = fit_sed(mags, np.full_like(mags, 0.01), FILTERS, DIST, SEDConfig(error_floor=0.0))
    # float32 grid: nodes are recovered exactly, masses to float32 precision
    np.testing.assert_array_equal(fit.age_myr, grid.ages_myr[ia])
    np.testing.assert_array_equal(fit.ebv, grid.ebv[ie])
    np.testing.assert_allclose(fit.mass, mass, rtol=1e-5)
    assert np.all(fit.reduced_chi2 < 1e-6)
    assert np.all(fit.age_lo <= fit.age_hi) and np.all(fit.mass_lo <= fit.mass_hi)


def test_grid_discreteness_sets_the_error_floor():
    """Noiseless clusters between nodes: the rms per-band residual of the best node."""
    rng = np.random.default_rng(2)
    n = 3000
    age = 10 ** rng.uniform(0, 4, n)
    ebv = rng.uniform(0, 1.5, n)
    mags = cluster_magnitudes(age, 1e4, ebv, DIST, FILTERS)
    sigma = 0.01
    fit = fit_sed(mags, np.full_like(mags, sigma), FILTERS, DIST, SEDConfig(error_floor=0.0))
    rms = np.sqrt(fit.chi2 / len(FILTERS)) * sigma
    pct = np.percentile(rms, [50, 90, 99])
    print(f"grid discreteness, rms residual per band (50/90/99th pct): {np.round(pct, 4)} mag")
    assert pct[0] < 0.01
    # the default floor is this 90th percentile, rounded to 0.01 mag
    assert abs(SEDConfig().error_floor - pct[1]) < 0.003


def test_recovery_with_realistic_noise_and_the_degeneracy():
    age, mass, ebv, mags, errs = synthetic(6000, seed=1)
    n = age.size
    assert n > 3000
    fit = fit_sed(mags, errs, FILTERS, DIST)
    fitted = fit.n_bands >= 3
    d_age = np.log10(fit.age_myr / age)
    d_mass = np.log10(fit.mass / mass)
    d_ebv = fit.ebv - ebv
    ok_age = np.mean(np.abs(d_age[fitted]) < 0.3)
    ok_mass = np.mean(np.abs(d_mass[fitted]) < 0.3)
    ok_ebv = np.mean(np.abs(d_ebv[fitted]) < 0.1)
    cover = np.mean((age >= fit.age_lo) & (age <= fit.age_hi))
    bad = fitted & (np.abs(d_age) >= 0.3)
    along = np.mean(np.sign(d_age[bad]) != np.sign(d_ebv[bad]))
    corr = np.corrcoef(d_age[bad], d_ebv[bad])[0, 1]
    old = age > 1000
    print(
        f"\n{n} clusters (V S/N >= 20, E(B-V) 0-0.5, bands used {np.bincount(fit.n_bands)}):"
        f"\n  log age within 0.3 dex: {ok_age:.1%}; log mass within 0.3 dex: {ok_mass:.1%};"
        f" E(B-V) within 0.1: {ok_ebv:.1%}"
        f"\n  true age inside 16-84% limits: {cover:.1%}; median reduced chi2"
        f" {np.median(fit.reduced_chi2[fitted]):.2f}"
        f"\n  age failures: {bad.sum()} ({bad.mean():.1%}); {along:.1%} of them trade age"
        f" against E(B-V) (opposite signs), correlation {corr:+.2f}"
        f"\n  age within 0.3 dex for > 1 Gyr: {np.mean(np.abs(d_age[old]) < 0.3):.1%}"
        f", for <= 1 Gyr: {np.mean(np.abs(d_age[~old]) < 0.3):.1%}"
    )
    assert fitted.all()
    assert ok_age >= 0.70 and ok_mass >= 0.70
    # the failures are the age-extinction degeneracy, not random scatter
    assert along >= 0.8 and corr < -0.5
    assert cover >= 0.5


def test_wide_extinction_range_shows_the_degeneracy():
    """E(B-V) up to 1.5 (the paper's model range): recovery drops; printed, loosely bounded."""
    age, mass, ebv, mags, errs = synthetic(4000, seed=5, ebv_max=1.5)
    fit = fit_sed(mags, errs, FILTERS, DIST)
    fitted = fit.n_bands >= 3  # heavily reddened clusters lose NUV, U (and B)
    age, mass, ebv = age[fitted], mass[fitted], ebv[fitted]
    d_age = np.log10(fit.age_myr[fitted] / age)
    d_ebv = fit.ebv[fitted] - ebv
    ok_age = np.mean(np.abs(d_age) < 0.3)
    bad = np.abs(d_age) >= 0.3
    along = np.mean(np.sign(d_age[bad]) != np.sign(d_ebv[bad]))
    print(
        f"\nE(B-V) 0-1.5: {fitted.sum()} of {fitted.size} clusters with >= 3 bands, log age"
        f" within 0.3 dex {ok_age:.1%}, "
        f"log mass {np.mean(np.abs(np.log10(fit.mass[fitted] / mass)) < 0.3):.1%}; "
        f"{along:.1%} of age failures along the degeneracy"
    )
    assert ok_age >= 0.5 and along >= 0.8


def test_missing_bands_and_too_few_bands():
    grid = load_grid()
    mags = cluster_magnitudes([5.0, 5.0, 5.0, 5.0], 1e4, 0.2, DIST, FILTERS)
    errs = np.full_like(mags, 0.02)
    mags[1, 0] = np.nan  # NUV missing
    mags[2, 0] = -9999.0  # sentinel
    errs[2, 1] = -9999.0
    mags[3, :3] = np.nan  # only V and I: no fit
    fit = fit_sed(mags, errs, FILTERS, DIST)
    assert list(fit.n_bands) == [5, 4, 3, 2]
    assert fit.age_myr[3] == -9999.0 and fit.mass[3] == -9999.0 and fit.age_err[3] == -9999.0
    assert np.all(np.abs(np.log10(fit.age_myr[:3] / 5.0)) < 0.05)
    assert np.all(fit.ebv[:3] == pytest.approx(0.2, abs=0.021))
    assert fit.reduced_chi2[2] == pytest.approx(fit.chi2[2])  # 3 bands - 3 free -> divisor 1
    assert grid.ebv.max() == 1.5


def test_blocks_do_not_change_results():
    _, _, _, mags, errs = synthetic(400, seed=3)
    a = fit_sed(mags, errs, FILTERS, DIST, SEDConfig(block=7))
    b = fit_sed(mags, errs, FILTERS, DIST, SEDConfig(block=1000))
    for name in ("age_myr", "mass", "ebv", "age_lo", "age_hi", "mass_lo", "mass_hi", "ebv_hi"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-10)


def test_config_ranges_and_priors():
    assert SEDConfig().ebv_max == 1.5 and SEDConfig().min_bands == 3
    models = sed_models(FILTERS, SEDConfig(ebv_max=0.5, age_max_myr=1000.0))
    assert models.ebv[-1] == pytest.approx(0.5) and models.ages_myr[-1] <= 1000.0
    assert models.age_weight.sum() == pytest.approx(1.0)
    flat = sed_models(FILTERS, SEDConfig(age_prior="grid")).age_weight
    assert np.ptp(flat) == 0
    with pytest.raises(PhangsProductsError, match="ebv_max"):
        SEDConfig(ebv_max=-1.0)
    with pytest.raises(PhangsProductsError, match="age_prior"):
        SEDConfig(age_prior="flat")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mags", "errs", "filters", "dist", "message"),
    [
        (np.zeros((3, 4)), np.zeros((3, 4)), FILTERS, DIST, r"\(N, 5\)"),
        (np.zeros((3, 5)), np.zeros((2, 5)), FILTERS, DIST, r"\(N, 5\)"),
        (np.zeros((3, 5)), np.zeros((3, 5)), FILTERS, -1.0, "distance"),
        (np.zeros((3, 2)), np.zeros((3, 2)), ["F555W", "F999W"], DIST, "F999W"),
    ],
)
def test_bad_input_one_line_errors(mags, errs, filters, dist, message):
    with pytest.raises(PhangsProductsError, match=message) as info:
        fit_sed(mags, errs, filters, dist)
    assert "\n" not in str(info.value)


def test_empty_input():
    fit = fit_sed(np.zeros((0, 5)), np.zeros((0, 5)), FILTERS, DIST)
    assert fit.age_myr.shape == (0,) and fit.n_bands.shape == (0,)

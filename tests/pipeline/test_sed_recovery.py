"""SED fits recover ages and masses of synthetic clusters drawn from the BC03 grid."""

from __future__ import annotations

import numpy as np

from phangs_products.pipeline.sed import fit_sed
from phangs_products.pipeline.ssp import absolute_magnitudes, cluster_magnitudes, load_grid

FILTERS = ["F275W", "F336W", "F438W", "F555W", "F814W"]


def test_grid_colours_match_the_reference_recipe():
    # toolchain notes: the same BC03/bands/Vega recipe, per 1 Msun Kroupa; ours is Chabrier
    # (0.61/0.66 mass ratio: 0.086 mag brighter); colours must agree to 0.01 mag
    expected = {
        1: [-1.549, -0.896, 0.700, 0.895, 1.215],
        10: [-0.627, -0.100, 1.088, 0.979, 0.279],
        1015: [6.068, 5.298, 5.234, 4.675, 3.761],
    }
    for age, mags in expected.items():
        ours = absolute_magnitudes([age], [0.0], FILTERS)[0]
        np.testing.assert_allclose(np.diff(ours), np.diff(mags), atol=0.01)
        assert abs((ours[3] - mags[3]) + 2.5 * np.log10(0.66 / 0.61)) < 0.01
    assert "Chabrier" in load_grid().header["IMF"]


def test_sed_recovers_age_and_mass_at_snr_20():
    rng = np.random.default_rng(3)
    n = 2000
    age = 10 ** rng.uniform(0, 3.5, n)
    mass = 10 ** rng.uniform(3.5, 5.5, n)
    ebv = rng.uniform(0, 0.6, n)
    true = cluster_magnitudes(age, mass, ebv, 9.84, FILTERS)
    err = np.full_like(true, 2.5 / np.log(10) / 20)  # S/N 20 in every band
    observed = true + rng.normal(0, 1, true.shape) * err
    fit = fit_sed(observed, err, FILTERS, 9.84)
    d_age = np.abs(np.log10(fit.age_myr) - np.log10(age))
    d_mass = np.abs(np.log10(fit.mass) - np.log10(mass))
    ok_age, ok_mass = np.mean(d_age < 0.3), np.mean(d_mass < 0.3)
    # the age-extinction degeneracy: failures trade age against E(B-V)
    bad = d_age >= 0.3
    corr = np.corrcoef(np.log10(fit.age_myr[bad] / age[bad]), fit.ebv[bad] - ebv[bad])[0, 1]
    print(
        f"log age within 0.3 dex: {ok_age:.2f}, log mass within 0.3 dex: {ok_mass:.2f}; "
        f"age-E(B-V) error correlation of the failures: {corr:+.2f}"
    )
    assert ok_age >= 0.7 and ok_mass >= 0.7
    assert corr < 0  # older fits come with less extinction

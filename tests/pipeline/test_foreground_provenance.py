"""A whole run on simulated inputs with a Milky Way foreground injected, for a galaxy outside
the survey table: the catalogs recover the truth after the correction, SIMULATD and PROPOSID come
from the inputs into every product, no survey DOI appears, and no human-class catalogs are made
without a human-class table.

The scene is the session's small field (seed 1) simulated again with E(B-V)_MW = 0.1 and another
PROPOSID; the session's run of the unreddened field (``science_run``) is the reference: the same
objects measured without foreground.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table

import phangs_products as pp
from phangs_products.bands import galaxy
from phangs_products.hlsp import SURVEY
from phangs_products.models import open as open_product
from phangs_products.pipeline.config import load_config
from phangs_products.pipeline.graph import run_galaxy
from phangs_products.pipeline.sim.config import SimConfig
from phangs_products.pipeline.sim.simulate import simulate
from phangs_products.pipeline.stellarpops.extinction import foreground_extinction
from phangs_products.registry import get_schema
from phangs_products.validation import validate_delivery

EBV_MW = 0.1
PROPOSID = 17126  # not the survey's 15654
FILTERS = SimConfig().bands
SENTINEL = get_schema("cluster-catalog").sentinel


@pytest.fixture(scope="module")
def reddened(tmp_path_factory):
    """Simulation with the foreground and the full run of it as galaxy 'testgal'."""
    root = tmp_path_factory.mktemp("foreground")
    sim = simulate(SimConfig(ebv_mw=EBV_MW, proposid=PROPOSID), root / "sim")
    scene = galaxy("ngc628")  # the simulated scene's galaxy, given here as an unknown one
    path = root / "run.toml"
    path.write_text(
        "[run]\n"
        'target = "testgal"\n'
        'field = "testgalc"\n'
        f'input = "{sim.flc_dir}"\n'
        f'reference_catalog = "{sim.reference_catalog}"\n'
        'output = "delivery"\n'
        f"ra = {scene.ra}\ndec = {scene.dec}\n"
        f"distance_mpc = {scene.distance_mpc}\ndistance_err_mpc = {scene.distance_err_mpc}\n"
        f"ebv_mw = {EBV_MW}\n"
        'ebv_mw_source = "injected by the simulation"\n'
        "[run.hlsp]\n"
        'name = "Foreground test collection"\nlead = "A. Tester"\n'
    )
    config = load_config(path)  # the configuration does not say simulated: the inputs do
    run_galaxy(config)
    return config, sim


def _field(config):
    return config.output / config.field


def _matched(table: Table, ra: str, dec: str, other: Table, ora: str, odec: str):
    """Index pairs of rows of ``table`` and ``other`` within 0.04 arcsec."""
    a = SkyCoord(table[ra], table[dec], unit="deg")
    b = SkyCoord(other[ora], other[odec], unit="deg")
    j, sep, _ = a.match_to_catalog_sky(b)
    ok = sep.arcsec < 0.04
    return np.flatnonzero(ok), j[ok]


def aligned_filters(*reports: Path) -> list[str]:
    """Filters whose exposures all aligned in every run (alignment reports of the imaging stage).

    With the foreground the NUV field is fainter: TweakReg may match too few stars in an F275W
    exposure and leave it on its pointing WCS (0.25 arcsec errors); photometry of such a band
    measures misplaced apertures, which says nothing about the foreground correction.
    """
    ok = set(FILTERS)
    for report in reports:
        table = Table.read(report)
        ok -= {str(r["filter"]) for r in table if not r["aligned"]}
    return [f for f in FILTERS if f in ok]


def _reports(config, science_run) -> tuple[Path, Path]:
    return config.work / "imaging" / "alignment.ecsv", science_run["imaging"]["alignment"][0]


def test_delivery_of_an_unknown_galaxy_validates(reddened):
    config, _ = reddened
    report = validate_delivery(config.output)
    assert report.ok, report.to_text()
    drc = open_product(next(_field(config).glob("*f555w_v1_drc-sci.fits")))
    assert drc.meta["TARGNAME"] == "testgal" and drc.meta["DIST_MPC"] == config.galaxy.distance_mpc


def test_simulatd_and_proposid_from_the_inputs_and_no_survey_doi(reddened):
    config, sim = reddened
    assert all(fits.getheader(p)["PROPOSID"] == PROPOSID for p in sim.flc_files)
    products = sorted(_field(config).glob("hlsp_*.fits"))
    assert len(products) > 40
    for path in products:
        header = fits.getheader(path)
        assert header["SIMULATD"] is True, path.name
        assert header["PROPOSID"] == PROPOSID, path.name
        assert "DOI" not in header, path.name
        assert header["HLSPLEAD"] == "A. Tester", path.name
    texts = [p.read_text() for p in _field(config).glob("hlsp_*") if p.suffix in (".md", ".reg")]
    texts += [p.read_text() for p in config.docs.rglob("*.html")]
    for text in texts:
        assert not any(doi in text for doi in SURVEY.dois.values())
    (readme,) = _field(config).glob("*_readme.md")
    text = readme.read_text()
    assert "simulated HST exposures** (`SIMULATD = T`)" in text
    assert f"(PROPOSID): {PROPOSID}." in text
    for page in config.docs.rglob("*.html"):
        assert 'class="banner simulated"' in page.read_text(), page.name


def test_foreground_in_headers_and_readme(reddened):
    config, _ = reddened
    bands = [pp.BandInfo(f) for f in FILTERS]
    expected = foreground_extinction(EBV_MW, bands)
    for name, corrected in (("cl-cand", True), ("dolphot-cat", False), ("asc-v-16pc", True)):
        (path,) = _field(config).glob(f"*_{name}.fits")
        meta = open_product(path).meta
        assert meta["EBVMW"] == EBV_MW and meta["EBVMWSRC"] == "injected by the simulation"
        assert meta["MWCORR"] is corrected
        got = [meta[f"AMW{i:02d}"] for i in range(1, len(bands) + 1)]
        np.testing.assert_allclose(got, expected, atol=5e-5)
    (readme,) = _field(config).glob("*_readme.md")
    text = readme.read_text()
    assert f"E(B-V)_MW = {EBV_MW:.3f} mag (injected by the simulation)" in text
    for f, a in zip(FILTERS, expected, strict=True):
        assert f"| {f} | WFC3/UVIS | {a:.4f} |" in text


def test_catalog_magnitudes_recover_the_truth(reddened, sim_small, science_run):
    """Corrected cluster magnitudes of the reddened field equal those of the unreddened one."""
    config, sim = reddened
    truth = Table.read(sim.truth)
    a_band = foreground_extinction(EBV_MW, list(FILTERS))
    reddened_cat = open_product(next(_field(config).glob("*_cl-cand.fits"))).table
    (plain_path,) = [
        p for p in science_run["clusters"]["cluster-catalog"] if p.name.endswith("cl-cand.fits")
    ]
    plain = open_product(plain_path).table
    i, j = _matched(reddened_cat, "PHANGS_RA", "PHANGS_DEC", plain, "PHANGS_RA", "PHANGS_DEC")
    assert len(i) >= 15
    checked = aligned_filters(*_reports(config, science_run))
    assert len(checked) >= 4, checked
    for f, a in zip(FILTERS, a_band, strict=True):
        if f not in checked:
            continue
        col = f"PHANGS_{f}_VEGA"
        red, ref = np.asarray(reddened_cat[col])[i], np.asarray(plain[col])[j]
        good = (red != SENTINEL) & (ref != SENTINEL) & (ref < 24.5)
        diff = np.median(red[good] - ref[good])
        # uncorrected the difference would be +A_band (0.19 to 0.62 mag)
        assert abs(diff) < 0.03, (f, diff, a)
        # against the truth, on the same clusters: the reddened run is as far from it as the
        # unreddened one (each median has ~0.07 mag noise: 0.35 mag scatter, ~20 clusters)
        tc = SkyCoord(truth["ra"], truth["dec"], unit="deg")
        t, sep, _ = SkyCoord(
            reddened_cat["PHANGS_RA"][i], reddened_cat["PHANGS_DEC"][i], unit="deg"
        ).match_to_catalog_sky(tc)
        cl = good & (sep.arcsec < 0.04) & (np.asarray(truth["kind"])[t] == "cluster")
        true_mag = np.asarray(truth[f"{f}_vega"])[t]
        offset = np.median(red[cl] - true_mag[cl]) - np.median(ref[cl] - true_mag[cl])
        assert cl.sum() >= 10 and abs(offset) < 0.1, (f, offset)


def test_dolphot_catalog_keeps_the_measured_magnitudes(reddened, science_run):
    config, _ = reddened
    a_band = foreground_extinction(EBV_MW, list(FILTERS))
    red = open_product(next(_field(config).glob("*_dolphot-cat.fits"))).table
    (plain_path,) = [p for p in science_run["photometry"]["dolphot-catalog"] if p.suffix == ".fits"]
    plain = open_product(plain_path).table
    i, j = _matched(red, "RA", "DEC", plain, "RA", "DEC")
    checked = aligned_filters(*_reports(config, science_run))
    for f, a in zip(FILTERS, a_band, strict=True):
        if f not in checked:
            continue
        r, p = np.asarray(red[f"{f}_VEGA"])[i], np.asarray(plain[f"{f}_VEGA"])[j]
        good = (r < 90) & (p < 24)
        # as measured: fainter by A_band (the PSF photometry adds +0.04-0.07 mag on this field)
        assert a - 0.02 < np.median(r[good] - p[good]) < a + 0.1, f


def test_without_human_table_no_human_catalogs_and_the_reason(reddened):
    config, _ = reddened
    field = _field(config)
    assert not list(field.glob("*cl-hum*"))
    assert list(field.glob("*_cl-ml-c12.fits"))
    (manifest,) = field.glob("*_manifest.asdf")
    tree = open_product(manifest).tree
    assert [o["subset"] for o in tree["omitted"]] == ["hum-c12", "hum-c3"]
    assert all("stages.clusters.human_table" in o["reason"] for o in tree["omitted"])
    assert "hum-c12" not in tree["subsets"]
    (readme,) = field.glob("*_readme.md")
    text = readme.read_text()
    assert "No human classes: no table of human (visual) classes was given" in text
    assert "matched to the nearest\n  candidate within 0.1 arcsec" in text
    page = (config.docs / "galaxies" / f"{config.field}.html").read_text()
    assert "Cluster candidates by class (machine-learning classification)" in page

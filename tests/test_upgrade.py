"""``phangs-products upgrade``: a DR4-like folder becomes a current delivery that validates clean.

The historical files are built with the builders of ``test_legacy`` (DR4 catalogs as the release
code wrote them, v1 images with AstroDrizzle's keywords): for two targets every image kind of five
bands and every catalog kind (obs and sed of the four subsets, the candidates).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from test_legacy import (
    DR4_NAME,
    LEGUS_1566,
    NAMES,
    REAL,
    columns_of,
    write_dr4,
    write_image,
)

import phangs_products as pp
from phangs_products.bands import galaxy
from phangs_products.cli import main
from phangs_products.hlsp import SURVEY
from phangs_products.naming import check_name
from phangs_products.pipeline.upgrade import REPORT_NAME, upgrade
from phangs_products.provenance import read_provenance
from phangs_products.registry import current_version
from phangs_products.validation import validate_delivery

TARGETS = ("ngc1566", "ngc7496")
FILTERS = ("F275W", "F336W", "F438W", "F555W", "F814W")
KINDS = ("exp-drc-sci", "err-drc-wht", "exp-drc-wht")
#: What the historical files do not record, given as the command line's --set would.
FACTS = {
    "": {
        "REFBAND": "F555W",
        "MWCORR": "T",
        "EBVMWSRC": "upgrade test (given on the command line)",
        "SEDMODEL": "BC03 solar, Chabrier IMF (upgrade test)",
        "APCORR_V": "-0.75",
    },
    "ngc1566": {"EBVMW": "0.01", "POINTING": "1"},
    "ngc7496": {"EBVMW": "0.02", "POINTING": "1"},
}
SET_ARGS = [f"{t + ':' if t else ''}{k}={v}" for t, kv in FACTS.items() for k, v in kv.items()]


def sha256s(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def build_dr4_folder(folder: Path) -> Path:
    """Images (three kinds x five bands) and the nine DR4 catalogs of each of two targets."""
    folder.mkdir()
    for i, target in enumerate(TARGETS):
        radec = (galaxy(target).ra, galaxy(target).dec)
        for filt in FILTERS:
            for kind in KINDS:
                name = f"hlsp_phangs-hst_hst_wfc3-uvis_{target}_{filt.lower()}_v1_{kind}.fits"
                extra = {"EXPSTART": 58800.0 + i, "EXPEND": 58800.2 + i}
                weight = kind == "err-drc-wht"
                write_image(folder / name, weight=weight, filt=filt, extra=extra, radec=radec)
        for name in NAMES:
            m = DR4_NAME.match(name)
            if m["target"] != target:
                continue
            table_type = "cand" if m["type"] == "obs-sed-candidates" else m["type"][:3]
            write_dr4(folder / name, columns_of(table_type, target), target, radec)
    legus = REAL / "legus" / f"{LEGUS_1566}.gz"
    (folder / LEGUS_1566).write_bytes(gzip.decompress(legus.read_bytes()))
    (folder / "notes.txt").write_text("observing log, not a product\n")
    (folder / "previews").mkdir()
    fits.PrimaryHDU(np.zeros((4, 4), np.float32)).writeto(folder / "hlsp_other_drc.fits")
    return folder


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory):
    """The DR4-like folder, its hashes, the delivery upgraded from it by the CLI, exit code and
    what the command printed."""
    root = tmp_path_factory.mktemp("upgrade")
    src = build_dr4_folder(root / "dr4")
    before = sha256s(src)
    out = root / "upgraded"
    sets = [arg for s in SET_ARGS for arg in ("--set", s)]
    console = io.StringIO()
    with contextlib.redirect_stdout(console):
        rc = main(["upgrade", str(src), str(out), "--identity", "phangs-hst", *sets])
    return src, out / "delivery", before, rc, console.getvalue()


def test_upgrade_validates_clean_with_todays_names(upgraded, capsys):
    _, dest, _, rc, _ = upgraded
    assert rc == 0
    report = validate_delivery(dest, data=True, workers=1)
    print(report.summary())
    assert report.ok, "\n".join(str(p) for p in report.problems)
    assert [p for p in report.problems if p.severity == "error"] == []
    # warnings: the DR4 columns today's schema does not have (kept), PSFSIZE (not recorded by
    # the historical images), and the test tables' X/Y (not computed from their RA/Dec)
    rules = {p.rule for p in report.problems}
    assert rules == {"column.unknown", "keyword.recommended", "position.pixel"}
    folders = sorted(d.name for d in dest.iterdir() if d.is_dir())
    assert folders == list(TARGETS)
    for target in TARGETS:
        files = sorted(p.name for p in (dest / target).iterdir())
        products = [f for f in files if f.startswith("hlsp_")]
        # 15 images, 5 catalogs (obs + sed of a subset are one catalog), README, manifest,
        # checksum list
        assert len(products) == 15 + 5 + 3
        for name in products:
            assert [p for p in check_name(name) if p.severity == "error"] == [], name
            assert len(name.rsplit("_", 1)[1].split(".")[0]) <= 16
        assert f"hlsp_phangs-hst_hst_wfc3-uvis_{target}_f275w_v1_drc-err.fits" in files
        assert f"hlsp_phangs-cat_hst_wfc3-uvis_{target}_multi_v1_cl-ml-c3.fits" in files
        assert f"hlsp_phangs-hst_hst_multi_{target}_multi_v1_sha256sums.txt" in files


def test_products_record_their_sources_and_are_todays_models(upgraded):
    src, dest, before, _, _ = upgraded
    cat_name = "hlsp_phangs-cat_hst_wfc3-uvis_ngc1566_multi_v1_cl-hum-c12.fits"
    prov = read_provenance(dest / "ngc1566" / cat_name)
    inputs = {i["name"]: i["sha256"] for i in prov["inputs"]}
    obs = "hlsp_phangs-cat_hst_uvis_ngc1566_multi_v1_obs-human-cluster-class12.fits"
    sed = "hlsp_phangs-cat_hst_uvis_ngc1566_multi_v1_sed-human-cluster-class12.fits"
    assert inputs == {obs: before[obs], sed: before[sed]}
    cat = pp.open(dest / "ngc1566" / cat_name)
    assert (
        cat.meta.legacy is None
        and cat.schema.id == f"cluster-catalog-{current_version('cluster-catalog')}"
    )
    # the obs photometry and the sed fit in one table, DR4 names still answering
    assert "PHANGS_F555W_VEGA" in cat.table.colnames and "SEDfix_age" in cat.table.colnames
    np.testing.assert_array_equal(
        cat.table["PHANGS_CLUSTER_CLASS_ML_VGG"], cat.table["PHANGS_CLUSTER_CLASS_ML"]
    )
    assert cat.meta.mwcorr is True and cat.meta.ebvmw == pytest.approx(0.01)
    err = pp.open(dest / "ngc1566" / "hlsp_phangs-hst_hst_wfc3-uvis_ngc1566_f275w_v1_drc-err.fits")
    weight = fits.getdata(src / "hlsp_phangs-hst_hst_wfc3-uvis_ngc1566_f275w_v1_err-drc-wht.fits")
    np.testing.assert_allclose(err.data[5:], 1 / np.sqrt(weight[5:]), rtol=1e-6)


def test_unmappable_files_are_listed(upgraded):
    _, dest, _, _, console = upgraded
    printed = " ".join(console.split())
    assert "4 file(s) not upgraded" in printed
    for name in ("notes.txt", "hlsp_other_drc.fits", LEGUS_1566, "previews"):
        assert name in printed
    report = json.loads((dest.parent / REPORT_NAME).read_text())
    unmapped = {"notes.txt", "hlsp_other_drc.fits", LEGUS_1566, "previews"}
    assert set(report["unmapped"]) == unmapped
    assert "legus" in report["unmapped"][LEGUS_1566]
    assert all(report["unmapped"].values())
    assert len(report["sources"]) == 2 * (15 + 9) + 3


def test_sources_untouched_and_rerun_changes_nothing(upgraded, capsys):
    src, dest, before, _, _ = upgraded
    assert sha256s(src) == before
    delivered = sha256s(dest)
    mtimes = {p: p.stat().st_mtime_ns for p in dest.rglob("*") if p.is_file()}
    result = upgrade(src, dest.parent, identity=SURVEY, facts=FACTS)
    assert result.written == []
    assert len(result.unchanged) == 2 * 20
    assert sha256s(dest) == delivered
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*") if p.is_file()} == mtimes
    assert sha256s(src) == before


def test_rerun_with_other_facts_refuses_to_overwrite(upgraded):
    src, dest, _, _, _ = upgraded
    other = {**FACTS, "ngc1566": {**FACTS["ngc1566"], "EBVMW": "0.03"}}
    with pytest.raises(pp.ProductError, match="overwrite"):
        upgrade(src, dest.parent, identity=SURVEY, facts=other)
    assert validate_delivery(dest, data=False, workers=1).ok
    # with overwrite only the products that use the fact change (the catalogs of NGC 1566)
    result = upgrade(src, dest.parent, identity=SURVEY, facts=other, overwrite=True)
    products = [p for p in result.written if p.name.endswith(".fits")]
    assert len(products) == 5 and all("_cl-" in p.name for p in products)
    assert all(p.parent.name == "ngc1566" for p in products)
    assert pp.open(products[0]).meta.ebvmw == pytest.approx(0.03)
    assert validate_delivery(dest, data=True, workers=1).ok


def test_missing_facts_list_the_files_with_what_is_missing(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    name = "hlsp_phangs-hst_hst_wfc3-uvis_ngc1566_f555w_v1_exp-drc-sci.fits"
    write_image(src / name, filt="F555W", extra={"EXPSTART": 58800.0, "EXPEND": 58800.2})
    result = upgrade(src, tmp_path / "out", identity=SURVEY)
    assert "REFBAND" in result.unmapped[name] and "POINTING" in result.unmapped[name]
    assert result.written == [tmp_path / "out" / REPORT_NAME]


def test_obs_and_sed_tables_of_other_rows_are_listed(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    target = "ngc1566"
    obs = f"hlsp_phangs-cat_hst_uvis_{target}_multi_v1_obs-machine-cluster-class12.fits"
    sed = obs.replace("_obs-", "_sed-")
    write_dr4(src / obs, columns_of("obs", target), target)
    write_dr4(src / sed, columns_of("sed", target), target)
    with fits.open(src / sed, mode="update") as hdul:
        hdul[1].data["INDEX"][0] = 99
    # no image gives the time span: it is given
    facts = {**FACTS, target: {**FACTS[target], "MJD-BEG": "58800.0", "MJD-END": "58800.2"}}
    result = upgrade(src, tmp_path / "out", identity=SURVEY, facts=facts)
    assert "same INDEX values" in result.unmapped[obs]
    assert result.unmapped[sed] == result.unmapped[obs]
    assert result.fields == []


def test_catalogs_of_a_pointing_with_acs_bands_alone(tmp_path):
    """NGC 628-C (ACS and WFC3 bands, a pointing of NGC 628) without images: catalogs only."""
    src = tmp_path / "src"
    src.mkdir()
    target = "ngc0628c"
    radec = (galaxy("ngc628").ra, galaxy("ngc628").dec)
    for name in NAMES:
        m = DR4_NAME.match(name)
        if m["target"] == target:
            table_type = "cand" if m["type"] == "obs-sed-candidates" else m["type"][:3]
            write_dr4(src / name, columns_of(table_type, target), target, radec)
    facts = {**FACTS, "ngc628c": {"EBVMW": "0.06", "MJD-BEG": "58800.0", "MJD-END": "58800.2"}}
    result = upgrade(src, tmp_path / "out", identity=SURVEY, facts=facts)
    assert result.unmapped == {}
    report = validate_delivery(tmp_path / "out" / "delivery", data=True, workers=1)
    assert report.ok, "\n".join(str(p) for p in report.problems if p.severity == "error")
    names = sorted(p.name for p in (tmp_path / "out" / "delivery" / "ngc628c").glob("*_cl-*.fits"))
    assert len(names) == 5 and all("_wfc3-uvis-acs-wfc_ngc0628c_" in n for n in names)
    manifest = pp.open(next((tmp_path / "out" / "delivery" / "ngc628c").glob("*_manifest.asdf")))
    assert [b["instrument"] for b in manifest.tree["bands"]].count("ACS/WFC") >= 1
    assert {o["product"] for o in manifest.tree["omitted"]} >= {"drc-sci", "drc-err", "drc-exp"}

"""The validator on a clean delivery and on a corpus of broken copies (one defect each)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import asdf
import numpy as np
import pytest
from astropy.io import fits
from vtools import _plain, refresh, set_column, set_image

from phangs_products.delivery import find_checksums, find_manifest, write_checksums
from phangs_products.models import CatalogModel, ManifestModel
from phangs_products.models import open as open_product
from phangs_products.validation import RULES, validate_delivery

IMG = "hlsp_phangs-hst_hst_wfc3-uvis_ngc628c_{f}_v1_{kind}.fits"
CAT = "hlsp_phangs-cat_hst_wfc3-uvis_ngc0628c_multi_v1_{ptype}.{ext}"
README = "hlsp_phangs-hst_hst_multi_ngc628c_multi_v1_readme.md"


def img(f: str, kind: str) -> str:
    return IMG.format(f=f, kind=kind)


def cat(ptype: str, ext: str = "fits") -> str:
    return CAT.format(ptype=ptype, ext=ext)


def update_header(path: Path, hdu: int = 0, **cards) -> None:
    """Change header cards in place; CHECKSUM/DATASUM are updated by astropy."""
    with fits.open(path, mode="update", checksum=True) as hdul:
        for key, value in cards.items():
            key = key.replace("_", "-") if key in ("DATE_BEG",) else key
            if value is None:
                del hdul[hdu].header[key]
            else:
                hdul[hdu].header[key] = value


def rename(folder: Path, old: str, new: str) -> None:
    (folder / old).rename(folder / new)


# ------------------------------------------------------------------------------- the defects
def upper_case_name(d: Path) -> None:
    # the manifest schema refuses upper-case names, so the manifest keeps the old one
    rename(d, img("f438w", "drc-exp"), img("F438W", "drc-exp"))
    write_checksums(d)


def wrong_field_count(d: Path) -> None:
    rename(d, img("f438w", "drc-exp"), "hlsp_phangs-hst_hst_ngc628c_f438w_v1_drc-exp.fits")
    refresh(d)


def long_product_type(d: Path) -> None:
    rename(d, img("f438w", "drc-exp"), img("f438w", "drc-exp-weightmap"))
    refresh(d)


def missing_doi(d: Path) -> None:
    # the test products are simulated (no DOI); without SIMULATD they are observed data
    # that lack their collection DOI
    update_header(d / img("f336w", "drc-sci"), SIMULATD=None)
    refresh(d)


def wrong_license(d: Path) -> None:
    update_header(d / img("f336w", "drc-sci"), LICENSE="CC BY-SA 4.0")
    refresh(d)


def non_fits_unit(d: Path) -> None:
    path = d / cat("cl-hum-c12")
    with fits.open(path, mode="update", checksum=True) as hdul:
        index = hdul[1].columns.names.index("PHANGS_MASS_MINCHISQ") + 1
        hdul[1].header[f"TUNIT{index}"] = "Msun"
    refresh(d)


def missing_band(d: Path) -> None:
    (d / img("f275w", "drc-sci")).unlink()
    refresh(d)


def mismatched_version(d: Path) -> None:
    update_header(d / img("f555w", "drc-err"), HLSPVER="v2")
    refresh(d)


def broken_checksum(d: Path) -> None:
    path = d / img("f814w", "drc-sci")
    with fits.open(path) as hdul:
        offset = hdul[0].fileinfo()["datLoc"] + 1001
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))
    refresh(d)


def wcs_off_target(d: Path) -> None:
    path = d / img("f814w", "drc-err")
    crval1 = fits.getheader(path)["CRVAL1"]
    update_header(path, CRVAL1=crval1 + 0.1)
    refresh(d)


def truncated_file(d: Path) -> None:
    path = d / img("f336w", "drc-err")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 1000])
    refresh(d)


def region_off_footprint(d: Path) -> None:
    path = d / cat("cl-hum-c3-reg", "reg")
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("circle("):
            ra, rest = line[len("circle(") :].split(",", 1)
            lines[i] = f"circle({float(ra) + 0.05:.8f},{rest}"
            break
    path.write_text("\n".join(lines) + "\n")
    refresh(d)


def nan_in_sentinel_column(d: Path) -> None:
    with fits.open(d / cat("cl-ml-c3"), mode="update", checksum=True) as hdul:
        hdul[1].data["PHANGS_AGE_MINCHISQ"][0] = np.nan
    refresh(d)


def manifest_sha_mismatch(d: Path) -> None:
    path = find_manifest(d)
    with asdf.open(path) as af:
        tree = _plain({k: v for k, v in af.tree.items() if not k.startswith("asdf")})
    tree["files"][3]["sha256"] = "0" * 64
    ManifestModel.create("delivery-manifest", tree).save(path, overwrite=True)
    write_checksums(d)


def non_fits_with_fits_name(d: Path) -> None:
    (d / img("f555w", "drc-exp")).write_text("this is not a FITS file\n" * 20)
    refresh(d)


def mask_grid_mismatch(d: Path) -> None:
    path = d / cat("asc-v-16pc-msk")
    header = fits.getheader(path)
    shift = 10 * 0.04 / 3600 / np.cos(np.radians(header["CRVAL2"]))
    update_header(path, CRVAL1=header["CRVAL1"] + shift)
    refresh(d)


def catalog_position_off(d: Path) -> None:
    with fits.open(d / cat("cl-cand"), mode="update", checksum=True) as hdul:
        hdul[1].data["PHANGS_RA"][0] += 0.01
    refresh(d)


def unknown_schema_version(d: Path) -> None:
    update_header(d / img("f336w", "drc-exp"), PPSCHVER="9.9.9")
    refresh(d)


def missing_checksums_file(d: Path) -> None:
    find_checksums(d).unlink()


def readme_missing_section(d: Path) -> None:
    path = d / README
    path.write_text(path.read_text().replace("## Contact\n", "## Contacts\n"))
    refresh(d)


def target_mismatch(d: Path) -> None:
    update_header(d / cat("dolphot-cat"), HLSPTARG="ngc0628e")
    refresh(d)


def unlisted_file(d: Path) -> None:
    model = open_product(d / cat("cl-hum-c12"))
    assert isinstance(model, CatalogModel)
    model.save(d / cat("cl-hum-c12", "ecsv"))
    write_checksums(d)


def misnamed_readme(d: Path) -> None:
    rename(d, README, README.replace("_v1_", "_v2_"))
    refresh(d)


def wrong_proj_id(d: Path) -> None:
    rename(d, cat("dolphot-cat"), cat("dolphot-cat").replace("phangs-cat", "phangs-xyz"))
    refresh(d)


def stray_temp_file(d: Path) -> None:
    # what a killed atomic write leaves: a hidden, half-written copy of a product
    half = (d / img("f555w", "drc-sci")).read_bytes()[:5000]
    (d / f".{img('f555w', 'drc-sci')}.x7k2q9.part").write_bytes(half)


def stray_folder_and_fifo(d: Path) -> None:
    (d / "previews").mkdir()
    # a FIFO that does not pose as a product (one named hlsp_* is file.not-regular)
    os.mkfifo(d / "scratch.pipe")


# --------------------------------------------- content rules (values the schemas declare)
def all_nan_drc(d: Path) -> None:
    set_image(d / img("f438w", "drc-sci"), lambda a: a.fill(np.nan))
    refresh(d)


def err_minus_one(d: Path) -> None:
    set_image(d / img("f555w", "drc-err"), lambda a: a.fill(-1.0))
    refresh(d)


def exp_minus_five(d: Path) -> None:
    set_image(d / img("f814w", "drc-exp"), lambda a: a.fill(-5.0))
    refresh(d)


def duplicate_cluster_ids(d: Path) -> None:
    def dup(ids: np.ndarray) -> None:
        ids[1] = ids[0]

    set_column(d / cat("cl-cand"), "ID_PHANGS_CLUSTER", dup)
    refresh(d)


def human_class_99(d: Path) -> None:
    set_column(d / cat("cl-hum-c12"), "PHANGS_CLUSTER_CLASS_HUMAN", lambda c: c.put(0, 99))
    refresh(d)


def zero_row_catalog(d: Path) -> None:
    with fits.open(d / cat("dolphot-cat"), mode="update", checksum=True) as hdul:
        hdul[1].data = hdul[1].data[:0]
    refresh(d)


def export(d: Path, ptype: str, ext: str) -> Path:
    """The FITS catalog's Parquet or ECSV export, as the pipeline writes it."""
    model = open_product(d / cat(ptype))
    assert isinstance(model, CatalogModel)
    return model.save(d / cat(ptype, ext))


def parquet_ra_all_nan(d: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = export(d, "cl-cand", "parquet")
    table = pq.read_table(path)
    index = table.schema.get_field_index("PHANGS_RA")
    nan = pa.array(np.full(table.num_rows, np.nan))
    table = table.set_column(index, table.schema.field(index), nan)
    pq.write_table(table, path)  # the field and file metadata (units, schema id) are kept
    refresh(d)


def ecsv_ra_in_rad(d: Path) -> None:
    import astropy.units as u
    from astropy.table import Table

    path = export(d, "cl-hum-c3", "ecsv")
    table = Table.read(path, format="ascii.ecsv")
    table["PHANGS_RA"] = table["PHANGS_RA"].to(u.rad)
    table.write(path, format="ascii.ecsv", overwrite=True)
    refresh(d)


def mask_value_minus_seven(d: Path) -> None:
    set_image(d / cat("asc-nuv-32pc-msk"), lambda a: a.__setitem__((0, 0), -7))
    refresh(d)


def mask_labels_not_in_catalog(d: Path) -> None:
    # association 2 of the mask is relabelled 5: the catalog has ids 1 and 2 only
    set_image(d / cat("asc-v-8pc-msk"), lambda a: a.__setitem__(a == 2, 5))
    refresh(d)


#: (defect, the rule it must trigger, other error rules it may bring along)
CORPUS: list[tuple[Callable[[Path], None], str, set[str]]] = [
    (upper_case_name, "name.case", {"manifest.missing-file", "manifest.unlisted"}),
    (wrong_field_count, "name.fields", set()),
    (long_product_type, "name.product-type-length", set()),
    (missing_doi, "keyword.missing", set()),
    (wrong_license, "keyword.value", set()),
    (non_fits_unit, "column.unit", set()),
    (missing_band, "delivery.missing-product", set()),
    (mismatched_version, "consistency.version", set()),
    (broken_checksum, "fits.checksum", set()),
    (wcs_off_target, "wcs.target", set()),
    (truncated_file, "fits.truncated", set()),
    (region_off_footprint, "regions.footprint", set()),
    (nan_in_sentinel_column, "column.nan", set()),
    (manifest_sha_mismatch, "manifest.sha256", set()),
    (non_fits_with_fits_name, "fits.not-fits", set()),
    (mask_grid_mismatch, "mask.grid", set()),
    (catalog_position_off, "position.footprint", set()),
    (unknown_schema_version, "schema.unknown", set()),
    (missing_checksums_file, "checksums.missing", set()),
    (readme_missing_section, "content.value", set()),
    (target_mismatch, "consistency.target", set()),
    (unlisted_file, "manifest.unlisted", set()),
    (misnamed_readme, "name.readme", set()),
    (wrong_proj_id, "name.proj-id", set()),
    (stray_temp_file, "delivery.stray-file", set()),
    (stray_folder_and_fifo, "delivery.stray-file", set()),
    (all_nan_drc, "content.finite-fraction", set()),
    (err_minus_one, "content.range", set()),
    (exp_minus_five, "content.range", set()),
    (duplicate_cluster_ids, "content.unique", set()),
    (human_class_99, "content.codes", set()),
    (zero_row_catalog, "content.rows", set()),
    (parquet_ra_all_nan, "content.finite-fraction", set()),
    (ecsv_ra_in_rad, "column.unit", set()),
    (mask_value_minus_seven, "content.range", set()),
    (mask_labels_not_in_catalog, "content.mask-labels", set()),
]


def test_clean_delivery_passes(clean: Path) -> None:
    report = validate_delivery(clean)
    assert report.ok, report.to_text()
    assert report.errors == [] and report.warnings == []
    assert len(report.files) == len(list(clean.iterdir()))
    strict = validate_delivery(clean.parent, strict=True)
    assert strict.ok and strict.exit_code == 0


def test_clean_delivery_headers_only(clean: Path) -> None:
    report = validate_delivery(clean, data=False)
    assert report.ok, report.to_text()


@pytest.mark.parametrize(("defect", "rule", "allowed"), CORPUS, ids=[c[0].__name__ for c in CORPUS])
def test_defect_triggers_its_rule(
    clean: Path, defect: Callable[[Path], None], rule: str, allowed: set[str]
) -> None:
    defect(clean)
    report = validate_delivery(clean)
    errors = report.rules("error")
    assert rule in errors, report.to_text()
    assert errors <= {rule} | allowed, report.to_text()
    assert not report.ok and report.exit_code == 1


def test_corpus_has_at_least_15_distinct_rules() -> None:
    assert len({rule for _, rule, _ in CORPUS}) >= 15


def test_every_reported_rule_is_registered(clean: Path) -> None:
    defects = [
        missing_doi,
        non_fits_unit,
        missing_band,
        mismatched_version,
        broken_checksum,
        wcs_off_target,
        truncated_file,
        region_off_footprint,
        nan_in_sentinel_column,
        mask_grid_mismatch,
        catalog_position_off,
        target_mismatch,
        upper_case_name,  # last: the manifest cannot be rewritten after it
    ]
    for defect in defects:
        defect(clean)
    report = validate_delivery(clean)
    assert report.rules() <= set(RULES), report.rules() - set(RULES)
    expected = {"name.case", "keyword.missing", "column.unit", "delivery.missing-product"}
    assert expected <= report.rules("error")
    assert "internal.error" not in report.rules()


def test_damaged_file_gives_one_problem(clean: Path) -> None:
    truncated_file(clean)
    non_fits_with_fits_name(clean)
    report = validate_delivery(clean)
    for name in (img("f336w", "drc-err"), img("f555w", "drc-exp")):
        mine = [p for p in report.problems if p.file == name]
        assert len(mine) == 1, mine
        assert mine[0].message


def test_strict_turns_warnings_into_errors(clean: Path) -> None:
    update_header(clean / img("f555w", "drc-sci"), HLSPNAME=None)
    refresh(clean)
    report = validate_delivery(clean)
    assert report.ok and report.rules("warning") == {"keyword.recommended"}
    strict = validate_delivery(clean, strict=True)
    assert not strict.ok and strict.rules("error") == {"keyword.recommended"}


def test_root_with_several_fields(tmp_path: Path) -> None:
    from phangs_products.testing import make_clean_delivery

    root = tmp_path / "delivery"
    make_clean_delivery(root, field="ngc628c")
    second = make_clean_delivery(root, field="ngc1433")
    (second / img("f275w", "drc-sci").replace("ngc628c", "ngc1433")).unlink()
    refresh(second)
    report = validate_delivery(root)
    assert report.rules("error") == {"delivery.missing-product"}
    assert all(p.file.startswith("ngc1433") or p.file == "ngc1433" for p in report.errors)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    report = validate_delivery(tmp_path)
    assert report.rules() == {"delivery.empty"}


def test_process_pool_gives_the_same_report(clean: Path) -> None:
    wcs_off_target(clean)
    threads = validate_delivery(clean, executor="thread")
    processes = validate_delivery(clean, executor="process", workers=2)
    serial = validate_delivery(clean, workers=1)
    key = sorted((p.rule, p.file, p.where) for p in threads.problems)
    assert key == sorted((p.rule, p.file, p.where) for p in processes.problems)
    assert key == sorted((p.rule, p.file, p.where) for p in serial.problems)


def test_copy_is_independent(tmp_path: Path) -> None:
    from phangs_products.testing import make_clean_delivery

    a = make_clean_delivery(tmp_path / "a")
    shutil.rmtree(a)
    b = make_clean_delivery(tmp_path / "b")
    assert validate_delivery(b).ok


def test_stray_temp_file_is_named_in_the_report(clean: Path) -> None:
    stray_temp_file(clean)
    report = validate_delivery(clean)
    (problem,) = report.errors
    assert problem.rule == "delivery.stray-file" and problem.severity == "error"
    assert problem.file == f".{img('f555w', 'drc-sci')}.x7k2q9.part"
    assert "temporary file of an interrupted write" in problem.message


def test_anything_beside_the_field_folders_is_flagged(tmp_path: Path) -> None:
    """Scratch, a site or a loose file at the delivery root: each named, at every level."""
    from phangs_products.testing import make_clean_delivery

    root = tmp_path / "delivery"
    field = make_clean_delivery(root, field="ngc628c")
    assert validate_delivery(root).problems == []
    work = root / ".work" / "ngc628c" / "logs"
    work.mkdir(parents=True)
    (work / "imaging.log").write_text("log\n")
    (root / "html").mkdir()
    (root / "html" / "index.html").write_text("<html></html>")
    (root / "notes.txt").write_text("todo\n")
    (field / "previews").mkdir()
    (field / "previews" / "rgb.png").write_bytes(b"\x89PNG")
    report = validate_delivery(root)
    strays = {p.file: p.message for p in report.problems if p.rule == "delivery.stray-file"}
    assert set(strays) == {".work", "html", "notes.txt", "ngc628c/previews"}, report.to_text()
    assert "3 entries inside" in strays[".work"]
    assert "beside the field folders" in strays["notes.txt"]
    assert report.rules("error") == {"delivery.stray-file"}


def test_one_job_and_two_give_the_same_report(tmp_path: Path, capsys) -> None:
    """``validate --jobs 1`` and ``--jobs 2`` print the same report; so does a process pool."""
    from phangs_products.testing import make_clean_delivery
    from phangs_products.validation import cli

    clean = make_clean_delivery(tmp_path / "delivery")
    for defect in (broken_checksum, wcs_off_target, nan_in_sentinel_column, manifest_sha_mismatch):
        defect(clean)
    docs = []
    for jobs in ("1", "2"):
        assert cli.main([str(clean), "--format", "json", "--jobs", jobs]) == 1
        docs.append(json.loads(capsys.readouterr().out))
    for doc in docs:
        del doc["seconds"], doc["summary"]  # wall times
    assert docs[0] == docs[1]
    rules = {p["rule"] for p in docs[0]["problems"]}
    assert {"fits.checksum", "wcs.target", "column.nan", "manifest.sha256"} <= rules
    serial = validate_delivery(clean, workers=1)
    pool = validate_delivery(clean, workers=2, executor="process")
    assert serial.problems == pool.problems and serial.files == pool.files

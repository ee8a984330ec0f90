"""Content rules: the schema vocabulary, the array scans and files of older schema versions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from vtools import refresh, set_image

from phangs_products.fitsscan import scan_bytes
from phangs_products.registry import check_document, get_schema
from phangs_products.spec import Bounds
from phangs_products.validation import validate_delivery
from phangs_products.validation.content import array_view, check_array, label_set


def test_product_schemas_declare_the_content_rules():
    assert check_document("metaschema-1.3.0") == []
    err = get_schema("drc-err").arrays["data"]
    assert (err.exclusive_minimum, err.sentinel, err.min_finite_fraction) == (0, 0, 1)
    assert get_schema("drc-exp").arrays["data"].minimum == 0
    mask = get_schema("assoc-mask").arrays["data"]
    assert mask.labels_in == ("assoc-catalog", "ASC_ID") and mask.minimum == 0
    cols = {c.name: c for c in get_schema("cluster-catalog").columns}
    assert cols["PHANGS_RA"].bounds.text() == "[0, 360)"
    assert cols["ID_PHANGS_CLUSTER"].unique and cols["PHANGS_CLUSTER_CLASS_HUMAN"].enum
    assert get_schema("cluster-catalog").product["min_rows"] == 1
    # older versions keep their rules (none of the new ones)
    old = get_schema("drc-err", "1.1.0").arrays["data"]
    assert not old.bounds and old.min_finite_fraction is None


def test_bounds_are_inclusive_or_exclusive_and_ignore_nan():
    ra = Bounds(minimum=0, exclusive_maximum=360)
    values = np.array([0.0, 359.9, 360.0, -1e-9, np.nan])
    assert ra.outside(values).tolist() == [False, False, True, True, False]
    assert Bounds(exclusive_minimum=0).text() == "(0, inf)" and not Bounds()


def test_arrays_are_scanned_in_blocks_with_the_sentinel_exempt(monkeypatch):
    from phangs_products.validation import content

    monkeypatch.setattr(content, "BLOCK", 7)  # many blocks, a ragged last one
    spec = get_schema("drc-err").arrays["data"]
    err = np.full((10, 10), 0.05, ">f4")
    err[0, :5] = 0.0  # no data: the sentinel
    assert check_array(spec, err, file="f", schema_id="s", where="HDU 0") == []
    err[9, 9] = -1.0
    err[3, 3] = np.nan
    rules = {p.rule: p.message for p in check_array(spec, err, file="f", schema_id="s", where="w")}
    assert rules["content.range"].startswith("1 of 100 pixels outside (0, inf)")
    assert rules["content.finite-fraction"].startswith("99 of 100 pixels finite")


def test_label_set_by_histogram_and_by_sort(monkeypatch):
    from phangs_products.validation import content

    labels = np.zeros((50, 40), ">i4")
    labels[1, :3] = [3, 3, 17]
    labels[40, 7] = -7  # negative values are content.range, not labels
    assert label_set(labels).tolist() == [3, 17]
    monkeypatch.setattr(content, "MAX_BINCOUNT", 4)
    assert label_set(labels).tolist() == [3, 17]
    labels[2, 2] = 2**31 - 1  # a huge label takes the sort path
    assert label_set(labels).tolist() == [3, 17, 2**31 - 1]
    assert label_set(np.zeros((3, 3), ">i4")).tolist() == []


def test_scaled_or_short_arrays_are_not_viewed(tmp_path: Path):
    path = tmp_path / "x.fits"
    fits.PrimaryHDU(np.ones((4, 4), np.float32)).writeto(path)
    raw = path.read_bytes()
    hdu = scan_bytes(raw, path.name)[0]
    assert array_view(hdu, raw).shape == (4, 4)
    assert array_view(hdu, raw[:2900]) is None
    fits.PrimaryHDU(np.ones((4, 4), np.uint16)).writeto(path, overwrite=True)  # BZERO 32768
    raw = path.read_bytes()
    assert array_view(scan_bytes(raw, path.name)[0], raw) is None


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
def test_files_of_older_schema_versions_are_judged_by_their_own_rules(clean: Path, version):
    path = next(clean.glob("*_f555w_v1_drc-err.fits"))
    set_image(path, lambda a: a.fill(-1.0))
    with fits.open(path, mode="update", checksum=True) as hdul:
        hdul[0].header["PPSCHVER"] = version
    refresh(clean)
    report = validate_delivery(clean)
    assert "content.range" not in report.rules(), report.to_text()


def test_exports_are_read_as_stored_by_open_and_the_validator(clean: Path):
    import astropy.units as u
    from astropy.table import Table

    from phangs_products.errors import ValidationError
    from phangs_products.models import CatalogModel
    from phangs_products.models import open as open_product

    model = open_product(next(clean.glob("*_cl-hum-c3.fits")))
    assert isinstance(model, CatalogModel)
    path = model.save(clean / next(clean.glob("*_cl-hum-c3.fits")).name.replace(".fits", ".ecsv"))
    assert open_product(path, strict=True).problems() == []
    table = Table.read(path, format="ascii.ecsv")
    table["PHANGS_RA"] = table["PHANGS_RA"].to(u.rad)
    table.write(path, format="ascii.ecsv", overwrite=True)
    with pytest.raises(ValidationError, match=r"ECSV table column PHANGS_RA: unit 'rad'"):
        open_product(path, strict=True)


@pytest.mark.parametrize(("ptype", "flagged"), [("cl-cand", True), ("cl-hum-c3", False)])
def test_only_the_all_candidates_cluster_catalog_must_have_rows(clean: Path, ptype, flagged):
    with fits.open(next(clean.glob(f"*_{ptype}.fits")), mode="update", checksum=True) as hdul:
        hdul[1].data = hdul[1].data[:0]
    refresh(clean)
    report = validate_delivery(clean)
    rows = [p for p in report.problems if p.rule == "content.rows"]
    assert bool(rows) == flagged, report.to_text()
    if flagged:
        assert "0 rows (expected at least 1 for CLSUBSET = cand)" in rows[0].message

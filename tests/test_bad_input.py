"""Bad input gets one clear error naming file, place and expectation; nothing is lost."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits
from factories import NO_FOREGROUND, catalog_product, image_product, product_name

import phangs_products as pp
from phangs_products.errors import ProductError, ValidationError
from phangs_products.registry import current_version


def test_truncated_fits(delivery, out):
    path = image_product(delivery).save(out / "hlsp_x.fits")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(ProductError, match="hlsp_x.fits"):
        model = pp.open(path, strict=True)
        model.data.sum()


def test_not_a_fits_file(out):
    path = out / "hlsp_fake.fits"
    path.write_text("hello, I am not FITS\n")
    with pytest.raises(ProductError, match="hlsp_fake.fits: not a readable FITS file"):
        pp.open(path)


def test_missing_required_keyword(delivery, out):
    path = image_product(delivery).save(out / "a.fits")
    with fits.open(path, mode="update") as hdul:
        del hdul[0].header["TELESCOP"]
    with pytest.raises(
        ValidationError,
        match=rf"a.fits: drc-sci-{current_version('drc-sci')}: HDU PRIMARY: missing "
        r"required keyword TELESCOP",
    ):
        pp.open(path, strict=True)
    with pytest.warns(pp.ProductValidationWarning, match="1 schema problem"):
        pp.open(path)


def test_wrong_dtype_and_wrong_unit_columns(delivery, out):
    path = catalog_product(delivery).save(out / "c.fits")
    with fits.open(path, mode="update") as hdul:
        cols = hdul["CATALOG"].columns
        cols["PHANGS_MASS_MINCHISQ"].unit = "Msun"
    with pytest.raises(ValidationError) as info:
        pp.open(path, strict=True)
    assert (
        f"c.fits: cluster-catalog-{current_version('cluster-catalog')}: HDU 1 column "
        "PHANGS_MASS_MINCHISQ: unit 'Msun' is not a FITS unit (expected 'solMass')"
    ) in str(info.value)

    table = catalog_product(delivery).table
    table["PHANGS_CI"] = table["PHANGS_CI"].astype(np.int32)
    model = pp.CatalogModel.create(
        "cluster-catalog",
        table,
        catalog_product(delivery).bands,
        {**catalog_product(delivery).meta.schema_items(), "amw_nn": NO_FOREGROUND["amw_nn"]},
    )
    model._table["PHANGS_CI"] = np.arange(len(table), dtype=np.int32)  # bypass casting
    with pytest.raises(ValidationError, match="column PHANGS_CI: dtype int32 \\(expected float64"):
        model.save(out / "d.fits")


def test_corrupt_checksum_is_reported(delivery, out):
    path = image_product(delivery).save(out / "e.fits")
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF  # flip bits in the data
    path.write_bytes(bytes(raw))
    model = pp.open(path)
    from phangs_products.conformance import check_checksums

    with fits.open(path) as hdul:
        problems = check_checksums(hdul, file=path.name)
    assert [p.rule for p in problems] == ["fits.checksum"]
    assert "e.fits" in str(problems[0]) and model.data is not None


def test_name_with_dotdot_is_refused():
    from phangs_products.naming import build_name

    with pytest.raises(ProductError, match=r"target '\.\./x': path separators"):
        build_name(pp.get_schema("drc-sci"), target="../x", version="v1", filter="F555W")


def test_no_silent_overwrite(delivery, out):
    model = image_product(delivery)
    path = model.save(out / product_name(model))
    with pytest.raises(ProductError, match="file exists; pass overwrite=True"):
        model.save(path)
    model.save(path, overwrite=True)


def test_failed_write_leaves_previous_file_intact(delivery, out, monkeypatch):
    model = image_product(delivery)
    path = model.save(out / product_name(model))
    before = path.read_bytes()

    def explode(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        model.save(path, overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in out.iterdir()] == [path.name]  # no temporary file left behind


def test_write_validation_is_strict(delivery, out):
    model = image_product(delivery)
    model.meta.license = "CC-BY"
    with pytest.raises(ValidationError, match="keyword LICENSE: got 'CC-BY': expected 'CC BY 4.0'"):
        model.save(out / "f.fits")
    assert not (out / "f.fits").exists()


def test_nan_in_sentinel_column_is_refused(delivery, out):
    model = catalog_product(delivery)
    model.table["PHANGS_AGE_MINCHISQ"][0] = np.nan
    with pytest.raises(ValidationError, match="column PHANGS_AGE_MINCHISQ: 1 NaN"):
        model.save(out / "g.fits")


def test_read_warning_is_one_summary(delivery, out):
    path = image_product(delivery).save(out / "h.fits")
    with fits.open(path, mode="update") as hdul:
        for key in ("TELESCOP", "LICENSE", "HLSPVER"):
            del hdul[0].header[key]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pp.open(path)
    ours = [w for w in caught if issubclass(w.category, pp.ProductValidationWarning)]
    assert len(ours) == 1 and "3 schema problem(s)" in str(ours[0].message)

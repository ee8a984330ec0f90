"""A catalog read back from FITS exports to Parquet and ECSV (its columns are big-endian)."""

from __future__ import annotations

import numpy as np
from factories import catalog_product

import phangs_products as pp


def test_catalog_read_from_fits_exports_to_parquet_and_ecsv(delivery, out):
    path = catalog_product(delivery).save(out / "c.fits")
    model = pp.open(path, strict=True)
    assert not model.table["PHANGS_RA"].dtype.isnative
    for ext in ("parquet", "ecsv"):
        copy = pp.open(model.save(out / f"c.{ext}"), strict=True)
        assert copy.table.colnames == model.table.colnames
        np.testing.assert_array_equal(copy.table["PHANGS_RA"], model.table["PHANGS_RA"])

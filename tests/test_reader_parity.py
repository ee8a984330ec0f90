"""Our catalogs read as astropy, pandas and VOTable users expect (issue 18, reader parity).

Each catalog is written by the real model in the three formats and read back with the plain
libraries: ``astropy.table.Table.read`` (no ``hdu=``, no warning), ``pandas.read_parquet``,
``astropy.io.votable`` through ``Table.write(format="votable")``.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits, votable
from astropy.table import Table
from factories import BANDS, NO_FOREGROUND, catalog_product, product_name

import phangs_products as pp
from phangs_products.hlsp import common_meta


@pytest.fixture(scope="module")
def written(tmp_path_factory, delivery) -> dict[str, Path]:
    """A cluster catalog (with one empty string column entry) in FITS, Parquet and ECSV."""
    folder = tmp_path_factory.mktemp("parity")
    model = catalog_product(delivery)
    out = {}
    for ext in ("fits", "parquet", "ecsv"):
        out[ext] = model.save(folder / product_name(model, ext), provenance={"stage": "test"})
    return out


def expected_columns() -> dict[str, tuple[str | None, str]]:
    """Unit and description of every column, from the schema."""
    schema = pp.get_schema("cluster-catalog")
    return {c.name: (c.unit, c.description) for c in schema.expand_columns(BANDS)}


def read_quietly(path: Path) -> Table:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        return Table.read(path)


@pytest.mark.parametrize("ext", ["fits", "parquet", "ecsv"])
def test_table_read_keeps_units_and_descriptions(written, ext):
    table = read_quietly(written[ext])
    expected = expected_columns()
    assert table.colnames == list(expected)
    for name, (unit, description) in expected.items():
        col = table[name]
        assert (str(col.unit) if col.unit is not None else None) == unit, name
        assert col.description == description, name


def test_fits_catalog_is_the_only_table_and_has_tcomm(written):
    path = written["fits"]
    with fits.open(path) as hdul:
        tables = [h.name for h in hdul if isinstance(h, fits.BinTableHDU)]
        assert tables == ["CATALOG"]
        hdr = hdul["CATALOG"].header
        assert isinstance(hdul["ASDF"], fits.ImageHDU)
        expected = expected_columns()
        for i, name in enumerate(expected, start=1):
            assert hdr[f"TTYPE{i}"] == name
            assert hdr[f"TCOMM{i}"] == expected[name][1]
    model = pp.open(path)
    assert model.provenance["stage"] == "test"
    assert model.provenance["schema"] == model.schema.id


@pytest.mark.skipif(shutil.which("fitsverify") is None, reason="fitsverify not installed")
def test_fits_catalog_passes_fitsverify_without_warning(written):
    command = ["fitsverify", "-q", str(written["fits"])]
    proc = subprocess.run(command, capture_output=True, text=True)
    assert proc.stdout.startswith("verification OK"), proc.stdout


def test_integer_sentinels_masked_by_astropy_in_fits(written):
    """TNULL of the integer sentinel columns: astropy masks them; floats keep the sentinel."""
    table = read_quietly(written["fits"])
    schema = pp.get_schema("cluster-catalog")
    for spec in schema.expand_columns(BANDS):
        if spec.sentinel is not None and spec.dtype.startswith("int"):
            assert hasattr(table[spec.name], "mask"), spec.name


def test_pandas_gets_units_and_descriptions_in_attrs(written):
    df = pd.read_parquet(written["parquet"])
    expected = expected_columns()
    units = {n: u for n, (u, _) in expected.items() if u}
    assert df.attrs["units"] == units
    assert df.attrs["descriptions"] == {n: d for n, (_, d) in expected.items()}
    assert df.attrs["schema"] == pp.open(written["parquet"]).schema.id
    assert df.attrs["meta"]["HLSPTARG"] == "ngc0628c"
    # the model's own DataFrame says the same
    model_df = pp.open(written["fits"]).to_pandas()
    assert model_df.attrs["units"] == units
    assert list(model_df.columns) == list(expected)


def test_votable_keeps_units_and_descriptions(written, tmp_path):
    table = read_quietly(written["fits"])
    path = tmp_path / "catalog.xml"
    table.write(path, format="votable")
    back = votable.parse_single_table(path).to_table()
    for name, (unit, description) in expected_columns().items():
        assert (str(back[name].unit) if back[name].unit is not None else None) == unit, name
        # the VOTable writer wraps long DESCRIPTION elements; the words are the same
        assert " ".join(back[name].description.split()) == description, name


def test_zero_row_catalog_with_string_column_reads_in_astropy(tmp_path, delivery):
    """astropy's Parquet reader takes a string column's width from ``table::len::``."""
    model = catalog_product(delivery)
    model.table = model.table[:0]
    path = model.save(tmp_path / product_name(model, "parquet"))
    table = read_quietly(path)
    assert len(table) == 0 and table["PHANGS_GALAXY"].dtype.kind == "U"


def test_files_of_the_previous_version_still_read(tmp_path, delivery):
    """A 1.1.0 catalog (provenance as a binary table, no TCOMM) opens with its provenance."""
    extra = {"clsubset": "hum-c12", "apcorr_v": -0.75, "sedmodel": "BC03", "humclass": True}
    meta = {**common_meta(delivery, "phangs-cat"), **NO_FOREGROUND, **extra}
    table = catalog_product(delivery).table
    model = pp.CatalogModel.create(pp.get_schema("cluster-catalog", "1.1.0"), table, BANDS, meta)
    model.provenance_as_image = False
    path = model.save(tmp_path / product_name(model), provenance={"stage": "old"})
    with fits.open(path) as hdul:
        assert isinstance(hdul["ASDF"], fits.BinTableHDU)
    old = pp.open(path)
    assert old.schema.id == "cluster-catalog-1.1.0"
    assert old.provenance["stage"] == "old"
    assert np.all(np.asarray(old.table["INDEX"]) == np.arange(1, 5))

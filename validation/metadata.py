"""Metadata per product class: the schema a file records, and conformance to that schema.

Each file is checked against the schema version it records (``PPSCHEMA``/``PPSCHVER``), so
files written with an older schema are judged by the rules they were written under; an unknown
version is an error.  The checks themselves are :mod:`phangs_products.conformance` (FITS) and
the models' ``problems`` (text products, manifests, Parquet/ECSV exports).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from phangs_products import conformance, fitssum
from phangs_products.errors import PhangsProductsError, Problem, SchemaError
from phangs_products.fitsscan import FitsLayout, HduLayout
from phangs_products.fitssum import FileSums
from phangs_products.models import CatalogModel, Model
from phangs_products.registry import get_schema
from phangs_products.spec import ProductSchema

if TYPE_CHECKING:
    from collections.abc import Buffer

__all__ = ["check_fits_metadata", "check_other_product", "resolve_schema"]


def resolve_schema(values: Mapping[str, Any], file: str) -> tuple[ProductSchema | None, list]:
    """The schema a file records.

    Returns
    -------
    (ProductSchema or None, list of Problem)
        ``schema.missing`` when PPSCHEMA/PPSCHVER are absent, ``schema.unknown`` when this
        version of phangs-products does not know the recorded schema id.
    """
    name, version = values.get("PPSCHEMA"), values.get("PPSCHVER")
    if not name or not version:
        return None, [
            Problem(
                "schema.missing",
                "no PPSCHEMA/PPSCHVER keywords: the file does not record its schema",
                file,
                where="HDU PRIMARY",
            )
        ]
    name, version = str(name).strip(), str(version).strip()
    try:
        return get_schema(name, version), []
    except SchemaError:
        return None, [
            Problem(
                "schema.unknown",
                f"records schema {name}-{version}, which is not a known schema version",
                file,
                f"{name}-{version}",
                "HDU PRIMARY keywords PPSCHEMA/PPSCHVER",
            )
        ]


def check_fits_metadata(
    schema: ProductSchema,
    hdul: Callable[[], fits.HDUList],
    layout: FitsLayout,
    file: str,
    data: bool,
    raw: Buffer | None = None,
    sums: FileSums | None = None,
) -> list[Problem]:
    """Schema conformance of a FITS product (keywords, HDUs, arrays, columns; data checks).

    Keywords, HDUs, array types and columns are judged from the scanned ``layout`` (the
    header bytes, as :func:`phangs_products.open` judges them).  With ``data`` the column
    values (NaN vs sentinels, ranges) and CHECKSUM/DATASUM are checked too: given the file's
    bytes (``raw``, a memory map), a binary table is read straight from them as a numpy
    record array instead of through astropy's slower table layer; given the file's streamed
    ``sums``, the checksums are compared with them instead of being computed again.
    ``hdul`` opens the file with astropy, for what the bytes alone do not give (a table
    with unusual columns, checksums without ``sums``).
    """
    table_hdu = schema.table_hdu
    problems = []
    if table_hdu is not None and table_hdu in layout:
        problems += conformance.check_rows(
            schema,
            int(layout[table_hdu].values.get("NAXIS2", 0)),
            layout[0].values,
            file=file,
            where=f"HDU {layout.index_of(table_hdu)}",
        )
    problems += conformance.check_hdul(schema, layout, file=file, data=False)
    if not data:
        return problems
    if table_hdu is not None and table_hdu in layout:

        def load() -> Any:
            table = fast_table(layout[table_hdu], raw) if raw is not None else None
            return table if table is not None else Table(hdul()[table_hdu].data, copy=False)

        problems += conformance.check_table_values(
            schema,
            load,
            bands=conformance.bands_from_meta(layout[0].values),
            file=file,
            where=f"HDU {layout.index_of(table_hdu)}",
        )
    if sums is not None:
        problems += fitssum.checksum_problems(layout, sums, file=file, schema_id=schema.id)
    else:
        problems += conformance.check_checksums(hdul(), file=file, schema_id=schema.id)
    return problems


_TFORM = {"B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8", "L": "S1"}


class _RecordTable:
    """The ``colnames`` + ``table[name]`` view of a record array that conformance needs."""

    def __init__(self, array: np.ndarray):
        self._array = array
        self.colnames = list(array.dtype.names or ())

    def __getitem__(self, name: str) -> np.ndarray:
        return self._array[name]


def fast_table(hdu: HduLayout, raw: Buffer) -> _RecordTable | None:
    """A binary table's rows as a numpy record array read from the file bytes.

    The columns come from the scanned header (``hdu``); returns ``None`` (use astropy) for
    tables with scaled columns, variable-length arrays or formats this reader does not handle.
    """
    header = hdu.values
    if hdu.xtension != "BINTABLE" or int(header.get("PCOUNT", 0)):
        return None
    fields = []
    for i in range(1, int(header.get("TFIELDS", 0)) + 1):
        if f"TSCAL{i}" in header or f"TZERO{i}" in header:
            return None
        tform = str(header.get(f"TFORM{i}", "")).strip()
        digits = tform[: len(tform) - len(tform.lstrip("0123456789"))]
        code = tform[len(digits) : len(digits) + 1]
        repeat = int(digits) if digits else 1
        name = str(header.get(f"TTYPE{i}", f"col{i}"))
        if code == "A":
            fields.append((name, f"S{repeat}"))
        elif code in _TFORM:
            fields.append((name, _TFORM[code]) if repeat == 1 else (name, _TFORM[code], (repeat,)))
        else:
            return None
    try:
        dtype = np.dtype(fields)
    except (ValueError, TypeError):  # repeated or odd column names: astropy reports them
        return None
    nrows, width = int(header["NAXIS2"]), int(header["NAXIS1"])
    if dtype.itemsize != width or hdu.data_start + nrows * width > len(raw):
        return None
    return _RecordTable(np.frombuffer(raw, dtype, count=nrows, offset=hdu.data_start))


def check_other_product(path: Path, data: bool) -> tuple[Model | None, list[Problem]]:
    """Open a non-FITS product (regions, README, manifest, Parquet/ECSV) and check it.

    Returns
    -------
    (Model or None, list of Problem)
        The model (for facts) and its schema problems.
    """
    from phangs_products.models.reader import new_model, read_source

    file = path.name
    try:
        source = read_source(path)
    except PhangsProductsError as exc:
        return None, [Problem("content.parse", _short(exc, file), file)]
    values = conformance.header_values(source.headers["PRIMARY"])
    schema, problems = resolve_schema(values, file)
    if schema is None:
        return None, problems
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = new_model(schema, source, path)
            problems = model.problems(data=data)
            if isinstance(model, CatalogModel):
                values = conformance.header_values(model.meta.header())
                problems += conformance.check_rows(schema, len(model.table), values, file=file)
    except PhangsProductsError as exc:
        return None, [Problem("content.parse", _short(exc, file), file, schema.id)]
    return model, [_with_file(p, file) for p in problems]


def _short(exc: Exception, file: str) -> str:
    text = str(exc)
    prefix = f"{file}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _with_file(problem: Problem, file: str) -> Problem:
    if problem.file:
        return problem
    return Problem(
        problem.rule, problem.message, file, problem.schema, problem.where, problem.severity
    )

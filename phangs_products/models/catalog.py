"""Catalog products written as FITS binary tables, Parquet or ECSV."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import MaskedColumn, Table

from phangs_products import conformance
from phangs_products.atomic import atomic_path, refuse_overwrite
from phangs_products.errors import Problem, ProductError, ValidationError
from phangs_products.models.base import FitsModel, _clean_header
from phangs_products.models.tables import mask_sentinels, with_aliases
from phangs_products.safeio import regular_file
from phangs_products.spec import BandInfo, ProductSchema

log = logging.getLogger(__name__)


PARQUET_META_KEY = b"phangs_products"
#: How messages name the table of each stored format.
_STORED_WHERE = {".parquet": "Parquet table", ".ecsv": "ECSV table"}


class CatalogModel(FitsModel):
    """A catalog product: an astropy Table plus header keywords.

    Written as FITS (binary table with TUNIT/TDISP/TNULL from the schema), Parquet (schema id,
    units and descriptions in the Arrow metadata) or ECSV, chosen by the file extension.

    A table read from a file is an :class:`~phangs_products.models.tables.AliasTable`: the
    historical names the schema records (``historical``, e.g. ``PHANGS_CLUSTER_CLASS_ML_VGG``)
    answer as today's columns.  A table read from a file has the entries holding the schema's
    sentinel masked (``open(path)``; ``open(path, masked=False)`` gives the stored values).
    """

    kinds = ("catalog",)
    #: Mask sentinel entries when the table is read (``open`` sets it unless ``masked=False``).
    masked: bool = False
    provenance_as_image = True

    def _read_provenance(self) -> dict[str, Any] | None:
        if self.path is None or self.path.suffix.lower() != ".fits":
            return None
        return super()._read_provenance()

    def to_pandas(self) -> Any:
        """The table as a pandas DataFrame; units and descriptions in ``df.attrs``.

        ``df.attrs`` holds ``units`` and ``descriptions`` (column -> string), ``schema`` and
        ``meta`` (the header keywords), as a Parquet catalog read with ``pandas.read_parquet``
        has them.  Masked (sentinel) entries become missing values.
        """
        df = self.table.to_pandas()
        df.attrs.update(_pandas_attrs(self.table, self.schema.id, self._flat_meta()))
        return df

    def __init__(self, schema, headers=None, path=None):
        super().__init__(schema, headers, path)
        self._table: Table | None = None

    @classmethod
    def create(
        cls,
        schema: str | ProductSchema,
        table: Table,
        bands: Sequence[BandInfo],
        meta: Mapping[str, Any] | None = None,
    ) -> CatalogModel:
        """A new catalog product.

        Parameters
        ----------
        schema : str or ProductSchema
            ``dolphot-catalog``, ``cluster-catalog`` or ``assoc-catalog``.
        table : Table
            Columns by schema name; missing optional columns are filled with the sentinel,
            columns are cast to the schema dtype and ordered as the schema orders them.
        bands : sequence of BandInfo
            Bands of the per-band columns, in order.
        meta : mapping, optional
            Keyword values.
        """
        model = cls._new(schema, None)
        assert isinstance(model, CatalogModel)
        model.meta.set_bands(bands)
        model._table = model.conform(table, tuple(bands))
        if meta:
            model.meta.update(meta)
        return model

    def conform(self, table: Table, bands: tuple[BandInfo, ...]) -> Table:
        """Order, cast and unit a table as the schema says (extra columns are kept at the end)."""
        n = len(table)
        out = Table()
        for spec in self.schema.expand_columns(bands):
            if spec.name in table.colnames:
                values = np.asarray(table[spec.name])
                if spec.dtype == "string":
                    values = values.astype(str)
                else:
                    values = values.astype(spec.numpy_dtype)
            elif spec.sentinel is not None:
                values = np.full(n, spec.sentinel, dtype=spec.numpy_dtype)
            else:
                continue  # a required column is missing: validation reports it
            out[spec.name] = values
            out[spec.name].unit = spec.unit
            out[spec.name].description = spec.description
        for name in table.colnames:
            if name not in out.colnames:
                out[name] = table[name]
        return out

    @property
    def bands(self) -> tuple[BandInfo, ...]:
        """Bands of the per-band columns."""
        return self.meta.bands()

    @property
    def table(self) -> Table:
        """The catalog table (loaded on first access)."""
        if self._table is None:
            self._table = self._read_table()
        return self._table

    @table.setter
    def table(self, value: Table) -> None:
        self._table = self.conform(value, self.bands)

    def _read_table(self) -> Table:
        table = with_aliases(self._read_stored_table(), self.historical_names())
        if self.masked:
            mask_sentinels(table, self.schema, self.bands)
        return table

    def historical_names(self) -> dict[str, str]:
        """Historical column name -> today's name, from the schema's ``historical`` entries."""
        return {
            c.historical: c.name for c in self.schema.expand_columns(self.bands) if c.historical
        }

    def _read_stored_table(self) -> Table:
        assert self.path is not None
        suffix = self.path.suffix.lower()
        name = self.file_name
        if suffix == ".fits":
            hdul = self.hdulist()
            where = f"HDU {self.schema.table_hdu}"
            with self._reading(where, "cannot read the table"):
                hdu = hdul[self.schema.table_hdu] if self.schema.table_hdu in hdul else None
                if hdu is None:
                    raise ProductError(f"{name}: {where} is missing")
                if not isinstance(hdu, fits.BinTableHDU):
                    raise ProductError(f"{name}: {where}: is not a binary table")
                table = Table(hdu.data)
                for col in hdu.columns:
                    if col.unit:
                        table[col.name].unit = col.unit
            return table
        regular_file(self.path)
        with self._reading("", "cannot read the table"):
            if suffix == ".parquet":
                return _read_parquet_table(self.path)
            return Table.read(self.path, format="ascii.ecsv")

    def _table_hdu(self) -> fits.BinTableHDU:
        specs = {c.name: c for c in self.schema.expand_columns(self.bands)}
        cols = []
        for name in self.table.colnames:
            values = np.asarray(self.table[name])
            spec = specs.get(name)
            kwargs: dict[str, Any] = {}
            if spec is not None:
                kwargs["unit"] = spec.unit
                if spec.format:
                    kwargs["disp"] = spec.format
                if spec.sentinel is not None and spec.dtype.startswith("int"):
                    kwargs["null"] = int(spec.sentinel)
            if values.dtype.kind in "UO":
                values = values.astype(str)
                width = max(1, max((len(v) for v in values), default=1))
                col = fits.Column(name=name, format=f"{width}A", array=values, **kwargs)
            elif values.dtype.kind == "b":
                col = fits.Column(name=name, format="L", array=values, **kwargs)
            else:
                fmt = fits.column._convert_record2fits(values.dtype.str)
                col = fits.Column(name=name, format=fmt, array=values, **kwargs)
            cols.append(col)
        header = _without_column_notes(
            _clean_header(self.meta.header(self.schema.table_hdu or "CATALOG"))
        )
        header["NSOURCES"] = (len(self.table), "number of sources")
        header.setdefault("RADESYS", "ICRS")
        hdu = fits.BinTableHDU.from_columns(cols, header=header, name=self.schema.table_hdu)
        described = self._described()
        for i, name in enumerate(self.table.colnames, start=1):
            if described[name].description:
                hdu.header[f"TCOMM{i}"] = described[name].description
        # long descriptions continue over CONTINUE cards, declared in this HDU too (fitsverify)
        hdu.header["LONGSTRN"] = ("OGIP 1.0", "long strings continue over CONTINUE cards")
        for line in _astropy_column_comments(described):
            hdu.header.add_comment(line)
        return hdu

    def _described(self) -> Table:
        """A zero-row copy of the table's columns with the schema's units and descriptions."""
        specs = {c.name: c for c in self.schema.expand_columns(self.bands)}
        out = Table()
        for name in self.table.colnames:
            values = np.asarray(self.table[name])[:0]
            if values.dtype.kind in "UO":
                values = values.astype(str)
            out[name] = values
            spec = specs.get(name)
            unit = spec.unit if spec is not None else self.table[name].unit
            description = spec.description if spec is not None else self.table[name].description
            out[name].unit = unit or None
            out[name].description = description or None
        return out

    def to_hdulist(self) -> fits.HDUList:
        """Primary header plus the catalog binary table."""
        return fits.HDUList(
            [fits.PrimaryHDU(header=_clean_header(self.meta.header())), self._table_hdu()]
        )

    def problems(self, data: bool = True) -> list[Problem]:
        """Schema problems, including data checks (NaN vs sentinels, ranges, codes) when ``data``.

        A catalog read from Parquet or ECSV is checked as stored: its own keywords, column
        dtypes and units (not the FITS table :meth:`to_hdulist` would rebuild from them).
        """
        if self.stored_format in (".parquet", ".ecsv"):
            out = self.stored_problems()
        else:
            out = super().problems(data)
        if data:
            table = self.table
            with self._reading("", "cannot check the column values"):
                out += conformance.check_column_values(
                    self.schema, table, bands=self.bands, file=self.file_name, where=self._where
                )
        return out

    @property
    def _where(self) -> str:
        """Where the table lives in the file, for messages."""
        return _STORED_WHERE.get(self.stored_format, "HDU 1")

    @property
    def stored_format(self) -> str:
        """Suffix of the file the model was read from (``''`` for a new model)."""
        return self.path.suffix.lower() if self.path is not None else ""

    def stored_problems(self) -> list[Problem]:
        """Keyword and column (dtype, unit) problems of the table as the file stores it."""
        problems = conformance.check_keywords(
            self.schema, "PRIMARY", self.meta.header(), bands=self.bands, file=self.file_name
        )
        table = self.table
        with self._reading("", "cannot check the columns"):
            cols = [(c, table[c].dtype, str(table[c].unit or "") or None) for c in table.colnames]
            problems += conformance.check_columns(
                self.schema, cols, bands=self.bands, file=self.file_name, where=self._where
            )
        return problems

    def save(
        self, path: str | Path, overwrite: bool = False, provenance: dict | None = None
    ) -> Path:
        """Write as FITS, Parquet or ECSV according to the extension; validate first."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".fits":
            nan_problems = conformance.check_column_values(
                self.schema, self.table, bands=self.bands, file=path.name
            )
            if any(p.severity == "error" for p in nan_problems):
                raise ValidationError([p for p in nan_problems if p.severity == "error"])
            return super().save(path, overwrite, provenance)
        if suffix not in (".parquet", ".ecsv"):
            raise ProductError(f"{path.name}: catalogs are written as .fits, .parquet or .ecsv")
        refuse_overwrite(path, overwrite)
        self.stamp()
        self.validate(data=True)
        meta = self._flat_meta()
        if suffix == ".parquet":
            self._write_parquet(path, meta, overwrite)
        else:
            table = _stored(self.table)
            table.meta = dict(meta)
            with atomic_path(path, overwrite) as tmp:
                table.write(tmp, format="ascii.ecsv")
        return path

    def _flat_meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for hdr in self.meta.headers.values():
            for card in _clean_header(hdr).cards:
                if card.keyword and card.keyword not in ("COMMENT", "HISTORY", ""):
                    value = card.value
                    if not isinstance(value, fits.card.Undefined):
                        out[card.keyword] = value
        return out

    def _write_parquet(self, path: Path, meta: dict[str, Any], overwrite: bool) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        specs = {c.name: c for c in self.schema.expand_columns(self.bands)}
        fields, arrays = [], []
        for name in self.table.colnames:
            values = np.asarray(self.table[name])
            if values.dtype.kind in "UO":
                values = values.astype(str)
            elif not values.dtype.isnative:  # columns read from FITS are big-endian
                values = values.astype(values.dtype.newbyteorder("="))
            arr = pa.array(values)
            spec = specs.get(name)
            fmeta = {}
            if spec is not None:
                fmeta = {b"description": spec.description.encode()}
                if spec.unit:
                    fmeta[b"unit"] = spec.unit.encode()
            fields.append(pa.field(name, arr.type, metadata=fmeta))
            arrays.append(arr)
        doc = {"schema": self.schema.id, "meta": meta}
        metadata = {PARQUET_META_KEY: json.dumps(doc).encode()}
        metadata.update(_astropy_parquet_metadata(self._described(), self.table, meta))
        attrs = _pandas_attrs(self._described(), self.schema.id, meta)
        metadata[b"PANDAS_ATTRS"] = json.dumps(attrs, default=str).encode()
        schema = pa.schema(fields, metadata=metadata)
        table = pa.Table.from_arrays(arrays, schema=schema)
        with atomic_path(path, overwrite) as tmp:
            pq.write_table(table, tmp)


def _stored(table: Table) -> Table:
    """A copy of the table with masked entries back at their stored (sentinel) values."""
    out = table.copy(copy_data=False)
    for name in out.colnames:
        col = out[name]
        if isinstance(col, MaskedColumn):
            out[name] = col.filled()
    return out


#: First and last line of astropy's column serialisation in FITS COMMENT cards.
_ASTROPY_BLOCK = ("--BEGIN-ASTROPY-SERIALIZED-COLUMNS--", "--END-ASTROPY-SERIALIZED-COLUMNS--")


def _astropy_column_comments(described: Table) -> list[str]:
    """The COMMENT lines with which astropy's FITS writer records column descriptions.

    ``Table.read`` of a FITS table applies the descriptions of this block (astropy reads no
    ``TCOMMn``); the lines are those astropy's ``Table.write`` puts in the table header.
    """
    buffer = io.BytesIO()
    described.write(buffer, format="fits")
    buffer.seek(0)
    with fits.open(buffer) as hdul:
        return [str(v) for v in hdul[1].header.get("COMMENT", [])]


def _without_column_notes(header: fits.Header) -> fits.Header:
    """The header without TCOMMn and astropy's column block (they are written afresh)."""
    for key in [k for k in header if k.startswith("TCOMM")]:
        header.remove(key, remove_all=True)
    comments = [str(v) for v in header.get("COMMENT", [])]
    if _ASTROPY_BLOCK[0] in comments:
        kept = []
        inside = False
        for line in comments:
            if line == _ASTROPY_BLOCK[0]:
                inside = True
            if not inside:
                kept.append(line)
            if line == _ASTROPY_BLOCK[1]:
                inside = False
        header.remove("COMMENT", remove_all=True)
        for line in kept:
            header.add_comment(line)
    return header


def _astropy_parquet_metadata(
    described: Table, table: Table, meta: Mapping[str, Any]
) -> dict[bytes, bytes]:
    """Schema metadata with which astropy's Parquet reader restores units and descriptions.

    ``table_meta_yaml`` (the ECSV-style header astropy's Parquet writer stores) and
    ``table::len::<name>`` for every string column: astropy's reader otherwise takes the
    longest value, which fails on a table without rows.
    """
    from astropy.table import meta as table_meta

    head = described.copy(copy_data=False)
    head.meta = dict(meta)
    out = {b"table_meta_yaml": "\n".join(table_meta.get_yaml_from_table(head)).encode()}
    for name in table.colnames:
        values = np.asarray(table[name])
        if values.dtype.kind in "UO":
            width = max((len(str(v)) for v in values), default=0)
            out[f"table::len::{name}".encode()] = str(max(1, width)).encode()
    return out


def _pandas_attrs(described: Table, schema_id: str, meta: Mapping[str, Any]) -> dict[str, Any]:
    """``df.attrs`` of a catalog: units, descriptions, schema id and header keywords."""
    return {
        "schema": schema_id,
        "units": {n: str(c.unit) for n, c in described.columns.items() if c.unit is not None},
        "descriptions": {n: c.description for n, c in described.columns.items() if c.description},
        "meta": {k: v for k, v in meta.items() if isinstance(v, str | int | float | bool)},
    }


def _read_parquet_table(path: Path) -> Table:
    """Read a Parquet catalog with the units and descriptions kept in its field metadata."""
    import pyarrow.parquet as pq

    arrow = pq.read_table(path)
    table = Table()
    for fld, column in zip(arrow.schema, arrow.columns, strict=True):
        values = column.to_numpy(zero_copy_only=False)
        if values.dtype == object:
            values = values.astype(str)
        table[fld.name] = values
        md = fld.metadata or {}
        if b"unit" in md:
            table[fld.name].unit = md[b"unit"].decode()
        if b"description" in md:
            table[fld.name].description = md[b"description"].decode()
    return table

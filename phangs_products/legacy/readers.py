"""Read historical files into today's models.

Three readers, one per legacy format: ``fits-image`` (PHANGS-HST v1 images), ``fits-table``
(PHANGS-CAT DR4 catalogs) and ``whitespace-table`` (LEGUS ``.tab`` catalogs).  Each reads
headers only (the first line of a text table), checks the layout's signature, and returns a
model of the current schema the layout reads as, with ``model.meta.legacy`` saying what was
read.  Tables load on first access: columns renamed to today's names (old names answer as
aliases), sentinels masked, units attached (and converted to today's unit where they differ).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Column, MaskedColumn, Table

from phangs_products.conformance import header_values, value_rules
from phangs_products.errors import PhangsProductsError, Problem, ProductError
from phangs_products.fitsscan import scan_file
from phangs_products.legacy.layouts import LegacyColumn, LegacyFamily, LegacyLayout, Sentinel
from phangs_products.models.catalog import CatalogModel
from phangs_products.models.image import ImageModel
from phangs_products.models.tables import AliasTable, sentinel_mask
from phangs_products.registry import get_schema
from phangs_products.spec import BandInfo, ColumnSpec, ProductSchema

__all__ = [
    "ColumnPlan",
    "LegacyCatalogModel",
    "LegacyImageModel",
    "LegacyInfo",
    "read_fits_image",
    "read_fits_table",
    "read_text_table",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LegacyInfo:
    """Which historical layout a file was read from, and how it maps onto today's schema.

    Attributes
    ----------
    schema : str
        Legacy schema id, e.g. ``phangs-cat-dr4-1.0.0``.
    layout : str
        Layout within it (``obs``, ``sed``, ``candidates``, ``readme-35``, ``exp-drc-sci`` ...).
    title : str
        Readable name of the layout.
    collection : str
        Historical HLSP collection (``phangs-hst``, ``phangs-cat``, ``legus``).
    reads_as : str
        Id of the current schema the model follows.
    documented_by : str
        Where the layout is documented.
    name_fields : dict
        Fields of the file name (target, instrument, version, product type ...).
    renamed : dict
        Historical column name -> today's name, for every column whose name changed.
    sentinels : dict
        Sentinels of the family by name.
    masked : bool
        Whether sentinel entries are masked in the table.
    notes : tuple of str
        Conversions made on read (units, arrays).
    """

    schema: str
    layout: str
    title: str
    collection: str
    reads_as: str
    documented_by: str
    name_fields: Mapping[str, str]
    renamed: Mapping[str, str] = field(default_factory=dict)
    sentinels: Mapping[str, Sentinel] = field(default_factory=dict)
    masked: bool = False
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.schema} layout {self.layout!r} ({self.title}), read as {self.reads_as}"


@dataclass(frozen=True)
class ColumnPlan:
    """How one stored column becomes a column of the model's table.

    Attributes
    ----------
    source : str
        Historical name (``colN`` for text tables without a header).
    index : int
        0-based position in the file.
    name : str
        Today's name in the model's table.
    spec : LegacyColumn or None
        The schema's description of the column (None: not in the layout; kept as stored).
    duplicate_of : str, optional
        Source column this one repeats: dropped when equal, its name then answers as an alias.
    """

    source: str
    index: int
    name: str
    spec: LegacyColumn | None
    duplicate_of: str | None = None


# ----------------------------------------------------------------------------------- models
class LegacyImageModel(ImageModel):
    """A historical image read as today's image product.

    ``data`` is today's array (for an inverse-variance weight map, the one-sigma error
    ``1/sqrt(weight)``, 0 where the weight is 0); ``stored_data`` is the array as stored.
    """

    def __init__(
        self,
        schema: ProductSchema,
        headers: dict[str, fits.Header] | None = None,
        path: str | Path | None = None,
        transform: str = "none",
    ):
        super().__init__(schema, headers, path)
        self.transform = transform

    @property
    def stored_data(self) -> np.ndarray:
        """The image as stored in the historical file."""
        return self.hdulist()[0].data

    @property
    def data(self) -> np.ndarray:
        """Today's image (computed from the stored array on first access)."""
        if self._data is None:
            stored = self.stored_data
            if self.transform == "inverse-sqrt":
                self._data = inverse_sqrt(stored)
            else:
                self._data = stored
        return self._data

    @data.setter
    def data(self, value: np.ndarray) -> None:
        self._data = np.asarray(value, dtype=self.schema.arrays["data"].numpy_dtype)


def inverse_sqrt(weight: np.ndarray) -> np.ndarray:
    """One-sigma error from an inverse-variance weight: ``1/sqrt(w)``, 0 where ``w <= 0``."""
    w = np.asarray(weight, dtype=np.float64)
    good = np.isfinite(w) & (w > 0)
    out = np.zeros(w.shape, dtype=np.float32)
    out[good] = 1.0 / np.sqrt(w[good])
    return out


class LegacyCatalogModel(CatalogModel):
    """A historical catalog read as today's catalog product (table built on first access)."""

    def __init__(
        self,
        schema: ProductSchema,
        headers: dict[str, fits.Header] | None = None,
        path: str | Path | None = None,
        *,
        family: LegacyFamily,
        plan: Sequence[ColumnPlan] = (),
        masked: bool = True,
    ):
        super().__init__(schema, headers, path)
        self.family = family
        self.plan = tuple(plan)
        self.masked = masked

    def problems(self, data: bool = True) -> list[Problem]:
        """Problems against the schema it reads as, and repeated ids (with ``data``).

        A historical catalog reads as an early schema version that declares no content
        rules; the id columns (``unique``) of today's version of the product are checked
        with that version's rules too (``content.unique``: a repeated id makes
        cross-matching ambiguous; ``column.range``).
        """
        out = super().problems(data)
        if not data:
            return out
        table = self.table
        for spec in get_schema(self.schema.name).columns:
            if not spec.unique or spec.name not in table.colnames:
                continue
            column = table[spec.name]
            values = np.asarray(column.compressed() if hasattr(column, "compressed") else column)
            where = f"{self._where} column {spec.name}"
            for rule, message in value_rules(spec, values):
                out.append(Problem(rule, message, self.file_name, self.schema.id, where))
        return out

    def _read_table(self) -> Table:
        assert self.path is not None
        if self.family.format == "whitespace-table":
            stored = _load_text(self.path, len(self.plan))
            _check_integers(self.path, stored, self.plan)
            raw = {p.source: stored[:, p.index] for p in self.plan}
            units: dict[str, str | None] = {}
        else:
            hdu = self.hdulist()[1]
            with self._reading("HDU 1", "cannot read the table"):
                data = hdu.data
                raw = {p.source: np.asarray(data[p.source]) for p in self.plan}
            names = _table_keywords(hdu.header, "TTYPE")
            units = {names[i]: v for i, v in _table_keywords(hdu.header, "TUNIT").items()}
        return build_table(
            raw, units, self.plan, self.family, self.schema, self.bands, masked=self.masked
        )


# ---------------------------------------------------------------------------------- readers
def read_fits_image(
    path: Path, family: LegacyFamily, fields: dict[str, str], masked: bool
) -> tuple[LegacyImageModel | None, list[Problem]]:
    """Open a historical single-HDU image (headers only); None if it records PPSCHEMA."""
    layout = family.layout_for(fields)
    if layout is None:
        raise ProductError(
            f"{path.name}: unknown {family.title_short} product type "
            f"{fields.get('product_type')!r} (expected {family.file_name_help})"
        )
    header = _primary_header(path)
    if "PPSCHEMA" in header:
        return None, []
    sig = layout.signature
    problems = []
    if header.get("NAXIS") != sig.get("naxis", header.get("NAXIS")):
        problems.append(f"NAXIS = {header.get('NAXIS')}")
    missing = [k for k in sig.get("keywords", []) if k not in header]
    if missing:
        problems.append(f"no {', '.join(missing)}")
    if problems:
        raise ProductError(
            f"{path.name}: not a {family.title_short} {layout.title} ({'; '.join(problems)}); "
            f"expected a primary-HDU image with NAXIS = {sig.get('naxis')} and the drizzle "
            f"keywords {', '.join(sig.get('keywords', []))} ({family.schema_id})"
        )
    schema = get_schema(layout.reads_as)
    _fill(header, family.header_values(fields))
    notes = []
    transform = (layout.array or {}).get("transform", "none")
    bunit = schema.keyword_by_name.get("bunit")
    target_bunit = bunit.rules.get("const") if bunit is not None else None
    if transform != "none":
        stored = header.get("BUNIT", layout.array.get("stored_unit") if layout.array else None)
        notes.append(
            f"data = 1/sqrt(stored weight) in electron/s, 0 where the weight is 0 "
            f"(stored BUNIT {stored!r}; the stored array is model.stored_data)"
        )
        if target_bunit is not None:
            header["BUNIT"] = target_bunit
    elif target_bunit is not None and "BUNIT" not in header:
        header["BUNIT"] = target_bunit
    model = LegacyImageModel(schema, {"PRIMARY": header}, path, transform=transform)
    _attach(model, family, layout, fields, {}, masked, tuple(notes))
    return model, []


def read_fits_table(
    path: Path, family: LegacyFamily, fields: dict[str, str], masked: bool
) -> tuple[LegacyCatalogModel | None, list[Problem]]:
    """Open a historical FITS catalog (headers only); None if it records PPSCHEMA."""
    layout = family.layout_for(fields)
    if layout is None:
        raise ProductError(
            f"{path.name}: unknown {family.title_short} product type "
            f"{fields.get('product_type')!r} (expected {family.file_name_help})"
        )
    scan_file(path)  # the structure is checked before astropy reads anything
    try:
        with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
            primary = hdul[0].header.copy()
            if "PPSCHEMA" in primary:
                return None, []
            try:
                table_hdu = hdul[1]
            except IndexError:
                table_hdu = None
            if not isinstance(table_hdu, fits.BinTableHDU):
                raise ProductError(
                    f"{path.name}: not a {family.title_short} {layout.title}: HDU 1 is not a "
                    f"binary table (expected the {layout.name} columns of {family.schema_id})"
                )
            table_header = table_hdu.header.copy()
    except (OSError, ValueError, TypeError) as exc:
        raise ProductError(f"{path.name}: not a readable FITS file ({exc})") from None
    names = list(_table_keywords(table_header, "TTYPE").values())
    filters = _filters_in(names, family, layout)
    _check_signature(path, family, layout, names, filters)
    bands = _bands(path, family, fields, filters)
    problems = _layout_problems(path, family, layout, names, bands, fields)
    plan = _plan_named(names, family, bands)
    schema = get_schema(layout.reads_as)
    headers = {"PRIMARY": primary, "CATALOG": table_header}
    model = LegacyCatalogModel(schema, headers, path, family=family, plan=plan, masked=masked)
    _catalog_meta(model, family, layout, fields, bands)
    renamed = {p.source: p.name for p in plan if p.source != p.name}
    _attach(model, family, layout, fields, renamed, masked, ())
    return model, problems


def read_text_table(
    path: Path, family: LegacyFamily, fields: dict[str, str], masked: bool
) -> tuple[LegacyCatalogModel, list[Problem]]:
    """Open a historical whitespace-separated catalog without header (first line only)."""
    ncols = _first_row_width(path, family)
    layouts = [lay for lay in family.layouts if lay.ncols is not None]
    layout = next((lay for lay in layouts if lay.ncols == ncols), None)
    if layout is None:
        known = " or ".join(f"{lay.ncols} (layout {lay.name})" for lay in layouts)
        raise ProductError(
            f"{path.name}: {ncols} columns; a {family.title_short} has {known} ({family.schema_id})"
        )
    bands = family.documented_bands(fields)
    if bands is None:
        raise ProductError(
            f"{path.name}: {family.title_short} target {fields.get('target')!r} has no "
            f"documented bands (documented: {', '.join(sorted(family.targets))}; "
            f"{family.schema_id})"
        )
    plan = _plan_positional(family, layout, bands)
    schema = get_schema(layout.reads_as)
    model = LegacyCatalogModel(
        schema, {"PRIMARY": fits.Header()}, path, family=family, plan=plan, masked=masked
    )
    _catalog_meta(model, family, layout, fields, bands)
    renamed = {p.source: p.name for p in plan if p.source != p.name}
    notes = tuple(_unit_notes(plan, schema, bands))
    _attach(model, family, layout, fields, renamed, masked, notes)
    return model, []


# ---------------------------------------------------------------------------------- helpers
def _primary_header(path: Path) -> fits.Header:
    scan_file(path)  # the structure is checked before astropy reads anything
    try:
        with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
            return hdul[0].header.copy()
    except (OSError, ValueError, TypeError) as exc:
        raise ProductError(f"{path.name}: not a readable FITS file ({exc})") from None


def _table_keywords(header: fits.Header, prefix: str) -> dict[int, str]:
    """``{n: value}`` of the indexed table keywords ``<prefix>n`` (TTYPE, TUNIT ...)."""
    values = header_values(header)
    out = {}
    for i in range(1, int(values.get("TFIELDS") or 0) + 1):
        value = values.get(f"{prefix}{i}")
        if value is not None and str(value).strip():
            out[i] = str(value).strip()
    return out


def _fill(header: fits.Header, values: Mapping[str, Any]) -> None:
    """Set keywords the header lacks (values from the file name and the family)."""
    for key, value in values.items():
        if key not in header:
            header[key] = value


def _attach(
    model: Any,
    family: LegacyFamily,
    layout: LegacyLayout,
    fields: Mapping[str, str],
    renamed: Mapping[str, str],
    masked: bool,
    notes: tuple[str, ...],
) -> None:
    info = LegacyInfo(
        schema=family.schema_id,
        layout=layout.name,
        title=f"{family.title_short}, {layout.title}",
        collection=family.collection,
        reads_as=layout.reads_as,
        documented_by=family.documented_by,
        name_fields=dict(fields),
        renamed=dict(renamed),
        sentinels=dict(family.sentinels),
        masked=masked,
        notes=notes,
    )
    object.__setattr__(model.meta, "_legacy", info)
    log.debug("%s: read as %s", model.file_name, info)


def _catalog_meta(
    model: CatalogModel,
    family: LegacyFamily,
    layout: LegacyLayout,
    fields: Mapping[str, str],
    bands: Sequence[BandInfo],
) -> None:
    """Header keywords of today's catalog: name facts, bands, subset."""
    from phangs_products.bands import band as band_facts

    hdr = model.meta.header("PRIMARY")
    _fill(hdr, family.header_values(fields))
    hdr["FILTER"] = "MULTI"
    for i, band in enumerate(bands, start=1):
        hdr[f"FILTER{i:02d}"] = (band.filter, f"filter of band {i}")
        hdr[f"INSTR{i:02d}"] = (band.instrument, f"instrument of band {i}")
        try:
            mag0 = band_facts(band.filter, band.instrument).vega_flux_jy
        except PhangsProductsError:
            continue
        hdr[f"MAG0{i:02d}"] = (mag0, f"[Jy] zero-magnitude (Vega) flux of band {i}")
    subset = layout.subset_for(fields)
    if subset:
        hdr["CLSUBSET"] = subset


def _filters_in(names: Sequence[str], family: LegacyFamily, layout: LegacyLayout) -> list[str]:
    """Filters of the per-band signature columns present, in file order."""
    out: list[str] = []
    for template in layout.signature.get("band_columns", []):
        col = family.column_by_name.get(template)
        if col is None or col.pattern is None:
            continue
        for name in names:
            found = col.pattern.match(name)
            if found is not None and found["filter"] not in out:
                out.append(found["filter"])
    return out


def _check_signature(
    path: Path,
    family: LegacyFamily,
    layout: LegacyLayout,
    names: Sequence[str],
    filters: Sequence[str],
) -> None:
    missing = [c for c in layout.signature.get("columns", []) if c not in names]
    band_cols = layout.signature.get("band_columns", [])
    if band_cols and not filters:
        missing += band_cols
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        shown = ", ".join(missing[:5]) + more
        raise ProductError(
            f"{path.name}: not a {family.title_short} {layout.title}: HDU 1 lacks {shown} "
            f"(expected the {layout.name} columns of {family.schema_id})"
        )


def _bands(
    path: Path, family: LegacyFamily, fields: Mapping[str, str], filters: Sequence[str]
) -> tuple[BandInfo, ...]:
    """Bands of a catalog: its filters with their instrument, or the target's documented bands."""
    if not filters:
        return family.documented_bands(fields) or ()
    out = []
    for filt in filters:
        band = family.band_of(filt, fields)
        if band is None:
            raise ProductError(
                f"{path.name}: instrument of {filt} unknown: target {fields.get('target')!r} is "
                f"not documented and {fields.get('instrument')!r} names several instruments "
                f"(documented targets: {', '.join(sorted(family.targets))}; {family.schema_id})"
            )
        out.append(band)
    return tuple(out)


def _layout_problems(
    path: Path,
    family: LegacyFamily,
    layout: LegacyLayout,
    names: Sequence[str],
    bands: Sequence[BandInfo],
    fields: Mapping[str, str],
) -> list[Problem]:
    """Differences between the file's columns (and bands) and the documented layout."""
    out = []
    where = f"HDU 1 ({layout.name} layout)"
    documented = layout.column_names([b.filter for b in bands])
    missing = [c for c in documented if c not in names]
    extra = [c for c in names if c not in documented]
    if missing:
        out.append(
            Problem(
                "legacy.columns",
                f"{len(missing)} documented column(s) missing: {', '.join(missing[:5])}",
                path.name,
                family.schema_id,
                where,
            )
        )
    if extra:
        out.append(
            Problem(
                "legacy.columns",
                f"{len(extra)} column(s) not in the documented layout: {', '.join(extra[:5])}",
                path.name,
                family.schema_id,
                where,
                severity="warning",
            )
        )
    documented_bands = family.documented_bands(fields)
    if (
        documented_bands
        and bands
        and [b.filter for b in bands] != [b.filter for b in documented_bands]
    ):
        out.append(
            Problem(
                "legacy.bands",
                f"bands {', '.join(b.filter for b in bands)} differ from the documented "
                f"{', '.join(b.filter for b in documented_bands)}",
                path.name,
                family.schema_id,
                where,
            )
        )
    return out


def _plan_named(
    names: Sequence[str], family: LegacyFamily, bands: Sequence[BandInfo]
) -> list[ColumnPlan]:
    """Plan for a table with named columns: today's name of each, duplicates marked."""
    by_filter = {b.filter: b for b in bands}
    plan = []
    for index, source in enumerate(names):
        spec, filt = family.find_column(source)
        if spec is None:
            plan.append(ColumnPlan(source, index, source, None))
            continue
        band = by_filter.get(filt) if filt else None
        name = spec.names(band)[1] if (band or not filt) else source
        duplicate = spec.duplicate_of if spec.duplicate_of in names else None
        if duplicate is not None:
            original, _ = family.find_column(duplicate)
            name = original.current if original is not None else duplicate
        plan.append(ColumnPlan(source, index, name, spec, duplicate))
    return plan


def _plan_positional(
    family: LegacyFamily, layout: LegacyLayout, bands: Sequence[BandInfo]
) -> list[ColumnPlan]:
    """Plan for a text table: one column per position 1..ncols."""
    by_position = {c.position: c for c in family.columns_of(layout) if c.position is not None}
    plan = []
    for position in range(1, (layout.ncols or 0) + 1):
        spec = by_position.get(position)
        if spec is None:
            raise ProductError(f"{family.schema_id}: layout {layout.name} has no column {position}")
        band = bands[spec.band - 1] if spec.band is not None else None
        if spec.band is not None and spec.band > len(bands):
            raise ProductError(f"{family.schema_id}: column {spec.name} needs band {spec.band}")
        plan.append(ColumnPlan(spec.name, position - 1, spec.names(band)[1], spec))
    return plan


def _unit_notes(
    plan: Sequence[ColumnPlan], schema: ProductSchema, bands: Sequence[BandInfo]
) -> list[str]:
    current = {c.name: c for c in schema.expand_columns(bands)}
    out = []
    for p in plan:
        target = current.get(p.name)
        if p.spec is None or not p.spec.unit or target is None or not target.unit:
            continue
        if _convertible(p.spec.unit, target.unit) and p.spec.unit != target.unit:
            out.append(f"{p.name} ({p.source}) converted from {p.spec.unit} to {target.unit}")
    return out


def _first_row_width(path: Path, family: LegacyFamily) -> int:
    """Number of fields of the first non-empty line (all must be numbers)."""
    try:
        with path.open("rb") as fh:
            for raw in fh:
                line = raw.decode("ascii", errors="replace").split()
                if line:
                    break
            else:
                line = []
    except OSError as exc:
        raise ProductError(f"{path.name}: not readable ({exc})") from None
    try:
        [float(x) for x in line]
    except ValueError:
        raise ProductError(
            f"{path.name}: first line is not whitespace-separated numbers "
            f"(expected a {family.title_short} without header, {family.schema_id})"
        ) from None
    if not line:
        raise ProductError(f"{path.name}: empty file (expected a {family.title_short})")
    return len(line)


def _load_text(path: Path, ncols: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise ProductError(f"{path.name}: rows of unequal width or non-numbers ({exc})") from None
    if values.shape[1] != ncols:
        raise ProductError(f"{path.name}: {values.shape[1]} columns, the layout has {ncols}")
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:  # the text tables mark missing values with their sentinels, never NaN or inf
        row, col = (int(i) for i in bad[0])
        raise ProductError(
            f"{path.name}: data row {row + 1}, column {col + 1} holds {values[row, col]} "
            f"({len(bad)} non-finite value(s); expected numbers, missing values as sentinels)"
        )
    return values


def _check_integers(path: Path, stored: np.ndarray, plan: Sequence[ColumnPlan]) -> None:
    """Columns the layout declares integer (ids, classes) hold whole numbers in a text table."""
    for p in plan:
        dtype = p.spec.dtype if p.spec is not None else None
        if not dtype or dtype == "string" or np.dtype(dtype).kind not in "iu":
            continue
        column = stored[:, p.index]
        bad = np.flatnonzero(column != np.rint(column))
        if bad.size:
            raise ProductError(
                f"{path.name}: data row {bad[0] + 1}, column {p.index + 1} ({p.name}) holds "
                f"{column[bad[0]]}; the layout declares whole numbers ({len(bad)} row(s))"
            )


def _convertible(a: str, b: str) -> bool:
    try:
        return u.Unit(a).is_equivalent(u.Unit(b))
    except ValueError:
        return False


# ------------------------------------------------------------------------------- the table
def build_table(
    raw: Mapping[str, np.ndarray],
    units: Mapping[str, str | None],
    plan: Sequence[ColumnPlan],
    family: LegacyFamily,
    schema: ProductSchema,
    bands: Sequence[BandInfo],
    *,
    masked: bool,
) -> AliasTable:
    """Today's table from the stored columns: names, dtypes, units, masks and aliases.

    Parameters
    ----------
    raw : mapping
        Stored values by historical name.
    units : mapping
        Stored unit strings (TUNIT) by historical name; the schema's unit where absent.
    plan : sequence of ColumnPlan
        What to do with each stored column.
    family : LegacyFamily
        The family (sentinel values).
    schema : ProductSchema
        Today's schema (today's units and names).
    bands : sequence of BandInfo
        Bands of the catalog.
    masked : bool
        Mask sentinel entries (MaskedColumn) or keep them as stored.
    """
    current = {c.name: c for c in schema.expand_columns(bands)}
    columns: list[Column] = []
    aliases: dict[str, str] = {}
    for p in plan:
        values = raw[p.source]
        if p.duplicate_of is not None:
            if _same(values, raw[p.duplicate_of]):
                aliases[p.source] = p.name
                continue
            log.warning("%s differs from %s; kept under its own name", p.source, p.duplicate_of)
            columns.append(Column(values, name=p.source))
            continue
        columns.append(_column(p, values, raw, units.get(p.source), family, current, masked))
        if p.source != p.name:
            aliases[p.source] = p.name
    return AliasTable(columns, copy=False, aliases=aliases)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def _column(
    p: ColumnPlan,
    values: np.ndarray,
    raw: Mapping[str, np.ndarray],
    stored_unit: str | None,
    family: LegacyFamily,
    current: Mapping[str, ColumnSpec],
    masked: bool,
) -> Column:
    spec = p.spec
    target = current.get(p.name)
    sentinels = [family.sentinels[s] for s in spec.sentinels] if spec else []
    mask = sentinel_mask(values, [s.value for s in sentinels])
    if spec is not None and spec.masked_unless is not None:
        ref, minimum = spec.masked_unless
        mask |= np.asarray(raw[ref], dtype=np.float64) < minimum
    if spec is not None and spec.dtype:
        values = _cast(values, spec.dtype)
    unit = stored_unit or (spec.unit if spec else None)
    if unit and target is not None and target.unit and unit != target.unit:
        if _convertible(unit, target.unit) and values.dtype.kind == "f":
            values = values.astype(np.float64, copy=True)
            keep = ~mask
            values[keep] = (values[keep] * u.Unit(unit)).to_value(target.unit)
            unit = target.unit
    description = spec.description if spec else ""
    can_mask = bool(sentinels) or (spec is not None and spec.masked_unless is not None)
    if masked and can_mask:
        fill = sentinels[0].value if sentinels else None
        return MaskedColumn(
            values, name=p.name, mask=mask, unit=unit, description=description, fill_value=fill
        )
    return Column(values, name=p.name, unit=unit, description=description)


def _cast(values: np.ndarray, dtype: str) -> np.ndarray:
    """Cast stored values to the schema dtype when that loses nothing (text tables)."""
    if dtype == "string" or values.dtype.kind not in "iuf":
        return values
    target = np.dtype(dtype)
    if values.dtype == target:
        return values
    if target.kind in "iu" and values.dtype.kind == "f":
        if not (np.all(np.isfinite(values)) and np.all(values == np.rint(values))):
            return values
    return values.astype(target)

"""Schema conformance of product files: header keywords, HDUs, arrays and table columns.

Keyword values are checked with :mod:`jsonschema` (Draft 2020-12) against the per-HDU schema
that :meth:`ProductSchema.hdu_jsonschema` derives from the product schema.  Structure (HDUs,
array dtypes, column dtypes and units, sentinels) is compared with the schema's own keywords.
Every problem is one :class:`~phangs_products.errors.Problem` with a stable rule id.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import astropy.units as u
import jsonschema
import numpy as np
from astropy.io import fits

from phangs_products import fitsscan
from phangs_products.errors import Problem, describe
from phangs_products.fitsscan import HduLayout
from phangs_products.fitssum import CHECKSUM_MISMATCH, CHECKSUM_MISSING
from phangs_products.spec import BandInfo, ColumnSpec, ProductSchema

if TYPE_CHECKING:
    from phangs_products.fitsscan import FitsLayout

__all__ = [
    "bands_from_meta",
    "check_column_values",
    "check_columns",
    "check_hdul",
    "check_keywords",
    "check_rows",
    "check_table_values",
    "is_fits_unit",
    "same_unit",
]

#: Detector units of HST data.  FITS 4.0 has no electron unit, but HST files (and drizzlepac)
#: use it; the schemas allow exactly these non-FITS units and nothing else.
HST_CONVENTION_UNITS = frozenset({"electron", "electron/s", "electron/adu"})
_BITPIX = {8: "uint8", 16: "int16", 32: "int32", 64: "int64", -32: "float32", -64: "float64"}


@functools.cache
def is_fits_unit(unit: str) -> bool:
    """Whether ``unit`` is a FITS-standard unit string (or an HST detector unit)."""
    if unit in HST_CONVENTION_UNITS:
        return True
    try:
        u.Unit(unit, format="fits")
    except ValueError:
        return False
    return True


@functools.cache
def same_unit(a: str, b: str) -> bool:
    """Whether two unit strings denote the same unit."""
    if a == b:
        return True
    try:
        return u.Unit(a, parse_strict="raise") == u.Unit(b, parse_strict="raise")
    except ValueError:
        return False


@functools.cache
def _keyword_validator(rules_json: str) -> jsonschema.Draft202012Validator:
    import json

    return jsonschema.Draft202012Validator(json.loads(rules_json))


@functools.lru_cache(maxsize=65536)
def _keyword_errors(rules_json: str, value_type: type, value: Any) -> tuple[tuple[str, str], ...]:
    """Jsonschema errors of one keyword value, memoised: most values repeat across files."""
    errs = sorted(_keyword_validator(rules_json).iter_errors(value), key=lambda e: e.validator)
    return tuple((str(e.validator), _short(e)) for e in errs)


@functools.cache
def _rules_json(schema: ProductSchema, hdu: str, bands: tuple[BandInfo, ...]) -> dict[str, str]:
    import json

    props = schema.hdu_jsonschema(hdu, bands)["properties"]
    return {key: json.dumps(rules, sort_keys=True) for key, rules in props.items()}


_KEYWORD_RE = re.compile(r"[A-Z0-9_-]{1,8}")


def header_values(header: fits.Header) -> dict[str, Any]:
    """Keyword values of a header parsed straight from its card images (fast, read-only).

    Parsing each card with astropy costs about 25 microseconds; validation reads every schema
    keyword, so the value field of each ``KEY = value`` card image is read by
    :func:`phangs_products.fitsscan.parse_value` (the scan's reader, memoised) instead.  Other
    cards, long strings and the values that reader leaves to astropy come from astropy.
    """
    out: dict[str, Any] = {}
    for card in header.cards:
        image = getattr(card, "_image", None)
        key = image[:8].rstrip() if image and image[8:10] == "= " and image.isascii() else ""
        if key and _KEYWORD_RE.fullmatch(key):
            if key not in out:
                value = fitsscan.parse_value(image[10:].encode("ascii"))
                out[key] = _plain(card.value) if value is fitsscan.LEFT_TO_ASTROPY else value
            continue
        if card.keyword and card.keyword not in out and card.keyword not in _COMMENTARY:
            out[card.keyword] = _plain(card.value)
    return out


_COMMENTARY = frozenset({"COMMENT", "HISTORY", ""})


def _plain(value: Any) -> Any:
    if isinstance(value, fits.card.Undefined):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def bands_from_meta(meta: Mapping[str, Any]) -> tuple[BandInfo, ...]:
    """Bands of a multi-band product from its ``FILTERnn`` / ``INSTRnn`` keywords."""
    out = []
    for i in range(1, 100):
        filt = meta.get(f"FILTER{i:02d}")
        if filt is None:
            break
        out.append(BandInfo(str(filt), str(meta.get(f"INSTR{i:02d}", "WFC3/UVIS"))))
    return tuple(out)


def check_keywords(
    schema: ProductSchema,
    hdu: str,
    header: Mapping[str, Any],
    *,
    bands: tuple[BandInfo, ...] = (),
    file: str = "",
    where: str | None = None,
) -> list[Problem]:
    """Check the keywords of one HDU against the schema.

    Parameters
    ----------
    schema : ProductSchema
        Schema of the product.
    hdu : str
        EXTNAME whose keywords are checked (``PRIMARY`` for the primary HDU).
    header : mapping
        Header (or any keyword -> value mapping).
    bands : tuple of BandInfo
        Bands of a multi-band product, for per-band keywords.
    file : str
        File name used in the messages.
    where : str, optional
        Location prefix; ``HDU <hdu>`` by default.
    """
    plan = _keyword_plan(schema, hdu, bands)
    if plan is None:
        return []
    values = header_values(header) if isinstance(header, fits.Header) else header
    instance = {}
    for key in plan.names:
        value = _plain(values.get(key))
        if value is not None:
            instance[key] = value
    where = where or f"HDU {hdu}"
    problems = []
    simulated = instance.get("SIMULATD") is True or values.get("SIMULATD") is True
    for key, level, not_simulated in plan.required:
        if key not in instance:
            if simulated and not_simulated:
                continue  # e.g. a collection DOI: simulated data carry none
            problems.append(
                Problem(
                    rule="keyword.missing",
                    message=f"missing {level} keyword {key}",
                    file=file,
                    schema=schema.id,
                    where=where,
                )
            )
    for key, value in instance.items():
        try:
            errors = _keyword_errors(plan.rules[key], type(value), value)
        except TypeError:  # unhashable value: validate without the memo
            errors = tuple(
                (str(e.validator), _short(e))
                for e in _keyword_validator(plan.rules[key]).iter_errors(value)
            )
        for _validator_name, message in errors:
            problems.append(
                Problem(
                    rule="keyword.value",
                    message=f"got {value!r}: {message}",
                    file=file,
                    schema=schema.id,
                    where=f"{where} keyword {key}",
                )
            )
    # recommended keywords: warnings only
    for key in plan.recommended:
        if key not in instance:
            problems.append(
                Problem(
                    rule="keyword.recommended",
                    message=f"missing recommended keyword {key}",
                    file=file,
                    schema=schema.id,
                    where=where,
                    severity="warning",
                )
            )
    return problems


@dataclasses.dataclass(frozen=True)
class _KeywordPlan:
    """What :func:`check_keywords` asks of one HDU, worked out once per schema, HDU and bands.

    Attributes
    ----------
    names : tuple of str
        Every FITS keyword of the HDU, in schema order.
    rules : dict
        JSON rules of each keyword (serialised, the memo key of its validator).
    required : tuple
        ``(keyword, MAST level, not_simulated)`` of each required keyword.
    recommended : tuple of str
        Recommended keywords.
    """

    names: tuple[str, ...]
    rules: dict[str, str]
    required: tuple[tuple[str, str, bool], ...]
    recommended: tuple[str, ...]


@functools.cache
def _keyword_plan(
    schema: ProductSchema, hdu: str, bands: tuple[BandInfo, ...]
) -> _KeywordPlan | None:
    specs = schema.keywords_for_hdu(hdu)
    if not specs:
        return None
    required = []
    for key in schema.hdu_jsonschema(hdu, bands)["required"]:
        spec = _spec_for(schema, hdu, key, bands)
        level = spec.mast if spec else "required"
        required.append((key, level, bool(spec is not None and spec.not_simulated)))
    return _KeywordPlan(
        names=tuple(dict.fromkeys(n for k in specs for n in k.expand(bands))),
        rules=_rules_json(schema, hdu, bands),
        required=tuple(required),
        recommended=tuple(
            key for spec in specs if spec.mast == "recommended" for key in spec.expand(bands)
        ),
    )


def _spec_for(schema: ProductSchema, hdu: str, key: str, bands: tuple[BandInfo, ...]):
    for spec in schema.keywords_for_hdu(hdu):
        if key in spec.expand(bands):
            return spec
    return None


def _short(err: jsonschema.ValidationError) -> str:
    if err.validator == "const":
        return f"expected {err.validator_value!r}"
    if err.validator == "enum":
        return f"expected one of {err.validator_value!r}"
    if err.validator == "pattern":
        return f"does not match {err.validator_value!r}"
    if err.validator == "type":
        return f"expected a value of type {err.validator_value}"
    return err.message


def _column_kind(dtype: np.dtype) -> str:
    if dtype.kind in "SUO":
        return "string"
    return np.dtype(dtype).name


def check_columns(
    schema: ProductSchema,
    columns: Iterable[tuple[str, np.dtype, str | None]],
    *,
    bands: tuple[BandInfo, ...],
    file: str = "",
    where: str = "HDU 1",
) -> list[Problem]:
    """Compare actual ``(name, dtype, unit)`` columns with the schema's expanded column list."""
    try:
        found = _column_problems(schema, tuple(columns), tuple(bands))
    except TypeError:  # an unhashable unit: check without the memo
        found = _column_problems.__wrapped__(schema, tuple(columns), tuple(bands))
    return [
        Problem(rule, message, file, schema.id, f"{where} column {col}", severity)
        for rule, col, message, severity in found
    ]


@functools.lru_cache(maxsize=256)
def _column_problems(
    schema: ProductSchema,
    columns: tuple[tuple[str, np.dtype, str | None], ...],
    bands: tuple[BandInfo, ...],
) -> tuple[tuple[str, str, str, str], ...]:
    """``(rule, column, message, severity)`` of :func:`check_columns`, memoised.

    The catalogs of one survey share their column layouts, so each is judged once.
    """
    expected = {c.name: c for c in schema.expand_columns(bands)}
    actual = {name: (dtype, unit) for name, dtype, unit in columns}
    problems = []

    def add(rule: str, col: str, message: str, severity: str = "error") -> None:
        problems.append((rule, col, message, severity))

    for name, spec in expected.items():
        if name not in actual:
            if spec.mast in ("required", "project"):
                add("column.missing", name, "required column is missing")
            continue
        dtype, unit = actual[name]
        kind = _column_kind(np.dtype(dtype))
        want = "string" if spec.dtype == "string" else spec.numpy_dtype.name
        if kind != want:
            add("column.dtype", name, f"dtype {kind} (expected {want})")
        if unit and not is_fits_unit(unit):
            add("column.unit", name, f"unit {unit!r} is not a FITS unit (expected {spec.unit!r})")
        elif spec.unit and not unit:
            add("column.unit", name, f"no unit (expected {spec.unit!r})")
        elif spec.unit and unit and not same_unit(unit, spec.unit):
            add("column.unit", name, f"unit {unit!r} (expected {spec.unit!r})")
    for name in actual:
        if name not in expected:
            add("column.unknown", name, "column is not in the schema", "warning")
    return tuple(problems)


def check_column_values(
    schema: ProductSchema,
    table: Any,
    *,
    bands: tuple[BandInfo, ...],
    file: str = "",
    where: str = "HDU 1",
) -> list[Problem]:
    """Data checks of a table, on the values as stored.

    ``column.nan``: NaN where a sentinel is declared; ``column.range``: values (the sentinel
    aside) outside the declared range; ``content.codes``: values outside the declared code
    list (``enum``); ``content.unique``: repeated values in a ``unique`` column;
    ``content.finite-fraction``: fewer finite values than ``min_finite_fraction``.
    """
    problems = []

    def add(rule: str, column: str, message: str) -> None:
        problems.append(Problem(rule, message, file, schema.id, f"{where} column {column}"))

    nrows = len(table[table.colnames[0]]) if table.colnames else 0
    for spec in schema.expand_columns(bands):
        if spec.name not in table.colnames or spec.dtype == "string":
            continue
        values = np.asarray(table[spec.name])
        if values.dtype.kind not in "biuf":
            continue  # column.dtype reports it
        if values.dtype.kind == "f":
            nan = np.isnan(values)
            if spec.sentinel is not None and nan.any():
                add(
                    "column.nan",
                    spec.name,
                    f"{int(nan.sum())} NaN value(s); use the sentinel {spec.sentinel}",
                )
            if spec.min_finite_fraction is not None and nrows:
                finite = int(np.isfinite(values).sum())
                if finite < spec.min_finite_fraction * nrows:
                    add(
                        "content.finite-fraction",
                        spec.name,
                        f"{finite} of {nrows} values finite (expected a fraction of at least "
                        f"{spec.min_finite_fraction:g})",
                    )
        for rule, message in value_rules(spec, values):
            add(rule, spec.name, message)
    return problems


def check_rows(
    schema: ProductSchema,
    nrows: int,
    values: Mapping[str, Any],
    *,
    file: str = "",
    where: str = "",
) -> list[Problem]:
    """``content.rows`` when a catalog holds fewer rows than its schema's ``min_rows``.

    ``values`` are the file's primary keywords: ``min_rows_when`` limits the rule to files
    whose keyword holds one of the listed values.  The validator asks it of delivered files;
    writers do not (an empty catalog is written, then reported).
    """
    min_rows = schema.product.get("min_rows")
    if min_rows is None or nrows >= min_rows:
        return []
    for key, allowed in schema.product.get("min_rows_when", {}).items():
        value = values.get(key)
        if (value.strip() if isinstance(value, str) else value) not in allowed:
            return []
    when = " and ".join(f"{k} = {values.get(k)}" for k in schema.product.get("min_rows_when", {}))
    return [
        Problem(
            "content.rows",
            f"{nrows} rows (expected at least {min_rows}{' for ' + when if when else ''}): "
            "an empty catalog",
            file,
            schema.id,
            where,
        )
    ]


def value_rules(spec: ColumnSpec, values: np.ndarray) -> list[tuple[str, str]]:
    """``(rule, message)`` of the range, code-list and uniqueness rules of one column.

    ``values`` are the column's stored values; its sentinel entries are left out.
    """
    valid = values if spec.sentinel is None else values[values != spec.sentinel]
    found = []
    bounds = spec.bounds
    if bounds:
        out = bounds.outside(valid)
        if out.any():
            found.append(
                (
                    "column.range",
                    f"{int(out.sum())} value(s) outside {bounds.text()} (first: {valid[out][0]:g})",
                )
            )
    if spec.enum:
        bad = ~np.isin(valid, np.asarray(spec.enum))
        if valid.dtype.kind == "f":
            bad &= ~np.isnan(valid)
        if bad.any():
            codes = ", ".join(str(c) for c in spec.enum)
            found.append(
                (
                    "content.codes",
                    f"{int(bad.sum())} value(s) not in the code list {{{codes}}} "
                    f"(first: {valid[bad][0]:g})",
                )
            )
    if spec.unique and len(valid) > 1:
        ordered = np.sort(valid)
        repeated = ordered[1:][ordered[1:] == ordered[:-1]]
        if len(repeated):
            found.append(
                (
                    "content.unique",
                    f"{len(np.unique(repeated))} value(s) occur more than once "
                    f"(first: {repeated[0]:g}); ids must be unique",
                )
            )
    return found


_TFORM_DTYPES = {
    "L": np.dtype(bool),
    "B": np.dtype(np.uint8),
    "I": np.dtype(np.int16),
    "J": np.dtype(np.int32),
    "K": np.dtype(np.int64),
    "E": np.dtype(np.float32),
    "D": np.dtype(np.float64),
    "A": np.dtype("U1"),
}


def columns_from_header(header: Mapping[str, Any]) -> list[tuple[str, np.dtype, str | None]]:
    """``(name, dtype, unit)`` of every column of a binary-table header, without reading data."""
    if isinstance(header, fits.Header):
        header = header_values(header)
    out = []
    for i in range(1, int(header.get("TFIELDS", 0)) + 1):
        tform = str(header.get(f"TFORM{i}", "")).strip()
        code = tform.lstrip("0123456789")[:1]
        dtype = _TFORM_DTYPES.get(code, np.dtype(object))
        out.append((str(header.get(f"TTYPE{i}", f"col{i}")), dtype, header.get(f"TUNIT{i}")))
    return out


def schema_hdus(
    schema: ProductSchema, hdul: fits.HDUList | FitsLayout
) -> dict[tuple[str, int], Any]:
    """The HDUs the schema names that the file has, by ``(EXTNAME, EXTVER)``.

    With a lazily loaded HDU list only the headers up to the last schema HDU are read; a
    :class:`~phangs_products.fitsscan.FitsLayout` gives headers without opening the file.
    """
    present: dict[tuple[str, int], fits.hdu.base._BaseHDU] = {("PRIMARY", 1): hdul[0]}
    for hdu_spec in schema.product.get("hdus", []):
        if hdu_spec["type"] == "primary":
            continue
        for ver in hdu_spec.get("extvers", [1]):
            try:
                present[(hdu_spec["name"], ver)] = hdul[hdu_spec["name"], ver]
            except KeyError:
                continue
    return present


def check_hdul(
    schema: ProductSchema,
    hdul: fits.HDUList | FitsLayout,
    *,
    file: str = "",
    data: bool = False,
) -> list[Problem]:
    """Check an opened FITS product against its schema.

    Parameters
    ----------
    schema : ProductSchema
        Schema the file records (or should follow).
    hdul : HDUList or FitsLayout
        The opened file (lazily loaded HDUs are fine), or the scanned layout of a file
        (headers only: ``data`` must be false).
    file : str
        File name for the messages.
    data : bool
        Also read the data: checksums, NaN vs sentinels, value ranges.
    """
    problems: list[Problem] = []
    present = schema_hdus(schema, hdul)
    bands = bands_from_meta(_keywords(hdul[0]))
    for hdu_spec in schema.product.get("hdus", []):
        for ver in hdu_spec.get("extvers", [1]):
            key = (hdu_spec["name"], ver)
            if key not in present:
                if ver > 1 and (hdu_spec["name"], 1) in present:
                    continue  # single-chip files (subarrays, small simulated detectors)
                problems.append(
                    Problem(
                        "hdu.missing",
                        f"HDU {hdu_spec['name']},{ver} is missing",
                        file,
                        schema.id,
                    )
                )
                continue
            hdu = present[key]
            where = f"HDU {hdu_spec['name']}" + (f",{ver}" if ver > 1 else "")
            problems += check_keywords(
                schema, hdu_spec["name"], _keywords(hdu), bands=bands, file=file, where=where
            )
    for spec in schema.arrays.values():
        for ver in spec.extvers:
            hdu = present.get((spec.fits_hdu, ver))
            if hdu is None:
                continue
            where = f"HDU {spec.fits_hdu}" + (f",{ver}" if ver > 1 else "")
            keywords = _keywords(hdu)
            bitpix = keywords.get("BITPIX")
            got = _BITPIX.get(bitpix, str(bitpix))
            if "BZERO" in keywords and bitpix == 16 and keywords["BZERO"] == 32768:
                got = "uint16"
            if got != spec.dtype:
                problems.append(
                    Problem(
                        "array.dtype",
                        f"BITPIX {bitpix} ({got}), expected {spec.dtype}",
                        file,
                        schema.id,
                        where,
                    )
                )
            if keywords.get("NAXIS") != spec.ndim:
                problems.append(
                    Problem(
                        "array.ndim",
                        f"NAXIS {keywords.get('NAXIS')}, expected {spec.ndim}",
                        file,
                        schema.id,
                        where,
                    )
                )
    table_hdu = schema.table_hdu
    if table_hdu is not None and (table_hdu, 1) in present:
        thdu = present[(table_hdu, 1)]
        index = hdul.index_of(table_hdu)
        cols = columns_from_header(_keywords(thdu))
        problems += check_columns(schema, cols, bands=bands, file=file, where=f"HDU {index}")
        if data:
            from astropy.table import Table

            problems += check_table_values(
                schema,
                lambda: Table(thdu.data, copy=False),
                bands=bands,
                file=file,
                where=f"HDU {index}",
            )
    if data:
        problems += check_checksums(hdul, file=file, schema_id=schema.id)
    return problems


def check_table_values(
    schema: ProductSchema,
    load: Callable[[], Any],
    *,
    bands: tuple[BandInfo, ...],
    file: str = "",
    where: str = "HDU 1",
) -> list[Problem]:
    """:func:`check_column_values` of the table ``load()`` returns (``fits.data`` if it fails)."""
    try:
        return check_column_values(schema, load(), bands=bands, file=file, where=where)
    except Exception as exc:  # astropy cannot make a table of these data
        return [
            Problem("fits.data", f"cannot read the table ({describe(exc)})", file, schema.id, where)
        ]


def _keywords(hdu: Any) -> Mapping[str, Any]:
    """Keyword values of an HDU; a scanned layout's are parsed from its header bytes."""
    return hdu.values if isinstance(hdu, HduLayout) else hdu.header


def check_checksums(hdul: fits.HDUList, *, file: str = "", schema_id: str = "") -> list[Problem]:
    """Verify CHECKSUM and DATASUM of every HDU (missing ones are errors too)."""
    problems = []
    for index, hdu in enumerate(hdul):
        where = f"HDU {index}"
        if "CHECKSUM" not in hdu.header or "DATASUM" not in hdu.header:
            problems.append(Problem("fits.checksum", CHECKSUM_MISSING, file, schema_id, where))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ok_data = hdu.verify_datasum() == 1
                ok_sum = hdu.verify_checksum() == 1
        except Exception as exc:  # astropy cannot read these data
            problems.append(
                Problem(
                    "fits.data", f"cannot read the data ({describe(exc)})", file, schema_id, where
                )
            )
            continue
        if not (ok_data and ok_sum):
            problems.append(Problem("fits.checksum", CHECKSUM_MISMATCH, file, schema_id, where))
    return problems

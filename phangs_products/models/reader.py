"""Open any product file: detect its schema from the header and return the typed model.

Reading is bounded: anything but a regular file is refused before it is opened (a FIFO would
block), FITS files have their structure checked by :mod:`phangs_products.fitsscan` before
astropy reads them, text and YAML headers are size-capped and decoded strictly, and every
error of the underlying libraries (astropy, pyarrow, PyYAML, asdf) becomes one
:class:`ProductError` line ``<file>: <where>: <what was expected>``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import warnings
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from astropy.io import fits

from phangs_products import conformance, fitsscan
from phangs_products.errors import (
    Problem,
    ProductError,
    SchemaError,
    ValidationError,
    describe,
    reading,
)
from phangs_products.models.base import Model, ProductValidationWarning
from phangs_products.models.catalog import PARQUET_META_KEY, CatalogModel
from phangs_products.models.image import FlcModel, ImageModel
from phangs_products.models.meta import LayoutHeaders, Meta, meta_class
from phangs_products.models.text import (
    ManifestModel,
    ReadmeModel,
    RegionsModel,
    TextModel,
    read_tree,
)
from phangs_products.registry import get_schema
from phangs_products.safeio import (
    MAX_HEADER_BYTES,
    decode_text,
    load_yaml,
    open_regular,
    read_text,
    regular_file,
)
from phangs_products.spec import ProductSchema

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------- reading
_KIND_CLASSES: dict[str, type[Model]] = {
    "image": ImageModel,
    "mask": ImageModel,
    "flc": FlcModel,
    "catalog": CatalogModel,
    "regions": RegionsModel,
    "readme": ReadmeModel,
    "manifest": ManifestModel,
}

#: File-name suffixes the readers know.
SUFFIXES = (".fits", ".parquet", ".ecsv", ".asdf", ".reg", ".md", ".txt")

_PARQUET_WHERE = f"Parquet metadata {PARQUET_META_KEY.decode()!r}"


@dataclasses.dataclass
class Source:
    """What a reader takes from a product file before the model is made.

    Attributes
    ----------
    headers : mapping
        Headers by HDU name (``PRIMARY`` at least); a FITS file's are parsed on first use.
    tree : dict, optional
        The tree of an ASDF manifest.
    text : str, optional
        The whole text of a DS9 region file or README.
    """

    headers: MutableMapping[str, fits.Header]
    tree: dict[str, Any] | None = None
    text: str | None = None


def read_source(path: Path) -> Source:
    """Headers (and tree or text) of a product file, read within bounds.

    Anything but a regular file is refused before it is opened, sizes are capped, FITS
    structure is checked first, and every error of the underlying libraries becomes one
    :class:`ProductError` line.

    Raises
    ------
    ProductError
        If the file is missing, not a regular file, of an unknown type or not readable.
    """
    suffix = path.suffix.lower()
    regular_file(path)
    if suffix not in SUFFIXES:
        raise ProductError(f"{path.name}: unknown product file type {suffix!r}")
    name = path.name
    if suffix == ".fits":  # the primary header is parsed by astropy when it is used
        return Source(LayoutHeaders({"PRIMARY": fitsscan.scan_file(path)[0]}))
    if suffix == ".parquet":
        return Source({"PRIMARY": _header_from_dict(_parquet_meta(path), name, _PARQUET_WHERE)})
    if suffix == ".ecsv":
        return Source({"PRIMARY": _header_from_dict(_ecsv_meta(path), name, "ECSV header")})
    if suffix == ".asdf":
        tree = read_tree(path)
        hdr = fits.Header()
        for key in ("ppschema", "ppschver"):
            value = tree.get(key, "")
            if not isinstance(value, str) or not (value.isascii() and value.isprintable()):
                raise ProductError(f"{name}: ASDF tree: {key} is not a plain ASCII string")
            hdr[key.upper()] = value
        return Source({"PRIMARY": hdr}, tree=tree)
    text = read_text(path, what=f"{suffix} file")
    return Source({"PRIMARY": _parse_comment_meta(text.splitlines()[:12], name)}, text=text)


def _parse_comment_meta(lines: Iterable[str], file: str) -> fits.Header:
    """Keywords from leading ``# KEY = value`` or ``<!-- KEY = value -->`` lines."""
    hdr = fits.Header()
    for number, line in enumerate(lines, start=1):
        body = line.strip()
        if body.startswith("<!--") and body.endswith("-->"):
            body = body[4:-3].strip()
        elif body.startswith("#"):
            body = body[1:].strip()
        else:
            break
        key, sep, value = body.partition(" = ")
        if sep and key.isupper() and len(key) <= 8:
            _set_keyword(hdr, key, value.strip(), file, f"line {number}")
    return hdr


def _set_keyword(hdr: fits.Header, key: str, value: Any, file: str, where: str) -> None:
    with reading(file, f"{where} keyword {key}", "not a FITS header keyword and value"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hdr[key] = value


def _header_from_dict(values: Mapping[str, Any], file: str, where: str) -> fits.Header:
    hdr = fits.Header()
    for key, value in values.items():
        if not isinstance(key, str):
            raise ProductError(f"{file}: {where}: keyword {key!r} is not a string")
        if isinstance(value, (str, int, float, bool)):
            _set_keyword(hdr, key, value, file, where)
    return hdr


def _parquet_meta(path: Path) -> dict[str, Any]:
    """The keyword values a Parquet catalog keeps in its Arrow schema metadata."""
    import pyarrow.parquet as pq

    with reading(path.name, "", "not a readable Parquet file"):
        md = pq.read_schema(path).metadata or {}
    if PARQUET_META_KEY not in md:
        raise ProductError(f"{path.name}: Parquet metadata has no phangs_products entry")
    try:
        doc = json.loads(md[PARQUET_META_KEY])
    except (ValueError, RecursionError) as exc:
        raise ProductError(f"{path.name}: {_PARQUET_WHERE}: not JSON ({describe(exc)})") from None
    meta = doc.get("meta") if isinstance(doc, dict) else None
    if not isinstance(meta, dict):
        got = f"a JSON {type(doc).__name__}" if not isinstance(doc, dict) else _kind(meta)
        raise ProductError(
            f"{path.name}: {_PARQUET_WHERE}: expected a JSON object with a 'meta' object "
            f"(got {got})"
        )
    return meta


def _kind(value: Any) -> str:
    return "no 'meta'" if value is None else f"'meta' as a {type(value).__name__}"


def _ecsv_meta(path: Path) -> dict[str, Any]:
    """The ``meta`` mapping of an ECSV file's YAML header (size-capped, aliases refused)."""
    name = path.name
    raw = bytearray()
    with open_regular(path) as fh:
        while True:
            line = fh.readline(MAX_HEADER_BYTES + 1 - len(raw))
            if not line.startswith(b"#"):
                break
            raw += line
            if len(raw) > MAX_HEADER_BYTES:
                raise ProductError(f"{name}: ECSV header is longer than {MAX_HEADER_BYTES} bytes")
    lines = decode_text(bytes(raw), name).splitlines()
    if not lines or not lines[0].lstrip("# ").startswith("%ECSV"):
        raise ProductError(f"{name}: line 1: expected '# %ECSV <version>' (not an ECSV file)")
    # the YAML starts on line 2: an empty first line keeps the line numbers of the file
    yaml_text = "\n".join(["", *(ln[2:] if ln.startswith("# ") else ln[1:] for ln in lines[1:])])
    doc = load_yaml(yaml_text, name, "ECSV header")
    if not isinstance(doc, dict) or not isinstance(doc.get("datatype"), list):
        got = f"a {type(doc).__name__}" if not isinstance(doc, dict) else "no 'datatype' list"
        raise ProductError(
            f"{name}: ECSV header: expected a YAML mapping with a 'datatype' list (got {got})"
        )
    meta = doc.get("meta", {})
    if isinstance(meta, list):  # !!omap loads as a list of pairs
        if not all(isinstance(item, tuple | list) and len(item) == 2 for item in meta):
            raise ProductError(f"{name}: ECSV header: 'meta' is a list, not a mapping")
        meta = dict(meta)
    if not isinstance(meta, dict):
        raise ProductError(f"{name}: ECSV header: 'meta' is a {type(meta).__name__}, not a mapping")
    return meta


def _primary_values(source: Source) -> Mapping[str, Any]:
    headers = source.headers
    if isinstance(headers, LayoutHeaders):
        return headers.values_of("PRIMARY") or {}
    return headers["PRIMARY"]


def _schema_from(meta: Mapping[str, Any], path: Path) -> ProductSchema:
    name, version = meta.get("PPSCHEMA"), meta.get("PPSCHVER")
    if not name or not version:
        from phangs_products.legacy import expected_names

        raise ProductError(
            f"{path.name}: header has no PPSCHEMA/PPSCHVER keywords; not a phangs-products file "
            f"nor named like a historical product ({expected_names()})"
        )
    try:
        return get_schema(str(name), str(version))
    except SchemaError:
        raise ProductError(
            f"{path.name}: records schema {name}-{version}, which this version of "
            "phangs-products does not know"
        ) from None


def read_meta(path: str | Path) -> Meta:
    """Header-only read: the primary keywords of a product, with schema attribute access.

    FITS files have their structure checked first (:mod:`phangs_products.fitsscan`): every
    header is read, none of the data.

    Raises
    ------
    ProductError
        If the file cannot be read or records no (known) schema.
    """
    path = Path(path)
    from phangs_products.legacy import open_historical  # the legacy readers use this module

    # a historical file is recognised by its name first; it must be a regular file to be read
    regular_file(path)
    historical = open_historical(path)
    if historical is not None:  # headers only: tables and arrays are never touched
        return historical.meta
    source = read_source(path)
    schema = _schema_from(_primary_values(source), path)
    return meta_class(schema)(source.headers)


def open(path: str | Path, strict: bool = False, masked: bool | None = None) -> Model:
    """Open a phangs-products file and return its typed model.

    Only headers are read; arrays and tables load on first access.  The file is validated
    against the schema version it records: with ``strict=False`` (default) problems produce one
    summary :class:`ProductValidationWarning`; with ``strict=True`` they raise
    :class:`ValidationError`.  A file whose structure is broken (truncated, impossible header
    values, not a regular file) raises :class:`ProductError` either way.  Historical files
    without PPSCHEMA/PPSCHVER (PHANGS-HST v1 images, PHANGS-CAT DR4 and LEGUS catalogs) are
    recognised by name and content and read as today's model (:mod:`phangs_products.legacy`;
    ``model.meta.legacy`` says which layout).

    Parameters
    ----------
    path : path-like
        ``.fits``, ``.parquet``, ``.ecsv``, ``.reg``, ``.md`` or ``.asdf`` product, or a
        historical ``.fits``/``.tab`` product.
    strict : bool
        Raise on schema problems instead of warning.
    masked : bool, optional
        Catalog tables with sentinel entries masked (astropy MaskedColumn whose fill value is
        the sentinel), the default for every catalog; False gives the stored values (code that
        computes on a catalog and writes it again passes False).

    Raises
    ------
    ProductError
        If the file is not a readable product.
    """
    path = Path(path)
    from phangs_products.legacy import open_historical  # the legacy readers use this module

    regular_file(path)  # before the name-based historical detection opens anything
    historical = open_historical(path, strict=strict, masked=masked)
    if historical is not None:
        return historical
    masked = True if masked is None else masked
    if path.suffix.lower() == ".fits":
        schema, headers, problems = _open_fits(path)
        model = _new_model(schema, headers, path, masked)
    else:
        source = read_source(path)
        schema = _schema_from(_primary_values(source), path)
        model = new_model(schema, source, path, masked)
        problems = _read_problems(model, path)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        if strict:
            raise ValidationError(errors)
        warnings.warn(
            f"{path.name}: {len(errors)} schema problem(s), first: {errors[0]} "
            "(open with strict=True to raise, or run phangs-products validate)",
            ProductValidationWarning,
            stacklevel=2,
        )
    return model


def _new_model(
    schema: ProductSchema,
    headers: MutableMapping[str, fits.Header],
    path: Path,
    masked: bool | None,
) -> Model:
    model = _KIND_CLASSES[schema.kind](schema, headers, path)
    if masked and isinstance(model, CatalogModel):
        model.masked = True
    return model


def new_model(
    schema: ProductSchema, source: Source, path: Path, masked: bool | None = None
) -> Model:
    """The model of a non-FITS product from what :func:`read_source` read."""
    model = _new_model(schema, source.headers, path, masked)
    if isinstance(model, ManifestModel):
        model.tree = source.tree or {}
    if isinstance(model, TextModel):
        model.text = source.text or ""
    return model


def _open_fits(path: Path) -> tuple[ProductSchema, LayoutHeaders, list[Problem]]:
    """Check the structure and the schema keywords, from the header bytes the scan read.

    The scan's layout stands in for the ``HDUList`` (headers only): the schema's keywords
    are parsed from the header bytes as the checks ask for them, astropy parses a header only
    when the model's ``meta.headers`` are used, and the data stay unread until a model's
    ``data`` or ``table`` is.
    """
    layout = fitsscan.scan_file(path)
    with reading(path.name, "", "cannot parse the headers"):
        schema = _schema_from(layout[0].values, path)
        hdus = conformance.schema_hdus(schema, layout)
        headers = LayoutHeaders({name: hdu for (name, ver), hdu in hdus.items() if ver == 1})
        problems = conformance.check_hdul(schema, layout, file=path.name, data=False)
    return schema, headers, problems


def _read_problems(model: Model, path: Path) -> list[Problem]:
    """Schema problems of a non-FITS product (header-level; catalogs as stored)."""
    return model.problems(data=False)

"""Open any product file: detect its schema from the header and return the typed model."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from astropy.io import fits

from phangs_products import conformance
from phangs_products.errors import Problem, ProductError, SchemaError, ValidationError
from phangs_products.models.base import Model, ProductValidationWarning
from phangs_products.models.catalog import PARQUET_META_KEY, CatalogModel
from phangs_products.models.image import FlcModel, ImageModel
from phangs_products.models.meta import Meta, meta_class
from phangs_products.models.text import (
    ManifestModel,
    ReadmeModel,
    RegionsModel,
    TextModel,
)
from phangs_products.registry import get_schema
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


def _parse_comment_meta(lines: Iterable[str]) -> fits.Header:
    """Keywords from leading ``# KEY = value`` or ``<!-- KEY = value -->`` lines."""
    hdr = fits.Header()
    for line in lines:
        body = line.strip()
        if body.startswith("<!--") and body.endswith("-->"):
            body = body[4:-3].strip()
        elif body.startswith("#"):
            body = body[1:].strip()
        else:
            break
        key, sep, value = body.partition(" = ")
        if sep and key.isupper() and len(key) <= 8:
            hdr[key] = value.strip()
    return hdr


def check_complete(hdus: Iterable[Any], path: Path) -> None:
    """Raise :class:`ProductError` when the file is shorter than these HDUs' headers announce.

    Checks the HDUs given (the ones already read); CHECKSUM/DATASUM verification in
    ``validate`` covers the rest of the file.
    """
    size = path.stat().st_size
    if size % 2880:
        raise ProductError(
            f"{path.name}: truncated file: {size} bytes is not a whole number "
            "of 2880-byte FITS blocks"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for index, hdu in enumerate(hdus):
            info = hdu.fileinfo()
            if info is None:
                continue
            end = info["datLoc"] + info["datSpan"]
            if end > size:
                raise ProductError(
                    f"{path.name}: truncated file: HDU {index} needs {end} bytes, "
                    f"the file has {size}"
                )


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


def _read_fits_header(path: Path) -> fits.Header:
    try:
        return fits.getheader(path, 0)
    except OSError as exc:
        raise ProductError(f"{path.name}: not a readable FITS file ({exc})") from None


def read_meta(path: str | Path) -> Meta:
    """Header-only read: the primary keywords of a product, with schema attribute access.

    Raises
    ------
    ProductError
        If the file cannot be read or records no (known) schema.
    """
    path = Path(path)
    from phangs_products.legacy import open_historical  # the legacy readers use this module

    historical = open_historical(path)
    if historical is not None:  # headers only: tables and arrays are never touched
        return historical.meta
    headers = _read_headers(path)
    schema = _schema_from(headers["PRIMARY"], path)
    return meta_class(schema)(headers)


def _read_headers(path: Path) -> dict[str, fits.Header]:
    if not path.exists():
        raise ProductError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".fits":
        return {"PRIMARY": _read_fits_header(path)}
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            md = pq.read_schema(path).metadata or {}
        except Exception as exc:
            raise ProductError(f"{path.name}: not a readable Parquet file ({exc})") from None
        if PARQUET_META_KEY not in md:
            raise ProductError(f"{path.name}: Parquet metadata has no phangs_products entry")
        doc = json.loads(md[PARQUET_META_KEY])
        return {"PRIMARY": _header_from_dict(doc["meta"])}
    if suffix == ".ecsv":
        import yaml

        lines = []
        with path.open() as fh:
            for line in fh:
                if not line.startswith("#"):
                    break
                lines.append(line[2:] if line.startswith("# ") else line[1:])
        try:
            doc = yaml.safe_load("".join(lines[1:])) or {}
        except yaml.YAMLError as exc:
            raise ProductError(f"{path.name}: ECSV header is not valid YAML ({exc})") from None
        meta = doc.get("meta", {})
        if isinstance(meta, list):  # !!omap loads as a list of pairs
            meta = dict(meta)
        return {"PRIMARY": _header_from_dict(meta)}
    if suffix == ".asdf":
        import asdf

        try:
            with asdf.open(path, lazy_load=False) as af:
                tree = {k: v for k, v in af.tree.items() if not k.startswith("asdf")}
        except Exception as exc:
            raise ProductError(f"{path.name}: not a readable ASDF file ({exc})") from None
        hdr = fits.Header()
        hdr["PPSCHEMA"] = tree.get("ppschema", "")
        hdr["PPSCHVER"] = tree.get("ppschver", "")
        return {"PRIMARY": hdr, "_tree": tree}  # type: ignore[dict-item]
    if suffix in (".reg", ".md", ".txt"):
        with path.open() as fh:
            head = [next(fh, "") for _ in range(12)]
        return {"PRIMARY": _parse_comment_meta(head)}
    raise ProductError(f"{path.name}: unknown product file type {suffix!r}")


def _header_from_dict(values: Mapping[str, Any]) -> fits.Header:
    hdr = fits.Header()
    for key, value in values.items():
        if isinstance(value, (str, int, float, bool)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                hdr[key] = value
    return hdr


def open(path: str | Path, strict: bool = False, masked: bool | None = None) -> Model:
    """Open a phangs-products file and return its typed model.

    Only headers are read; arrays and tables load on first access.  The file is validated
    against the schema version it records: with ``strict=False`` (default) problems produce one
    summary :class:`ProductValidationWarning`; with ``strict=True`` they raise
    :class:`ValidationError`.  Historical files without PPSCHEMA/PPSCHVER (PHANGS-HST v1 images,
    PHANGS-CAT DR4 and LEGUS catalogs) are recognised by name and content and read as today's
    model (:mod:`phangs_products.legacy`; ``model.meta.legacy`` says which layout).

    Parameters
    ----------
    path : path-like
        ``.fits``, ``.parquet``, ``.ecsv``, ``.reg``, ``.md`` or ``.asdf`` product, or a
        historical ``.fits``/``.tab`` product.
    strict : bool
        Raise on schema problems instead of warning.
    masked : bool, optional
        Catalog tables with sentinel entries masked (astropy MaskedColumn); False gives the
        stored values.  Default: masked for historical products, stored values for
        phangs-products catalogs.

    Raises
    ------
    ProductError
        If the file is not a readable product.
    """
    path = Path(path)
    from phangs_products.legacy import open_historical  # the legacy readers use this module

    historical = open_historical(path, strict=strict, masked=masked)
    if historical is not None:
        return historical
    if path.suffix.lower() == ".fits":
        schema, headers, problems = _open_fits(path)
        model = _new_model(schema, headers, path, masked)
    else:
        headers = _read_headers(path)
        schema = _schema_from(headers["PRIMARY"], path)
        tree = headers.pop("_tree", None)  # type: ignore[call-overload]
        model = _new_model(schema, headers, path, masked)
        if isinstance(model, ManifestModel):
            model.tree = tree or {}
        if isinstance(model, TextModel):
            model.text = path.read_text()
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
    schema: ProductSchema, headers: dict[str, fits.Header], path: Path, masked: bool | None
) -> Model:
    model = _KIND_CLASSES[schema.kind](schema, headers, path)
    if masked and isinstance(model, CatalogModel):
        model.masked = True
    return model


def _open_fits(path: Path) -> tuple[ProductSchema, dict[str, fits.Header], list[Problem]]:
    """Read every header of a FITS product once, check it, and close the file."""
    if not path.exists():
        raise ProductError(f"{path}: no such file")
    try:
        with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
            schema = _schema_from(hdul[0].header, path)
            hdus = conformance.schema_hdus(schema, hdul)
            check_complete(hdus.values(), path)
            headers = {name: hdu.header for (name, ver), hdu in hdus.items() if ver == 1}
            problems = conformance.check_hdul(schema, hdul, file=path.name, data=False)
    except (OSError, ValueError, TypeError) as exc:
        raise ProductError(f"{path.name}: not a readable FITS file ({exc})") from None
    return schema, headers, problems


def _read_problems(model: Model, path: Path) -> list[Problem]:
    """Schema problems of a non-FITS product (header-level)."""
    schema = model.schema
    if isinstance(model, CatalogModel):
        problems = conformance.check_keywords(
            schema, "PRIMARY", model.meta.header(), bands=model.bands, file=path.name
        )
        cols = [
            (c, model.table[c].dtype, str(model.table[c].unit or "") or None)
            for c in model.table.colnames
        ]
        return problems + conformance.check_columns(schema, cols, bands=model.bands, file=path.name)
    return model.problems(data=False)

"""The schema registry: finds, checks and resolves the versioned product schemas.

Schemas ship inside the package (``phangs_products.schemas``) as ``<area>/<name>-X.Y.Z.yaml``.
``schemas/manifest.yaml`` names the current version of every schema;
``schemas/released.lock`` holds the SHA-256 of every released file, which must never change.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import yaml
from referencing.jsonschema import DRAFT202012

from phangs_products.errors import SchemaError
from phangs_products.spec import (
    ArraySpec,
    ColumnSpec,
    KeywordSpec,
    ProductSchema,
    split_schema_id,
)

__all__ = [
    "SCHEMA_URI_BASE",
    "config_schema_id",
    "current_version",
    "get_schema",
    "is_config_schema",
    "list_schemas",
    "load_document",
    "metaschema",
    "referencing_registry",
    "schema_files",
    "schemas_root",
]

SCHEMA_URI_BASE = "https://phangs-products.org/schemas/"
#: libyaml's safe loader when PyYAML was built with it (same documents, several times faster).
YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_KEYWORD_RULE_KEYS = (
    "type",
    "enum",
    "const",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "minLength",
    "maxLength",
)


def schemas_root() -> Path:
    """Folder of the installed schema files."""
    return Path(str(resources.files("phangs_products.schemas")))


@functools.cache
def schema_files() -> dict[str, Path]:
    """Every schema file by its id (``name-X.Y.Z``)."""
    out: dict[str, Path] = {}
    for path in sorted(schemas_root().rglob("*-*.*.*.yaml")):
        out[path.stem] = path
    return out


@functools.cache
def load_document(schema_id: str) -> dict[str, Any]:
    """The raw YAML document of a schema.

    Raises
    ------
    SchemaError
        If no schema has that id, or the file's ``id`` does not match its name.
    """
    files = schema_files()
    if schema_id not in files:
        raise SchemaError(f"unknown schema {schema_id!r} (known: {', '.join(sorted(files))})")
    path = files[schema_id]
    with path.open() as fh:
        doc = yaml.load(fh, Loader=YAML_LOADER)
    if doc.get("id") != schema_id:
        raise SchemaError(f"{path.name}: id {doc.get('id')!r} does not match the file name")
    return doc


@functools.cache
def _manifest() -> dict[str, str]:
    with (schemas_root() / "manifest.yaml").open() as fh:
        return dict(yaml.safe_load(fh)["current"])


@functools.cache
def _config_manifest() -> dict[str, str]:
    with (schemas_root() / "manifest.yaml").open() as fh:
        return dict(yaml.safe_load(fh).get("config", {}))


def config_schema_id(name: str = "run-config") -> str:
    """Id of the current version of a configuration schema (``run-config-1.3.0``).

    Raises
    ------
    SchemaError
        If ``name`` is not a configuration schema.
    """
    try:
        return f"{name}-{_config_manifest()[name]}"
    except KeyError:
        raise SchemaError(
            f"unknown configuration schema {name!r} (known: {', '.join(_config_manifest())})"
        ) from None


def is_config_schema(name: str) -> bool:
    """Whether ``name`` (or ``name-X.Y.Z``) is a configuration schema, not a product's."""
    try:
        name = split_schema_id(name)[0]
    except ValueError:
        pass
    return name in _config_manifest()


def current_version(name: str) -> str:
    """Current version of schema ``name`` (from ``schemas/manifest.yaml``)."""
    try:
        return _manifest()[name]
    except KeyError:
        raise SchemaError(
            f"unknown schema name {name!r} (known: {', '.join(sorted(_manifest()))})"
        ) from None


def list_schemas() -> list[tuple[str, str, bool]]:
    """``(name, version, is_current)`` for every schema file."""
    out = []
    for schema_id in schema_files():
        name, version = split_schema_id(schema_id)
        current = _manifest().get(name, _config_manifest().get(name))
        out.append((name, version, current == version))
    return sorted(out)


@functools.cache
def metaschema() -> dict[str, Any]:
    """The newest phangs-products metaschema document.

    Metaschema versions only add keywords, so the newest one accepts every document an older
    one accepts; all schema files are checked against it.
    """
    versions = [split_schema_id(i)[1] for i in schema_files() if i.startswith("metaschema-")]
    newest = max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))
    return load_document(f"metaschema-{newest}")


@functools.cache
def referencing_registry() -> referencing.Registry:
    """A :mod:`referencing` registry holding every schema by its ``$id``."""
    resources_ = []
    for schema_id in schema_files():
        doc = load_document(schema_id)
        resources_.append((doc["$id"], DRAFT202012.create_resource(doc)))
    return referencing.Registry().with_resources(resources_)


def check_document(schema_id: str) -> list[str]:
    """Validate a schema document against the metaschema; one message per problem."""
    doc = load_document(schema_id)
    validator = jsonschema.Draft202012Validator(metaschema(), registry=referencing_registry())
    problems = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in err.absolute_path) or "(top)"
        problems.append(f"{schema_id}: {where}: {err.message}")
    return problems


def _fragment_id(ref: str) -> str:
    if not ref.startswith(SCHEMA_URI_BASE):
        raise SchemaError(f"$ref {ref!r} is not a phangs-products schema")
    return ref[len(SCHEMA_URI_BASE) :]


def _keywords(props: dict[str, Any], default_hdu: str) -> list[KeywordSpec]:
    out = []
    for name, entry in props.items():
        out.append(
            KeywordSpec(
                name=name,
                fits_keyword=entry["fits_keyword"],
                fits_hdu=entry.get("fits_hdu", default_hdu),
                title=entry["title"],
                description=entry["description"],
                mast=entry["mast"],
                unit=entry.get("unit"),
                per_band=bool(entry.get("per_band", False)),
                rules={k: entry[k] for k in _KEYWORD_RULE_KEYS if k in entry},
                not_simulated=bool(entry.get("not_simulated", False)),
            )
        )
    return out


def _collect_keywords(meta: dict[str, Any], default_hdu: str = "PRIMARY") -> list[KeywordSpec]:
    """Flatten ``meta`` (``allOf`` fragments, then own ``properties``) into keyword specs."""
    out: list[KeywordSpec] = []
    for part in meta.get("allOf", []):
        fragment = load_document(_fragment_id(part["$ref"]))
        out.extend(_collect_keywords(fragment, part.get("fits_hdu", default_hdu)))
    out.extend(_keywords(meta.get("properties", {}), default_hdu))
    return out


@functools.cache
def get_schema(name: str, version: str | None = None) -> ProductSchema:
    """Load and resolve a product schema.

    Parameters
    ----------
    name : str
        Schema name (``drc-sci``) or full id (``drc-sci-1.0.0``).
    version : str, optional
        ``X.Y.Z``; the current version when omitted.

    Raises
    ------
    SchemaError
        If the schema or version is unknown, or the document is not valid against the
        metaschema.
    """
    if version is None:
        try:
            name, version = split_schema_id(name)
        except ValueError:
            version = current_version(name)
    schema_id = f"{name}-{version}"
    doc = load_document(schema_id)
    problems = check_document(schema_id)
    if problems:
        raise SchemaError("; ".join(problems))
    meta = doc.get("properties", {}).get("meta", {})
    keywords = _collect_keywords(meta)
    seen: dict[str, KeywordSpec] = {}
    for kw in keywords:
        if kw.name in seen:
            raise SchemaError(f"{schema_id}: keyword attribute {kw.name!r} defined twice")
        seen[kw.name] = kw
    columns = tuple(
        ColumnSpec(
            name=c["name"],
            title=c["title"],
            description=c["description"],
            dtype=c["dtype"],
            mast=c["mast"],
            unit=c.get("unit"),
            sentinel=c.get("sentinel"),
            per_band=bool(c.get("per_band", False)),
            format=c.get("format"),
            minimum=c.get("minimum"),
            maximum=c.get("maximum"),
            enum=tuple(c["enum"]) if "enum" in c else None,
            historical=c.get("historical"),
            exclusive_minimum=c.get("exclusiveMinimum"),
            exclusive_maximum=c.get("exclusiveMaximum"),
            unique=bool(c.get("unique", False)),
            min_finite_fraction=c.get("min_finite_fraction"),
        )
        for c in doc.get("columns", [])
    )
    arrays = {
        key: ArraySpec(
            name=key,
            title=a["title"],
            description=a["description"],
            fits_hdu=a["fits_hdu"],
            dtype=a["dtype"],
            ndim=a["ndim"],
            unit=a.get("unit"),
            extvers=tuple(a.get("extvers", [1])),
            mast=a.get("mast", "required"),
            sentinel=a.get("sentinel"),
            minimum=a.get("minimum"),
            exclusive_minimum=a.get("exclusiveMinimum"),
            maximum=a.get("maximum"),
            min_finite_fraction=a.get("min_finite_fraction"),
            labels_in=(a["labels_in"]["product"], a["labels_in"]["column"])
            if "labels_in" in a
            else None,
        )
        for key, a in doc.get("arrays", {}).items()
    }
    return ProductSchema(
        id=schema_id,
        title=doc["title"],
        description=doc["description"],
        document=doc,
        keywords=tuple(keywords),
        columns=columns,
        arrays=arrays,
        path=str(schema_files()[schema_id]),
    )


def product_schemas() -> list[ProductSchema]:
    """The current version of every product schema (fragments and metaschema excluded)."""
    return [get_schema(name) for name in sorted(_manifest())]

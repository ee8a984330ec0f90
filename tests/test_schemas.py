"""Schema hygiene, metaschema conformance and the frozen-schema lock."""

from __future__ import annotations

import hashlib
from collections import Counter

import astropy.units as u
import numpy as np
import pytest

from phangs_products import get_schema
from phangs_products.conformance import HST_CONVENTION_UNITS
from phangs_products.errors import SchemaError
from phangs_products.registry import (
    check_document,
    current_version,
    load_document,
    product_schemas,
    schema_files,
    schemas_root,
)
from phangs_products.spec import NUMPY_DTYPES, BandInfo

ALL_IDS = sorted(schema_files())
PRODUCTS = [s.id for s in product_schemas()]
BANDS = (BandInfo("F275W"), BandInfo("F555W"))


@pytest.mark.parametrize("schema_id", ALL_IDS)
def test_every_schema_file_is_valid_against_the_metaschema(schema_id):
    assert check_document(schema_id) == []


def test_metaschema_catches_a_typo():
    import copy

    import jsonschema

    from phangs_products.registry import metaschema, referencing_registry

    doc = copy.deepcopy(load_document("drc-sci-1.0.0"))
    doc["properties"]["meta"]["properties"]["bunit"]["fits_keywrd"] = "BUNIT"
    validator = jsonschema.Draft202012Validator(metaschema(), registry=referencing_registry())
    messages = [e.message for e in validator.iter_errors(doc)]
    assert any("fits_keywrd" in m for m in messages)


@pytest.mark.parametrize("schema_id", PRODUCTS)
def test_keyword_hygiene(schema_id):
    schema = get_schema(schema_id)
    seen = Counter((k.fits_hdu, k.fits_keyword) for k in schema.keywords)
    assert [k for k, n in seen.items() if n > 1] == [], "duplicate (HDU, keyword)"
    for kw in schema.keywords:
        assert kw.title and kw.description, kw.name
        for name in kw.expand(BANDS):
            assert len(name) <= 8, f"{name} is longer than 8 characters"
        if kw.unit:
            assert _fits_unit(kw.unit), f"{kw.fits_keyword}: {kw.unit!r} is not a FITS unit"


def _fits_unit(unit: str) -> bool:
    if unit in HST_CONVENTION_UNITS:
        return True
    u.Unit(unit, format="fits")
    return True


@pytest.mark.parametrize("schema_id", PRODUCTS)
def test_column_and_array_hygiene(schema_id):
    schema = get_schema(schema_id)
    names = [c.name for c in schema.expand_columns(BANDS)]
    assert len(names) == len(set(names)), "column names not unique"
    for col in schema.expand_columns(BANDS):
        assert col.title and col.description
        if col.unit:
            assert _fits_unit(col.unit)
        if col.sentinel is not None:
            assert col.dtype != "string"
            dtype = NUMPY_DTYPES[col.dtype]
            value = np.array(col.sentinel).astype(dtype)
            assert value == col.sentinel, f"{col.name}: sentinel {col.sentinel} != {dtype}"
    for arr in schema.arrays.values():
        assert arr.title and arr.description
        if arr.unit:
            assert _fits_unit(arr.unit)


@pytest.mark.parametrize("schema_id", PRODUCTS)
def test_product_type_respects_mast_limit(schema_id):
    schema = get_schema(schema_id)
    pattern = schema.product["product_type"]
    variants = schema.product.get("variants", {})
    longest = pattern
    for key, values in variants.items():
        longest = longest.replace("{" + key + "}", max(values, key=len))
    longest = longest.replace("{rootname}", "x" * 9)
    assert len(longest) <= 16, f"{longest} is longer than 16 characters"


def test_released_schema_files_are_frozen():
    lock = schemas_root() / "released.lock"
    entries = {}
    for line in lock.read_text().splitlines():
        if line and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            entries[name] = digest
    files = {
        p.relative_to(schemas_root()).as_posix(): p
        for p in schemas_root().rglob("*.yaml")
        if p.name != "manifest.yaml"
    }
    assert set(files) == set(entries), "schema files and released.lock disagree"
    for name, path in files.items():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == entries[name], f"{name} changed after release: make a new version"


def test_manifest_names_existing_versions():
    for schema in product_schemas():
        assert schema.version == current_version(schema.name)


def test_unknown_schema_is_a_clear_error():
    with pytest.raises(SchemaError, match="unknown schema 'drc-sci-9.9.9'"):
        get_schema("drc-sci", "9.9.9")

"""File-name checks: the MAST naming rules, README naming, and name-vs-header agreement."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from phangs_products.errors import Problem
from phangs_products.naming import (
    _split_extension,
    catalog_target,
    check_name,
    image_target,
)
from phangs_products.spec import ProductSchema

__all__ = ["check_file_name", "check_name_header", "check_readme_name", "name_fields"]

_KEYS = ("hlsp", "proj_id", "observatory", "instrument", "target", "opt_elem", "version")


def check_file_name(name: str) -> list[Problem]:
    """Every MAST naming rule the file name breaks (:func:`phangs_products.naming.check_name`)."""
    return check_name(name)


def name_fields(name: str) -> dict[str, str] | None:
    """The nine fields of a well-formed HLSP name, or ``None`` if it breaks a naming rule."""
    if any(p.severity == "error" for p in check_name(name)):
        return None
    stem, ext = _split_extension(name)
    parts = stem.split("_")
    if len(parts) != 8:
        return None
    fields = dict(zip(_KEYS, parts[:7], strict=True))
    fields["product_type"] = parts[7]
    fields["extension"] = ext
    return fields


def _type_regex(schema: ProductSchema) -> re.Pattern[str]:
    pattern = re.escape(schema.product.get("product_type", ""))
    pattern = re.sub(r"\\\{\w+\\\}", "[a-z0-9-]+", pattern)
    return re.compile(f"^{pattern}$")


def check_name_header(
    name: str,
    values: Mapping[str, Any],
    field: str,
    schema: ProductSchema | None,
) -> list[Problem]:
    """Agreement of a well-formed name with the file's own keywords and its field folder.

    Parameters
    ----------
    name : str
        File name.
    values : mapping
        Primary keywords of the file (``HLSPVER``, ``HLSPTARG``, ``HLSPID``, ``FILTER``).
    field : str
        Field folder name; the name's target must be this field (zero-padded for catalogs).
    schema : ProductSchema, optional
        Schema the file records (for the product type and the filter field).

    Returns
    -------
    list of Problem
        ``consistency.*`` problems; none for a name that breaks a naming rule (those are
        reported by :func:`check_file_name` already).
    """
    fields = name_fields(name)
    if fields is None:
        return []
    sid = schema.id if schema else ""
    out: list[Problem] = []

    def add(rule: str, message: str, where: str = "") -> None:
        out.append(Problem(rule, message, name, sid, where))

    def compare(key: str, rule: str, got: str, label: str) -> None:
        value = values.get(key)
        if value is None:
            return  # keyword.missing reports it
        if str(value).strip().lower() != got:
            add(
                rule, f"{key} is {value!r} but the file name's {label} is {got!r}", f"keyword {key}"
            )

    compare("HLSPVER", "consistency.version", fields["version"], "version")
    compare("HLSPTARG", "consistency.target", fields["target"], "target")
    compare("HLSPID", "consistency.collection", fields["proj_id"], "proj-id")
    want = {image_target(field), catalog_target(field)}
    if field and fields["target"] not in want:
        add(
            "consistency.field",
            f"target {fields['target']!r} is not the field of folder {field!r} "
            f"(expected one of {sorted(want)})",
        )
    if schema is None:
        return out
    product = schema.product
    if fields["proj_id"] != product.get("collection", fields["proj_id"]):
        add(
            "consistency.collection",
            f"proj-id {fields['proj_id']!r} but {schema.name} products belong to "
            f"{product.get('collection')!r}",
        )
    if product.get("kind") not in ("readme", "manifest") and not _type_regex(schema).match(
        fields["product_type"]
    ):
        add(
            "consistency.product-type",
            f"product type {fields['product_type']!r} does not fit the schema pattern "
            f"{product.get('product_type')!r}",
        )
    if product.get("filter_field") == "band" and values.get("FILTER") is not None:
        compare("FILTER", "consistency.filter", fields["opt_elem"], "filter")
    return out


def check_readme_name(readme_names: list[str], expected: str) -> list[Problem]:
    """The README of a field folder carries the expected name (one README, exactly named)."""
    out = []
    for name in readme_names:
        if name != expected:
            out.append(
                Problem(
                    "name.readme",
                    f"README is named {name!r} (expected {expected!r})",
                    name,
                    "readme",
                )
            )
    return out

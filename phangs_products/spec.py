"""Typed views of a product schema: keywords, columns, arrays and the product block.

A schema file (YAML) is the single source of truth.  :mod:`phangs_products.registry` loads it,
resolves the ``$ref`` fragments and hands out one :class:`ProductSchema` per schema version.
Everything else (models, writers, the validator, the documentation) reads these objects.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ArraySpec",
    "BandInfo",
    "Bounds",
    "ColumnSpec",
    "KeywordSpec",
    "ProductSchema",
    "split_schema_id",
]

_ID_RE = re.compile(r"^(?P<name>[a-z0-9-]+)-(?P<version>[0-9]+\.[0-9]+\.[0-9]+)$")

#: numpy dtypes of the schema's dtype names.
NUMPY_DTYPES: dict[str, np.dtype] = {
    "bool": np.dtype(bool),
    "uint8": np.dtype(np.uint8),
    "int16": np.dtype(np.int16),
    "int32": np.dtype(np.int32),
    "int64": np.dtype(np.int64),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}


def split_schema_id(schema_id: str) -> tuple[str, str]:
    """Split ``'name-X.Y.Z'`` into ``('name', 'X.Y.Z')``.

    Raises
    ------
    ValueError
        If the id does not have that form.
    """
    match = _ID_RE.match(schema_id)
    if match is None:
        raise ValueError(f"schema id {schema_id!r} is not of the form <name>-<X.Y.Z>")
    return match["name"], match["version"]


@dataclass(frozen=True)
class BandInfo:
    """One band of a multi-band product: filter plus instrument/detector."""

    filter: str
    instrument: str = "WFC3/UVIS"

    @property
    def label(self) -> str:
        """PHANGS band label (NUV, U, B, V, I) from the shipped band table."""
        from phangs_products.bands import band_label

        return band_label(self.filter, self.instrument)


def _expand(template: str, index: int, band: BandInfo) -> str:
    return template.replace("{nn}", f"{index:02d}").replace("{FILTER}", band.filter)


@dataclass(frozen=True)
class KeywordSpec:
    """A header keyword of a product.

    Attributes
    ----------
    name : str
        Python attribute name on ``model.meta``.
    fits_keyword : str
        FITS keyword (may hold ``{nn}`` when ``per_band``).
    fits_hdu : str
        EXTNAME of the HDU the keyword lives in (``PRIMARY`` for the primary HDU).
    mast : str
        MAST requirement level: required, recommended, suggested; ``project`` for keywords
        this project requires; ``optional``.
    rules : dict
        The JSON Schema rules of the value (type, enum, pattern, ...).
    not_simulated : bool
        Only observed data carry it (a collection DOI): not asked of products with
        ``SIMULATD = T``.
    """

    name: str
    fits_keyword: str
    fits_hdu: str
    title: str
    description: str
    mast: str
    unit: str | None
    per_band: bool
    rules: dict[str, Any]
    not_simulated: bool = False

    @property
    def required(self) -> bool:
        """Whether a file without this keyword is invalid."""
        return self.mast in ("required", "project")

    def expand(self, bands: Sequence[BandInfo]) -> list[str]:
        """FITS keyword names for the given bands (one name when not per band)."""
        if not self.per_band:
            return [self.fits_keyword]
        return [_expand(self.fits_keyword, i, b) for i, b in enumerate(bands, start=1)]


@dataclass(frozen=True)
class ColumnSpec:
    """A catalog column (a template with ``{FILTER}`` when ``per_band``)."""

    name: str
    title: str
    description: str
    dtype: str
    mast: str
    unit: str | None = None
    sentinel: Any = None
    per_band: bool = False
    format: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple | None = None
    historical: str | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    unique: bool = False
    min_finite_fraction: float | None = None

    @property
    def bounds(self) -> Bounds:
        """The value range the schema declares (sentinels aside)."""
        return Bounds(self.minimum, self.maximum, self.exclusive_minimum, self.exclusive_maximum)

    @property
    def rules_text(self) -> str:
        """The content rules of the column in words, for documentation (``''`` if none)."""
        parts = [f"in {self.bounds.text()}"] if self.bounds else []
        if self.enum:
            parts.append("one of " + ", ".join(str(v) for v in self.enum))
        if self.unique:
            parts.append("unique")
        parts += _finite_text(self.min_finite_fraction)
        return "; ".join(parts)  # the missing value (sentinel) is exempt from these

    @property
    def numpy_dtype(self) -> np.dtype:
        """Numpy dtype of the column (``object`` for strings)."""
        return NUMPY_DTYPES.get(self.dtype, np.dtype(object))

    def expand(self, bands: Sequence[BandInfo]) -> list[ColumnSpec]:
        """Concrete columns for the bands (the column itself when not per band)."""
        if not self.per_band:
            return [self]
        out = []
        for i, band in enumerate(bands, start=1):
            out.append(
                ColumnSpec(
                    name=_expand(self.name, i, band),
                    title=f"{self.title} ({band.filter})",
                    description=self.description,
                    dtype=self.dtype,
                    mast=self.mast,
                    unit=self.unit,
                    sentinel=self.sentinel,
                    per_band=False,
                    format=self.format,
                    minimum=self.minimum,
                    maximum=self.maximum,
                    enum=self.enum,
                    historical=self.historical,
                    exclusive_minimum=self.exclusive_minimum,
                    exclusive_maximum=self.exclusive_maximum,
                    unique=self.unique,
                    min_finite_fraction=self.min_finite_fraction,
                )
            )
        return out


@dataclass(frozen=True)
class ArraySpec:
    """An image array of a product (``data`` of a DRC; ``sci``/``err``/``dq`` of an FLC)."""

    name: str
    title: str
    description: str
    fits_hdu: str
    dtype: str
    ndim: int
    unit: str | None = None
    extvers: tuple[int, ...] = (1,)
    mast: str = "required"
    sentinel: Any = None
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    min_finite_fraction: float | None = None
    labels_in: tuple[str, str] | None = None

    @property
    def bounds(self) -> Bounds:
        """The value range the schema declares (the sentinel aside)."""
        return Bounds(self.minimum, self.maximum, self.exclusive_minimum, None)

    @property
    def rules_text(self) -> str:
        """The content rules of the array in words, for documentation (``''`` if none)."""
        parts = [f"in {self.bounds.text()}"] if self.bounds else []
        if parts and self.sentinel is not None:
            parts[-1] += f" or {self.sentinel}"
        parts += _finite_text(self.min_finite_fraction)
        if self.labels_in is not None:
            parts.append(f"non-zero labels are {self.labels_in[1]} of the {self.labels_in[0]}")
        return "; ".join(parts)

    @property
    def numpy_dtype(self) -> np.dtype:
        """Numpy dtype of the array."""
        return NUMPY_DTYPES[self.dtype]


def _finite_text(fraction: float | None) -> list[str]:
    if fraction is None:
        return []
    return ["finite" if fraction >= 1 else f"at least {fraction:.0%} finite"]


@dataclass(frozen=True)
class Bounds:
    """A value range of a column or array: inclusive and exclusive limits (None: open)."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None

    def __bool__(self) -> bool:
        return any(
            v is not None
            for v in (self.minimum, self.maximum, self.exclusive_minimum, self.exclusive_maximum)
        )

    def outside(self, values: np.ndarray) -> np.ndarray:
        """Which values lie outside the range (NaN is never outside: finiteness is its own rule)."""
        out = np.zeros(np.shape(values), bool)
        with np.errstate(invalid="ignore"):
            if self.minimum is not None:
                out |= values < self.minimum
            if self.exclusive_minimum is not None:
                out |= values <= self.exclusive_minimum
            if self.maximum is not None:
                out |= values > self.maximum
            if self.exclusive_maximum is not None:
                out |= values >= self.exclusive_maximum
        return out

    def text(self) -> str:
        """The range in interval notation, e.g. ``[0, 360)`` or ``> 0``."""
        low = (
            f"[{self.minimum:g}"
            if self.minimum is not None
            else f"({self.exclusive_minimum:g}"
            if self.exclusive_minimum is not None
            else "(-inf"
        )
        high = (
            f"{self.maximum:g}]"
            if self.maximum is not None
            else f"{self.exclusive_maximum:g})"
            if self.exclusive_maximum is not None
            else "inf)"
        )
        return f"{low}, {high}"


@dataclass(frozen=True, eq=False)
class ProductSchema:
    """A loaded, resolved product schema.

    Attributes
    ----------
    id : str
        ``name-X.Y.Z``.
    document : dict
        The schema document as written in the YAML file.
    keywords : tuple of KeywordSpec
        Every header keyword, fragments included, in schema order.
    columns : tuple of ColumnSpec
        Catalog columns (templates for per-band columns).
    arrays : dict
        Image arrays by attribute name.
    """

    id: str
    title: str
    description: str
    document: dict[str, Any]
    keywords: tuple[KeywordSpec, ...]
    columns: tuple[ColumnSpec, ...] = ()
    arrays: dict[str, ArraySpec] = field(default_factory=dict)
    path: str = ""

    @property
    def name(self) -> str:
        """Schema name without version."""
        return split_schema_id(self.id)[0]

    @property
    def version(self) -> str:
        """Schema version ``X.Y.Z``."""
        return split_schema_id(self.id)[1]

    @property
    def product(self) -> dict[str, Any]:
        """The ``product`` block: kind, collection, product type, extensions, HDUs."""
        return self.document.get("product", {})

    @property
    def kind(self) -> str:
        """Product kind: flc, image, catalog, mask, regions, readme or manifest."""
        return self.product.get("kind", "")

    @property
    def hdu_names(self) -> tuple[str, ...]:
        """EXTNAMEs of the HDUs the product must have, in file order."""
        return tuple(h["name"] for h in self.product.get("hdus", []))

    @property
    def table_hdu(self) -> str | None:
        """EXTNAME of the binary-table HDU, if the product is a FITS table."""
        for h in self.product.get("hdus", []):
            if h["type"] == "bintable":
                return h["name"]
        return None

    def variants(self, placeholder: str) -> tuple[str, ...]:
        """Allowed values of a file-name placeholder (``scale``, ``selection``, ``subset``)."""
        return tuple(str(v) for v in self.product.get("variants", {}).get(placeholder, ()))

    @functools.cached_property
    def sentinel(self) -> float | int | None:
        """The value that marks a missing entry in this schema's columns (None if none has one).

        Raises
        ------
        ValueError
            If the columns declare different sentinels (ask a column's ``sentinel`` instead).
        """
        values = {c.sentinel for c in self.columns if c.sentinel is not None}
        if len(values) > 1:
            raise ValueError(f"{self.id}: columns have several sentinels {sorted(values)}")
        return values.pop() if values else None

    @functools.cached_property
    def keyword_by_name(self) -> dict[str, KeywordSpec]:
        """Keywords by attribute name."""
        return {k.name: k for k in self.keywords}

    @functools.cached_property
    def keyword_by_fits(self) -> dict[tuple[str, str], KeywordSpec]:
        """Keywords by ``(HDU, FITS keyword)``; per-band templates are not included."""
        return {(k.fits_hdu, k.fits_keyword): k for k in self.keywords if not k.per_band}

    def keywords_for_hdu(self, hdu: str) -> list[KeywordSpec]:
        """Keywords that live in HDU ``hdu``."""
        return [k for k in self.keywords if k.fits_hdu == hdu]

    def expand_columns(self, bands: Sequence[BandInfo]) -> list[ColumnSpec]:
        """Concrete column list for the given bands, in schema order."""
        out: list[ColumnSpec] = []
        for col in self.columns:
            out.extend(col.expand(bands))
        return out

    def column_templates(self) -> Iterable[ColumnSpec]:
        """Columns as written in the schema (per-band templates unexpanded)."""
        return iter(self.columns)

    @functools.cache  # noqa: B019 (schemas live for the whole process)
    def hdu_jsonschema(self, hdu: str, bands: tuple[BandInfo, ...] = ()) -> dict[str, Any]:
        """JSON Schema (2020-12) for the keywords of one HDU, as an object keyed by FITS keyword.

        Requiredness comes from the ``mast`` level (required and project keywords are
        required), so it is written once, in the schema, next to the keyword.
        """
        props: dict[str, Any] = {}
        required: list[str] = []
        for kw in self.keywords_for_hdu(hdu):
            for fits_kw in kw.expand(bands):
                props[fits_kw] = kw.rules
                if kw.required:
                    required.append(fits_kw)
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": props,
            "required": required,
        }

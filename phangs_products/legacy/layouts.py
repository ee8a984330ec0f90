"""Historical file layouts, loaded from the legacy schemas (``schemas/legacy/``).

A legacy schema describes one *family* of historical files: a collection and its naming scheme
(``file_name``, a regular expression with named groups), facts implied by the name (instrument,
bands of each target), the sentinels, and one or more *layouts* (a product type or a column
count) each read as a current schema.  The facts live in the YAML; this module turns them into
objects and matches file names.  ``schemas/manifest.yaml`` names the version of each family
under ``legacy:``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from phangs_products.errors import SchemaError
from phangs_products.registry import YAML_LOADER, check_document, load_document, schemas_root
from phangs_products.spec import BandInfo

__all__ = [
    "LegacyColumn",
    "LegacyFamily",
    "LegacyLayout",
    "Sentinel",
    "checked",
    "families",
    "match",
]

_FILTER_GROUP = "(?P<filter>F[0-9]{3}[WMNX])"


@dataclass(frozen=True)
class Sentinel:
    """A value that stands for 'no value', and what it means."""

    name: str
    value: float
    meaning: str


@dataclass(frozen=True)
class LegacyColumn:
    """One historical column and today's name for it.

    Attributes
    ----------
    name : str
        Name in the historical file (``{FILTER}`` in per-band templates); for text tables
        without a header, astropy's default name ``colN``.
    current : str
        Today's name (``{FILTER}`` allowed); the historical name when it did not change.
    position : int, optional
        1-based column position (text tables).
    band : int, optional
        1-based index into the file's bands for positional per-band columns.
    layouts : tuple of str
        Layouts the column belongs to (all when empty).
    sentinels : tuple of str
        Names of the family's sentinels this column may hold.
    masked_unless : tuple, optional
        ``(column, minimum)``: the entry has no value where that column is below ``minimum``.
    duplicate_of : str, optional
        Historical column this one repeats (dropped when equal).
    """

    name: str
    description: str
    current: str
    position: int | None = None
    band: int | None = None
    layouts: tuple[str, ...] = ()
    dtype: str | None = None
    unit: str | None = None
    sentinels: tuple[str, ...] = ()
    masked_unless: tuple[str, float] | None = None
    duplicate_of: str | None = None

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> LegacyColumn:
        """Column from its schema entry."""
        cond = entry.get("masked_unless")
        return cls(
            name=entry["name"],
            description=entry["description"],
            current=entry.get("current", entry["name"]),
            position=entry.get("position"),
            band=entry.get("band"),
            layouts=tuple(entry.get("layouts", ())),
            dtype=entry.get("dtype"),
            unit=entry.get("unit"),
            sentinels=tuple(entry.get("sentinels", ())),
            masked_unless=(cond["column"], float(cond["minimum"])) if cond else None,
            duplicate_of=entry.get("duplicate_of"),
        )

    @functools.cached_property
    def pattern(self) -> re.Pattern[str] | None:
        """Regex of the concrete names of a ``{FILTER}`` template (None otherwise)."""
        if "{FILTER}" not in self.name:
            return None
        return re.compile("^" + re.escape(self.name).replace(r"\{FILTER\}", _FILTER_GROUP) + "$")

    def names(self, band: BandInfo | None) -> tuple[str, str]:
        """``(historical, today's)`` names for one band (``band`` ignored when not per band)."""
        filt = band.filter if band is not None else "{FILTER}"
        return self.name.replace("{FILTER}", filt), self.current.replace("{FILTER}", filt)


@dataclass(frozen=True)
class LegacyLayout:
    """One layout of a family: a product type (or column count) and the schema it reads as."""

    name: str
    title: str
    description: str
    reads_as: str
    product_type: re.Pattern[str] | None = None
    subset: str | None = None
    subsets: Mapping[str, str] = field(default_factory=dict)
    ncols: int | None = None
    columns: tuple[Any, ...] = ()
    signature: Mapping[str, Any] = field(default_factory=dict)
    array: Mapping[str, Any] | None = None

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> LegacyLayout:
        """Layout from its schema entry."""
        pattern = entry.get("product_type")
        return cls(
            name=entry["name"],
            title=entry["title"],
            description=" ".join(entry["description"].split()),
            reads_as=entry["reads_as"],
            product_type=re.compile(pattern) if pattern else None,
            subset=entry.get("subset"),
            subsets=dict(entry.get("subsets", {})),
            ncols=entry.get("ncols"),
            columns=tuple(entry.get("columns", ())),
            signature=dict(entry.get("signature", {})),
            array=entry.get("array"),
        )

    def column_names(self, filters: Sequence[str]) -> list[str]:
        """The documented column names, in order, for the bands ``filters``."""
        out: list[str] = []
        for item in self.columns:
            if isinstance(item, str):
                out.append(item)
            else:
                for filt in filters:
                    out.extend(t.replace("{FILTER}", filt) for t in item["per_band"])
        return out

    def subset_for(self, fields: Mapping[str, str]) -> str | None:
        """Today's catalog subset (CLSUBSET) of a file of this layout."""
        if self.subset is not None:
            return self.subset
        return self.subsets.get(fields.get("subset", ""))


@dataclass(frozen=True, eq=False)
class LegacyFamily:
    """A family of historical files: one legacy schema."""

    schema_id: str
    title: str
    collection: str
    title_short: str
    format: str
    documented_by: str
    file_name: re.Pattern[str]
    file_name_help: str
    instruments: Mapping[str, Mapping[str, str]]
    targets: Mapping[str, tuple[BandInfo, ...]]
    keywords_from_name: Mapping[str, str]
    keywords: Mapping[str, Any]
    sentinels: Mapping[str, Sentinel]
    layouts: tuple[LegacyLayout, ...]
    columns: tuple[LegacyColumn, ...]

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> LegacyFamily:
        """Family from a legacy schema document."""
        leg = doc["legacy"]
        targets = {
            name: tuple(BandInfo(b.split()[1], b.split()[0]) for b in entry["bands"])
            for name, entry in leg.get("targets", {}).items()
        }
        sentinels = {
            name: Sentinel(name, float(s["value"]), s["meaning"])
            for name, s in leg.get("sentinels", {}).items()
        }
        columns = tuple(LegacyColumn.from_entry(c) for c in leg.get("columns", []))
        for col in columns:
            unknown = [s for s in col.sentinels if s not in sentinels]
            if unknown:
                raise SchemaError(f"{doc['id']}: column {col.name}: unknown sentinel {unknown[0]}")
        return cls(
            schema_id=doc["id"],
            title=doc["title"],
            collection=leg["collection"],
            title_short=leg["title_short"],
            format=leg["format"],
            documented_by=" ".join(leg["documented_by"].split()),
            file_name=re.compile(leg["file_name"]),
            file_name_help=" ".join(leg["file_name_help"].split()),
            instruments={k: dict(v) for k, v in leg.get("instruments", {}).items()},
            targets=targets,
            keywords_from_name=dict(leg.get("keywords_from_name", {})),
            keywords=dict(leg.get("keywords", {})),
            sentinels=sentinels,
            layouts=tuple(LegacyLayout.from_entry(e) for e in leg["layouts"]),
            columns=columns,
        )

    # ------------------------------------------------------------------------------ names
    def name_fields(self, name: str) -> dict[str, str] | None:
        """Groups of the file-name pattern plus the instrument facts; None if no match."""
        found = self.file_name.match(name)
        if found is None:
            return None
        fields = {k: v for k, v in found.groupdict().items() if v is not None}
        fields.update(self.instruments.get(fields.get("instrument", ""), {}))
        return fields

    def layout_for(self, fields: dict[str, str]) -> LegacyLayout | None:
        """The layout the file name's product type selects (adds its groups to ``fields``)."""
        product_type = fields.get("product_type", "")
        for layout in self.layouts:
            if layout.product_type is None:
                continue
            found = layout.product_type.match(product_type)
            if found is not None:
                fields.update({k: v for k, v in found.groupdict().items() if v is not None})
                return layout
        return None

    def layout_named(self, name: str) -> LegacyLayout:
        """Layout by name."""
        for layout in self.layouts:
            if layout.name == name:
                return layout
        raise KeyError(name)

    def expected(self) -> str:
        """What a file of this family is named like, for error messages."""
        return f"{self.title_short} {self.file_name_help}"

    # ---------------------------------------------------------------------------- columns
    def columns_of(self, layout: LegacyLayout) -> list[LegacyColumn]:
        """Columns that belong to ``layout``."""
        return [c for c in self.columns if not c.layouts or layout.name in c.layouts]

    @functools.cached_property
    def column_by_name(self) -> dict[str, LegacyColumn]:
        """Columns by historical name (templates keep ``{FILTER}``)."""
        return {c.name: c for c in self.columns}

    def find_column(self, name: str) -> tuple[LegacyColumn | None, str | None]:
        """The column a concrete historical name belongs to, and its filter (if per band)."""
        col = self.column_by_name.get(name)
        if col is not None:
            return col, None
        for col in self.columns:
            if col.pattern is not None:
                found = col.pattern.match(name)
                if found is not None:
                    return col, found["filter"]
        return None, None

    # ------------------------------------------------------------------------------ bands
    def documented_bands(self, fields: Mapping[str, str]) -> tuple[BandInfo, ...] | None:
        """Bands the schema documents for the file's target (None when not documented)."""
        return self.targets.get(fields.get("target", ""))

    def band_of(self, filt: str, fields: Mapping[str, str]) -> BandInfo | None:
        """Instrument of one filter: from the target's bands, else from the instrument field."""
        for band in self.documented_bands(fields) or ():
            if band.filter == filt:
                return band
        instrument = fields.get("band_instrument")
        return BandInfo(filt, instrument) if instrument else None

    # --------------------------------------------------------------------------- keywords
    def header_values(self, fields: Mapping[str, str]) -> dict[str, Any]:
        """Keywords the file name (and the family) imply, for keywords the file lacks."""
        out: dict[str, Any] = dict(self.keywords)
        for keyword, source in self.keywords_from_name.items():
            group, _, how = source.partition("|")
            value = fields.get(group)
            if value is None:
                continue
            out[keyword] = value.upper() if how == "upper" else value
        return out

    @property
    def manifest_name(self) -> str:
        """Schema name without version."""
        return self.schema_id.rsplit("-", 1)[0]


@functools.cache
def families() -> tuple[LegacyFamily, ...]:
    """Every historical family ``schemas/manifest.yaml`` lists under ``legacy:``."""
    with (schemas_root() / "manifest.yaml").open() as fh:
        manifest = yaml.load(fh, Loader=YAML_LOADER)
    return tuple(
        LegacyFamily.from_document(load_document(f"{name}-{version}"))
        for name, version in (manifest.get("legacy") or {}).items()
    )


@functools.cache
def checked(schema_id: str) -> None:
    """Validate a legacy schema against the metaschema once (SchemaError on problems)."""
    problems = check_document(schema_id)
    if problems:
        raise SchemaError("; ".join(problems))


def match(path: Path) -> tuple[LegacyFamily, dict[str, str]] | None:
    """The historical family whose file-name pattern ``path`` matches, with the name's fields."""
    if path.suffix.lower() not in (".fits", ".tab") or not path.name.startswith("hlsp_"):
        return None
    for family in families():
        fields = family.name_fields(path.name)
        if fields is not None:
            return family, fields
    return None

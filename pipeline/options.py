"""Stage options as data: each option's table, default, type, unit, range and meaning.

Read from the stages' frozen config dataclasses (defaults, type hints, ranges in the field
metadata) and the ``Attributes`` section of their numpy-style docstrings (meaning, unit), so
the configuration reference (:mod:`~phangs_products.pipeline.reference`) and the delivery
README's settings tables (:func:`settings_rows`) say what the code does.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["Option", "option_docs", "settings_rows", "stage_options"]

#: Units recognised in the option docs, longest first (``(px)``, ``in px``, ``[mag]`` ...).
_UNITS = ("arcsec", "Msun", "mag", "Myr", "deg", "mas", "pc", "px", "yr", "s")
_UNIT_RE = re.compile(r"(?:\bin |\(|\[|\d )(?P<unit>" + "|".join(_UNITS) + r")\b")


def option_docs(cls: type) -> dict[str, str]:
    """``{field name: one-line meaning}`` from the ``Attributes`` section of a dataclass.

    Entries that document several fields at once (``a, b : float, tuple``) give each of them
    the same text.
    """
    doc = cls.__doc__ or ""
    match = re.search(
        r"^\s*Attributes\s*\n\s*-+\s*\n(?P<body>.*?)(?:\n\s*\n\s*[A-Z]\w+\s*\n\s*-+|\Z)",
        doc,
        re.S | re.M,
    )
    if not match:
        return {}
    out: dict[str, str] = {}
    names: list[str] = []
    lines = match.group("body").splitlines()
    indent = min((len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()), default=0)
    for line in lines:
        if not line.strip():
            continue
        if len(line) - len(line.lstrip()) == indent:
            names = [n.strip() for n in line.split(":")[0].split(",")]
            for name in names:
                out[name] = f"{', '.join(names)}:" if len(names) > 1 else ""
        else:
            for name in names:
                out[name] = f"{out[name]} {line.strip()}".strip()
    return out


def _unit(text: str) -> str:
    """The unit a doc states (``in px``, ``(mag)``); none for a doc shared by several options."""
    found = _UNIT_RE.search(text)
    return found.group("unit") if found and not re.match(r"^\w+(, \w+)+:", text) else ""


@dataclasses.dataclass(frozen=True)
class Option:
    """One stage option: where it goes, its default and what it means."""

    table: str
    name: str
    default: Any
    type: str
    meaning: str
    unit: str
    bounds: str


def _type_text(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        inner = {getattr(a, "__name__", str(a)) for a in args}
        return f"list of {' | '.join(sorted(inner))}"
    if origin is not None:  # X | None
        return " | ".join(_type_text(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "not set")


def _bounds(meta: Any) -> str:
    signs = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    return ", ".join(f"{signs[k]} {meta[k]}" for k in signs if k in meta)


def stage_options(cls: type, table: str) -> Iterator[Option]:
    """Every option of a stage config dataclass, nested config tables included, in order."""
    hints = typing.get_type_hints(cls)
    docs = option_docs(cls)
    nested = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            nested.append((f.name, tp))
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        text = docs.get(f.name, "")
        yield Option(
            table=table,
            name=f.name,
            default=default,
            type=_type_text(tp),
            meaning=" ".join(text.split()),
            unit=_unit(text) if re.search(r"\b(float|int)\b", _type_text(tp)) else "",
            bounds=_bounds(f.metadata),
        )
    for name, tp in nested:
        yield from stage_options(tp, f"{table}.{name}")


def _text(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ", ".join(_text(v) for v in value) or "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Path) or (isinstance(value, str) and "/" in value):
        return Path(value).name
    if value is None or value == "":
        return "(none)"
    return str(value)


def settings_rows(config: Any) -> list[dict[str, str]]:
    """The options a stage ran with: ``{'name', 'value', 'unit', 'meaning'}`` per option.

    Nested config tables give dotted names (``photometry.fwhm``); a file path shows its file
    name only (the README never names the folders of the machine that made it).
    """
    rows = []
    for option in stage_options(type(config), ""):
        value: Any = config
        path = [*filter(None, option.table.split(".")), option.name]
        for part in path:
            value = getattr(value, part)
        rows.append(
            {
                "name": ".".join(path),
                "value": _text(value),
                "unit": option.unit,
                "meaning": option.meaning,
            }
        )
    return rows

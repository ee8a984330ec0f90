"""Exceptions and the one-line problem record used by readers, writers and the validator."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "PhangsProductsError",
    "Problem",
    "ProductError",
    "SchemaError",
    "ValidationError",
    "describe",
    "reading",
]


class PhangsProductsError(Exception):
    """Base class of every error this package raises on purpose."""


class SchemaError(PhangsProductsError):
    """A schema is unknown, malformed or inconsistent."""


class ProductError(PhangsProductsError):
    """A product file cannot be read or written (bad file, bad name, refused overwrite)."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a file, printable as one readable line.

    Attributes
    ----------
    rule : str
        Stable rule id, e.g. ``keyword.missing`` or ``name.case`` (used by CI reports and tests).
    message : str
        What is wrong, with expected vs got.
    file : str
        File name (no folder).
    schema : str
        Schema id the file was checked against, or ``''``.
    where : str
        ``HDU 1 column X`` / ``HDU PRIMARY keyword DOI`` / ``''``.
    severity : str
        ``error`` or ``warning``.
    """

    rule: str
    message: str
    file: str = ""
    schema: str = ""
    where: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.schema, self.where) if p]
        return ": ".join([*parts, self.message])

    def to_dict(self) -> dict[str, str]:
        """The problem as a plain dict (rule, message, file, schema, where, severity)."""
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


class ValidationError(PhangsProductsError):
    """A product does not conform to its schema.

    Attributes
    ----------
    problems : list of Problem
        Every problem found, each printable as one line.
    """

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = [str(p) for p in self.problems]
        head = lines[0] if lines else "validation failed"
        more = f" (and {len(lines) - 1} more problem(s))" if len(lines) > 1 else ""
        super().__init__(head + more)


#: Longest text of a foreign exception quoted in a one-line error.
_MAX_QUOTE = 160


def describe(exc: BaseException) -> str:
    """One short line for an exception of another library: ``Type: first line of message``.

    YAML errors are given as ``problem at line L, column C`` (their messages span lines).
    """
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        text = f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    else:
        text = " ".join(str(exc).split())
    if len(text) > _MAX_QUOTE:
        text = text[: _MAX_QUOTE - 3] + "..."
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


@contextlib.contextmanager
def reading(file: str, where: str, expected: str) -> Iterator[None]:
    """Turn any exception of another library raised in the block into one :class:`ProductError`.

    The message is one line, ``<file>: <where>: <expected> (<Type>: <what it said>)``;
    errors of this package pass through unchanged.

    Parameters
    ----------
    file : str
        File name (no folder).
    where : str
        Place in the file (``HDU 1``, ``line 3``, ``Parquet metadata``), or ``''``.
    expected : str
        What could not be done, e.g. ``cannot read the table``.
    """
    try:
        yield
    except PhangsProductsError:
        raise
    except Exception as exc:  # every other library's error becomes one line
        parts = [p for p in (file, where) if p]
        raise ProductError(": ".join([*parts, f"{expected} ({describe(exc)})"])) from exc

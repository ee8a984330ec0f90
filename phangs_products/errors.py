"""Exceptions and the one-line problem record used by readers, writers and the validator."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PhangsProductsError", "Problem", "ProductError", "SchemaError", "ValidationError"]


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

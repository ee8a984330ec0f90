"""Catalog tables whose old column names still answer, and sentinel masking.

:class:`AliasTable` is an astropy :class:`~astropy.table.Table` in which a historical column name
(``PHANGS_CLUSTER_CLASS_ML_VGG``) reads and writes today's column (``PHANGS_CLUSTER_CLASS_ML``),
for whole columns and for rows, and keeps doing so in slices and copies.  ``colnames`` lists
today's names only.

:func:`sentinel_mask` finds the entries holding a sentinel value; :func:`mask_sentinels` turns
the columns of a phangs-products catalog into :class:`~astropy.table.MaskedColumn` using the
sentinels its schema declares.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from astropy.table import MaskedColumn, Row, Table

from phangs_products.spec import BandInfo, ProductSchema

__all__ = ["AliasRow", "AliasTable", "mask_sentinels", "sentinel_mask", "with_aliases"]

log = logging.getLogger(__name__)


class AliasRow(Row):
    """A table row in which the table's alias names answer like today's names."""

    def __getitem__(self, item: Any) -> Any:
        return super().__getitem__(self._table.resolve(item))

    def __setitem__(self, item: Any, value: Any) -> None:
        super().__setitem__(self._table.resolve(item), value)


class AliasTable(Table):
    """An astropy Table in which old column names answer as aliases of today's names.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`~astropy.table.Table`.
    aliases : mapping, optional
        Old name -> today's name.  Aliases of a source :class:`AliasTable` are kept.

    Examples
    --------
    >>> t = AliasTable({"PHANGS_CLUSTER_CLASS_ML": [1, 2]},
    ...                aliases={"PHANGS_CLUSTER_CLASS_ML_VGG": "PHANGS_CLUSTER_CLASS_ML"})
    >>> list(t["PHANGS_CLUSTER_CLASS_ML_VGG"])
    [1, 2]
    """

    Row = AliasRow

    def __init__(self, *args: Any, aliases: Mapping[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        source = args[0] if args else kwargs.get("data")
        inherited = source.aliases if isinstance(source, AliasTable) else {}
        self._aliases: dict[str, str] = {**inherited, **dict(aliases or {})}

    @property
    def aliases(self) -> dict[str, str]:
        """Old column name -> today's name (a copy)."""
        return dict(getattr(self, "_aliases", {}))

    def add_aliases(self, aliases: Mapping[str, str]) -> None:
        """Let more old names answer (old name -> today's name)."""
        self._aliases = {**self.aliases, **dict(aliases)}

    def resolve(self, item: Any) -> Any:
        """Today's name for an alias (lists and tuples of names too); anything else unchanged."""
        aliases = getattr(self, "_aliases", None)
        if not aliases:
            return item
        if isinstance(item, str):
            return item if item in self.columns else aliases.get(item, item)
        if isinstance(item, (list, tuple)) and item and all(isinstance(i, str) for i in item):
            return type(item)(i if i in self.columns else aliases.get(i, i) for i in item)
        return item

    def __getitem__(self, item: Any) -> Any:
        return super().__getitem__(self.resolve(item))

    def __setitem__(self, item: Any, value: Any) -> None:
        super().__setitem__(self.resolve(item), value)

    def _new_from_slice(self, slice_: Any) -> AliasTable:
        out = super()._new_from_slice(slice_)
        out._aliases = self.aliases
        return out


def with_aliases(table: Table, aliases: Mapping[str, str]) -> AliasTable:
    """``table`` as an :class:`AliasTable` (no data copied); aliases of absent columns dropped."""
    known = {old: new for old, new in aliases.items() if new in table.colnames and old != new}
    out = AliasTable(table, copy=False, aliases=known)
    out.meta = table.meta
    return out


def sentinel_mask(values: np.ndarray, sentinels: Iterable[float]) -> np.ndarray:
    """Boolean mask of the entries equal to one of ``sentinels`` (numeric columns only).

    Float columns compare with a relative tolerance of 1e-9, so a sentinel parsed from text
    (``66.666``) or stored as float32 (``-9999``) is found either way.
    """
    values = np.asarray(values)
    mask = np.zeros(values.shape, dtype=bool)
    if values.dtype.kind not in "iuf":
        return mask
    for value in sentinels:
        if values.dtype.kind == "f":
            tol = 1e-9 * max(1.0, abs(float(value)))
            if values.dtype == np.float32:
                tol = 1e-6 * max(1.0, abs(float(value)))
            mask |= np.abs(values - float(value)) <= tol
        else:
            mask |= values == value
    return mask


def mask_sentinels(table: Table, schema: ProductSchema, bands: Sequence[BandInfo]) -> int:
    """Mask, in place, the entries of ``table`` that hold their column's schema sentinel.

    Columns with a sentinel become :class:`~astropy.table.MaskedColumn` whose ``fill_value``
    is the sentinel, so ``column.filled()`` gives the stored values back.

    Returns
    -------
    int
        Number of entries masked.
    """
    total = 0
    for spec in schema.expand_columns(bands):
        if spec.sentinel is None or spec.name not in table.colnames:
            continue
        col = table[spec.name]
        mask = sentinel_mask(np.asarray(col), [spec.sentinel])
        if isinstance(col, MaskedColumn):
            mask |= np.asarray(col.mask, dtype=bool)
        table[spec.name] = MaskedColumn(
            np.asarray(col),
            name=spec.name,
            mask=mask,
            unit=col.unit,
            description=col.description,
            fill_value=spec.sentinel,
        )
        total += int(mask.sum())
    log.debug("%s: masked %d sentinel entries", schema.id, total)
    return total

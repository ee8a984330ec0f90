"""Content rules of image arrays, on the values the file stores.

The rules are declared on each array of the product schema (metaschema 1.3.0): a value range
(``minimum``, ``exclusiveMinimum``, ``maximum``; the ``sentinel`` and NaN exempt), the smallest
fraction of finite pixels (``min_finite_fraction``) and, for label masks, the catalog whose ids
the labels must be (``labels_in``, checked across files by :mod:`.consistency`).

The array is a view of the file's bytes (no copy, no astropy data layer) and is scanned in
blocks of rows, so a 4k x 4k DRC costs a few vectorised passes over 64 MB and no temporary
larger than one block.  Table rules live beside the other column checks in
:func:`phangs_products.conformance.check_column_values`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from phangs_products.errors import Problem
from phangs_products.fitsscan import HduLayout
from phangs_products.spec import ArraySpec

if TYPE_CHECKING:
    from collections.abc import Buffer

__all__ = ["array_view", "check_array", "label_set"]

#: Elements scanned per block (bounds the temporaries of the vectorised passes).
BLOCK = 1 << 20
#: Above this largest label, a mask's label set comes from a sort instead of a histogram.
MAX_BINCOUNT = 1 << 24

_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


def array_view(hdu: HduLayout, raw: Buffer) -> np.ndarray | None:
    """The image of a scanned HDU as a read-only view of the file bytes (``None`` if not plain).

    Scaled arrays (BSCALE/BZERO) and arrays the bytes do not hold entirely give ``None``;
    the FITS-health rules report the latter.
    """
    values = hdu.values
    naxis = values.get("NAXIS", 0)
    dtype = _BITPIX.get(values.get("BITPIX", 0))
    if dtype is None or not naxis or "BSCALE" in values or "BZERO" in values:
        return None
    shape = tuple(int(values[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
    count = math.prod(shape)
    if hdu.data_start + count * np.dtype(dtype).itemsize > len(raw):
        return None
    return np.frombuffer(raw, dtype, count=count, offset=hdu.data_start).reshape(shape)


def _blocks(values: np.ndarray):
    flat = values.reshape(-1)
    for start in range(0, flat.size, BLOCK):
        yield flat[start : start + BLOCK]


def check_array(
    spec: ArraySpec, values: np.ndarray, *, file: str, schema_id: str, where: str
) -> list[Problem]:
    """The range and finite-fraction rules of one array.

    Parameters
    ----------
    spec : ArraySpec
        The array's schema entry.
    values : ndarray
        The stored array (any shape; a view of the file bytes).
    file, schema_id, where : str
        For the messages (``where`` names the HDU).

    Returns
    -------
    list of Problem
        ``content.range`` (values outside the declared range, sentinel and NaN aside) and
        ``content.finite-fraction`` (fewer finite pixels than declared).
    """
    bounds = spec.bounds
    want_finite = spec.min_finite_fraction is not None and values.dtype.kind == "f"
    if not bounds and not want_finite:
        return []
    n_out = 0
    first = None
    n_finite = 0
    for block in _blocks(values):
        if want_finite:
            n_finite += int(np.count_nonzero(np.isfinite(block)))
        if bounds:
            out = bounds.outside(block)
            if spec.sentinel is not None:
                out &= block != spec.sentinel
            k = int(np.count_nonzero(out))
            if k and first is None:
                first = block[np.argmax(out)]
            n_out += k
    problems = []
    if n_out:
        exempt = f", sentinel {spec.sentinel:g} aside" if spec.sentinel is not None else ""
        problems.append(
            Problem(
                "content.range",
                f"{n_out} of {values.size} pixels outside {bounds.text()}{exempt} "
                f"(first: {first:g})",
                file,
                schema_id,
                where,
            )
        )
    if want_finite and n_finite < spec.min_finite_fraction * values.size:
        problems.append(
            Problem(
                "content.finite-fraction",
                f"{n_finite} of {values.size} pixels finite (fraction "
                f"{n_finite / values.size:.3g}; expected at least {spec.min_finite_fraction:g})",
                file,
                schema_id,
                where,
            )
        )
    return problems


def label_set(values: np.ndarray) -> np.ndarray:
    """The distinct positive labels of an integer mask, sorted (vectorised, blockwise)."""
    top = 0
    for block in _blocks(values):
        if block.size:
            top = max(top, int(block.max()))
    if top <= 0:
        return np.zeros(0, np.int64)
    if top <= MAX_BINCOUNT:
        counts = np.zeros(top + 1, np.int64)
        for block in _blocks(values):
            positive = block[block > 0]
            counts += np.bincount(positive, minlength=top + 1)
        return np.flatnonzero(counts[1:]) + 1
    found = [np.unique(block[block > 0]) for block in _blocks(values)]
    return np.unique(np.concatenate(found)).astype(np.int64)

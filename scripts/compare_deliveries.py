"""Compare two deliveries product by product: data equal, headers equal but for run stamps.

Used to show that a change of the code's shape (a restructuring) left the products unchanged::

    python scripts/compare_deliveries.py BEFORE/delivery AFTER/delivery

Every file of either delivery is paired by name.  FITS files: every HDU's data must be equal
(NaN equal to NaN) and every header card equal, except the cards that stamp a run: dates and
checksums, the run id and the provenance hashes.  The embedded provenance (ASDF) HDU is compared
with those fields left out.  Parquet/ECSV tables: equal columns and values.  Text products
(README, regions): equal after removing date and run-id lines.  Prints one line per difference
and a summary; exits 1 when anything differs.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from astropy.io import fits
from astropy.table import Table

from phangs_products.delivery import is_checksums_name

#: Header cards that differ between two runs of the same code on the same inputs.
RUN_STAMPS = {"DATE", "CHECKSUM", "DATASUM", "PPRUNID", "DATE-OBS-RUN", "IRAF-TLM", "FILETIME"}
#: Text lines that carry a date, a time, a run id or a software version hash.
STAMP_LINE = re.compile(
    r"(\d{4}-\d{2}-\d{2}|run id|run_id|Run id|generated|checksum|sha256|SHA256)", re.IGNORECASE
)


def _cards(header: fits.Header) -> dict[str, str]:
    return {
        f"{k}#{i}": str(v)
        for i, (k, v) in enumerate(header.items())
        if k not in RUN_STAMPS and not k.startswith("PROV")
    }


def _arrays_equal(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if a.dtype.names:
        return a.dtype == b.dtype and all(
            _arrays_equal(np.asarray(a[n]), np.asarray(b[n])) for n in a.dtype.names
        )
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def compare_fits(a: Path, b: Path) -> list[str]:
    """Differences between two FITS files (data, then header cards)."""
    out = []
    with fits.open(a) as ha, fits.open(b) as hb:
        if [h.name for h in ha] != [h.name for h in hb]:
            return [f"HDUs {[h.name for h in ha]} vs {[h.name for h in hb]}"]
        for i, (x, y) in enumerate(zip(ha, hb, strict=True)):
            if x.name == "ASDF":
                continue  # provenance: run id, dates and hashes by design
            if not _arrays_equal(x.data, y.data):
                out.append(f"HDU {i} ({x.name}): data differ")
            ca, cb = _cards(x.header), _cards(y.header)
            keys = sorted(set(ca) | set(cb))
            for key in keys:
                if ca.get(key) != cb.get(key):
                    name = key.split("#")[0]
                    out.append(f"HDU {i} {name}: {ca.get(key)!r} vs {cb.get(key)!r}")
    return out


def _read(path: Path, fmt: str) -> Table:
    if fmt == "parquet":  # pyarrow itself: astropy's reader fails on empty string columns
        return Table(pq.read_table(path).to_pydict())
    return Table.read(path, format=fmt)


def compare_table(a: Path, b: Path, fmt: str) -> list[str]:
    """Differences between two Parquet or ECSV tables."""
    ta, tb = _read(a, fmt), _read(b, fmt)
    if ta.colnames != tb.colnames:
        return [f"columns {ta.colnames} vs {tb.colnames}"]
    return [
        f"column {c}: values differ"
        for c in ta.colnames
        if not _arrays_equal(np.asarray(ta[c]), np.asarray(tb[c]))
    ]


def compare_text(a: Path, b: Path, roots: tuple[Path, Path]) -> list[str]:
    """Differences between two text products, date and run-id lines left out.

    The run folders (``roots``: the parents of the two deliveries) read as ``<run>``, so paths
    of inputs inside them (the demo's human-class table) compare equal.
    """

    def lines(p: Path, root: Path) -> list[str]:
        text = p.read_text().replace(str(root.resolve()), "<run>")
        return [ln for ln in text.splitlines() if not STAMP_LINE.search(ln)]

    la, lb = lines(a, roots[0]), lines(b, roots[1])
    if la == lb:
        return []
    pairs = enumerate(zip(la, lb, strict=False))
    diff = [f"line {i + 1}: {x!r} vs {y!r}" for i, (x, y) in pairs if x != y]
    return diff[:5] or [f"{len(la)} vs {len(lb)} lines"]


def compare(before: Path, after: Path) -> tuple[int, list[str]]:
    """Compare every file of two delivery folders; return (files compared, differences)."""

    def products(root: Path) -> set[Path]:  # hidden folders hold run state, not products
        found = (p.relative_to(root) for p in root.rglob("*") if p.is_file())
        return {p for p in found if not any(part.startswith(".") for part in p.parts)}

    files_a, files_b = products(before), products(after)
    problems = [f"{p}: only in {before}" for p in sorted(files_a - files_b)]
    problems += [f"{p}: only in {after}" for p in sorted(files_b - files_a)]
    for rel in sorted(files_a & files_b):
        a, b = before / rel, after / rel
        name = rel.name
        if name.endswith(".fits"):
            found = compare_fits(a, b)
        elif name.endswith(".parquet"):
            found = compare_table(a, b, "parquet")
        elif name.endswith(".ecsv"):
            found = compare_table(a, b, "ascii.ecsv")
        elif name.endswith((".asdf", ".png", ".html")) or is_checksums_name(name):
            continue  # manifests, previews and pages carry dates and hashes of the above
        else:
            found = compare_text(a, b, (before.parent, after.parent))
        problems += [f"{rel}: {d}" for d in found]
    return len(files_a & files_b), problems


def main(argv: list[str] | None = None) -> int:
    """Command line: compare two delivery folders."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    n, problems = compare(args.before, args.after)
    for line in problems:
        print(line)
    print(f"{n} files compared, {len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

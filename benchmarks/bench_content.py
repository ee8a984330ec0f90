"""Cost of the content rules on a 4k x 4k DRC, against the rest of the file's checks, same run.

A clean F555W DRC science, ERR and EXP product (``phangs_products.testing.make_drc_products``)
is written at ``--size`` pixels a side.  For each, the whole per-file check of the validator
(``validation.filecheck.check_file`` with data: SHA-256, FITS health, checksums, keywords, WCS,
content rules) is timed, and so are the content rules alone on the same bytes
(``validation.content.check_array``).  A label mask of the same size (int32, 2,000 labels) times
``validation.content.label_set``.

Prints the seconds of each and the share of the content rules in the whole check.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from phangs_products.fitsscan import scan_bytes
from phangs_products.registry import get_schema
from phangs_products.testing import make_drc_products
from phangs_products.validation.content import array_view, check_array, label_set
from phangs_products.validation.filecheck import check_file


def best(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_drc_products(Path(tmp), size=args.size, bands=["F555W"])
        for path in sorted(folder.glob("*.fits")):
            kind = path.stem.rsplit("_", 1)[-1]
            spec = get_schema(kind).arrays["data"]
            raw = path.read_bytes()
            hdu = scan_bytes(raw, path.name)[0]
            whole = best(lambda p=path: check_file(str(p), folder.name, True), args.repeats)
            rules = best(
                lambda h=hdu, s=spec, r=raw, n=path.name, k=kind: check_array(
                    s, array_view(h, r), file=n, schema_id=k, where="HDU 0"
                ),
                args.repeats,
            )
            problems = check_file(str(path), folder.name, True).problems
            print(
                f"{kind:8s} {args.size}x{args.size}: whole check {whole:.3f} s, content rules "
                f"{rules:.3f} s ({100 * rules / whole:.0f} %), problems {len(problems)}"
            )
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 2001, (args.size, args.size)).astype(">i4")
    t = best(lambda: label_set(mask), args.repeats)
    print(f"label set of a {args.size}x{args.size} mask (2,000 labels): {t:.3f} s")


if __name__ == "__main__":
    main()

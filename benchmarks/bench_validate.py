"""Validate 38 galaxies' worth of delivery files and time it against fitsverify, same run.

The clean test delivery (``phangs_products.testing.make_clean_delivery``: 52 files per field,
37 of them FITS, tiny data) is copied into 38 field folders named after the survey galaxies.
The copies keep the NGC 628 contents, so the validator reports the name/folder mismatches
(``consistency.field``/``consistency.target``) of the copies; every other check runs as on a
real delivery.  HEASARC ``fitsverify -q`` checks the same FITS files in one invocation.

Prints files/s of each and the ratio fitsverify time / validator time (> 1: validator faster).
Goal: faster than fitsverify while checking more (names, schema keywords, WCS, checksums,
manifest, SHA-256, cross-file grid/position checks, on top of FITS structure).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from phangs_products.bands import galaxy_table
from phangs_products.testing import make_clean_delivery
from phangs_products.validation import validate_delivery

N_GALAXIES = 38


def build(root: Path, n: int) -> list[Path]:
    """One clean field folder copied into ``n`` galaxy folders; return the FITS files."""
    template = make_clean_delivery(root / "_template")
    targets = [str(t) for t in galaxy_table()["target"]][:n]
    for target in targets:
        shutil.copytree(template, root / "delivery" / target)
    shutil.rmtree(root / "_template")
    return sorted((root / "delivery").glob("*/*.fits"))


def time_fitsverify(files: list[Path]) -> tuple[float, int]:
    """Wall time of ``fitsverify -q`` over the files, and how many it reported as failed."""
    exe = shutil.which("fitsverify")
    if exe is None:
        raise SystemExit("fitsverify not found: apt-get install -y fitsverify")
    start = time.perf_counter()
    failed = 0
    for i in range(0, len(files), 500):  # stay below the argument-length limit
        proc = subprocess.run([exe, "-q", *map(str, files[i : i + 500])], capture_output=True)
        failed += proc.stdout.count(b"verification FAILED")
    return time.perf_counter() - start, failed


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galaxies", type=int, default=N_GALAXIES)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        fits_files = build(root, args.galaxies)
        delivery = root / "delivery"
        n_all = sum(1 for _ in delivery.glob("*/*"))
        print(
            f"setup: {args.galaxies} fields, {n_all} files ({len(fits_files)} FITS) "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        validate_delivery(delivery / "ngc628", workers=1)  # warm caches (schemas, jsonschema)
        fv_times, ours, ours_hdr = [], [], []
        report = None
        for _ in range(args.repeats):
            fv, fv_failed = time_fitsverify(fits_files)
            fv_times.append(fv)
            report = validate_delivery(delivery, workers=args.workers)
            ours.append(report.seconds)
            ours_hdr.append(validate_delivery(delivery, data=False, workers=args.workers).seconds)
        assert report is not None
        fv, full, hdr = min(fv_times), min(ours), min(ours_hdr)
        rules = Counter(p.rule for p in report.problems)
        print(
            f"fitsverify -q  : {len(fits_files):5d} FITS files  {fv:6.2f} s  "
            f"{len(fits_files) / fv:7.0f} files/s  ({fv_failed} with warnings/errors)"
        )
        print(f"validate (data): {n_all:5d} files       {full:6.2f} s  {n_all / full:7.0f} files/s")
        print(f"validate (hdr) : {n_all:5d} files       {hdr:6.2f} s  {n_all / hdr:7.0f} files/s")
        print(
            f"ratio fitsverify/validate: {fv / full:.2f}x with data, {fv / hdr:.2f}x headers only "
            "(> 1 means the validator is faster)"
        )
        print(f"problems found: {dict(rules)} (expected: the copies' name/folder mismatch only)")


if __name__ == "__main__":
    main()

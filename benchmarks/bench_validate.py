"""Validator throughput against fitsverify, same run: full-size products and many tiny files.

**Full size.** The benchmark writes, with the project's writers (astropy underneath), one
field's full-size products: 4096 x 4096 DRC science, error and exposure images (64 MB each)
and a 50,000-row cluster catalog.  The validator's per-file checks (``validate_files``:
names, schema keywords, FITS structure and astropy verification, WCS, the content rules on
every pixel and row, CHECKSUM/DATASUM and the SHA-256 of every file) run with ``--jobs``
workers; HEASARC ``fitsverify -q`` checks the same files in one invocation.  Prints both wall
times and the ratio validator / fitsverify (goal: <= 1 while checking more).

**Tiny files.** The clean test delivery (``phangs_products.testing.make_clean_delivery``: 52
files per field, 37 of them FITS, tiny data) is copied into 38 field folders named after the
survey galaxies.  The copies keep the NGC 628 contents, so the validator reports the
name/folder mismatches (``consistency.field``/``consistency.target``) of the copies; every
other check runs as on a real delivery.  Prints files/s of fitsverify and of the validator
(one job and ``--jobs`` jobs) and the validator's wall time per file (goal: <= 2 ms).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from factories import catalog_product, demo_delivery, image_product, product_name

from phangs_products.bands import galaxy_table
from phangs_products.fitssum import sha256_of
from phangs_products.testing import make_clean_delivery
from phangs_products.validation import validate_delivery
from phangs_products.validation.api import validate_files

N_GALAXIES = 38
FULL_SIDE = 4096
CATALOG_ROWS = 50_000


def build_tiny(root: Path, n: int) -> list[Path]:
    """One clean field folder copied into ``n`` galaxy folders; return the FITS files."""
    template = make_clean_delivery(root / "_template")
    targets = [str(t) for t in galaxy_table()["target"]][:n]
    for target in targets:
        shutil.copytree(template, root / "delivery" / target)
    shutil.rmtree(root / "_template")
    return sorted((root / "delivery").glob("*/*.fits"))


def build_full(folder: Path, side: int, rows: int) -> list[Path]:
    """Full-size DRC science, error and exposure images and a large cluster catalog."""
    folder.mkdir(parents=True)
    delivery = demo_delivery()
    models = [image_product(delivery, k, shape=(side, side)) for k in ("drc-sci", "drc-err")]
    models.append(image_product(delivery, "drc-exp", shape=(side, side)))
    models[1].data = abs(models[1].data)  # errors and exposure times are not negative
    models[-1].data = abs(models[-1].data) * 670.0
    models.append(catalog_product(delivery, n=rows))
    return [m.save(folder / product_name(m)) for m in models]


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


def full_size(root: Path, jobs: int, repeats: int, side: int, rows: int) -> None:
    """Validator vs fitsverify on full-size products, same files, same run."""
    t0 = time.perf_counter()
    files = build_full(root / "full" / "ngc628c", side, rows)
    size = sum(f.stat().st_size for f in files) / 2**20
    print(
        f"full size: {len(files)} files ({side}x{side} DRCs, {rows}-row catalog), "
        f"{size:.0f} MB, written in {time.perf_counter() - t0:.1f} s"
    )
    tasks = [(str(f), "ngc628c", True) for f in files]
    fv_times, one, many, sha = [], [], [], []
    results = []
    for _ in range(repeats):
        fv_times.append(time_fitsverify(files)[0])
        start = time.perf_counter()
        for f in files:
            sha256_of(f)
        sha.append(time.perf_counter() - start)
        start = time.perf_counter()
        validate_files(tasks, workers=1)
        one.append(time.perf_counter() - start)
        start = time.perf_counter()
        results = validate_files(tasks, workers=jobs, executor="process")
        many.append(time.perf_counter() - start)
    fv, t1, tn, ts = min(fv_times), min(one), min(many), min(sha)
    rules = Counter(p.rule for r in results for p in r.problems)
    print(f"  fitsverify -q            : {fv:6.2f} s  ({size / fv:5.0f} MB/s)")
    print(f"  SHA-256 alone (hashlib)  : {ts:6.2f} s  ({size / ts:5.0f} MB/s, one core)")
    print(f"  validator, 1 job         : {t1:6.2f} s  ({size / t1:5.0f} MB/s)")
    print(f"  validator, {jobs} jobs        : {tn:6.2f} s  ({size / tn:5.0f} MB/s)")
    print(f"  ratio validator/fitsverify: {tn / fv:.2f}x (goal <= 1); SHA-256 alone {ts / fv:.2f}x")
    print(f"  problems: {dict(rules) or 'none'}")


def tiny_files(root: Path, galaxies: int, jobs: int, repeats: int) -> None:
    """Validator vs fitsverify on many tiny files; the validator's wall time per file."""
    t0 = time.perf_counter()
    fits_files = build_tiny(root, galaxies)
    delivery = root / "delivery"
    n_all = sum(1 for _ in delivery.glob("*/*"))
    print(
        f"tiny files: {galaxies} fields, {n_all} files ({len(fits_files)} FITS) "
        f"written in {time.perf_counter() - t0:.1f} s"
    )
    validate_delivery(delivery / "ngc628", workers=1)  # warm caches (schemas, jsonschema)
    fv_times, one, many, hdr = [], [], [], []
    report = None
    for _ in range(repeats):
        fv_times.append(time_fitsverify(fits_files)[0])
        one.append(validate_delivery(delivery, workers=1).seconds)
        report = validate_delivery(delivery, workers=jobs)
        many.append(report.seconds)
        hdr.append(validate_delivery(delivery, data=False, workers=jobs).seconds)
    assert report is not None
    fv, t1, tn, th = min(fv_times), min(one), min(many), min(hdr)
    print(
        f"  fitsverify -q        : {len(fits_files):5d} FITS files {fv:6.2f} s "
        f"{len(fits_files) / fv:7.0f} files/s"
    )
    for label, t in ((" 1 job ", t1), (f"{jobs} jobs", tn), (f"{jobs} jobs, headers", th)):
        print(
            f"  validator, {label:15s}: {n_all:5d} files {t:6.2f} s {n_all / t:7.0f} files/s "
            f"{t / n_all * 1e3:6.2f} ms/file"
        )
    print(f"  per-file overhead: {tn / n_all * 1e3:.2f} ms wall with {jobs} jobs (goal <= 2 ms)")
    rules = Counter(p.rule for p in report.problems)
    print(f"  problems: {dict(rules)} (expected: the copies' name/folder mismatch only)")


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galaxies", type=int, default=N_GALAXIES)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--side", type=int, default=FULL_SIDE, help="full-size image side")
    parser.add_argument("--rows", type=int, default=CATALOG_ROWS, help="full-size catalog rows")
    parser.add_argument("--only", choices=("full", "tiny"), default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "tiny":
            full_size(Path(tmp), args.jobs, args.repeats, args.side, args.rows)
        if args.only != "full":
            tiny_files(Path(tmp), args.galaxies, args.jobs, args.repeats)


if __name__ == "__main__":
    main()

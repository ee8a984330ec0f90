"""Science against truth on a simulated field of survey size.

Runs ``phangs-products demo --size SIZE`` into a folder (skipped when the folder already holds
a finished demo run) and prints, against the simulator's truth:

- candidate completeness of the clusters with M_V < -8 and r_eff >= 1 pc, by M_V, r_eff and age;
- single-star contamination of the candidates (all, and those with M_V < -8);
- the ML classes (share of class 1-2 that are true clusters or single stars);
- SED age and mass accuracy of the bright clusters found;
- cluster positions and total V against truth;
- association recovery per selection and kernel scale.

Usage: ``python benchmarks/bench_science.py [--size medium|full] [--out DIR]`` (default medium
in a temporary folder; ``full`` is the survey's field size and takes about half an hour on two
cores).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from astropy.table import Table

import phangs_products as pp
from phangs_products.bands import galaxy
from phangs_products.pipeline.sim.recovery import (
    catalogs_in,
    cluster_lines,
    cluster_recovery,
    on_image,
    recovery,
    recovery_lines,
)


def demo(size: str, out: Path) -> float:
    """Run the demo into ``out`` unless it holds one already; the wall time in s (0: reused)."""
    if next(out.glob("delivery/*/*_cl-cand.fits"), None) is not None:
        return 0.0
    command = [Path(sys.executable).with_name("phangs-products"), "demo", "--size", size]
    t0 = time.perf_counter()
    subprocess.run([*map(str, command), "--out", str(out)], check=True)
    return time.perf_counter() - t0


def report(out: Path) -> list[str]:
    """The science table of a demo folder."""
    truth = Table.read(out / "input" / "truth.ecsv")
    lines = []
    for field in sorted(p for p in (out / "delivery").iterdir() if p.is_dir()):
        cand = pp.open(next(field.glob("*_cl-cand.fits")), masked=False).table
        drc = pp.open(next(field.glob("*_f555w_*_drc-sci.fits")))
        figures = cluster_recovery(truth, cand, drc)
        lines += [f"field {field.name}: {len(truth)} true objects, V DRC {drc.data.shape}"]
        lines += cluster_lines(truth, figures, float(cand["PHANGS_DM"][0]))
        assoc = Table.read(out / "input" / "truth_associations.ecsv")
        assoc = assoc[on_image(assoc, drc)]
        target = str(truth.meta.get("target", "ngc628"))
        found = recovery(assoc, catalogs_in(field), galaxy(target).distance_mpc)
        lines += recovery_lines(assoc, found)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="medium", choices=("small", "medium", "full"))
    parser.add_argument("--out", type=Path, default=None, help="run folder (kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-science-") as tmp:
        out = (args.out or Path(tmp)).resolve()
        seconds = demo(args.size, out)
        print(f"demo --size {args.size}: " + (f"{seconds:.0f} s" if seconds else "reused"))
        print("\n".join(report(out)))


if __name__ == "__main__":
    main()

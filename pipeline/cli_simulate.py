"""``phangs-products simulate``: a simulated galaxy field as FLC files plus truth."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``phangs-products simulate``."""
    parser.add_argument("--out", default="simulation", help="output folder (default %(default)s)")
    parser.add_argument("--target", default="ngc628", help="galaxy of the survey table")
    parser.add_argument("--field", default=None, help="field name (default <target>c)")
    parser.add_argument("--size", default="small", choices=("small", "medium", "full"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--pointings",
        type=int,
        default=1,
        help="overlapping pointings, west to east (default 1; e.g. 2 for ngc628c + ngc628e)",
    )
    parser.add_argument(
        "--overlap",
        type=float,
        default=0.3,
        help="fraction of the detector width neighbouring pointings share (default 0.3)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing simulation")


def run(args: argparse.Namespace) -> int:
    """Simulate and print where the files are."""
    from .simulate import SimConfig, simulate

    config = SimConfig(
        target=args.target,
        field=args.field or f"{args.target}c",
        seed=args.seed,
        size=args.size,
        pointings=args.pointings,
        overlap=args.overlap,
    )
    result = simulate(config, Path(args.out), overwrite=args.overwrite)
    print(f"FLC files:          {result.flc_dir} ({len(result.flc_files)} exposures)")
    if len(result.pointings) > 1:
        for name, folder in result.pointings.items():
            print(f"  pointing {name}: {folder}")
    print(f"reference catalog:  {result.reference_catalog}")
    print(f"truth:              {result.truth}")
    return 0

"""Recovery of the simulated associations by a delivery made from simulated data.

Usage: ``python scripts/association_recovery.py demo-output`` (the folder of
``phangs-products demo --out``, which holds the truth in ``input/``).  Prints, per selection,
how many injected associations a region of the nearest kernel scale recovers (centre within
one kernel FWHM), overall and per scale.  ``--size medium`` demos (46 associations on the
image) give figures worth comparing between versions; the small demo has 6.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from astropy.table import Table

from phangs_products.models import open as open_product
from phangs_products.pipeline.config import load_config
from phangs_products.pipeline.sim.recovery import catalogs_in, on_image, recovery, recovery_lines


def main(argv: list[str] | None = None) -> int:
    """Print the recovery table of one demo output folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder of `phangs-products demo --out`")
    args = parser.parse_args(argv)
    config = args.out / "demo.toml"
    truth_file = args.out / "input" / "truth_associations.ecsv"
    for path in (config, truth_file):
        if not path.exists():
            parser.error(f"{path}: missing (is {args.out} a demo output folder?)")
    run = load_config(config)
    truth = Table.read(truth_file)
    folder = run.output / run.field
    drc = sorted(folder.glob("*_f555w_*drc-sci.fits"))
    if drc:  # associations placed beyond the detector edges cannot be found
        truth = truth[on_image(truth, open_product(drc[0]))]
    found = recovery(truth, catalogs_in(folder), run.galaxy.distance_mpc)
    if not found:
        parser.error(f"{folder}: no association catalogs")
    sys.stdout.write("\n".join(recovery_lines(truth, found)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

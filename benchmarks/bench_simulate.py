"""Time the simulator per exposure at the small, medium and full sizes and print the scaling.

Each size: build the scene, then render and write one F555W exposure (all chips) through the FLC
model, as :func:`phangs_products.pipeline.sim.simulate.simulate` does; the small size also runs a
whole five-band simulation (15 exposures) for the end-to-end figure.

Usage: python benchmarks/bench_simulate.py [--sizes small,medium,full]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from phangs_products.bands import galaxy, pc_per_pixel
from phangs_products.hlsp import Delivery, common_meta
from phangs_products.models import FlcModel
from phangs_products.pipeline.instrument import FLC_SCALE
from phangs_products.pipeline.sim.config import SimConfig
from phangs_products.pipeline.sim.exposure import (
    ExposureSpec,
    chip_defects,
    chip_wcs,
    exposure_hdulist,
    render_chip,
)
from phangs_products.pipeline.sim.scene import build_scene, field_center
from phangs_products.pipeline.sim.simulate import simulate


def one_exposure(size: str, out: Path) -> tuple[float, float, int]:
    """Seconds for the scene and for one exposure, and the number of objects."""
    config = SimConfig(size=size, bands=("F555W",))
    gal = galaxy(config.target)
    ra0, dec0 = field_center(gal)
    chips, ny, nx = config.shape
    t0 = time.perf_counter()
    truth, _, disk = build_scene(config, (nx * FLC_SCALE / 3600, chips * ny * FLC_SCALE / 3600))
    t1 = time.perf_counter()
    rng = np.random.default_rng(1)
    exptime = config.exptime("F555W")
    spec = ExposureSpec("isim100aq", "F555W", exptime, config.mjd_start, 0)
    wcs = [chip_wcs(ra0, dec0, c, chips, ny, nx) for c in range(1, chips + 1)]
    arrays = [
        render_chip(
            truth,
            disk,
            "F555W",
            exptime,
            w,
            (ny, nx),
            pc_per_pixel(gal.distance_mpc, FLC_SCALE),
            rng,
            False,
            chip_defects((ny, nx), 1, c),
        )
        for c, w in enumerate(wcs)
    ]
    hdul = exposure_hdulist(spec, arrays, wcs, gal.name, gal.ra, gal.dec)
    delivery = Delivery(gal, config.field, "v1", config.mjd_start, config.mjd_start + 0.01, True)
    FlcModel.from_hdulist(hdul, meta=common_meta(delivery, "phangs-hst", xposure=exptime)).save(
        out / f"{size}_flc.fits", overwrite=True
    )
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, len(truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,medium,full")
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        one_exposure("small", out)  # warm imports and the SSP grid
        base = None
        print(
            f"{'size':8s} {'pixels':>10s} {'objects':>8s} {'scene s':>8s} {'exposure s':>10s} "
            f"{'us/px':>7s} {'x small':>8s}"
        )
        for size in sizes:
            chips, ny, nx = SimConfig(size=size).shape
            scene_s, exp_s, n = one_exposure(size, out)
            pixels = chips * ny * nx
            base = base or exp_s
            print(
                f"{size:8s} {pixels:10d} {n:8d} {scene_s:8.2f} {exp_s:10.2f} "
                f"{exp_s / pixels * 1e6:7.3f} {exp_s / base:8.1f}"
            )
        if "small" in sizes:
            t0 = time.perf_counter()
            result = simulate(SimConfig(), out / "whole")
            elapsed = time.perf_counter() - t0
            print(
                f"whole small simulation: {len(result.flc_files)} exposures in {elapsed:.1f} s "
                f"({elapsed / len(result.flc_files):.2f} s per exposure)"
            )


if __name__ == "__main__":
    main()

"""Imaging stage: wall time and peak memory per band (alignment + drizzle + products).

Baseline in the same run: a bare AstroDrizzle call on the same exposures (no alignment, no
products), so the ratio is our overhead over drizzlepac itself.  ``mosaic`` (or
``mosaic:<size>``) times the mosaic stage of a two-pointing galaxy (30% overlap) per band against
the imaging stage of one pointing.  ``concurrent`` (or ``concurrent:<size>``) times the imaging
stage of one field with its bands on worker processes (``ImagingConfig(workers=0)``: every free
core) against the sequential stage (``workers=1``) on the same inputs, and checks that the DRC
arrays are equal.  Usage:
``python benchmarks/bench_imaging.py [small|medium|mosaic|mosaic:medium|concurrent:<size> ...]``.
"""

from __future__ import annotations

import dataclasses
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

from phangs_products.hlsp import HlspIdentity
from phangs_products.pipeline.config import Pointing, RunConfig
from phangs_products.pipeline.imaging.drizzle import drizzle_band
from phangs_products.pipeline.imaging.exposures import ImagingConfig, group_exposures
from phangs_products.pipeline.imaging.mosaic import mosaic_stage
from phangs_products.pipeline.imaging.parallel import worker_count
from phangs_products.pipeline.imaging.stage import imaging_stage, input_files
from phangs_products.pipeline.products import ProductKey
from phangs_products.pipeline.publish.publish import publish_stage
from phangs_products.pipeline.runner import Stage, run_stages
from phangs_products.pipeline.sim.config import SimConfig
from phangs_products.pipeline.sim.simulate import simulate

#: HLSP identity of benchmark runs on simulated data (no collection DOI).
BENCH_IDENTITY = HlspIdentity(names={"phangs-hst": "phangs-products benchmark"}, lead="benchmarks")


def peak_mb() -> float:
    """Peak resident memory of this process so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_mosaic(size: str) -> None:
    """Two pointings: imaging (+ publish) per pointing, then the mosaic stage; print per band."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sim = simulate(SimConfig(size=size, pointings=2), root / "sim")
        fields = list(sim.pointings)
        run = mosaic_run(sim, root)
        seconds = {}
        for sub in run.pointing_runs():
            t0 = time.perf_counter()
            stages = [
                Stage("imaging", imaging_stage, config=ImagingConfig()),
                Stage("publish", publish_stage, depends=("imaging",), config={}),
            ]
            run_stages(sub, stages)
            seconds[sub.field] = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_stages(run.mosaic_run(), [Stage("mosaic", mosaic_stage, config=ImagingConfig())])
        mosaic = time.perf_counter() - t0
        n_bands = 5
        one = seconds[fields[0]]
        print(
            f"mosaic:{size}: pointing imaging {one:.1f} s ({one / n_bands:.1f} s/band); "
            f"mosaic of 2 pointings {mosaic:.1f} s ({mosaic / n_bands:.1f} s/band, "
            f"{mosaic / one:.2f}x one pointing's alignment + drizzle); "
            f"peak memory {peak_mb():.0f} MB"
        )


def _run(sim, root: Path, **settings) -> RunConfig:
    """Run configuration of a simulated field: output and work folders under ``root``."""
    run = RunConfig(
        target="ngc628",
        field="ngc628c",
        input=sim.flc_dir,
        reference_catalog=sim.reference_catalog,
        output=root / "out",
        work=root / "work",
        simulated=True,
        ebv_mw=0.0,
        hlsp=BENCH_IDENTITY,
    )
    return dataclasses.replace(run, **settings)


def mosaic_run(sim, root: Path) -> RunConfig:
    """Run configuration of a simulated galaxy of several pointings (field ``ngc628mosaic``)."""
    fields = list(sim.pointings)
    return _run(
        sim,
        root,
        field="ngc628mosaic",
        input=sim.pointings[fields[0]],
        pointings=tuple(Pointing(f, sim.pointings[f]) for f in fields),
    )


def bench_concurrent(size: str) -> None:
    """One field: the imaging stage sequential vs bands on worker processes; print the ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sim = simulate(SimConfig(size=size), root / "sim")
        base = _run(sim, root)
        seconds, drcs = {}, {}
        for workers in (1, 0):
            run = dataclasses.replace(base, work=root / f"work{workers}")
            stage = Stage("imaging", imaging_stage, config=ImagingConfig(workers=workers))
            t0 = time.perf_counter()
            (result,) = run_stages(run, [stage])
            seconds[workers] = time.perf_counter() - t0
            drcs[workers] = result.outputs[ProductKey.DRC_SCI]
        same = all(
            np.array_equal(fits.getdata(a), fits.getdata(b))
            for a, b in zip(drcs[1], drcs[0], strict=True)
        )
        n = worker_count(ImagingConfig(), 5)
        print(
            f"concurrent:{size}: imaging stage sequential {seconds[1]:.1f} s, bands on {n} "
            f"processes {seconds[0]:.1f} s: {seconds[0] / seconds[1]:.2f}x the sequential "
            f"wall time; DRC arrays equal: {same}"
        )


def main(sizes: list[str]) -> None:
    """Simulate each size, run the imaging stage and a bare AstroDrizzle; print the figures."""
    for size in sizes:
        if size.startswith("mosaic"):
            bench_mosaic(size.partition(":")[2] or "small")
            continue
        if size.startswith("concurrent"):
            bench_concurrent(size.partition(":")[2] or "small")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            sim = simulate(SimConfig(size=size), root / "sim")
            run = _run(sim, root)
            t0 = time.perf_counter()
            stage = Stage("imaging", imaging_stage, config=ImagingConfig(workers=1))
            run_stages(run, [stage])
            ours = time.perf_counter() - t0
            mem = peak_mb()
            groups, _ = group_exposures(input_files(sim.flc_dir), ["F555W"])
            scratch = root / "bare"
            scratch.mkdir()
            copies = [shutil.copy(e.path, scratch) for e in groups["F555W"]]
            groups, _ = group_exposures([Path(c) for c in copies], ["F555W"])
            t0 = time.perf_counter()
            drizzle_band(groups["F555W"], scratch, ImagingConfig())
            bare = time.perf_counter() - t0
            n_bands = 5
            print(
                f"{size}: imaging stage {ours:.1f} s for {n_bands} bands = "
                f"{ours / n_bands:.1f} s/band; bare AstroDrizzle of one band {bare:.1f} s; "
                f"ratio per band {ours / n_bands / bare:.2f}x; peak memory {mem:.0f} MB"
            )


if __name__ == "__main__":
    main(sys.argv[1:] or ["small"])

"""A field end to end: every stage's wall time, cores busy and peak memory against the bare tools.

Simulates one pointing (the survey's exposure layout: 5 WFC3/UVIS bands, 3 exposures each) at
the given size and runs the whole pipeline on it (``run_galaxy``, default settings: bands on
worker processes).  Then, on the same inputs in the same run, the bare tool calls the stages
make, one after another in this process:

- imaging: per band, TweakReg with our arguments and our source list
  (:func:`tweakreg_arguments`; the source list is written before the clock starts) and
  AstroDrizzle with our arguments (:func:`astrodrizzle_arguments`) onto the F555W grid;
- photometry: DAOStarFinder on the F555W DRC (our threshold and FWHM), ``aperture_photometry``
  of the seven CI/MCI radii in every band and photutils ``PSFPhotometry`` (our Moffat, fit box,
  grouper and local background) in every band, at the stage's source positions;
- validate: ``fitsverify`` of every FITS file of the delivery (when it is on PATH).

The other stages have no outside tool to compare with.  Prints per stage: our wall time, CPU
seconds per wall second (cores busy), peak resident memory of the run's processes, the bare
tools' time and the ratio; then the whole field.  ``mosaic`` also runs a galaxy of two
pointings (30% overlap) of the same size twice, its pointings one after another and side by
side, and prints their stages and wall clocks (no bare baseline).

Usage: ``python benchmarks/bench_field.py [small|medium|full] [mosaic|mosaic-only]`` (default:
full; ``mosaic-only`` leaves out the single pointing).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.stats import sigma_clipped_stats
from astropy.table import Table
from bench_imaging import _run, mosaic_run
from bench_psf import bare_fit
from photutils.aperture import CircularAperture, aperture_photometry
from threadpoolctl import threadpool_limits

import phangs_products as pp
from phangs_products.bands import survey_filters
from phangs_products.pipeline.graph import run_galaxy
from phangs_products.pipeline.imaging.align import alignment_catalog, tweakreg_arguments
from phangs_products.pipeline.imaging.drizzle import astrodrizzle_arguments
from phangs_products.pipeline.imaging.exposures import (
    ImagingConfig,
    captured,
    group_exposures,
    in_folder,
)
from phangs_products.pipeline.imaging.stage import input_files
from phangs_products.pipeline.photometry.config import PhotometryConfig
from phangs_products.pipeline.photometry.detect import star_finder
from phangs_products.pipeline.photometry.psf_phot import PSFPhotConfig
from phangs_products.pipeline.products import ProductKey, StageName
from phangs_products.pipeline.runner import StageResult
from phangs_products.pipeline.sim.config import SimConfig
from phangs_products.pipeline.sim.simulate import simulate


@dataclass
class Bare:
    """Seconds of the bare tool calls of a stage, and what they were."""

    seconds: float
    what: str


def bare_imaging(flc_dir: Path, refcat: Path, scratch: Path) -> Bare:
    """TweakReg and AstroDrizzle of every band, F555W first (it defines the grid)."""
    config = ImagingConfig()
    groups, _ = group_exposures(input_files(flc_dir), survey_filters())
    order = ["F555W", *(f for f in groups if f != "F555W")]
    seconds, refimage = 0.0, None
    from drizzlepac import astrodrizzle, tweakreg

    for filt in order:
        folder = scratch / filt.lower()
        folder.mkdir(parents=True)
        files = [shutil.copy(e.path, folder) for e in groups[filt]]
        catfile = alignment_catalog(files, config, folder) if config.max_sources else None
        with in_folder(folder), captured(folder / "bare.log"):
            t0 = time.perf_counter()
            tweakreg.TweakReg(files, **tweakreg_arguments(refcat, catfile, config))
            drizzle = astrodrizzle_arguments(filt.lower(), config, refimage)
            astrodrizzle.AstroDrizzle(files, **drizzle)
            seconds += time.perf_counter() - t0
        if refimage is None:
            refimage = next(folder.glob("f555w_dr?_sci.fits"))
    return Bare(seconds, f"TweakReg + AstroDrizzle x {len(order)}")


def bare_photometry(outputs: dict) -> Bare:
    """DAOStarFinder on F555W, then aperture sums and PSF fits of every band at our sources."""
    config = PhotometryConfig()
    images, errors = {}, {}
    for path in outputs[StageName.IMAGING][ProductKey.DRC_SCI]:
        model = pp.open(path)
        images[model.meta.filter] = model
    for path in outputs[StageName.IMAGING][ProductKey.DRC_ERR]:
        model = pp.open(path)
        errors[model.meta.filter] = model
    (sources_path,) = outputs[StageName.PHOTOMETRY][ProductKey.SOURCES]
    sources = Table.read(sources_path)
    xy = np.c_[sources["x"], sources["y"]]
    t0 = time.perf_counter()
    data = np.asarray(images["F555W"].data, float)
    good = np.isfinite(data)
    _, median, std = sigma_clipped_stats(data[good], sigma=3.0, maxiters=5)
    finder = star_finder(config, config.threshold * std)
    finder(np.where(good, data - median, 0.0), mask=~good)
    for filt, model in images.items():
        apertures = [CircularAperture(xy, r=r) for r in config.radii]
        aperture_photometry(model.data, apertures, error=errors[filt].data)
    seconds = time.perf_counter() - t0
    seconds += bare_fit(images, errors, sources, PSFPhotConfig())
    return Bare(seconds, f"DAOStarFinder + aperture_photometry + PSFPhotometry x {len(images)}")


def bare_validate(outputs: dict) -> Bare | None:
    """fitsverify of the delivery's FITS files, or None without fitsverify."""
    tool = shutil.which("fitsverify")
    if tool is None:
        return None
    files = [str(p) for paths in outputs[StageName.PUBLISH].values() for p in paths]
    files = [f for f in files if f.endswith(".fits")]
    t0 = time.perf_counter()
    done = subprocess.run([tool, "-q", *files], capture_output=True, text=True, check=False)
    if done.returncode != 0 and not done.stdout:
        raise RuntimeError(f"fitsverify failed: {done.stderr.strip()}")
    return Bare(time.perf_counter() - t0, f"fitsverify of {len(files)} files")


def run(run_config, pointings_at_once: int = 0) -> tuple[list[StageResult], dict]:
    """Run the field; the finished stages and their outputs by stage name."""
    done = run_galaxy(run_config, pointings_at_once=pointings_at_once)
    results = [r for r in done if r.status == "done"]
    return results, {r.name: r.outputs for r in results}


def print_rows(title: str, results: list[StageResult], bare: dict[str, Bare | None]) -> None:
    """One line per stage and a total."""
    print(title)
    print(f"  {'stage':<28} {'ours s':>8} {'cores':>6} {'peak GB':>8} {'bare s':>8} {'ratio':>6}")
    for r in results:
        b = bare.get(r.name.rpartition("/")[2])
        tail = f"{b.seconds:8.1f} {r.seconds / b.seconds:5.2f}x  {b.what}" if b else ""
        print(
            f"  {r.name:<28} {r.seconds:8.1f} {r.cores:6.2f} {r.peak_mb / 1e3:8.2f} {tail}".rstrip()
        )
    wall = sum(r.seconds for r in results)
    cpu = sum(r.cpu_seconds for r in results)
    peak = max(r.peak_mb for r in results) / 1e3
    print(f"  {'whole run':<28} {wall:8.1f} {cpu / wall:6.2f} {peak:8.2f}")
    compared = [r for r in results if bare.get(r.name.rpartition("/")[2])]
    if compared:
        ours = sum(r.seconds for r in compared)
        theirs = sum(bare[r.name.rpartition("/")[2]].seconds for r in compared)  # type: ignore[union-attr]
        print(
            f"  stages with bare tools: ours {ours:.1f} s, bare {theirs:.1f} s = "
            f"{ours / theirs:.2f}x; the whole run is {wall / theirs:.2f}x the bare tool calls"
        )


def bench_pointing(size: str) -> None:
    """One pointing: simulate, run, time the bare tools; print the table."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        sim = simulate(SimConfig(size=size), root / "sim")
        print(f"simulated one {size} pointing in {time.perf_counter() - t0:.0f} s")
        results, outputs = run(_run(sim, root))
        with threadpool_limits(limits=1):
            bare = {
                StageName.IMAGING: bare_imaging(sim.flc_dir, sim.reference_catalog, root / "bare"),
                StageName.PHOTOMETRY: bare_photometry(outputs),
                StageName.VALIDATE: bare_validate(outputs),
            }
        print_rows(f"one {size} pointing, 5 bands, 15 exposures", results, bare)


def bench_mosaic(size: str) -> None:
    """A galaxy of two pointings, its pointings in turn and side by side; print both."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sim = simulate(SimConfig(size=size, pointings=2), root / "sim")
        wall = {}
        for label, at_once in (("one after another", 1), ("side by side", 0)):
            t0 = time.perf_counter()
            results, _ = run(mosaic_run(sim, root / str(at_once)), pointings_at_once=at_once)
            wall[label] = time.perf_counter() - t0
            print_rows(f"a {size} mosaic of two pointings, pointings {label}", results, {})
            print(f"  wall clock: {wall[label]:.1f} s")
        side, turn = wall["side by side"], wall["one after another"]
        print(f"pointings side by side: {side:.1f} s vs {turn:.1f} s in turn = {side / turn:.2f}x")


if __name__ == "__main__":
    args = sys.argv[1:]
    size = next((a for a in args if not a.startswith("mosaic")), "full")
    if "mosaic-only" not in args:
        bench_pointing(size)
    if "mosaic" in args or "mosaic-only" in args:
        bench_mosaic(size)

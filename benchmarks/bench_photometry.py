"""Photometry speed: our complete per-band measurement vs the bare photutils call, and 5 bands.

Per band (N = 10k, 100k, 500k positions on a 4k x 4k image with a missing-data border like a
rotated DRC footprint): ours is :func:`band_fluxes` (7 CI/MCI apertures with errors,
sigma-clipped annulus sky, sky-subtracted fluxes and errors, coverage of the 4 px aperture) plus
magnitudes and CI/NCI/MCI; the baseline is ``aperture_photometry(data, [7 apertures],
error=err)`` on the same image and positions.  Prints throughput, peak memory, the ratio and
the agreement of the raw aperture sums.

Five bands: :func:`measure_bands` of 500k sources on five 4k x 4k DRC products read from files,
with the default ``workers`` (one process per core), against the goal of 90 s on 2 cores.

Usage: ``python benchmarks/bench_photometry.py [N ...]`` (default 10000 100000 500000); set
``BENCH_PHOT_BANDS=0`` to skip the five-band run.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
import tracemalloc

import numpy as np
from astropy.table import Table
from photutils.aperture import CircularAperture, aperture_photometry

import phangs_products as pp
from phangs_products.pipeline.photometry.aperture import (
    annulus_sky,
    band_fluxes,
    concentration,
    measure_bands,
    to_mags,
)
from phangs_products.pipeline.photometry.config import PhotometryConfig
from phangs_products.testing import make_drc_products

SIZE = 4000

#: FWHM (px) of the V PSF for the CI normalisation
PSF_FWHM = 2.5


def _timed(func, *args):
    """Run ``func(*args)`` twice: timed, then under tracemalloc (which slows it down).

    Returns (result, seconds, peak traced allocation in MB; numpy reports its buffers).
    """
    t0 = time.perf_counter()
    result = func(*args)
    seconds = time.perf_counter() - t0
    tracemalloc.start()
    func(*args)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def per_band(sizes: list[int]) -> None:
    """Our per-band measurement vs the bare call for each number of sources."""
    rng = np.random.default_rng(1)
    data = rng.normal(0.05, 0.01, (SIZE, SIZE))
    data[:, :150] = np.nan  # missing data along one edge, as in a rotated DRC footprint
    err = np.full(data.shape, 0.01)
    config = PhotometryConfig()
    radii = tuple(config.radii)
    for n in sizes:
        x = rng.uniform(20, SIZE - 20, n)
        y = rng.uniform(20, SIZE - 20, n)

        def bare(x: np.ndarray, y: np.ndarray) -> Table:
            apertures = [CircularAperture(np.c_[x, y], r=r) for r in radii]
            return aperture_photometry(data, apertures, error=err)

        def ours(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
            flux, flux_err, covered = band_fluxes(data, err, x, y, config)
            mags, _ = to_mags(flux, flux_err, 25.0)
            concentration(mags, radii, PSF_FWHM)
            return flux, flux_err, covered

        base, t_bare, m_bare = _timed(bare, x, y)
        (flux, _, covered), t_ours, m_ours = _timed(ours, x, y)
        sums = np.asarray(base["aperture_sum_0"])
        # our fluxes are sky-subtracted: add the sky back (a second, untimed run of the sky)
        sky = annulus_sky(data, x, y, config.annulus)[0]
        raw = flux[:, 0] + sky * np.pi * radii[0] ** 2
        full = covered & np.isfinite(sums)
        agree = np.max(np.abs(raw[full] - sums[full]) / np.abs(sums[full]))
        print(
            f"N={n:>7,}: bare {t_bare:6.2f} s ({n / t_bare:>9,.0f}/s, {m_bare:5.0f} MB)  "
            f"ours {t_ours:6.2f} s ({n / t_ours:>9,.0f}/s, {m_ours:5.0f} MB)  "
            f"ratio {t_ours / t_bare:.2f}x  flux agreement {agree:.1e}"
        )


def five_bands(n: int) -> None:
    """measure_bands of n sources in five bands read from DRC files (default workers)."""
    with tempfile.TemporaryDirectory(prefix="bench-phot-") as tmp:
        t0 = time.perf_counter()
        folder = make_drc_products(tmp, size=SIZE)
        print(f"wrote five {SIZE}x{SIZE} DRC/ERR/EXP products in {time.perf_counter() - t0:.0f} s")
        images, errors = {}, {}
        for path in sorted(folder.glob("*_drc-*.fits")):
            model = pp.open(path)
            kind = path.stem.rsplit("_", 1)[-1]
            if kind in ("drc-sci", "drc-err"):
                (images if kind == "drc-sci" else errors)[model.meta.filter] = model
        rng = np.random.default_rng(2)
        sources = Table({"x": rng.uniform(20, SIZE - 20, n), "y": rng.uniform(20, SIZE - 20, n)})
        cores = len(os.sched_getaffinity(0))
        t0 = time.perf_counter()
        table, _ = measure_bands(sources, images, errors, PhotometryConfig())
        wall = time.perf_counter() - t0
        child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{n:,} sources x {len(images)} bands on {cores} cores: {wall:.1f} s "
            f"({n * len(images) / wall:,.0f} source-bands/s; goal 90 s), peak RSS main "
            f"{own:.0f} MB, largest worker {child:.0f} MB, {len(table.colnames)} columns"
        )


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000, 500_000]
    per_band(sizes)
    if os.environ.get("BENCH_PHOT_BANDS", "1") != "0":
        five_bands(max(sizes))

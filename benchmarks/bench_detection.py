"""Detection speed and depth: our local-rms threshold vs one global rms, on a disk-like image.

A 4k x 4k F555W DRC product (:func:`make_drc_products`) gets an exponential disk gradient (up
to 0.2 e-/s per pixel, about the simulated NGC 628 disk near its centre; Poisson noise
included) and N stars of the simulator's PSF with fluxes from 0.5 to 50 e-/s (V ~ 21.5-26.5).
Ours is one :func:`detect_sources` pass (local background and rms from 64 px meshes); the
baseline is the bare DAOStarFinder call with one sigma-clipped global rms, the way detection
worked before.  Both use the same kernel, threshold (3.5) and ranges.  Prints the wall time,
the ratio, and the share of injected stars found within 1 px.

Usage: ``python benchmarks/bench_detection.py [N ...]`` (default 20000 100000).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.stats import sigma_clipped_stats
from scipy.spatial import cKDTree

import phangs_products as pp
from phangs_products.pipeline.instrument import psf_for
from phangs_products.pipeline.photometry.config import PhotometryConfig
from phangs_products.pipeline.photometry.detect import detect_sources, star_finder
from phangs_products.pipeline.sim.psf import render_sources
from phangs_products.testing import make_drc_products

SIZE = 4000


def scene(n: int, seed: int = 1) -> tuple[pp.ImageModel, np.ndarray]:
    """The F555W product with a disk gradient and ``n`` stars; returns it and their x, y."""
    folder = make_drc_products(Path(tempfile.mkdtemp()), size=SIZE, bands=["F555W"])
    model = pp.open(next(folder.glob("*_f555w_*drc-sci.fits")))
    rng = np.random.default_rng(seed)
    data = np.asarray(model.data, float).copy()
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    disk = np.exp(-np.hypot(xx - 0.2 * SIZE, yy - 0.3 * SIZE) / (0.4 * SIZE))
    exptime = 670.0  # s, F555W total of the simulated field (Poisson noise of the disk)
    data += rng.poisson(0.2 * disk * exptime) / exptime
    xy = rng.uniform(20, SIZE - 20, (n, 2))
    flux = 10 ** rng.uniform(np.log10(0.5), np.log10(50.0), n)
    stars = np.zeros((SIZE, SIZE))
    render_sources(stars, xy[:, 0], xy[:, 1], flux * exptime, psf_for("F555W"))
    data += rng.poisson(np.clip(stars, 0, None)) / exptime
    model.data = data.astype(np.float32)
    return model, xy


def baseline(model: pp.ImageModel, config: PhotometryConfig) -> np.ndarray:
    """The bare DAOStarFinder call with one global sigma-clipped rms (x, y of detections)."""
    data = np.asarray(model.data, float)
    _, median, std = sigma_clipped_stats(data[data != 0], sigma=3.0, maxiters=10)
    found = star_finder(config, config.threshold * std)(data - median)
    if found is None:
        return np.zeros((0, 2))
    return np.c_[found["x_centroid"], found["y_centroid"]]


def found_share(truth: np.ndarray, xy: np.ndarray) -> float:
    """Share of injected stars with a detection within 1 px."""
    if len(xy) == 0:
        return 0.0
    dist, _ = cKDTree(xy).query(truth)
    return float(np.mean(dist < 1.0))


def main(sizes: list[int]) -> None:
    """Time both detections for each number of stars."""
    config = PhotometryConfig(detect_passes=1)
    for n in sizes:
        model, truth = scene(n)
        t0 = time.perf_counter()
        ours = detect_sources(model, config)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        bare = baseline(model, config)
        t_bare = time.perf_counter() - t0
        share_ours = found_share(truth, np.c_[ours["x"], ours["y"]])
        print(
            f"N={n:>7d}: ours {t_ours:6.1f} s ({len(ours)} found, {share_ours:.1%} of injected)  "
            f"global rms {t_bare:6.1f} s ({len(bare)} found, {found_share(truth, bare):.1%})  "
            f"ratio {t_ours / t_bare:.2f}x"
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [20000, 100000])

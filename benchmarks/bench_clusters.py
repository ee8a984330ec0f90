"""Synthetic-cluster calibration: wall time of :func:`calibrate_mci` vs full-image injection.

Ours: every injection in its own cutout of the real V image, all cutouts measured with one
aperture-photometry call per block (default 216 profiles x 100 = 21,600 injections).  Baseline:
the paper's procedure taken literally, 200 clusters added to a copy of the full image and
measured there, batch after batch; it is timed on a few batches and scaled to the same number
of injections.  Both on a 4k x 4k DRC.  Prints the wall times, injections/s, peak RSS and the
ratio.  Usage: ``python benchmarks/bench_clusters.py [per_profile]``.
"""

from __future__ import annotations

import dataclasses
import resource
import sys
import tempfile
import time

import numpy as np
from astropy.table import Table

import phangs_products as pp
from phangs_products.pipeline.clusters.selection import (
    ClusterSelectionConfig,
    calibrate_mci,
    profile_stamp,
)
from phangs_products.pipeline.photometry.aperture import aperture_fluxes
from phangs_products.pipeline.photometry.config import PhotometryConfig
from phangs_products.pipeline.psf import MeasuredPSF
from phangs_products.testing import make_drc_products

SIZE = 4000
BASELINE_BATCHES = 5


def baseline_seconds_per_injection(sci: np.ndarray, err: np.ndarray, phot: PhotometryConfig):
    """Seconds per injection of 200-at-a-time injection into full-image copies."""
    rng = np.random.default_rng(3)
    stamp = profile_stamp(2.0, 2.5, MeasuredPSF(2.5, "instrument").kernel(), 15)
    t0 = time.perf_counter()
    for _ in range(BASELINE_BATCHES):
        x = rng.integers(100, SIZE - 100, 200)
        y = rng.integers(100, SIZE - 100, 200)
        image = sci.copy()
        for xi, yi in zip(x, y, strict=True):
            image[yi - 15 : yi + 16, xi - 15 : xi + 16] += 50.0 * stamp
        aperture_fluxes(image, err, x.astype(float), y.astype(float), phot.radii, phot.annulus)
    return (time.perf_counter() - t0) / (200 * BASELINE_BATCHES)


def main(per_profile: int) -> None:
    """Time both on one 4k x 4k F555W DRC."""
    with tempfile.TemporaryDirectory(prefix="bench-clusters-") as tmp:
        folder = make_drc_products(tmp, size=SIZE, bands=("F555W",))
        sci = pp.open(next(folder.glob("*_drc-sci.fits")))
        err = pp.open(next(folder.glob("*_drc-err.fits")))
        config = dataclasses.replace(ClusterSelectionConfig(), per_profile=per_profile)
        phot = PhotometryConfig()
        stars = Table({"MCI_IN": np.zeros(0), "MCI_OUT": np.zeros(0)})
        t0 = time.perf_counter()
        region = calibrate_mci(sci, err, stars, 9.84, config, phot)
        ours = time.perf_counter() - t0
        n = len(region.injected)
        per = baseline_seconds_per_injection(
            np.asarray(sci.data, float), np.asarray(err.data, float), phot
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"calibration of {n:,} injections on {SIZE}x{SIZE}: ours {ours:.1f} s "
            f"({n / ours:,.0f}/s); full-image batches of 200 {per * n:.1f} s (scaled from "
            f"{BASELINE_BATCHES} batches, {1 / per:,.0f}/s); ratio {ours / (per * n):.3f}x; "
            f"peak RSS {peak:.0f} MB; {len(region.cluster_bins)} occupied 0.04-mag bins"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else ClusterSelectionConfig().per_profile)

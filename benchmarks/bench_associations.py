"""Associations on a full-size field: the four scales, our method vs a bare watershed.

Field: 4096 x 4096 grid (0.04"/px at NGC 628, 1.91 pc/px), 500,000 synthetic point sources
(450,000 uniform field stars and 50,000 in 1,000 Gaussian groups of FWHM 10-100 pc).

Ours (:func:`watershed_regions` for 8, 16, 32, 64 pc): the tracer map, one FFT of it and of the
footprint, per scale the kernel and 4x background smoothings, high-pass, candidate peaks above
1.5 single-star peaks, the chance-grouping test and the masked watershed.  Baseline, per scale:
``scipy.ndimage.gaussian_filter`` of the same tracer map, the same local-maximum finder above
1.5 single-star peaks (``skimage.feature.peak_local_max`` finds the same peaks but its spacing
loop alone takes minutes on the ~10^5 peaks of the bare map) and one
``skimage.segmentation.watershed`` inside the half-maximum mask (no high-pass, no significance
test).  Usage: ``python benchmarks/bench_associations.py [N]``.
Prints wall time, traced peak memory (numpy/scipy allocations, ``tracemalloc``) of each, the
ratio, the process peak RSS and the regions per scale.

Region photometry (the catalogs' fluxes, :func:`region_photometry`) of the 32 pc regions in
five 4096 x 4096 DRC products, against the same statistics with ``scipy.ndimage``'s labelled
sum/median/standard deviation (:func:`phangs_products.testing.ndimage_region_photometry`).
"""

from __future__ import annotations

import os
import resource
import sys
import time
import tracemalloc

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

import phangs_products as pp
from phangs_products.pipeline.associations.catalog import region_photometry
from phangs_products.pipeline.associations.config import FWHM_SIGMA, AssociationConfig
from phangs_products.pipeline.associations.maps import MapSmoother, tracer_map
from phangs_products.pipeline.associations.watershed import local_maxima, watershed_regions
from phangs_products.testing import DEFAULT_BANDS as BANDS
from phangs_products.testing import make_drc_products, ndimage_region_photometry

SHAPE = (4096, 4096)
PC_PX = 1.908
SCALES = (8, 16, 32, 64)


def synthetic(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """90% uniform field stars, 10% in Gaussian groups (50 stars, FWHM 10-100 pc)."""
    rng = np.random.default_rng(seed)
    n_groups = n // 500
    centres = rng.uniform(100, SHAPE[0] - 100, (n_groups, 2))
    sigma = 10 ** rng.uniform(1, 2, n_groups) / FWHM_SIGMA / PC_PX
    members = np.repeat(np.arange(n_groups), 50)
    groups = centres[members] + rng.normal(size=(members.size, 2)) * sigma[members, None]
    field = rng.uniform(0, SHAPE[0] - 1, (n - members.size, 2))
    xy = np.clip(np.vstack([groups, field]), 0, SHAPE[0] - 1)
    return xy[:, 0], xy[:, 1]


def ours(x: np.ndarray, y: np.ndarray) -> list[int]:
    """Our four scales; number of associations per scale."""
    config = AssociationConfig()
    foot = np.ones(SHAPE, bool)
    pad = int(np.ceil(4 * max(SCALES) / PC_PX * config.highpass_factor / FWHM_SIGMA))
    smoother = MapSmoother(tracer_map(x, y, SHAPE), foot, pad)
    out = []
    for scale in SCALES:
        _, peaks, _ = watershed_regions(x, y, SHAPE, scale / PC_PX, config, foot, smoother)
        out.append(len(peaks))
    return out


def baseline(x: np.ndarray, y: np.ndarray) -> list[int]:
    """Bare gaussian_filter + peak_local_max + watershed per scale."""
    image = tracer_map(x, y, SHAPE)
    out = []
    for scale in SCALES:
        fwhm = scale / PC_PX
        sigma = fwhm / FWHM_SIGMA
        smooth = ndimage.gaussian_filter(image, sigma)
        peak1 = 1.0 / (2 * np.pi * sigma**2)
        peaks = local_maxima(smooth, max(1, int(fwhm / 2)), 1.5 * peak1)
        markers = np.zeros(SHAPE, np.int32)
        markers[peaks[:, 0], peaks[:, 1]] = np.arange(1, len(peaks) + 1)
        watershed(-smooth, markers, mask=smooth >= 0.5 * peak1)
        out.append(len(peaks))
    return out


def timed(func, x: np.ndarray, y: np.ndarray) -> tuple[float, float, list[int]]:
    """Wall time (s), traced peak memory (MB) and result of one call."""
    tracemalloc.start()
    t0 = time.perf_counter()
    result = func(x, y)
    wall = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return wall, peak, result


def main(n: int) -> None:
    """Run both on the same catalog and print the comparison."""
    x, y = synthetic(n)
    t_base, m_base, n_base = timed(baseline, x, y)
    t_ours, m_ours, n_ours = timed(ours, x, y)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{SHAPE[0]}x{SHAPE[1]} grid, {n:,} point sources, scales {SCALES} pc, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"baseline (gaussian_filter + watershed): {t_base:.1f} s, peak {m_base:.0f} MB, "
        f"regions {n_base}"
    )
    print(
        f"ours (high-pass + chance test + watershed): {t_ours:.1f} s, peak {m_ours:.0f} MB, "
        f"regions {n_ours}"
    )
    print(
        f"ratio ours/baseline: {t_ours / t_base:.2f}x time, {m_ours / m_base:.2f}x memory; "
        f"process peak RSS {rss:.0f} MB; goal < 60 s: {'met' if t_ours < 60 else 'NOT met'}"
    )


def photometry_comparison(x: np.ndarray, y: np.ndarray) -> None:
    """Time the region photometry of the 32 pc regions, ours vs scipy.ndimage, five bands."""
    import tempfile
    from pathlib import Path

    fwhm = 32 / PC_PX
    labels, _, _ = watershed_regions(x, y, SHAPE, fwhm, AssociationConfig())
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_drc_products(Path(tmp) / "d", size=SHAPE[0])
        images = {b: pp.open(next(folder.glob(f"*_{b.lower()}_*drc-sci.fits"))) for b in BANDS}
        errors = {b: pp.open(next(folder.glob(f"*_{b.lower()}_*drc-err.fits"))) for b in BANDS}
        arrays = {
            f: (np.asarray(m.data, float), np.asarray(errors[f].data)) for f, m in images.items()
        }
        t0 = time.perf_counter()
        fast = region_photometry(labels, images, errors, fwhm)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = {f: ndimage_region_photometry(labels, d, e, fwhm) for f, (d, e) in arrays.items()}
        t_ref = time.perf_counter() - t0
    diff = max(float(np.max(np.abs(fast[f][0] - ref[f][0]))) for f in ref)
    print(
        f"region photometry, {labels.max()} regions (32 pc) x {len(images)} bands: ours "
        f"{t_ours:.1f} s, scipy.ndimage {t_ref:.1f} s, ratio {t_ours / t_ref:.2f}x; "
        f"largest flux difference {diff:.1e}"
    )


if __name__ == "__main__":
    n_sources = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
    main(n_sources)
    photometry_comparison(*synthetic(n_sources))

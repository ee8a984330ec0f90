"""Per-band photometry of N sources: our complete measurement vs the bare photutils call.

Ours: 7 CI/MCI apertures with errors, sigma-clipped annulus sky, sky-subtracted fluxes and
errors, magnitudes, CI/NCI/MCI.  Baseline: ``aperture_photometry(data, [7 apertures],
error=err)`` on the same image and positions.  Usage: ``python benchmarks/bench_photometry.py
[N ...]`` (default 10000 100000).  Prints throughput, peak memory, the ratio, and the flux
agreement of the two.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np
from photutils.aperture import CircularAperture, aperture_photometry

from phangs_products.pipeline.photometry import (
    PhotometryConfig,
    aperture_fluxes,
    concentration,
    to_mags,
)


def main(sizes: list[int]) -> None:
    """Run the comparison for each number of sources."""
    rng = np.random.default_rng(1)
    shape = (4000, 4000)
    data = rng.normal(0.05, 0.01, shape)
    err = np.full(shape, 0.01)
    config = PhotometryConfig()
    radii = tuple(config.radii)
    for n in sizes:
        x = rng.uniform(20, shape[1] - 20, n)
        y = rng.uniform(20, shape[0] - 20, n)
        t0 = time.perf_counter()
        bare = aperture_photometry(
            data, [CircularAperture(np.c_[x, y], r=r) for r in radii], error=err
        )
        t_bare = time.perf_counter() - t0
        t0 = time.perf_counter()
        flux, flux_err, sky, _ = aperture_fluxes(data, err, x, y, radii, config.annulus)
        mags, _ = to_mags(flux, flux_err, 25.0)
        concentration(mags, radii, "F555W")
        t_ours = time.perf_counter() - t0
        raw = flux + sky[:, None] * (np.pi * np.asarray(radii) ** 2)[None, :]
        agree = np.max(
            np.abs(raw[:, 0] - np.asarray(bare["aperture_sum_0"]))
            / np.abs(np.asarray(bare["aperture_sum_0"]))
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"N={n}: bare {t_bare:.2f} s ({n / t_bare:,.0f}/s), ours {t_ours:.2f} s "
            f"({n / t_ours:,.0f}/s), ratio {t_ours / t_bare:.2f}x, peak {peak:.0f} MB, "
            f"flux agreement {agree:.1e}"
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10000, 100000])

"""PSF-photometry fallback: our catalog of five bands against the bare photutils fits, one run.

Five DRC products (the survey bands) of SIZE x SIZE px are written with the same N Moffat stars
(photutils ``make_psf_model_image``, fluxes 50-5000) on the clean-field noise.  Timed on the
same files and positions:

- **bare**: per band, ``PSFPhotometry`` with the Moffat of the stars, built by our
  :func:`psf_photometry` (positions fixed, our fit box, grouper and local background), bands
  one after another;
- **ours, one process**: :func:`psf_catalog` with ``workers=1`` (shape measurement, the fit,
  the model image for CROWD, the catalog columns);
- **ours, default**: ``workers=0``, the bands in one worker process per core.

Prints seconds, the per-band ratio to the bare fit and the wall-time ratio of the concurrent
run; the catalogs of both of ours must be identical.

Usage: ``python benchmarks/bench_psf.py [SIZE] [N]`` (default 2048 and 10000).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.table import Table
from photutils.psf import MoffatPSF, make_psf_model_image
from threadpoolctl import threadpool_limits

import phangs_products as pp
from phangs_products.bands import survey_filters
from phangs_products.pipeline.photometry.psf_phot import (
    PSFPhotConfig,
    psf_catalog,
    psf_photometry,
)
from phangs_products.testing import make_drc_products

ALPHA, BETA = 1.7, 2.5  # Moffat of the stars (px, slope): a WFC3/UVIS-like core on 0.04" px


def write_field(root: Path, size: int, n: int) -> tuple[dict, dict, Table]:
    """DRC products of every survey band with the same stars; their models and the sources."""
    bands = survey_filters()
    folder = make_drc_products(root, size=size, bands=bands)
    star_image, params = make_psf_model_image(
        (size, size),
        MoffatPSF(alpha=ALPHA, beta=BETA),
        n,
        model_shape=(21, 21),
        flux=(50.0, 5000.0),
        min_separation=2,
        border_size=12,
        seed=3,
    )
    images, errors = {}, {}
    for path in sorted(folder.glob("*_drc-sci.fits")):
        model = pp.open(path)
        filt = model.meta.filter
        data = np.asarray(model.data, np.float32) + star_image.astype(np.float32)
        pp.ImageModel.create("drc-sci", data, model.wcs, model.meta.schema_items()).save(
            path, overwrite=True
        )
        images[filt] = pp.open(path)
    for path in sorted(folder.glob("*_drc-err.fits")):
        model = pp.open(path)
        errors[model.meta.filter] = model
    sources = Table(
        {
            "x": np.asarray(params["x_0"], float),
            "y": np.asarray(params["y_0"], float),
            "sharpness": np.full(len(params), 0.6),
            "roundness": np.zeros(len(params)),
            "peak": np.asarray(params["flux"], float),
        }
    )
    return images, errors, sources


def bare_fit(images: dict, errors: dict, sources: Table, config: PSFPhotConfig) -> float:
    """Seconds of the bare photutils fits of every band, one after another."""
    t0 = time.perf_counter()
    for filt, model in images.items():
        phot = psf_photometry(ALPHA, BETA, config)
        data = np.nan_to_num(np.asarray(model.data, float))
        err = np.asarray(errors[filt].data, float)
        phot(data, error=err, init_params=Table({"x": sources["x"], "y": sources["y"]}))
    return time.perf_counter() - t0


def main() -> None:
    """Write the field, time the three runs and print the figures."""
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 2048
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    config = PSFPhotConfig()
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=1):
        images, errors, sources = write_field(Path(tmp), size, n)
        n_bands = len(images)
        t_bare = bare_fit(images, errors, sources, config)
        t0 = time.perf_counter()
        seq, _ = psf_catalog(sources, images, errors, "F555W", config, workers=1)
        t_seq = time.perf_counter() - t0
        t0 = time.perf_counter()
        par, _ = psf_catalog(sources, images, errors, "F555W", config, workers=0)
        t_par = time.perf_counter() - t0
    same = all(np.array_equal(np.asarray(seq[c]), np.asarray(par[c])) for c in seq.colnames)
    print(f"PSF photometry of {n} stars in {n_bands} bands of {size} x {size} px")
    print(f"  bare photutils fits, bands in turn : {t_bare:7.1f} s ({t_bare / n_bands:.1f} s/band)")
    print(
        f"  ours, one process                  : {t_seq:7.1f} s  = {t_seq / t_bare:.2f}x the bare "
        "fits"
    )
    print(
        f"  ours, bands in worker processes    : {t_par:7.1f} s  = {t_par / t_bare:.2f}x the bare "
        f"fits, {t_par / t_seq:.2f}x one process; catalogs identical: {same}"
    )


if __name__ == "__main__":
    main()

"""DOLPHOT catalogs: ingest real DOLPHOT output, or make the same catalog with photutils PSF fits.

DOLPHOT writes a whitespace table (``.phot``) and a ``.columns`` file naming each column as
``N. <description>[, <filter or image>]``: 11 global columns, then 13 per filter (only for filters
with more than one image), then per-image columns.  :func:`read_dolphot` maps any number of
filters onto the dolphot-catalog schema; 99.999 (DOLPHOT's "no measurement") is kept.

Without DOLPHOT, :func:`psf_catalog` fits a Moffat PSF (shape measured on bright isolated stars)
at the F555W positions in every DRC with photutils ``PSFPhotometry`` and fills the same columns:
SHARP is the fit's central-pixel residual fraction (negative for extended sources, as DOLPHOT's
sharpness), ROUND the DAOStarFinder roundness, CROWD the brightening in mag by the fitted
neighbours inside the fit box, OBJTYPE 1 bright star, 2 faint (S/N < 5), 3 elongated
(|ROUND| > 0.5), 4 too sharp (SHARP > locus + 0.1), 5 extended (SHARP < locus - 0.02), where
the locus is the SHARP of point sources in the same catalog (:func:`stellar_locus`).  The
limits are measured on the simulated field (the DRC PSF, F555W): stars have SHARP between
-0.022 and +0.025 (2nd-98th percentile) at S/N 10-50 and up to +0.054 at S/N 5-10, clusters
with r_eff >= 1 pc a median of -0.025 to -0.033 with 95 per cent below -0.019, with the locus
at +0.001.  On the 2 kpc field the locus is -0.023 (the fitted Moffat matches the PSF less
well there): with fixed limits 1482 of 3302 sources at S/N >= 5 were typed extended.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.modeling import fitting, models
from astropy.table import Table
from photutils.aperture import CircularAperture, aperture_photometry
from photutils.background import LocalBackground, MMMBackground
from photutils.psf import MoffatPSF, PSFPhotometry, SourceGrouper

from phangs_products.models import ImageModel
from phangs_products.pipeline.instrument import band_of
from phangs_products.pipeline.photometry.bandpool import band_processes, map_bands
from phangs_products.pipeline.photometry.dolphot_io import NOT_MEASURED
from phangs_products.spec import BandInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PSFPhotConfig:
    """PSF-photometry settings.

    Attributes
    ----------
    beta : float
        Starting Moffat slope (width and slope are measured on each DRC).
    fit_shape : int
        Fit box size in px.
    n_shape_stars : int
        Bright isolated stars used to measure the PSF width per band.
    group_separation : float
        Sources closer than this (px) are fitted together, as DOLPHOT fits neighbours
        simultaneously (0: every source alone).
    parallel_min_sources : int
        Fewest sources for which the bands are fitted in worker processes when the stage's
        ``workers`` is 0 (a fit costs about 2.6 ms per source and band; starting a worker
        about 1 s).  Not part of the stage key: the catalog does not depend on it.
    """

    beta: float = field(default=2.15, metadata={"gt": 0})
    fit_shape: int = field(default=7, metadata={"ge": 1})
    n_shape_stars: int = field(default=25, metadata={"ge": 1})
    group_separation: float = field(default=7.0, metadata={"ge": 0})
    parallel_min_sources: int = field(default=2000, metadata={"ge": 0, "in_key": False})


def _measure_shape(
    data: np.ndarray, x: np.ndarray, y: np.ndarray, config: PSFPhotConfig
) -> tuple[float, float]:
    """Median Moffat width (px) and slope of bright compact sources in one image."""
    half = config.fit_shape
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    alphas = []
    fitter = fitting.LevMarLSQFitter()
    for xc, yc in zip(x, y, strict=True):
        ix, iy = round(xc), round(yc)
        stamp = data[iy - half : iy + half + 1, ix - half : ix + half + 1]
        if stamp.shape != xx.shape or not np.isfinite(stamp).all():
            continue
        m0 = models.Moffat2D(
            amplitude=stamp.max(), x_0=xc - ix, y_0=yc - iy, gamma=1.5, alpha=config.beta
        ) + models.Const2D(np.median(stamp))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a poor fit is rejected below
            fit = fitter(m0, xx, yy, stamp)
        if 0.3 < abs(fit.gamma_0.value) < 6 and 1.0 < fit.alpha_0.value < 8:
            alphas.append((abs(fit.gamma_0.value), fit.alpha_0.value))
    if len(alphas) < 3:
        return 1.7, config.beta
    width, slope = np.median(np.array(alphas), axis=0)
    return float(width), float(slope)


def psf_catalog(
    sources: Table,
    images: Mapping[str, ImageModel],
    errors: Mapping[str, ImageModel],
    reference_filter: str,
    config: PSFPhotConfig | None = None,
    workers: int = 1,
) -> tuple[Table, list[BandInfo]]:
    """PSF photometry at fixed positions in every band, in dolphot-catalog columns.

    Parameters
    ----------
    sources : Table
        ``x``, ``y`` (0-based, reference grid), ``sharpness``, ``roundness`` from detection.
    images, errors : mapping
        DRC science and ERR models per filter, on one grid.
    reference_filter : str
        Band whose S/N and shape fill the global columns.
    config : PSFPhotConfig, optional
        Fit settings.
    workers : int
        Processes fitting the bands side by side (0: one per core, 1: in this process; see
        :func:`~phangs_products.pipeline.photometry.bandpool.band_processes`).  The catalog
        does not depend on it.
    """
    config = config or PSFPhotConfig()
    x, y = np.asarray(sources["x"], float), np.asarray(sources["y"], float)
    table = Table()
    table["ID"] = np.arange(1, len(x) + 1, dtype=np.int64)
    ref = images[reference_filter]
    ra, dec = ref.wcs.pixel_to_world_values(x, y)
    table["RA"], table["DEC"], table["X"], table["Y"] = ra, dec, x, y
    roundness = np.asarray(sources["roundness"], float)
    args = (x, y, psf_shape_stars(sources, config), roundness, config)
    processes = band_processes(images, errors, workers, x.size, config.parallel_min_sources)
    fitted = map_bands(
        _band_columns, images, errors, args, processes, f"PSF photometry of {x.size} sources"
    )
    for filt, (columns, alpha, beta) in fitted.items():
        for name, values in columns.items():
            table[f"{filt}_{name}"] = values
        log.info("PSF model %s: Moffat width %.2f px, slope %.2f", filt, alpha, beta)
    r = reference_filter
    table["CHI"] = np.asarray(table[f"{r}_CHI"], float)
    table["SNR"] = table[f"{r}_SNR"]
    table["SHARP"] = table[f"{r}_SHARP"]
    table["ROUND"] = table[f"{r}_ROUND"]
    table["CROWD"] = table[f"{r}_CROWD"]
    table["OBJTYPE"] = object_type(
        np.asarray(table["SNR"]), np.asarray(table["SHARP"]), np.asarray(table["ROUND"])
    )
    for filt in images:
        table.remove_column(f"{filt}_CHI")
    return table, [band_of(model) for model in images.values()]


def _band_columns(
    sci: ImageModel,
    err_model: ImageModel,
    x: np.ndarray,
    y: np.ndarray,
    shape_stars: np.ndarray,
    roundness: np.ndarray,
    config: PSFPhotConfig,
) -> tuple[dict[str, np.ndarray], float, float]:
    """One band's dolphot-catalog columns (without the filter prefix), Moffat width and slope.

    A :func:`~phangs_products.pipeline.photometry.bandpool.map_bands` task.
    """
    data = np.nan_to_num(np.asarray(sci.data, float))
    err = np.asarray(err_model.data, float)
    err = np.where(np.isfinite(err) & (err > 0), err, np.nanmax(err) * 1e3 + 1.0)
    fit = fit_psf(data, err, x, y, shape_stars, config)
    result, alpha, beta = fit.result, fit.alpha, fit.beta
    flux = np.asarray(result["flux_fit"], float)
    flux_err = np.asarray(result["flux_err"], float)
    sky = np.asarray(result["local_bkg"], float)
    cfit = np.asarray(result["cfit"], float)
    flags = np.asarray(result["flags"], int)
    own = flux * _moffat_fraction(3.0, alpha, beta)
    model_image = fit.model_image(data.shape)
    total = np.asarray(
        aperture_photometry(model_image, CircularAperture(np.c_[x, y], 3.0))["aperture_sum"],
        float,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        crowd = np.where(own > 0, 2.5 * np.log10(np.maximum(total, own) / own), 0.0)
        zp = float(sci.meta.zp_vega)
        vega = np.where(flux > 0, -2.5 * np.log10(flux) + zp, NOT_MEASURED)
        mag_err = np.where(flux > 0, 2.5 / np.log(10) * flux_err / flux, NOT_MEASURED)
        snr = np.where(flux_err > 0, flux / flux_err, 0.0)
    columns = {
        "RATE": np.where(np.isfinite(flux), flux, NOT_MEASURED),
        "RATEERR": np.where(np.isfinite(flux_err), flux_err, NOT_MEASURED),
        "SKY": np.where(np.isfinite(sky), sky, NOT_MEASURED),
        "VEGA": np.where(np.isfinite(vega), vega, NOT_MEASURED),
        "ERR": np.where(np.isfinite(mag_err), mag_err, NOT_MEASURED),
        "SNR": np.where(np.isfinite(snr), snr, 0.0),
        "SHARP": np.where(np.isfinite(cfit), cfit, NOT_MEASURED),
        "ROUND": roundness,
        "CROWD": np.where(np.isfinite(crowd), crowd, NOT_MEASURED),
        "FLAG": np.where(flags == 0, 0, np.where(flags & 2, 1, 2)).astype(np.int16),
        "CHI": np.asarray(result["qfit"], float),
    }
    return columns, alpha, beta


@dataclass
class PSFFit:
    """Fixed-position PSF photometry of one image: the fitted table and the Moffat used."""

    result: Table
    alpha: float
    beta: float
    photometry: Any

    def model_image(self, shape: tuple[int, int]) -> np.ndarray:
        """Image of all fitted sources (PSF stamps of 21 x 21 px)."""
        return self.photometry.make_model_image(shape, psf_shape=(21, 21))


def psf_shape_stars(sources: Table, config: PSFPhotConfig) -> np.ndarray:
    """Indices of the brightest compact sources (sharpness above the 60th percentile)."""
    sharp = np.asarray(sources["sharpness"], float)
    compact = np.flatnonzero(sharp >= np.percentile(sharp, 60))
    bright = compact[np.argsort(-np.asarray(sources["peak"], float)[compact])]
    return bright[: config.n_shape_stars]


def psf_photometry(alpha: float, beta: float, config: PSFPhotConfig) -> PSFPhotometry:
    """The photutils fitter of :func:`fit_psf` for a Moffat of width ``alpha`` px, slope ``beta``.

    Positions fixed, the configured fit box and neighbour grouping, a local annulus background.
    """
    psf = MoffatPSF(alpha=alpha, beta=beta)
    psf.x_0.fixed = True
    psf.y_0.fixed = True
    return PSFPhotometry(
        psf,
        (config.fit_shape, config.fit_shape),
        grouper=SourceGrouper(config.group_separation) if config.group_separation else None,
        aperture_radius=3,
        local_bkg_estimator=LocalBackground(7, 9, bkg_estimator=MMMBackground()),
    )


def fit_psf(
    data: np.ndarray,
    err: np.ndarray | None,
    x: np.ndarray,
    y: np.ndarray,
    shape_stars: np.ndarray,
    config: PSFPhotConfig,
) -> PSFFit:
    """Moffat PSF (shape from ``shape_stars``) fitted at fixed positions, neighbours together.

    Parameters
    ----------
    data, err : ndarray
        Image (no NaN) and its errors (None: unweighted).
    x, y : ndarray
        Positions (0-based px).
    shape_stars : ndarray of int
        Sources whose median Moffat width and slope define the PSF.
    config : PSFPhotConfig
        Fit box, grouping distance.
    """
    alpha, beta = _measure_shape(data, x[shape_stars], y[shape_stars], config)
    phot = psf_photometry(alpha, beta, config)
    with warnings.catch_warnings():
        # photutils warns once per call about groups of more than 25 sources (crowded arms);
        # the fits are fine at our fit box, and the console of a run is no place for it
        warnings.filterwarnings("ignore", message="Some groups have more than")
        result = phot(data, error=err, init_params=Table({"x": x, "y": y}))
    if "group_id" in result.colnames and len(result):
        largest = int(np.bincount(np.asarray(result["group_id"], np.int64)).max())
        log.debug("PSF fit: %d sources, largest group %d", len(x), largest)
    return PSFFit(result, alpha, beta, phot)


def _moffat_fraction(radius: float, alpha: float, beta: float) -> float:
    return 1.0 - (1.0 + (radius / alpha) ** 2) ** (1.0 - beta)


#: SHARP limits of the PSF-fit catalog's object types, relative to the stellar locus
#: (measured: module docstring)
SHARP_TOO_SHARP = 0.1


SHARP_EXTENDED = -0.02


LOCUS_MIN_SNR = 20.0  # sources that define the stellar locus


LOCUS_MIN_COUNT = 20


def stellar_locus(snr: np.ndarray, sharp: np.ndarray) -> float:
    """SHARP of point sources in this catalog: the mode of SHARP at S/N >= 20.

    Point sources pile up at one SHARP, which depends on how well the fitted Moffat matches
    the image's PSF (the measured locus was +0.001 on the demo field and -0.023 on the 2 kpc
    field); extended sources spread below it.  The mode is the peak of a histogram of 0.002
    bins smoothed over 5 bins; 0 when fewer than 20 sources qualify.
    """
    bright = (snr >= LOCUS_MIN_SNR) & np.isfinite(sharp) & (np.abs(sharp) < 0.1)
    if bright.sum() < LOCUS_MIN_COUNT:
        return 0.0
    counts, edges = np.histogram(sharp[bright], bins=np.arange(-0.1, 0.1001, 0.002))
    smooth = np.convolve(counts, np.ones(5) / 5.0, mode="same")
    return float(edges[np.argmax(smooth)] + 0.001)


def object_type(snr: np.ndarray, sharp: np.ndarray, roundness: np.ndarray) -> np.ndarray:
    """DOLPHOT-like object type from S/N, sharpness (about the stellar locus) and roundness."""
    locus = stellar_locus(snr, sharp)
    kind = np.ones(snr.shape, np.int16)
    kind[snr < 5] = 2
    kind[np.abs(roundness) > 0.5] = 3
    kind[sharp > locus + SHARP_TOO_SHARP] = 4
    kind[sharp < locus + SHARP_EXTENDED] = 5
    return kind

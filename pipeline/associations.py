"""Stellar associations: multi-scale watershed on point-source maps (paper Sect. 4.7).

For each selection (NUV: F275W, V: F555W point sources of the DOLPHOT catalog passing the
quality cuts) and scale (Gaussian FWHM 8, 16, 32, 64 pc on the DRC grid):

1. position map: 1 at each source's pixel;
2. smoothed with the Gaussian kernel, high-pass filtered by subtracting the map smoothed with a
   kernel 4x wider;
3. the same two filters applied to a single isolated source give the single-object peak P1 and
   its level at half the FWHM from the centre (the edge level);
4. markers: local maxima above 1.5 P1 (so every region has more than one star);
   ``skimage.segmentation.watershed`` of the negative map from those markers, inside the mask
   map >= edge level.

Catalogs: centre = mean position of member stars; area of the region; r_eff = sqrt(area/pi);
members; photometry summed over the region in every DRC minus the local background (median of a
ring as wide as the kernel FWHM around the region, excluding other regions); SED fit with the
cluster fitter; edge flag (the region touches the image border or missing data); overlap flag
(it borders another region); ids of catalog clusters inside.

Nesting (tested): every region at a scale lies mostly (> 50% of its pixels) inside one region
of the next larger scale or outside all of them; larger scales give fewer, larger regions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from scipy import ndimage

from phangs_products.bands import band, pc_per_pixel
from phangs_products.models import ImageModel

from .sed import SEDConfig, fit_sed

__all__ = ["AssociationConfig", "AssociationResult", "find_associations", "select_sources"]

log = logging.getLogger(__name__)
SENTINEL = -9999.0
SELECTION_FILTER = {"nuv": "F275W", "v": "F555W"}


@dataclass(frozen=True)
class AssociationConfig:
    """Association settings (the paper gives no quality-cut numbers: documented choices).

    Attributes
    ----------
    scales : tuple of int
        Kernel FWHMs in pc.
    selections : tuple of str
        ``nuv`` (F275W) and ``v`` (F555W).
    min_snr : float
        Minimum S/N in the selection band.
    max_sharp, max_crowd : float
        Point-source quality cuts on |SHARP| and CROWD (mag).
    highpass_factor, peak_factor : float
        High-pass kernel size (4x) and marker threshold (1.5 single-object peaks).
    """

    scales: tuple[int, ...] = (8, 16, 32, 64)
    selections: tuple[str, ...] = ("nuv", "v")
    min_snr: float = 5.0
    max_sharp: float = 0.3
    max_crowd: float = 1.0
    highpass_factor: float = 4.0
    peak_factor: float = 1.5


@dataclass
class AssociationResult:
    """Outputs of one selection and scale."""

    selection: str
    scale: int
    labels: np.ndarray
    table: Table
    peaks: np.ndarray


def select_sources(dolphot: Table, selection: str, config: AssociationConfig) -> Table:
    """Point sources of a selection passing the quality cuts."""
    filt = SELECTION_FILTER[selection]
    snr = np.asarray(dolphot[f"{filt}_SNR"], float)
    sharp = np.asarray(dolphot[f"{filt}_SHARP"], float)
    crowd = np.asarray(dolphot[f"{filt}_CROWD"], float)
    flag = np.asarray(dolphot[f"{filt}_FLAG"], int)
    objtype = np.asarray(dolphot["OBJTYPE"], int)
    keep = (
        (snr >= config.min_snr)
        & (np.abs(sharp) <= config.max_sharp)
        & (crowd <= config.max_crowd)
        & (flag <= 2)
        & np.isin(objtype, (1, 2))
    )
    return dolphot[keep]


def _filters(image: np.ndarray, fwhm_px: float, factor: float) -> np.ndarray:
    sigma = fwhm_px / 2.3548
    small = ndimage.gaussian_filter(image, sigma, mode="constant")
    large = ndimage.gaussian_filter(image, sigma * factor, mode="constant")
    return small - large


def single_object(fwhm_px: float, factor: float) -> tuple[float, float]:
    """Peak of one isolated source on the filtered map, and the map level at FWHM/2."""
    half = int(np.ceil(fwhm_px * factor * 3)) + 2
    delta = np.zeros((2 * half + 1, 2 * half + 1))
    delta[half, half] = 1.0
    filtered = _filters(delta, fwhm_px, factor)
    peak = float(filtered[half, half])
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    ring = np.abs(np.hypot(xx, yy) - fwhm_px / 2.0) < 0.5
    return peak, float(filtered[ring].mean())


def watershed_regions(
    x: np.ndarray, y: np.ndarray, shape: tuple[int, int], fwhm_px: float, config: AssociationConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Label image and marker positions (N, 2: y, x) of one selection at one scale."""
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    image = np.zeros(shape)
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    ok = (ix >= 0) & (ix < shape[1]) & (iy >= 0) & (iy < shape[0])
    np.add.at(image, (iy[ok], ix[ok]), 1.0)
    filtered = _filters(image, fwhm_px, config.highpass_factor)
    peak1, edge = single_object(fwhm_px, config.highpass_factor)
    markers_xy = peak_local_max(
        filtered,
        min_distance=max(1, int(fwhm_px / 2)),
        threshold_abs=config.peak_factor * peak1,
        exclude_border=False,
    )
    markers = np.zeros(shape, np.int32)
    markers[markers_xy[:, 0], markers_xy[:, 1]] = np.arange(1, len(markers_xy) + 1)
    mask = filtered >= edge
    labels = watershed(-filtered, markers, mask=mask)
    return relabel(labels), markers_xy


def relabel(labels: np.ndarray) -> np.ndarray:
    """Consecutive labels 1..n in order of first appearance (0 stays background)."""
    values = np.unique(labels)
    values = values[values > 0]
    lut = np.zeros(labels.max() + 1 if labels.size else 1, np.int32)
    lut[values] = np.arange(1, values.size + 1)
    return lut[labels]


def region_photometry(
    labels: np.ndarray,
    images: Mapping[str, ImageModel],
    errors: Mapping[str, ImageModel],
    fwhm_px: float,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Background-subtracted count rate and error of each region in each band."""
    n = int(labels.max())
    index = np.arange(1, n + 1)
    ring_width = max(2, round(fwhm_px))
    grown = ndimage.grey_dilation(labels, size=2 * ring_width + 1)
    ring = (labels == 0) & (grown > 0)
    area = ndimage.sum(np.ones_like(labels, float), labels, index)
    out = {}
    for filt, model in images.items():
        data = np.nan_to_num(np.asarray(model.data, float))
        err = np.nan_to_num(np.asarray(errors[filt].data, float))
        total = ndimage.sum(data, labels, index)
        var = ndimage.sum(err**2, labels, index)
        bkg = ndimage.median(data, np.where(ring, grown, 0), index)
        bkg = np.where(np.isfinite(bkg), bkg, 0.0)
        bkg_std = ndimage.standard_deviation(data, np.where(ring, grown, 0), index)
        n_ring = ndimage.sum(ring.astype(float), grown * ring, index)
        bkg_err = np.nan_to_num(bkg_std) / np.sqrt(np.maximum(n_ring, 1))
        flux = total - bkg * area
        flux_err = np.sqrt(var + (area * bkg_err) ** 2)
        out[filt] = (flux, flux_err)
    return out


def find_associations(
    dolphot: Table,
    images: Mapping[str, ImageModel],
    errors: Mapping[str, ImageModel],
    distance_mpc: float,
    config: AssociationConfig,
    clusters: Table | None = None,
    sed_config: SEDConfig | None = None,
) -> list[AssociationResult]:
    """Associations for every selection and scale (see the module doc)."""
    ref = next(iter(images.values()))
    shape = ref.data.shape
    pc_px = pc_per_pixel(distance_mpc, 0.04)
    filters = list(images)
    exp_bad = ~np.isfinite(np.asarray(ref.data, float)) | (np.asarray(ref.data) == 0)
    results = []
    for selection in config.selections:
        stars = select_sources(dolphot, selection, config)
        x, y = np.asarray(stars["X"], float), np.asarray(stars["Y"], float)
        for scale in config.scales:
            fwhm_px = scale / pc_px
            labels, markers = watershed_regions(x, y, shape, fwhm_px, config)
            table = _catalog(
                labels,
                x,
                y,
                images,
                errors,
                filters,
                fwhm_px,
                pc_px,
                distance_mpc,
                exp_bad,
                clusters,
                sed_config,
                ref,
            )
            log.info(
                "%s-selected, %d pc: %d associations from %d stars",
                selection.upper(),
                scale,
                len(table),
                len(x),
            )
            results.append(AssociationResult(selection, scale, labels, table, markers))
    return results


def _catalog(
    labels,
    x,
    y,
    images,
    errors,
    filters,
    fwhm_px,
    pc_px,
    distance_mpc,
    bad,
    clusters,
    sed_config,
    ref,
) -> Table:
    n = int(labels.max())
    index = np.arange(1, n + 1)
    table = Table()
    table["ASC_ID"] = index.astype(np.int64)
    ix = np.clip(np.rint(x).astype(int), 0, labels.shape[1] - 1)
    iy = np.clip(np.rint(y).astype(int), 0, labels.shape[0] - 1)
    member = labels[iy, ix]
    counts = np.bincount(member, minlength=n + 1)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = np.bincount(member, weights=x, minlength=n + 1)[1:] / counts
        cy = np.bincount(member, weights=y, minlength=n + 1)[1:] / counts
    com = np.array(ndimage.center_of_mass(np.ones_like(labels), labels, index)).reshape(-1, 2)
    cx = np.where(counts > 0, cx, com[:, 1]) if n else cx
    cy = np.where(counts > 0, cy, com[:, 0]) if n else cy
    ra, dec = ref.wcs.pixel_to_world_values(cx, cy)
    table["ASC_RA"], table["ASC_DEC"] = ra, dec
    table["ASC_X"], table["ASC_Y"] = cx, cy
    area = ndimage.sum(np.ones_like(labels, float), labels, index)
    table["ASC_AREA"] = area * pc_px**2
    table["ASC_REFF"] = np.sqrt(area / np.pi) * pc_px
    table["ASC_NSTARS"] = counts.astype(np.int32)
    phot = region_photometry(labels, images, errors, fwhm_px)
    mags = np.full((n, len(filters)), np.nan)
    mag_err = np.full((n, len(filters)), np.nan)
    for j, filt in enumerate(filters):
        flux, flux_err = phot[filt]
        facts = band(filt)
        zp = float(images[filt].meta.zp_vega)
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.where(flux > 0, -2.5 * np.log10(flux) + zp, np.nan)
            me = np.where(flux > 0, 2.5 / np.log(10) * flux_err / flux, np.nan)
        mags[:, j], mag_err[:, j] = m, me
        mjy = facts.vega_flux_jy * 1e3 * 10 ** (-0.4 * m)
        table[f"ASC_{filt}_VEGA"] = np.where(np.isfinite(m), m, SENTINEL)
        table[f"ASC_{filt}_VEGA_ERR"] = np.where(np.isfinite(me), me, SENTINEL)
        table[f"ASC_{filt}_mJy"] = np.where(np.isfinite(m), mjy, SENTINEL)
        table[f"ASC_{filt}_mJy_ERR"] = np.where(
            np.isfinite(me), mjy * me * np.log(10) / 2.5, SENTINEL
        )
    sed = fit_sed(mags, mag_err, filters, distance_mpc, sed_config)
    for key, values in (
        ("AGE_MINCHISQ", sed.age_myr),
        ("AGE_LIMLO", sed.age_lo),
        ("AGE_LIMHI", sed.age_hi),
        ("MASS_MINCHISQ", sed.mass),
        ("MASS_LIMLO", sed.mass_lo),
        ("MASS_LIMHI", sed.mass_hi),
        ("EBV_MINCHISQ", sed.ebv),
        ("EBV_LIMLO", sed.ebv_lo),
        ("EBV_LIMHI", sed.ebv_hi),
        ("REDUCEDCHISQ", sed.reduced_chi2),
    ):
        table[f"ASC_{key}"] = values
    border = np.zeros_like(labels, bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    edge_touch = ndimage.maximum((border | bad).astype(int), labels, index)
    table["ASC_FLAG_EDGE"] = np.asarray(edge_touch, bool) if n else np.zeros(0, bool)
    grown = ndimage.grey_dilation(labels, size=3)
    other = (grown != labels) & (labels > 0) & (grown > 0)
    touching = ndimage.maximum(other.astype(int), labels, index)
    table["ASC_FLAG_OVERLAP"] = np.asarray(touching, bool) if n else np.zeros(0, bool)
    table["ASC_CLUSTER_IDS"] = cluster_ids(labels, clusters)
    return table


def cluster_ids(labels: np.ndarray, clusters: Table | None) -> list[str]:
    """Comma-separated ID_PHANGS_CLUSTER of catalog clusters inside each region."""
    n = int(labels.max())
    out: list[list[str]] = [[] for _ in range(n)]
    if clusters is not None and len(clusters):
        ids = np.asarray(clusters["ID_PHANGS_CLUSTER"])
        ix = np.clip(np.rint(np.asarray(clusters["PHANGS_X"])).astype(int), 0, labels.shape[1] - 1)
        iy = np.clip(np.rint(np.asarray(clusters["PHANGS_Y"])).astype(int), 0, labels.shape[0] - 1)
        lab = labels[iy, ix]
        for cid, region in zip(ids, lab, strict=True):
            if region > 0 and cid > 0:
                out[region - 1].append(str(int(cid)))
    return [",".join(v) for v in out]


def outline_polygons(labels: np.ndarray, tolerance: float = 0.5) -> list[tuple[int, np.ndarray]]:
    """(label, vertices (N, 2) as x, y in 0-based pixels) of each region's outer boundary."""
    from skimage.measure import approximate_polygon, find_contours

    out = []
    objects = ndimage.find_objects(labels)
    for label, sl in enumerate(objects, start=1):
        if sl is None:
            continue
        sub = np.pad(labels[sl] == label, 1)
        contours = find_contours(sub.astype(float), 0.5)
        if not contours:
            continue
        contour = max(contours, key=len)
        poly = approximate_polygon(contour, tolerance)
        yx = poly + np.array([sl[0].start - 1, sl[1].start - 1])
        yx = np.clip(yx, 0, np.array(labels.shape) - 1)  # stay on the image
        out.append((label, yx[:, ::-1]))
    return out


def scales_of(results: Sequence[AssociationResult]) -> list[int]:
    """Distinct scales of results."""
    return sorted({r.scale for r in results})

"""Association regions to catalogs: region photometry, SED fits, flags and outlines.

:func:`find_associations` runs the whole method for one selection at every scale (the package
docstring describes it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from scipy import ndimage
from skimage.measure import approximate_polygon, find_contours

from phangs_products.bands import band, pc_per_pixel
from phangs_products.models import ImageModel
from phangs_products.pipeline.associations.config import FWHM_SIGMA, SENTINEL, AssociationConfig
from phangs_products.pipeline.associations.maps import MapSmoother, select_sources, tracer_map
from phangs_products.pipeline.associations.watershed import watershed_regions
from phangs_products.pipeline.instrument import band_of
from phangs_products.pipeline.stellarpops.sed import SEDConfig, fit_sed

log = logging.getLogger(__name__)


@dataclass
class AssociationResult:
    """Outputs of one selection and scale."""

    selection: str
    scale: int
    labels: np.ndarray
    table: Table
    peaks: np.ndarray


def region_photometry(
    labels: np.ndarray,
    images: Mapping[str, ImageModel],
    errors: Mapping[str, ImageModel],
    fwhm_px: float,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Background-subtracted count rate and error of each region in each band.

    The background of a region is the median of its ring (``max(2, FWHM)`` px wide, outside
    every region; missing pixels count as 0 as in the sums), its error the ring's standard
    deviation over sqrt(ring pixels).  Only region and ring pixels are read: the ring pixels
    are grouped by region once and sorted per band (the same medians and standard deviations
    as ``scipy.ndimage.median`` / ``standard_deviation`` by label, about 10x faster on a
    full field, whose per-label selection dominated the stage).
    """
    n = int(labels.max())
    ring_width = max(2, round(fwhm_px))
    grown = ndimage.grey_dilation(labels, size=2 * ring_width + 1)
    flat = labels.ravel()
    inside = np.flatnonzero(flat)
    owner = flat[inside]
    area = np.bincount(owner, minlength=n + 1)[1:].astype(float)
    ring_pix = np.flatnonzero((flat == 0) & (grown.ravel() > 0))
    ring_owner = grown.ravel()[ring_pix]
    n_ring = np.bincount(ring_owner, minlength=n + 1)[1:]
    start = np.concatenate([[0], np.cumsum(n_ring)[:-1]])
    has = n_ring > 0
    lo = start + (n_ring - 1) // 2  # the two middle elements (the same one for odd counts)
    hi = start + n_ring // 2
    out = {}
    for filt, model in images.items():
        data = np.asarray(model.data).ravel()
        err = np.asarray(errors[filt].data).ravel()
        values = np.nan_to_num(data[inside].astype(float))
        total = np.bincount(owner, values, minlength=n + 1)[1:]
        var = np.bincount(owner, np.nan_to_num(err[inside].astype(float)) ** 2, minlength=n + 1)
        ring = np.nan_to_num(data[ring_pix].astype(float))
        ordered = ring[np.lexsort((ring, ring_owner))]
        bkg = np.zeros(n)
        bkg[has] = 0.5 * (ordered[lo[has]] + ordered[hi[has]])
        mean = np.bincount(ring_owner, ring, minlength=n + 1)[1:] / np.maximum(n_ring, 1)
        dev2 = np.bincount(ring_owner, (ring - mean[ring_owner - 1]) ** 2, minlength=n + 1)[1:]
        bkg_err = np.sqrt(dev2) / np.maximum(n_ring, 1)  # ring std / sqrt(ring pixels)
        flux = total - bkg * area
        flux_err = np.sqrt(var[1:] + (area * bkg_err) ** 2)
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
    a_band: Mapping[str, float] | None = None,
) -> list[AssociationResult]:
    """Associations for every selection and scale (see the module doc).

    Parameters
    ----------
    dolphot : Table
        DOLPHOT point-source catalog (``X``, ``Y`` on the DRC grid).
    images, errors : mapping of str to ImageModel
        DRC science and error images by filter (same grid).
    distance_mpc : float
        Galaxy distance (sets pc per pixel).
    config : AssociationConfig
        Method settings.
    clusters : Table, optional
        Cluster catalog for the cross-reference.
    sed_config : SEDConfig, optional
        SED fitter settings.
    a_band : mapping of str to float, optional
        Milky Way foreground extinction per filter, mag: the magnitudes and fluxes are corrected
        for it (m - A_band) before the SED fit.  None: no correction.

    Returns
    -------
    list of AssociationResult
        One per selection and scale.
    """
    ref = next(iter(images.values()))
    shape = ref.data.shape
    pc_px = pc_per_pixel(distance_mpc, float(ref.meta.pixscale))  # the DRC grid's own scale
    filters = list(images)
    exp_bad = ~np.isfinite(np.asarray(ref.data, float)) | (np.asarray(ref.data) == 0)
    results = []
    footprint = ~exp_bad
    scales = sorted(config.scales)
    pad = int(np.ceil(4 * max(scales) / pc_px * config.highpass_factor / FWHM_SIGMA))
    for selection in config.selections:
        stars = select_sources(dolphot, selection, config)
        x, y = np.asarray(stars["X"], float), np.asarray(stars["Y"], float)
        smoother = MapSmoother(tracer_map(x, y, shape), footprint, pad)
        for scale in config.scales:
            fwhm_px = scale / pc_px
            labels, markers, maps = watershed_regions(
                x, y, shape, fwhm_px, config, footprint, smoother, pc_px=pc_px
            )
            log.debug(
                "%s %d pc: %d candidate peaks above %.1f single-star peaks, %d significant",
                selection,
                scale,
                len(maps.candidates),
                config.peak_factor,
                len(markers),
            )
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
                a_band or {},
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


def _touches(labels: np.ndarray, where: np.ndarray, n: int) -> np.ndarray:
    """Whether each region 1..n has a pixel in the boolean map ``where``."""
    hit = labels[where & (labels > 0)]
    return np.bincount(hit, minlength=n + 1)[1:] > 0


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
    a_band: Mapping[str, float],
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
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(float)
    table["ASC_AREA"] = area * pc_px**2
    table["ASC_REFF"] = np.sqrt(area / np.pi) * pc_px
    table["ASC_NSTARS"] = counts.astype(np.int32)
    phot = region_photometry(labels, images, errors, fwhm_px)
    mags = np.full((n, len(filters)), np.nan)
    mag_err = np.full((n, len(filters)), np.nan)
    infos = [band_of(images[f]) for f in filters]  # instrument and filter of each DRC
    for j, (filt, info) in enumerate(zip(filters, infos, strict=True)):
        flux, flux_err = phot[filt]
        facts = band(info.filter, info.instrument)
        zp = float(images[filt].meta.zp_vega)
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.where(flux > 0, -2.5 * np.log10(flux) + zp - a_band.get(filt, 0.0), np.nan)
            me = np.where(flux > 0, 2.5 / np.log(10) * flux_err / flux, np.nan)
        mags[:, j], mag_err[:, j] = m, me
        mjy = facts.vega_flux_jy * 1e3 * 10 ** (-0.4 * m)
        table[f"ASC_{filt}_VEGA"] = np.where(np.isfinite(m), m, SENTINEL)
        table[f"ASC_{filt}_VEGA_ERR"] = np.where(np.isfinite(me), me, SENTINEL)
        table[f"ASC_{filt}_mJy"] = np.where(np.isfinite(m), mjy, SENTINEL)
        table[f"ASC_{filt}_mJy_ERR"] = np.where(
            np.isfinite(me), mjy * me * np.log(10) / 2.5, SENTINEL
        )
    sed = fit_sed(mags, mag_err, infos, distance_mpc, sed_config, sentinel=SENTINEL)
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
    table["ASC_FLAG_EDGE"] = _touches(labels, border | bad, n)
    grown = ndimage.grey_dilation(labels, size=3)
    other = (grown != labels) & (labels > 0) & (grown > 0)
    table["ASC_FLAG_OVERLAP"] = _touches(labels, other, n)
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

"""Peaks and watershed regions of the association maps (scikit-image)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.segmentation import watershed

from phangs_products.pipeline.associations.config import FWHM_SIGMA, AssociationConfig
from phangs_products.pipeline.associations.maps import (
    MapSmoother,
    ScaleMaps,
    _local_background,
    chance_threshold,
    single_object,
    tracer_map,
)


def local_maxima(image: np.ndarray, min_distance: int, threshold: float) -> np.ndarray:
    """Local maxima above a threshold, at least ``min_distance`` px from any higher pixel.

    Same peaks as ``skimage.feature.peak_local_max(image, min_distance, threshold_abs,
    exclude_border=False)`` up to the choice of one pixel per flat plateau, without its
    per-peak spacing loop (seconds on a full field with thousands of candidates).

    Parameters
    ----------
    image : ndarray
        Map.
    min_distance : int
        Half-size of the square neighbourhood, px.
    threshold : float
        Minimum value of a peak.

    Returns
    -------
    ndarray
        (N, 2) row, column of the peaks, highest first.
    """
    size = 2 * min_distance + 1
    high = ndimage.maximum_filter(image, size=size, mode="constant", cval=-np.inf)
    peak = (image >= high) & (image >= threshold)
    rows, cols = np.nonzero(peak)
    if rows.size == 0:
        return np.zeros((0, 2), np.int64)
    plateau, _ = ndimage.label(peak, structure=np.ones((3, 3), bool))
    _, first = np.unique(plateau[rows, cols], return_index=True)
    rows, cols = rows[first], cols[first]
    order = np.argsort(-image[rows, cols], kind="stable")
    return np.c_[rows[order], cols[order]].astype(np.int64)


def watershed_regions(
    x: np.ndarray,
    y: np.ndarray,
    shape: tuple[int, int],
    fwhm_px: float,
    config: AssociationConfig,
    footprint: np.ndarray | None = None,
    smoother: MapSmoother | None = None,
    *,
    pc_px: float,
) -> tuple[np.ndarray, np.ndarray, ScaleMaps]:
    """Watershed regions of one selection at one scale (module doc, steps 1-5).

    Parameters
    ----------
    x, y : ndarray
        0-based pixel positions of the tracer stars.
    shape : (int, int)
        Map shape.
    fwhm_px : float
        Kernel FWHM, px.
    config : AssociationConfig
        Method settings.
    footprint : ndarray of bool, optional
        Pixels with data (default: all).
    smoother : MapSmoother, optional
        Reused transforms of the tracer map (built here when omitted).
    pc_px : float
        Parsecs per pixel (the chance-peak rate is per kpc^2).

    Returns
    -------
    labels : ndarray of int32
        0 = no association, 1..n regions.
    peaks : ndarray
        (n, 2) y, x of the markers, in label order.
    maps : ScaleMaps
        Intermediate maps and the candidate statistics.
    """
    foot = np.ones(shape, bool) if footprint is None else np.asarray(footprint, bool)
    x, y = np.asarray(x, float), np.asarray(y, float)
    if smoother is None:
        pad = int(np.ceil(4 * fwhm_px * config.highpass_factor / FWHM_SIGMA))
        smoother = MapSmoother(tracer_map(x, y, shape), foot, pad)
    highpass, density = smoother.highpass(fwhm_px, config.highpass_factor)
    peak1, edge = single_object(fwhm_px, config.highpass_factor)
    candidates = local_maxima(highpass, max(1, int(fwhm_px / 2)), config.peak_factor * peak1)
    radius = config.count_radius * fwhm_px
    if len(candidates) and len(x):
        sigma_l = fwhm_px * config.highpass_factor / FWHM_SIGMA
        counts, rho_bg = _local_background(
            cKDTree(np.c_[x, y]), x, y, candidates, density, sigma_l, radius
        )
        rate_px2 = config.false_alarm_kpc2 * (pc_px / 1e3) ** 2
        needed = chance_threshold(rho_bg, radius, rate_px2)
    else:
        counts = needed = np.zeros(len(candidates), np.int64)
    keep = counts >= needed
    peaks = candidates[keep]
    markers = np.zeros(shape, np.int32)
    markers[peaks[:, 0], peaks[:, 1]] = np.arange(1, len(peaks) + 1)
    labels = watershed(-highpass, markers, mask=(highpass >= edge) & foot)
    maps = ScaleMaps(highpass, density, peak1, edge, candidates, counts, needed)
    return labels.astype(np.int32), peaks, maps

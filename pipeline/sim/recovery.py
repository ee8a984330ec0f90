"""How many simulated associations an association catalog recovers (tests and scripts).

An injected association (centre and Gaussian FWHM in pc from the simulator's
``truth_associations.ecsv``) counts as recovered when a region of the catalog at its nearest
kernel scale (nearest in log FWHM) has its centre within one kernel FWHM of the true centre.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from phangs_products.bands import pc_per_pixel
from phangs_products.models import open as open_product
from phangs_products.registry import get_schema

SCALES = tuple(int(s) for s in get_schema("assoc-catalog").variants("scale"))


_NAME = re.compile(r"_asc-(?P<sel>[a-z]+)-(?P<scale>\d+)pc\.fits$")


def nearest_scales(fwhm_pc: np.ndarray, scales: Sequence[int] = SCALES) -> np.ndarray:
    """Kernel scale nearest (in log FWHM) to each FWHM."""
    grid = np.asarray(scales, float)
    fwhm = np.asarray(fwhm_pc, float)
    return grid[np.argmin(np.abs(np.log(fwhm[:, None] / grid[None, :])), axis=1)].astype(int)


def on_image(truth: Table, image) -> np.ndarray:
    """Whether each true centre falls on a pixel with data of ``image`` (an ImageModel)."""
    data = np.asarray(image.data)
    x, y = image.wcs.world_to_pixel_values(np.asarray(truth["ra"]), np.asarray(truth["dec"]))
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    inside = (ix >= 0) & (iy >= 0) & (ix < data.shape[1]) & (iy < data.shape[0])
    good = np.zeros(len(truth), bool)
    values = data[iy[inside], ix[inside]]
    good[inside] = np.isfinite(values) & (values != 0)
    return good


def catalogs_in(folder: Path) -> dict[tuple[str, int], Table]:
    """Association catalogs (FITS) of a delivery folder by (selection, scale in pc)."""
    out = {}
    for path in sorted(Path(folder).glob("*_asc-*pc.fits")):
        match = _NAME.search(path.name)
        if match:
            out[match["sel"], int(match["scale"])] = open_product(path, masked=False).table
    return out


def recovery(
    truth: Table,
    catalogs: Mapping[tuple[str, int], Table],
    distance_mpc: float,
    scales: Sequence[int] = SCALES,
) -> dict[str, np.ndarray]:
    """Recovered flag of every true association, per selection of the catalogs.

    Parameters
    ----------
    truth : Table
        ``ra``, ``dec`` (deg) and ``fwhm_pc`` of the injected associations.
    catalogs : mapping
        Association catalogs (``ASC_RA``, ``ASC_DEC``) by (selection, scale).
    distance_mpc : float
        Galaxy distance (kernel FWHM in arcsec).
    scales : sequence of int
        Kernel scales, pc.
    """
    nearest = nearest_scales(np.asarray(truth["fwhm_pc"], float), scales)
    true = SkyCoord(truth["ra"], truth["dec"], unit="deg")
    arcsec_per_pc = 0.04 / pc_per_pixel(distance_mpc, 0.04)
    out = {}
    for selection in sorted({sel for sel, _ in catalogs}):
        hit = np.zeros(len(truth), bool)
        for scale in np.unique(nearest):
            table = catalogs.get((selection, int(scale)))
            rows = np.flatnonzero(nearest == scale)
            if table is None or len(table) == 0 or rows.size == 0:
                continue
            found = SkyCoord(table["ASC_RA"], table["ASC_DEC"], unit="deg")
            _, sep, _ = true[rows].match_to_catalog_sky(found)
            hit[rows] = sep <= scale * arcsec_per_pc * u.arcsec
        out[selection] = hit
    return out


def recovery_lines(
    truth: Table, hits: Mapping[str, np.ndarray], scales: Sequence[int] = SCALES
) -> list[str]:
    """One line per selection: recovered / injected, overall and per nearest scale."""
    nearest = nearest_scales(np.asarray(truth["fwhm_pc"], float), scales)
    lines = []
    for selection, hit in hits.items():
        per = ", ".join(
            f"{s} pc {int(hit[nearest == s].sum())}/{int((nearest == s).sum())}" for s in scales
        )
        share = f"{hit.mean():.0%}" if hit.size else "-"
        lines.append(
            f"{selection.upper()}-selected: recovered {int(hit.sum())}/{hit.size} ({share}); {per}"
        )
    return lines

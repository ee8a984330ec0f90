"""What a per-file check hands to the cross-file checks: small, picklable facts about a file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.wcs import WCS

from phangs_products.errors import Problem

__all__ = ["FACT_KEYWORDS", "FileFacts", "FileResult", "Grid"]

#: Primary keywords kept for the cross-file checks.
FACT_KEYWORDS = (
    "PPSCHEMA",
    "PPSCHVER",
    "HLSPID",
    "HLSPVER",
    "HLSPTARG",
    "FILTER",
    "REFBAND",
    "ASCSCALE",
    "ASCSEL",
    "CLSUBSET",
    "RA_TARG",
    "DEC_TARG",
)


@dataclass(frozen=True)
class Grid:
    """Pixel grid of an image: shape and the linear celestial WCS keywords."""

    shape: tuple[int, int]
    ctype: tuple[str, str]
    crval: tuple[float, float]
    crpix: tuple[float, float]
    cd: tuple[tuple[float, float], tuple[float, float]]

    def wcs(self) -> WCS:
        """The celestial WCS of the grid."""
        w = WCS(naxis=2)
        w.wcs.ctype = list(self.ctype)
        w.wcs.crval = list(self.crval)
        w.wcs.crpix = list(self.crpix)
        w.wcs.cd = np.array(self.cd)
        w.wcs.set()
        return w

    def outside(self, ra: np.ndarray, dec: np.ndarray, margin: float = 0.5) -> np.ndarray:
        """Which sky positions fall outside the image (0-based pixel centres, ``margin`` px)."""
        x, y = self.wcs().world_to_pixel_values(np.asarray(ra, float), np.asarray(dec, float))
        ny, nx = self.shape
        with np.errstate(invalid="ignore"):
            inside = (
                (x >= -margin) & (x <= nx - 1 + margin) & (y >= -margin) & (y <= ny - 1 + margin)
            )
        return ~inside

    def to_pixel(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel positions of sky positions."""
        x, y = self.wcs().world_to_pixel_values(np.asarray(ra, float), np.asarray(dec, float))
        return np.asarray(x), np.asarray(y)


@dataclass
class FileFacts:
    """Facts about one product file for the cross-file checks.

    Attributes
    ----------
    name : str
        File name.
    product : str
        Schema name the file records (``''`` when it records none).
    schema_id : str
        Schema id when the schema is known, else ``''``.
    values : dict
        Primary keywords of :data:`FACT_KEYWORDS` that are present.
    grid : Grid, optional
        Image grid (images and masks).
    positions : dict, optional
        Catalog columns ``ra``, ``dec`` and, when present, ``x``, ``y`` (float arrays).
    region_points : ndarray, optional
        ``(n, 2)`` RA/Dec of every region centre and vertex.
    labels : ndarray, optional
        Distinct positive labels of a label mask.
    labels_in : tuple, optional
        ``(product, column)`` of the catalog whose ids the labels must be.
    ids : dict, optional
        Values of a catalog's ``unique`` (id) columns, by column name.
    """

    name: str
    product: str = ""
    schema_id: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    grid: Grid | None = None
    positions: dict[str, np.ndarray] | None = None
    position_columns: tuple[str, ...] = ()
    region_points: np.ndarray | None = None
    labels: np.ndarray | None = None
    labels_in: tuple[str, str] | None = None
    ids: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class FileResult:
    """Outcome of the per-file checks of one file."""

    path: str
    name: str
    size: int
    sha256: str | None
    problems: list[Problem]
    checks: tuple[str, ...]
    facts: FileFacts | None
    seconds: float = 0.0

"""Tiny but complete, valid deliveries built with the real models (for tests and benchmarks).

:func:`make_clean_delivery` writes one field folder with every product a complete delivery has
(DRC science/ERR/EXP per band, a DOLPHOT catalog, cluster catalogs per subset, association
catalogs and masks per selection and scale, DS9 region files, README, manifest, SHA256SUMS).
The first delivery of a given shape is built with the models; later calls copy it, so a test
can ask for a fresh delivery cheaply.
"""

from __future__ import annotations

import atexit
import functools
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS

from phangs_products.bands import Galaxy, galaxy
from phangs_products.delivery import (
    ALL_SCALES,
    ALL_SELECTIONS,
    ALL_SUBSETS,
    field_dir,
    readme_name,
    write_checksums,
    write_manifest,
)
from phangs_products.errors import PhangsProductsError
from phangs_products.hlsp import Delivery, common_meta
from phangs_products.models import CatalogModel, ImageModel, ReadmeModel, RegionsModel
from phangs_products.naming import build_name
from phangs_products.registry import get_schema
from phangs_products.spec import BandInfo, ColumnSpec

__all__ = [
    "DEFAULT_BANDS",
    "field_galaxy",
    "make_clean_delivery",
    "make_drc_products",
    "make_wcs",
    "ndimage_region_photometry",
]

log = logging.getLogger(__name__)

DEFAULT_BANDS: tuple[str, ...] = ("F275W", "F336W", "F438W", "F555W", "F814W")
PIXSCALE = 0.04  # arcsec
_CLASSES = {"hum-c12": (1, 2), "hum-c3": (3,), "ml-c12": (1, 2), "ml-c3": (3,), "cand": (1, 4)}
_COLOURS = {1: "red", 2: "green", 3: "blue", 4: "yellow"}

README_TEXT = """# PHANGS-HST delivery of {field} ({version})

## Summary
Drizzled HST images, point-source, cluster and association catalogs of {galaxy}.

## Contact
Janice C. Lee (PHANGS-HST PI).

## Version and changes
{version}: first release.

## Products
DRC science, error and exposure maps per band; DOLPHOT, cluster and association catalogs;
association masks; DS9 region files.

## How the products were made
With phangs-products (test delivery: tiny simulated data).

## File names
hlsp_<proj-id>_hst_<instrument>_<target>_<filter>_<version>_<product>.<ext>; catalog targets
are zero-padded (ngc0628c), image targets are not (ngc628c).

## References
Lee et al. 2022, ApJS 258, 10 (doi:10.3847/1538-4365/ac1fe5).
"""


def field_galaxy(field: str) -> Galaxy:
    """The survey galaxy of a field (``ngc628c`` -> NGC 628).

    Raises
    ------
    PhangsProductsError
        If neither the field nor the field without its trailing pointing letters is a galaxy.
    """
    try:
        return galaxy(field)
    except PhangsProductsError:
        stripped = field.rstrip("abcdefghijklmnopqrstuvwxyz")
        if stripped and stripped != field:
            return galaxy(stripped)
        raise


def make_wcs(ra: float, dec: float, size: int) -> WCS:
    """North-up TAN WCS at 0.04 arcsec/pixel centred on ``(ra, dec)`` for a square image."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [size / 2 + 0.5, size / 2 + 0.5]
    w.wcs.cd = [[-PIXSCALE / 3600, 0.0], [0.0, PIXSCALE / 3600]]
    w.wcs.cunit = ["deg", "deg"]
    return w


def make_clean_delivery(
    root: str | Path,
    field: str = "ngc628c",
    version: str = "v1",
    size: int = 64,
    bands: Sequence[str] = DEFAULT_BANDS,
) -> Path:
    """Write a tiny, complete and valid delivery of one field; return the field folder.

    Parameters
    ----------
    root : path-like
        Delivery root; the field folder ``<root>/<field>`` must not exist yet.
    field : str
        Field (image-collection target); its galaxy (``ngc628c`` -> NGC 628) gives the
        coordinates of the WCS and the target keywords.
    version : str
        Delivery version.
    size : int
        Image side in pixels.
    bands : sequence of str
        WFC3/UVIS filters.

    Returns
    -------
    Path
        ``<root>/<field>``.
    """
    dest = field_dir(root, field)
    if dest.exists():
        raise PhangsProductsError(f"{dest}: exists; make_clean_delivery writes a new folder")
    template = _template(field, version, int(size), tuple(b.upper() for b in bands))
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template, dest)
    return dest


def make_drc_products(
    root: str | Path,
    field: str = "ngc628c",
    version: str = "v1",
    size: int = 64,
    bands: Sequence[str] = DEFAULT_BANDS,
) -> Path:
    """Write only the DRC science, ERR and EXP products of a clean field; return its folder.

    The same images as :func:`make_clean_delivery` (noise around a flat sky), for benchmarks
    that need large images without the catalogs and masks.
    """
    dest = field_dir(root, field)
    if dest.exists():
        raise PhangsProductsError(f"{dest}: exists; make_drc_products writes a new folder")
    dest.mkdir(parents=True)
    builder = _Builder(dest, field, version, int(size), [BandInfo(b.upper()) for b in bands])
    for b in builder.bands:
        builder.drc(b)
    return dest


@functools.cache
def _template_root() -> Path:
    path = Path(tempfile.mkdtemp(prefix="phangs-clean-delivery-"))
    atexit.register(shutil.rmtree, path, True)
    return path


@functools.cache
def _template(field: str, version: str, size: int, bands: tuple[str, ...]) -> Path:
    root = _template_root() / f"{field}-{version}-{size}-{'-'.join(bands)}"
    folder = field_dir(root, field)
    folder.mkdir(parents=True)
    _Builder(folder, field, version, size, [BandInfo(b) for b in bands]).build()
    return folder


class _Builder:
    """Writes every product of one clean field delivery."""

    def __init__(self, folder: Path, field: str, version: str, size: int, bands: list[BandInfo]):
        self.folder = folder
        self.field = field
        self.version = version
        self.size = size
        self.bands = bands
        self.galaxy = field_galaxy(field)
        self.delivery = Delivery(self.galaxy, field, version, 58800.1, 58800.3, simulated=True)
        self.wcs = make_wcs(self.galaxy.ra, self.galaxy.dec, size)
        self.rng = np.random.default_rng(628)

    # --------------------------------------------------------------------------- helpers
    def name(self, schema_name: str, ext: str | None = None, **variants: str) -> str:
        schema = get_schema(schema_name)
        return build_name(
            schema, target=self.field, version=self.version, extension=ext, **variants
        )

    def sky(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ra, dec = self.wcs.pixel_to_world_values(x, y)
        return np.asarray(ra, float), np.asarray(dec, float)

    def cat_meta(self, **extra: object) -> dict:
        # test products: no Milky Way foreground (E(B-V) = 0, nothing corrected)
        foreground = {
            "ebvmw": 0.0,
            "ebvmwsrc": "test product",
            "extmwlaw": "none (E(B-V) = 0)",
            "mwcorr": False,
            "amw_nn": [0.0] * len(self.bands),
        }
        return {**common_meta(self.delivery, "phangs-cat"), **foreground, **extra}

    # ---------------------------------------------------------------------------- build
    def build(self) -> None:
        for b in self.bands:
            self.drc(b)
        self.dolphot()
        for subset in ALL_SUBSETS:
            self.clusters(subset)
        for selection in ALL_SELECTIONS:
            for scale in ALL_SCALES:
                self.associations(selection, scale)
        ReadmeModel.create(
            README_TEXT.format(field=self.field, version=self.version, galaxy=self.galaxy.name)
        ).save(self.folder / readme_name(self.field, self.version))
        write_manifest(self.folder, self.field, self.version, self.bands)
        write_checksums(self.folder)

    def drc(self, b: BandInfo) -> None:
        from phangs_products.bands import band

        facts = band(b.filter, b.instrument)
        exptime = float(facts.exptime) if np.isfinite(facts.exptime) else 1000.0
        shape = (self.size, self.size)
        sci = self.rng.normal(0.0, 0.05, shape) + 0.5
        arrays = {
            "drc-sci": sci,
            "drc-err": np.full(shape, 0.05),
            "drc-exp": np.full(shape, exptime),
        }
        meta = {
            **common_meta(self.delivery, "phangs-hst", xposure=exptime),
            "filter": b.filter,
            "detector": "UVIS",
            "photflam": facts.photflam_typical,
            "photplam": facts.photplam_typical,
            "zp_vega": facts.zp_vega,
            "zp_ab": facts.zp_ab,
            "exptime": exptime,
            "ncombine": facts.n_exp,
            "pixscale": PIXSCALE,
            "refband": "F555W",
            "pointing": self.field,
            "psfsize": facts.psf_fwhm if np.isfinite(facts.psf_fwhm) else 0.08,
        }
        for kind, data in arrays.items():
            bunit = "s" if kind == "drc-exp" else "ELECTRONS/S"
            model = ImageModel.create(kind, data, self.wcs, {**meta, "bunit": bunit})
            name = build_name(
                model.schema, target=self.field, version=self.version, filter=b.filter
            )
            model.save(self.folder / name)

    def table(self, schema_name: str, x: np.ndarray, y: np.ndarray) -> Table:
        """Every schema column filled with plausible values at pixel positions ``x, y``."""
        ra, dec = self.sky(x, y)
        n = len(x)
        table = Table()
        for col in get_schema(schema_name).expand_columns(self.bands):
            table[col.name] = self.column(col, n, ra, dec, x, y)
        return table

    def column(
        self,
        col: ColumnSpec,
        n: int,
        ra: np.ndarray,
        dec: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
    ) -> np.ndarray:
        name = col.name
        by_suffix = {"RA": ra, "DEC": dec, "X": x, "Y": y}
        for suffix, values in by_suffix.items():
            if name == suffix or name.endswith("_" + suffix):
                return values
        if col.dtype == "string":
            return np.array([self.galaxy.name] * n)
        if col.enum:
            return np.resize(np.array(col.enum), n).astype(col.numpy_dtype)
        if col.dtype == "bool":
            return np.zeros(n, bool)
        if col.dtype.startswith("int"):
            return np.arange(1, n + 1).astype(col.numpy_dtype)
        low = col.minimum if col.minimum is not None else 0.1
        if col.maximum is not None:  # a bounded column (a probability): inside its range
            return self.rng.uniform(low, col.maximum, n).astype(col.numpy_dtype)
        return (low + self.rng.uniform(0.5, 1.5, n)).astype(col.numpy_dtype)

    def positions(self, n: int, margin: int = 6) -> tuple[np.ndarray, np.ndarray]:
        x = self.rng.uniform(margin, self.size - 1 - margin, n)
        y = np.sort(self.rng.uniform(margin, self.size - 1 - margin, n))
        return x, y

    def dolphot(self) -> None:
        x, y = self.positions(20)
        table = self.table("dolphot-catalog", x, y)
        meta = self.cat_meta(photeng="PHOTUTILS-PSF", photengv="2.0")
        CatalogModel.create("dolphot-catalog", table, self.bands, meta).save(
            self.folder / self.name("dolphot-catalog")
        )

    def clusters(self, subset: str) -> None:
        from astropy import units as u
        from astropy.coordinates import SkyCoord
        from regions import CircleSkyRegion, Regions

        x, y = self.positions(6)
        table = self.table("cluster-catalog", x, y)
        classes = np.resize(np.array(_CLASSES[subset]), len(x))
        table["PHANGS_CLUSTER_CLASS_HUMAN"] = classes
        table["PHANGS_CLUSTER_CLASS_ML"] = classes
        meta = self.cat_meta(clsubset=subset, apcorr_v=-0.75, sedmodel="BC03", humclass=True)
        name = self.name("cluster-catalog", subset=subset)
        CatalogModel.create("cluster-catalog", table, self.bands, meta).save(self.folder / name)
        ra, dec = self.sky(x, y)
        regs = Regions(
            [
                CircleSkyRegion(
                    SkyCoord(r, d, unit="deg"),
                    0.16 * u.arcsec,
                    visual={"color": _COLOURS[int(c)]},
                    meta={"text": str(i)},
                )
                for i, (r, d, c) in enumerate(zip(ra, dec, classes, strict=True), start=1)
            ]
        )
        self.regions(regs, f"cl-{subset}", name)

    def associations(self, selection: str, scale: int) -> None:
        from astropy.coordinates import SkyCoord
        from regions import PolygonSkyRegion, Regions

        half = max(1, self.size // 16)
        centres = [(self.size // 4, self.size // 4), (3 * self.size // 4, self.size // 2)]
        labels = np.zeros((self.size, self.size), np.int32)
        for i, (cx, cy) in enumerate(centres, start=1):
            labels[cy - half : cy + half + 1, cx - half : cx + half + 1] = i
        x = np.array([c[0] for c in centres], float)
        y = np.array([c[1] for c in centres], float)
        table = self.table("assoc-catalog", x, y)
        table["ASC_ID"] = np.arange(1, len(x) + 1)
        table["ASC_CLUSTER_IDS"] = np.array([""] * len(x))
        sel = selection.upper()
        cat = CatalogModel.create(
            "assoc-catalog", table, self.bands, self.cat_meta(ascscale=scale, ascsel=sel)
        )
        cat_name = self.name("assoc-catalog", selection=selection, scale=str(scale))
        cat.save(self.folder / cat_name)
        mask_meta = {
            **common_meta(self.delivery, "phangs-cat", instrument="WFC3"),
            "ascscale": scale,
            "ascsel": sel,
            "nassoc": len(centres),
            "filter": "MULTI",
        }
        mask = ImageModel.create("assoc-mask", labels, self.wcs, mask_meta)
        mask.save(self.folder / self.name("assoc-mask", selection=selection, scale=str(scale)))
        polys = []
        for i, (cx, cy) in enumerate(centres, start=1):
            px = np.array([cx - half, cx + half, cx + half, cx - half], float)
            py = np.array([cy - half, cy - half, cy + half, cy + half], float)
            ra, dec = self.sky(px, py)
            polys.append(
                PolygonSkyRegion(
                    SkyCoord(ra, dec, unit="deg"), visual={"color": "cyan"}, meta={"text": str(i)}
                )
            )
        self.regions(Regions(polys), f"asc-{selection}-{scale}pc", cat_name)

    def regions(self, regs: object, base: str, source: str) -> None:
        from phangs_products.naming import catalog_target

        meta = {
            "hlsptarg": catalog_target(self.field),
            "hlspver": self.version,
            "source": source,
        }
        model = RegionsModel.create(regs, meta=meta)
        model.save(self.folder / self.name("ds9-regions", base=base))


def ndimage_region_photometry(
    labels: np.ndarray, data: np.ndarray, err: np.ndarray, fwhm_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Association region photometry with ``scipy.ndimage``'s labelled statistics.

    The reference that :func:`phangs_products.pipeline.associations.catalog.region_photometry` is
    tested and benchmarked against: flux and error of each region of ``labels`` in one band,
    with the median of a ``max(2, FWHM)`` px ring as background.
    """
    from scipy import ndimage

    index = np.arange(1, labels.max() + 1)
    width = max(2, round(fwhm_px))
    grown = ndimage.grey_dilation(labels, size=2 * width + 1)
    ring = (labels == 0) & (grown > 0)
    ring_labels = np.where(ring, grown, 0)
    data, err = np.nan_to_num(data), np.nan_to_num(err)
    area = ndimage.sum(np.ones_like(data), labels, index)
    bkg = np.nan_to_num(ndimage.median(data, ring_labels, index))
    std = np.nan_to_num(ndimage.standard_deviation(data, ring_labels, index))
    n_ring = np.maximum(ndimage.sum(ring.astype(float), ring_labels, index), 1)
    flux = ndimage.sum(data, labels, index) - bkg * area
    flux_err = np.sqrt(ndimage.sum(err**2, labels, index) + (area * std / np.sqrt(n_ring)) ** 2)
    return flux, flux_err

"""What the HTML product pages show of a delivery: example files, their size, code, a preview.

Each product page of the site (:func:`phangs_products.docs.build_site`) opens with what the
product is, then an example file of the delivery with its row or pixel counts, a preview image
and copy-paste Python to load it (``phangs_products.open``, astropy, pandas); the columns and
keywords follow.  Sizes come from the FITS headers (:mod:`phangs_products.fitsscan`), never
from loading the data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from phangs_products.errors import PhangsProductsError
from phangs_products.fitsscan import scan_file
from phangs_products.spec import ProductSchema

__all__ = ["ProductExample", "examples_by_product", "extent", "preview", "snippets"]

log = logging.getLogger(__name__)

#: Longest side of a preview image in pixels (images are subsampled to it, not resampled).
PREVIEW_PIXELS = 480


@dataclass
class ProductExample:
    """The files of one product in a delivery and the one a page shows as its example."""

    files: list[Path] = field(default_factory=list)

    @property
    def example(self) -> Path:
        """The FITS file when there is one (its headers give the sizes), else the first."""
        fits_files = [p for p in self.files if p.suffix == ".fits"]
        return (fits_files or self.files)[0]

    def sibling(self, extension: str) -> Path | None:
        """The example's copy in another format (``.parquet``, ``.ecsv``), if delivered."""
        path = self.example.with_suffix(extension)
        return path if path in self.files else None


def examples_by_product(
    fields: Iterable[tuple[Path, Mapping[str, Any]]],
) -> dict[str, ProductExample]:
    """``{product name: its files}`` over the field folders and their manifest trees."""
    out: dict[str, ProductExample] = {}
    for field_dir, tree in fields:
        for rec in tree.get("files", []):
            out.setdefault(str(rec["product"]), ProductExample()).files.append(
                field_dir / str(rec["name"])
            )
    return out


def extent(path: Path, kind: str) -> str:
    """Rows and columns of a FITS catalog, pixels of an image; ``''`` when unknown."""
    if path.suffix != ".fits":
        return ""
    try:
        hdus = scan_file(path).hdus
    except PhangsProductsError as exc:
        log.warning("no size for %s: %s", path.name, exc)
        return ""
    if kind == "catalog":
        table = next((h for h in hdus if h.xtension == "BINTABLE"), None)
        if table is None:
            return ""
        return f"{table.header.get('NAXIS2', 0):,d} rows x {table.header.get('TFIELDS', 0)} columns"
    images = [h for h in hdus if h.xtension in ("PRIMARY", "IMAGE") and h.data_size > 0]
    if not images:
        return ""
    shape = f"{images[0].header.get('NAXIS1', 0)} x {images[0].header.get('NAXIS2', 0)} px"
    if kind == "flc":
        chips = sum(1 for h in images if h.name == "SCI")
        return f"{chips} chip(s) of {shape}"
    return shape


def _hdu_name(schema: ProductSchema) -> str:
    arrays = list(schema.arrays.values())
    return arrays[0].fits_hdu if arrays else "PRIMARY"


def snippets(schema: ProductSchema, example: ProductExample | None = None) -> list[tuple[str, str]]:
    """``(label, code)`` pairs that load a product with our reader, astropy and pandas."""
    name = example.example.name if example else f"hlsp_..._{schema.product['product_type']}"
    kind = schema.kind
    ours = f'import phangs_products\n\nmodel = phangs_products.open("{name}")\n'
    if kind == "catalog":
        parquet = example.sibling(".parquet") if example else None
        out = [
            ("phangs_products", ours + "model.table  # astropy Table with units"),
            (
                "astropy",
                "from astropy.table import Table\n\n"
                f'table = Table.read("{name}", hdu=1)  # the catalog HDU',
            ),
        ]
        if parquet is not None:
            out.append(("pandas", f'import pandas as pd\n\ndf = pd.read_parquet("{parquet.name}")'))
        else:
            out.append(
                (
                    "pandas",
                    "from astropy.table import Table\n\n"
                    f'df = Table.read("{name}", hdu=1).to_pandas()',
                )
            )
        return out
    if kind in ("image", "mask"):
        hdu = f'"{_hdu_name(schema)}"' if _hdu_name(schema) != "PRIMARY" else "0"
        return [
            ("phangs_products", ours + "model.data, model.wcs  # array (memory-mapped) and WCS"),
            (
                "astropy",
                "from astropy.io import fits\nfrom astropy.wcs import WCS\n\n"
                f'with fits.open("{name}") as hdul:\n'
                f"    data, wcs = hdul[{hdu}].data, WCS(hdul[{hdu}].header)",
            ),
        ]
    if kind == "flc":
        return [
            ("phangs_products", ours + 'model.hdus["SCI", 1].data  # chip 1 (e-)'),
            (
                "astropy",
                "from astropy.io import fits\n\n"
                f'with fits.open("{name}") as hdul:\n    sci = hdul["SCI", 1].data',
            ),
        ]
    if kind == "regions":
        return [
            ("phangs_products", ours + "model.regions  # regions.Regions in ICRS"),
            (
                "regions",
                f'from regions import Regions\n\nregs = Regions.read("{name}", format="ds9")',
            ),
        ]
    if kind == "manifest":
        return [("phangs_products", ours + 'model.tree["files"]  # one record per file')]
    return [("phangs_products", ours + "model.text")]


def preview(schema: ProductSchema, path: Path, out: Path) -> bool:
    """Write a PNG preview of an image, mask, FLC or catalog file; False when none applies."""
    if path.suffix != ".fits" or schema.kind not in ("image", "mask", "flc", "catalog"):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.io import fits

    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    try:
        with fits.open(path, memmap=True) as hdul:
            if schema.kind == "catalog":
                _scatter(ax, hdul[1].data, schema)
            else:
                hdu = hdul["SCI", 1] if schema.kind == "flc" else hdul[_hdu_name(schema)]
                _image(ax, np.asarray(hdu.data), schema.kind == "mask")
        ax.set_title(path.name.split("_")[-1], fontsize=8)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=100, bbox_inches="tight")
    except (OSError, KeyError, ValueError, IndexError) as exc:
        log.warning("no preview of %s: %s", path.name, exc)
        return False
    finally:
        plt.close(fig)
    return True


def _image(ax: Any, data: np.ndarray, labels: bool) -> None:
    step = max(1, int(np.ceil(max(data.shape) / PREVIEW_PIXELS)))
    small = np.asarray(data[::step, ::step], float)
    if labels:
        ax.imshow(np.where(small > 0, small % 20 + 1, 0), origin="lower", cmap="tab20b")
    else:
        finite = small[np.isfinite(small)]
        lo, hi = np.percentile(finite, (1, 99.5)) if finite.size else (0.0, 1.0)
        ax.imshow(small, origin="lower", cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1)
    ax.set_axis_off()


def _scatter(ax: Any, data: Any, schema: ProductSchema) -> None:
    """Positions of a catalog: its first two columns in degrees (RA, Dec in every schema)."""
    degrees: Sequence[str] = [c.name for c in schema.columns if c.unit == "deg"]
    if len(degrees) < 2:
        raise KeyError("no RA/Dec columns")
    ra, dec = np.asarray(data[degrees[0]], float), np.asarray(data[degrees[1]], float)
    ax.scatter(ra, dec, s=3, color="#1f5f99")
    ax.ticklabel_format(useOffset=False)
    ax.invert_xaxis()
    ax.set_xlabel("RA (deg)", fontsize=8)
    ax.set_ylabel("Dec (deg)", fontsize=8)
    ax.tick_params(labelsize=7)

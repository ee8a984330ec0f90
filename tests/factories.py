"""Minimal valid products of every type, built with the real models (for tests)."""

from __future__ import annotations

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS

import phangs_products as pp
from phangs_products.bands import galaxy
from phangs_products.hlsp import Delivery, common_meta
from phangs_products.naming import build_name

BANDS = [pp.BandInfo(f) for f in ("F275W", "F336W", "F438W", "F555W", "F814W")]


def demo_delivery() -> Delivery:
    """The simulated NGC 628 field's delivery facts."""
    return Delivery(galaxy("ngc628"), "ngc628c", "v1", 58800.1, 58800.3, simulated=True)


def make_wcs(ra: float, dec: float, shape: tuple[int, int]) -> WCS:
    """North-up 0.04 arcsec/pixel TAN WCS centred on (ra, dec)."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
    w.wcs.cd = [[-0.04 / 3600, 0.0], [0.0, 0.04 / 3600]]
    return w


def image_product(
    delivery: Delivery, kind: str = "drc-sci", filt: str = "F555W", shape=(40, 50)
) -> pp.ImageModel:
    rng = np.random.default_rng(1)
    data = rng.normal(0.0, 1.0, shape)
    wcs = make_wcs(delivery.galaxy.ra, delivery.galaxy.dec, shape)
    if kind == "assoc-mask":
        data = (data > 1.5).astype(np.int32)
        meta = {
            **common_meta(delivery, "phangs-cat", instrument="WFC3"),
            "ascscale": 16,
            "ascsel": "V",
            "nassoc": 1,
            "filter": "MULTI",
        }
        return pp.ImageModel.create(kind, data, wcs, meta)
    meta = {
        **common_meta(delivery, "phangs-hst", xposure=670.0),
        "filter": filt,
        "detector": "UVIS",
        "photflam": 1.8e-19,
        "photplam": 5308.0,
        "zp_vega": 25.83,
        "zp_ab": 25.8,
        "exptime": 670.0,
        "ncombine": 3,
        "pixscale": 0.04,
        "refband": "F555W",
        "pointing": "1",
        "psfsize": 0.067,
        "bunit": "s" if kind == "drc-exp" else "ELECTRONS/S",
    }
    return pp.ImageModel.create(kind, data, wcs, meta)


def catalog_table(schema_name: str, n: int = 4) -> Table:
    """A table with every column of a catalog schema filled with plausible values."""
    schema = pp.get_schema(schema_name)
    rng = np.random.default_rng(2)
    table = Table()
    for col in schema.expand_columns(BANDS):
        if col.dtype == "string":
            table[col.name] = ["a"] * n
        elif col.enum:
            table[col.name] = np.full(n, col.enum[0])
        elif col.dtype == "bool":
            table[col.name] = np.zeros(n, bool)
        elif col.minimum is not None:
            table[col.name] = col.minimum + rng.uniform(0.1, 0.2, n)
        else:
            table[col.name] = np.arange(1, n + 1).astype(col.numpy_dtype)
    return table


def catalog_product(delivery: Delivery, schema_name: str = "cluster-catalog") -> pp.CatalogModel:
    extra = {
        "cluster-catalog": {"clsubset": "hum-c12", "apcorr_v": -0.75, "sedmodel": "BC03"},
        "dolphot-catalog": {"photeng": "PHOTUTILS-PSF", "photengv": "3.1"},
        "assoc-catalog": {"ascscale": 16, "ascsel": "V"},
    }[schema_name]
    meta = {**common_meta(delivery, "phangs-cat"), **extra}
    return pp.CatalogModel.create(schema_name, catalog_table(schema_name), BANDS, meta)


def product_name(model: pp.Model, ext: str | None = None) -> str:
    variants = {
        "cluster-catalog": {"subset": "hum-c12"},
        "assoc-catalog": {"selection": "v", "scale": "16"},
        "assoc-mask": {"selection": "v", "scale": "16"},
        "ds9-regions": {"base": "cl-hum-c12"},
    }.get(model.schema.name, {})
    filt = model.meta.filter if model.schema.product["filter_field"] == "band" else None
    return build_name(
        model.schema, target="ngc628c", version="v1", filter=filt, extension=ext, **variants
    )

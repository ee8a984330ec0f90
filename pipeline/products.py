"""The stage I/O contract: product keys and how a stage reads another stage's products.

Stages exchange products as :data:`Outputs` (product key -> files); the keys are the members
of :class:`ProductKey`.  The helpers here load DRCs, the source table and the DOLPHOT catalog
from such outputs and build the delivery facts of a field, so no stage imports another.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from astropy.table import Table

from phangs_products.hlsp import Delivery
from phangs_products.models import ImageModel, RegionsModel
from phangs_products.models import open as open_product
from phangs_products.pipeline.instrument import band_order
from phangs_products.pipeline.runner import Outputs, StageContext
from phangs_products.spec import BandInfo

__all__ = [
    "ProductKey",
    "StageName",
    "delivery_from",
    "dolphot_fits",
    "load_drcs",
    "read_sources",
    "regions_model",
]


class StageName(StrEnum):
    """Names of the stages of the graph (keys of ``StageContext.inputs``)."""

    IMAGING = "imaging"
    MOSAIC = "mosaic"
    PHOTOMETRY = "photometry"
    CLUSTERS = "clusters"
    ASSOCIATIONS = "associations"
    PUBLISH = "publish"
    VALIDATE = "validate"
    DOCS = "docs"


class ProductKey(StrEnum):
    """Keys of a stage's :data:`Outputs`: what each list of files holds.

    Product keys of delivery products equal their schema names (``drc-sci``); the others name a
    stage's working files.  Being strings, they are recorded as such in the run manifest.
    """

    FLC = "flc"
    DRC_SCI = "drc-sci"
    DRC_ERR = "drc-err"
    DRC_EXP = "drc-exp"
    ALIGNMENT = "alignment"
    SOURCES = "sources"
    DOLPHOT_CATALOG = "dolphot-catalog"
    MCI_CALIBRATION = "mci-calibration"
    CLUSTER_CATALOG = "cluster-catalog"
    ASSOC_MASK = "assoc-mask"
    ASSOC_CATALOG = "assoc-catalog"
    DS9_REGIONS = "ds9-regions"
    DELIVERY = "delivery"
    REPORT = "report"
    SITE = "site"


def load_drcs(outputs: Outputs) -> tuple[dict[str, ImageModel], dict[str, ImageModel]]:
    """DRC science and ERR models by filter from the imaging stage's outputs."""
    sci = {}
    err = {}
    for path in outputs[ProductKey.DRC_SCI]:
        model = open_product(path)
        sci[model.meta.filter] = model
    for path in outputs[ProductKey.DRC_ERR]:
        model = open_product(path)
        err[model.meta.filter] = model
    order = [b.filter for b in band_order([BandInfo(f) for f in sci])]
    return {f: sci[f] for f in order}, {f: err[f] for f in order}


def delivery_from(model: ImageModel, ctx: StageContext) -> Delivery:
    """Delivery facts (time span, target position) from a DRC's header."""
    return Delivery(
        ctx.run.galaxy,
        ctx.run.field,
        ctx.run.version,
        float(model.meta.mjd_beg),
        float(model.meta.mjd_end),
        ctx.run.simulated,
        ra=model.meta.ra_targ,
        dec=model.meta.dec_targ,
    )


def regions_model(regions, delivery: Delivery, source: str) -> RegionsModel:
    """A DS9 region product of a catalog or mask of this delivery."""
    return RegionsModel.create(
        regions,
        meta={
            "hlsptarg": delivery.target_for("phangs-cat"),
            "hlspver": delivery.version,
            "source": source,
        },
    )


def read_sources(outputs: Outputs) -> Table:
    """The photometry stage's source table."""
    (path,) = outputs[ProductKey.SOURCES]
    return Table.read(path, format="ascii.ecsv")


def dolphot_fits(outputs: Outputs) -> Path:
    """Path of the DOLPHOT catalog FITS product."""
    return next(p for p in outputs[ProductKey.DOLPHOT_CATALOG] if p.suffix == ".fits")

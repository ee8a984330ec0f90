"""The stage I/O contract: product keys and how a stage reads another stage's products.

Stages exchange products as :data:`Outputs` (product key -> files); the keys are the members
of :class:`ProductKey`.  The helpers here load DRCs, the source table and the DOLPHOT catalog
from such outputs and build the delivery facts of a field, so no stage imports another.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from phangs_products.errors import ProductError
from phangs_products.hlsp import Delivery
from phangs_products.models import ImageModel, RegionsModel
from phangs_products.models import open as open_product
from phangs_products.pipeline.instrument import band_of, band_order
from phangs_products.pipeline.runner import Outputs, StageContext
from phangs_products.pipeline.stellarpops.extinction import REFERENCE, foreground_extinction
from phangs_products.spec import BandInfo

__all__ = [
    "ProductKey",
    "StageName",
    "delivery_from",
    "dolphot_fits",
    "foreground",
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
    """DRC science and ERR models from the imaging stage's outputs, in wavelength order.

    A run uses each filter from one instrument (:func:`phangs_products.bands.resolve_bands`),
    so the dictionaries are keyed by filter, the name of the catalogs' columns; the band of
    each (instrument and filter) is :func:`band_of` of its model, read from the DRC's header.

    Raises
    ------
    ProductError
        If two DRCs hold the same filter, or a DRC's ERR map is missing.
    """
    sci: dict[str, ImageModel] = {}
    err: dict[str, ImageModel] = {}
    for kind, paths, out in (
        ("drc-sci", outputs[ProductKey.DRC_SCI], sci),
        ("drc-err", outputs[ProductKey.DRC_ERR], err),
    ):
        for path in paths:
            model = open_product(path)
            filt = str(model.meta.filter)
            if filt in out:
                raise ProductError(
                    f"{path.name}: keyword FILTER: {filt} is also in {out[filt].file_name} "
                    f"({kind}); a field uses each filter from one instrument"
                )
            out[filt] = model
    missing = sorted(set(sci) - set(err))
    if missing:
        raise ProductError(f"imaging outputs: no drc-err for {', '.join(missing)}")
    order = [b.filter for b in band_order([band_of(m) for m in sci.values()])]
    return {f: sci[f] for f in order}, {f: err[f] for f in order}


def delivery_from(model: ImageModel, ctx: StageContext) -> Delivery:
    """Delivery facts (time span, target position, PROPOSID, SIMULATD) from a DRC's header."""
    proposid = model.meta.get("PROPOSID")
    return Delivery(
        ctx.run.galaxy,
        ctx.run.field,
        ctx.run.version,
        float(model.meta.mjd_beg),
        float(model.meta.mjd_end),
        ctx.run.simulated or bool(model.meta.get("SIMULATD", False)),
        ra=model.meta.ra_targ,
        dec=model.meta.dec_targ,
        identity=ctx.run.identity(),
        proposid=int(proposid) if proposid is not None else None,
    )


def foreground(
    ctx: StageContext, bands: Sequence[BandInfo], corrected: bool
) -> tuple[np.ndarray, dict[str, Any]]:
    """The run's Milky Way foreground A_band per band and the catalog keywords recording it.

    Parameters
    ----------
    ctx : StageContext
        The stage (its run configuration gives E(B-V)_MW and its source).
    bands : sequence of BandInfo
        The catalog's bands, in column order.
    corrected : bool
        Whether the catalog's magnitudes and fluxes are corrected (``MWCORR``).

    Returns
    -------
    a_band : ndarray
        A_band in mag per band (Cardelli et al. 1989, R_V = 3.1; module
        :mod:`~phangs_products.pipeline.stellarpops.extinction`).
    meta : dict
        ``ebvmw``, ``ebvmwsrc``, ``extmwlaw``, ``mwcorr`` and the per-band ``amw_nn``.

    Raises
    ------
    ConfigError
        If the run configuration gives no E(B-V)_MW.
    """
    ebv, source = ctx.run.foreground()
    a_band = foreground_extinction(ebv, bands)
    meta = {
        "ebvmw": ebv,
        "ebvmwsrc": source,
        "extmwlaw": REFERENCE,
        "mwcorr": corrected,
        "amw_nn": [round(float(a), 4) for a in a_band],
    }
    return a_band, meta


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

"""The associations stage: masks, catalogs and DS9 outlines per scale and selection."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from regions import PointSkyRegion, PolygonSkyRegion, Regions

from phangs_products.bands import instrume_of
from phangs_products.hlsp import common_meta
from phangs_products.models import CatalogModel, ImageModel
from phangs_products.models import open as open_product
from phangs_products.naming import build_name
from phangs_products.pipeline.associations.catalog import find_associations, outline_polygons
from phangs_products.pipeline.associations.config import (
    SCALES,
    SELECTION_FILTER,
    AssociationConfig,
)
from phangs_products.pipeline.instrument import band_of
from phangs_products.pipeline.products import (
    ProductKey,
    StageName,
    delivery_from,
    dolphot_fits,
    foreground,
    load_drcs,
    regions_model,
)
from phangs_products.pipeline.runner import Outputs, StageContext
from phangs_products.pipeline.stellarpops.sed import SEDConfig
from phangs_products.registry import get_schema

log = logging.getLogger(__name__)


#: DS9 outline colour of each scale, smallest to largest.
SCALE_COLORS = dict(zip(SCALES, ("red", "orange", "green", "cyan"), strict=True))


@dataclass(frozen=True)
class AssociationStageConfig:
    """Associations and their SED fits.

    Attributes
    ----------
    associations : AssociationConfig
        Watershed associations.
    sed : SEDConfig
        SED fits of the associations.
    polygon_tolerance : float
        Simplification tolerance (px) of the association outlines in the DS9 region files.
    """

    associations: AssociationConfig = field(default_factory=AssociationConfig)
    sed: SEDConfig = field(default_factory=SEDConfig)
    polygon_tolerance: float = field(default=0.5, metadata={"ge": 0})


def region_file(
    labels: np.ndarray, peaks: np.ndarray, wcs, color: str, tolerance: float
) -> Regions:
    """Association outlines (polygons) and peaks (points) in ICRS."""
    regs = []
    for label, xy in outline_polygons(labels, tolerance):
        if len(xy) < 3:
            continue
        ra, dec = wcs.pixel_to_world_values(xy[:, 0], xy[:, 1])
        regs.append(
            PolygonSkyRegion(
                SkyCoord(ra, dec, unit="deg"), meta={"text": str(label)}, visual={"color": color}
            )
        )
    for yx in peaks:
        ra, dec = wcs.pixel_to_world_values(yx[1], yx[0])
        regs.append(
            PointSkyRegion(
                SkyCoord(ra * u.deg, dec * u.deg), visual={"color": color, "symbol": "x"}
            )
        )
    return Regions(regs)


def associations_stage(ctx: StageContext) -> Outputs:
    """Find associations at every scale and selection and write their products."""
    config: AssociationStageConfig = ctx.config
    images, errors = load_drcs(ctx.inputs[StageName.IMAGING])
    dolphot = open_product(dolphot_fits(ctx.inputs[StageName.PHOTOMETRY]), masked=False).table
    clusters = None
    cand = [
        p
        for p in ctx.inputs.get("clusters", {}).get("cluster-catalog", [])
        if p.name.endswith("cl-cand.fits")
    ]
    if cand:
        clusters = open_product(cand[0], masked=False).table
    bands = [band_of(m) for m in images.values()]  # instrument and filter from each DRC
    a_band, fg_meta = foreground(ctx, bands, corrected=True)
    selections = tuple(s for s in config.associations.selections if SELECTION_FILTER[s] in images)
    for left in sorted(set(config.associations.selections) - set(selections)):
        log.warning(
            "%s-selected associations left out: the run has no %s image (bands %s)",
            left.upper(),
            SELECTION_FILTER[left],
            ", ".join(images),
        )
    if not selections:
        raise ValueError(
            f"no association selection possible: {config.associations.selections} need "
            f"{[SELECTION_FILTER[s] for s in config.associations.selections]}, the run has "
            f"{list(images)}"
        )
    results = find_associations(
        dolphot,
        images,
        errors,
        ctx.run.galaxy.distance_mpc,
        dataclasses.replace(config.associations, selections=selections),
        clusters,
        config.sed,
        a_band=dict(zip(images, a_band.tolist(), strict=True)),
    )
    ref = images["F555W"] if "F555W" in images else next(iter(images.values()))
    delivery = delivery_from(ref, ctx)
    instruments = [b.instrument for b in bands]
    base_meta = common_meta(
        delivery,
        "phangs-cat",
        instrument=instrume_of(instruments),
        xposure=float(ref.meta.xposure),
    )
    outputs: Outputs = {
        ProductKey.ASSOC_MASK: [],
        ProductKey.ASSOC_CATALOG: [],
        ProductKey.DS9_REGIONS: [],
    }
    inputs = [dolphot_fits(ctx.inputs[StageName.PHOTOMETRY])]

    def name(schema: str, ext: str | None = None, **variants: str) -> Path:
        return ctx.folder / build_name(
            get_schema(schema),
            target=ctx.run.field,
            version=ctx.run.version,
            instruments=instruments,
            extension=ext,
            **variants,
        )

    for res in results:
        sel, scale = res.selection, str(res.scale)
        meta = {**base_meta, "ascscale": res.scale, "ascsel": sel.upper()}
        mask = ImageModel.create(
            "assoc-mask",
            res.labels,
            ref.wcs,
            {**meta, "nassoc": int(res.labels.max()), "filter": "MULTI"},
        )
        path = name("assoc-mask", selection=sel, scale=scale)
        mask.save(path, overwrite=True, provenance=ctx.provenance(inputs))
        outputs[ProductKey.ASSOC_MASK].append(path)
        cat = CatalogModel.create("assoc-catalog", res.table, bands, {**meta, **fg_meta})
        for ext in ("fits", "parquet"):
            path = name("assoc-catalog", ext, selection=sel, scale=scale)
            if ext == "fits":
                cat.save(path, overwrite=True, provenance=ctx.provenance(inputs))
            else:
                cat.save(path, overwrite=True)
            outputs[ProductKey.ASSOC_CATALOG].append(path)
        regs = region_file(
            res.labels,
            res.peaks,
            ref.wcs,
            SCALE_COLORS.get(res.scale, "white"),
            config.polygon_tolerance,
        )
        reg_name = name("ds9-regions", base=f"asc-{sel}-{scale}pc")
        reg_model = regions_model(regs, delivery, outputs[ProductKey.ASSOC_CATALOG][-2].name)
        reg_model.save(reg_name, overwrite=True)
        outputs[ProductKey.DS9_REGIONS].append(reg_name)
    return outputs

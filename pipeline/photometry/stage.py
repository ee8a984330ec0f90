"""The photometry stage as the orchestrator runs it: DRCs in; sources and DOLPHOT catalog out."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib import metadata

from phangs_products.bands import instrume_of
from phangs_products.hlsp import common_meta
from phangs_products.models import CatalogModel
from phangs_products.naming import build_name
from phangs_products.pipeline.photometry.aperture import measure_bands
from phangs_products.pipeline.photometry.config import PhotometryConfig
from phangs_products.pipeline.photometry.detect import detect_sources
from phangs_products.pipeline.photometry.dolphot_io import dolphot_available, read_dolphot
from phangs_products.pipeline.photometry.psf_phot import PSFPhotConfig, psf_catalog
from phangs_products.pipeline.products import (
    ProductKey,
    StageName,
    delivery_from,
    foreground,
    load_drcs,
)
from phangs_products.pipeline.runner import Outputs, StageContext
from phangs_products.registry import get_schema
from phangs_products.spec import BandInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhotometryStageConfig:
    """Photometry stage settings: detection/aperture settings and the PSF-photometry fallback.

    Attributes
    ----------
    photometry : PhotometryConfig
        Detection and aperture photometry.
    psf : PSFPhotConfig
        PSF photometry (used when no DOLPHOT output is given).
    dolphot_phot, dolphot_columns : str
        Existing DOLPHOT output (the ``.phot`` file and its ``.columns`` listing) to ingest
        instead of running PSF photometry; empty: PSF photometry with photutils.
    """

    photometry: PhotometryConfig = field(default_factory=PhotometryConfig)
    psf: PSFPhotConfig = field(default_factory=PSFPhotConfig)
    dolphot_phot: str = ""
    dolphot_columns: str = ""


def photometry_stage(ctx: StageContext) -> Outputs:
    """Detect on F555W, measure every band, and make the DOLPHOT-catalog product."""
    config: PhotometryStageConfig = ctx.config
    images, errors = load_drcs(ctx.inputs[StageName.IMAGING])
    ref = config.photometry.reference_filter
    sources = detect_sources(images[ref], config.photometry)
    ctx.progress(f"detection on {ref} ({len(sources)} sources)", 1, 3)
    table, apcorr = measure_bands(sources, images, errors, config.photometry)
    ctx.progress(f"aperture photometry of {len(images)} bands", 2, 3)
    table.meta["apcorr"] = apcorr
    ra, dec = images[ref].wcs.pixel_to_world_values(table["x"], table["y"])
    table["ra"], table["dec"] = ra, dec
    table["sharpness"] = sources["sharpness"]
    table["roundness"] = sources["roundness"]
    table["peak"] = sources["peak"]
    sources_path = ctx.folder / "sources.ecsv"
    table.write(sources_path, format="ascii.ecsv", overwrite=True)

    if config.dolphot_phot:
        cat = read_dolphot(config.dolphot_phot, config.dolphot_columns, images[ref].wcs)
        bands, engine, version = cat.meta["bands"], "DOLPHOT", cat.meta["version"]
    else:
        if dolphot_available():
            log.warning(
                "dolphot is on PATH but running it needs its parameter files and "
                "FLC preparation (not automated); using photutils PSF photometry"
            )
        cat, bands = psf_catalog(
            sources, images, errors, ref, config.psf, workers=config.photometry.workers
        )
        engine = "PHOTUTILS-PSF"

        version = metadata.version("photutils")
    ctx.progress("point-source photometry", 3, 3)
    delivery = delivery_from(images[ref], ctx)
    infos = [BandInfo(b) if isinstance(b, str) else b for b in bands]
    instruments = [b.instrument for b in infos]
    meta = {
        **common_meta(
            delivery,
            "phangs-cat",
            instrument=instrume_of(instruments),
            xposure=float(images[ref].meta.xposure),
        ),
        "photeng": engine,
        "photengv": version,
    }
    # DOLPHOT magnitudes stay as measured; the header records the foreground to correct them
    meta.update(foreground(ctx, infos, corrected=False)[1])
    model = CatalogModel.create("dolphot-catalog", cat, bands, meta)
    drc_paths = list(ctx.inputs[StageName.IMAGING][ProductKey.DRC_SCI])
    paths = []
    for ext in ("fits", "parquet"):
        name = build_name(
            get_schema("dolphot-catalog"),
            target=ctx.run.field,
            version=ctx.run.version,
            instruments=instruments,
            extension=ext,
        )
        out = ctx.folder / name
        if ext == "fits":
            model.save(out, overwrite=True, provenance=ctx.provenance(drc_paths))
        else:
            model.save(out, overwrite=True)
        paths.append(out)
    log.info("DOLPHOT-style catalog: %d sources (%s)", len(cat), engine)
    return {ProductKey.SOURCES: [sources_path], "dolphot-catalog": paths}

"""The photometry stage as the orchestrator runs it: DRCs in; sources and DOLPHOT catalog out."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from astropy.table import Table

from phangs_products.hlsp import Delivery, common_meta
from phangs_products.models import CatalogModel, ImageModel, RegionsModel
from phangs_products.models import open as open_product
from phangs_products.naming import build_name
from phangs_products.registry import get_schema
from phangs_products.spec import BandInfo

from .dolphot import PSFPhotConfig, band_order, dolphot_available, psf_catalog, read_dolphot
from .photometry import PhotometryConfig, detect_sources, measure_bands
from .runner import Outputs, StageContext

__all__ = ["PhotometryStageConfig", "load_drcs", "photometry_stage"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhotometryStageConfig:
    """Photometry stage settings: detection/aperture settings and the PSF-photometry fallback.

    ``dolphot_phot``/``dolphot_columns`` point at existing DOLPHOT output to ingest instead of
    running PSF photometry.
    """

    photometry: PhotometryConfig = field(default_factory=PhotometryConfig)
    psf: PSFPhotConfig = field(default_factory=PSFPhotConfig)
    dolphot_phot: str = ""
    dolphot_columns: str = ""


def load_drcs(outputs: Outputs) -> tuple[dict[str, ImageModel], dict[str, ImageModel]]:
    """DRC science and ERR models by filter from the imaging stage's outputs."""
    sci = {}
    err = {}
    for path in outputs["drc-sci"]:
        model = open_product(path)
        sci[model.meta.filter] = model
    for path in outputs["drc-err"]:
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


def photometry_stage(ctx: StageContext) -> Outputs:
    """Detect on F555W, measure every band, and make the DOLPHOT-catalog product."""
    config: PhotometryStageConfig = ctx.config
    images, errors = load_drcs(ctx.inputs["imaging"])
    ref = config.photometry.reference_filter
    sources = detect_sources(images[ref], config.photometry)
    table, apcorr = measure_bands(sources, images, errors, config.photometry)
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
        bands, engine, version = cat.meta["bands"], "DOLPHOT", "2.0"
    else:
        if dolphot_available():
            log.warning(
                "dolphot is on PATH but running it needs its parameter files and "
                "FLC preparation (not automated); using photutils PSF photometry"
            )
        cat, bands = psf_catalog(sources, images, errors, ref, config.psf)
        engine = "PHOTUTILS-PSF"
        from importlib import metadata

        version = metadata.version("photutils")
    delivery = delivery_from(images[ref], ctx)
    meta = {
        **common_meta(
            delivery, "phangs-cat", instrument="WFC3", xposure=float(images[ref].meta.xposure)
        ),
        "photeng": engine,
        "photengv": version,
    }
    model = CatalogModel.create("dolphot-catalog", cat, bands, meta)
    drc_paths = list(ctx.inputs["imaging"]["drc-sci"])
    paths = []
    for ext in ("fits", "parquet"):
        name = build_name(
            get_schema("dolphot-catalog"),
            target=ctx.run.field,
            version=ctx.run.version,
            extension=ext,
        )
        out = ctx.folder / name
        if ext == "fits":
            model.save(out, overwrite=True, provenance=ctx.provenance(drc_paths))
        else:
            model.save(out, overwrite=True)
        paths.append(out)
    log.info("DOLPHOT-style catalog: %d sources (%s)", len(cat), engine)
    return {"sources": [sources_path], "dolphot-catalog": paths}


def read_sources(outputs: Outputs) -> Table:
    """The photometry stage's source table."""
    (path,) = outputs["sources"]
    return Table.read(path, format="ascii.ecsv")


def dolphot_fits(outputs: Outputs) -> Path:
    """Path of the DOLPHOT catalog FITS product."""
    return next(p for p in outputs["dolphot-catalog"] if p.suffix == ".fits")

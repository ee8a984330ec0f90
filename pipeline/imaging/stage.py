"""The imaging stage as the orchestrator runs it: FLC folder in; FLC and DRC products out."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import asdict
from pathlib import Path

from astropy.io import fits
from astropy.table import Table

from phangs_products.hlsp import Delivery, common_meta
from phangs_products.models import FlcModel
from phangs_products.naming import build_name
from phangs_products.pipeline.imaging.align import AlignmentResult, align_exposures
from phangs_products.pipeline.imaging.drc import (
    _save,
    _wcsaxes_first,
    delivery_of,
    drc_products,
    pointing_of,
    shutil_rmtree,
)
from phangs_products.pipeline.imaging.drizzle import BandImages, drizzle_band
from phangs_products.pipeline.imaging.exposures import (
    Exposure,
    ImagingConfig,
    ImagingError,
    copy_inputs,
    group_exposures,
    refuse_unusable,
)
from phangs_products.pipeline.imaging.parallel import run_bands, usable_bands, worker_count
from phangs_products.pipeline.products import ProductKey
from phangs_products.pipeline.runner import Outputs, StageContext
from phangs_products.registry import get_schema

log = logging.getLogger(__name__)


def input_files(folder: Path) -> list[Path]:
    """FLC files of an input folder (``*_flc.fits`` when there are any, else ``*.fits``)."""
    files = sorted(folder.glob("*_flc.fits")) or sorted(folder.glob("*.fits"))
    return files


def imaging_stage(ctx: StageContext) -> Outputs:
    """Align every FLC to the reference catalog and drizzle each band onto the F555W grid.

    An input file that cannot be used stops the stage, unless ``allow_missing_inputs`` is set:
    then it is left out and reported (:meth:`StageContext.skip_input`).  A band whose
    alignment or drizzling fails is logged and skipped; the other bands still finish.
    """
    config: ImagingConfig = ctx.config
    run = ctx.run
    groups, errors = group_exposures(input_files(run.input), run.bands)
    refuse_unusable(errors, config.allow_missing_inputs)
    for line in errors:
        ctx.skip_input(line)
    if config.reference_filter not in groups:
        raise ImagingError(
            f"{run.input}: no usable {config.reference_filter} exposures; the reference band "
            "defines the grid (" + ("; ".join(errors) or "no FLC files") + ")"
        )
    scratch = ctx.folder / "scratch"
    order = [config.reference_filter, *sorted(f for f in groups if f != config.reference_filter)]
    all_exposures = [e for f in order for e in groups[f]]
    mjd_beg = min(e.expstart for e in all_exposures)
    mjd_end = max(e.expend for e in all_exposures)
    ra, dec = pointing_of(all_exposures[0].path)
    delivery = delivery_of(ctx, mjd_beg, mjd_end, ra, dec, [e.path for e in all_exposures])
    outputs: Outputs = {
        ProductKey.FLC: [],
        ProductKey.DRC_SCI: [],
        ProductKey.DRC_ERR: [],
        ProductKey.DRC_EXP: [],
        ProductKey.ALIGNMENT: [],
    }
    reports: list[AlignmentResult] = []

    def add_products(images: BandImages, exposures: list[Exposure]) -> None:
        sci, err, exp = drc_products(ctx, delivery, images, config)
        outputs[ProductKey.DRC_SCI].append(sci)
        outputs[ProductKey.DRC_ERR].append(err)
        outputs[ProductKey.DRC_EXP].append(exp)
        for exposure in exposures:
            outputs[ProductKey.FLC].append(
                _flc_product(ctx, delivery, exposure.path, images.filter)
            )

    workers = worker_count(config, len(order))
    if workers > 1:
        log.info("%d bands on %d worker processes", len(order), workers)
        bands = [(f, copy_inputs(groups[f], scratch / f.lower())) for f in order]
        tasks = run_bands(bands, run.reference_catalog, config, scratch, workers)
        ref = config.reference_filter
        for task in usable_bands(tasks, len(bands), ref, ctx.progress, "aligned and drizzled"):
            reports += task.reports
            add_products(task.images, task.exposures)
        order = []  # every band is done
    refimage: Path | None = None
    for done, filt in enumerate(order):
        step = f"{order[done - 1]} aligned and drizzled" if done else "started"
        ctx.progress(step, done, len(order))
        log.info("band %s: %d exposure(s)", filt, len(groups[filt]))
        exposures = copy_inputs(groups[filt], scratch)
        try:
            reports += align_exposures(exposures, run.reference_catalog, config, scratch)
            images = drizzle_band(exposures, scratch, config, refimage)
        except Exception as exc:
            if filt == config.reference_filter:
                raise
            log.error("band %s failed and is skipped: %s", filt, exc)
            continue
        if refimage is None:
            refimage = images.sci
        add_products(images, exposures)
    table = Table(rows=[asdict(r) for r in reports]) if reports else Table()
    report_path = ctx.folder / "alignment.ecsv"
    table.write(report_path, format="ascii.ecsv", overwrite=True)
    outputs[ProductKey.ALIGNMENT] = [report_path]
    shutil_rmtree(scratch)
    return outputs


def _flc_product(ctx: StageContext, delivery: Delivery, path: Path, filt: str) -> Path:
    with fits.open(path) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul if h.name not in ("HDRLET",)])
    primary = hdul[0].header
    instrument = f"{primary['INSTRUME'].strip()}/{primary['DETECTOR'].strip()}"
    if "FILTER" not in primary:  # ACS names its two filter wheels' elements only
        primary.set("FILTER", filt, "filter of the exposure", after="DETECTOR")
    exptime = float(primary["EXPTIME"])
    exp_delivery = dataclasses.replace(
        delivery,
        mjd_beg=float(primary["EXPSTART"]),
        mjd_end=float(primary["EXPEND"]),
        proposid=int(primary["PROPOSID"]) if "PROPOSID" in primary else None,
    )
    meta = common_meta(
        exp_delivery, "phangs-hst", instrument=primary["INSTRUME"].strip(), xposure=exptime
    )
    for hdu in hdul:
        if hdu.name == "SCI":
            hdu.header.remove("EQUINOX", ignore_missing=True)
            _wcsaxes_first(hdu.header)
    model = FlcModel.from_hdulist(hdul, meta=meta)
    rootname = str(primary.get("ROOTNAME", path.stem.split("_")[0])).strip().lower()
    name = build_name(
        get_schema("flc"),
        target=delivery.field,
        version=delivery.version,
        instruments=instrument,
        filter=filt,
        rootname=rootname,
    )
    return _save(model, ctx.folder, name, ctx, [path])

"""Mosaics of galaxies observed with several pointings: one DRC/ERR/EXP per band on one grid.

Each pointing is first run as a field of its own (:meth:`RunConfig.pointing_runs`): its FLCs are
aligned to the reference catalog and drizzled onto the pointing's F555W grid, and the aligned FLC
products are published.  The mosaic stage then drizzles, per band, the aligned FLCs of *all*
pointings with the same settings (0.04"/px, north up, ``skymethod='globalmin+match'``, e-/s,
cosmic-ray rejection): F555W first, on the north-up grid AstroDrizzle fits around every input, the
other bands onto that F555W grid (``final_refimage``).  No new alignment is made: every pointing
was tied to the same reference catalog.

The products carry the mosaic's field name (``ngc628mosaic``, as PHANGS named its mosaics) in the
HLSP file name and in HLSPTARG, ``POINTING = 'mosaic'``, RA_TARG/DEC_TARG at the centre of the
mosaic, and the exposure time and number of all exposures of the band.  Where pointings overlap
the EXP map holds the summed exposure time of both; the ERR formula is the imaging stage's.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from astropy.io import fits

from phangs_products.errors import PhangsProductsError
from phangs_products.hlsp import Delivery
from phangs_products.naming import parse_name
from phangs_products.pipeline.imaging.drc import delivery_of, drc_products
from phangs_products.pipeline.imaging.drizzle import BandImages, drizzle_band, grid_wcs
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

log = logging.getLogger(__name__)


#: POINTING keyword of mosaic products (drc-common schema: 'mosaic' for a mosaic).
MOSAIC_POINTING = "mosaic"


def aligned_flcs(folder: Path) -> list[Path]:
    """Aligned FLC products (HLSP names with product type ``<rootname>-flc``) in a folder."""
    out = []
    for path in sorted(folder.glob("hlsp_*.fits")):
        try:
            name = parse_name(path.name)
        except PhangsProductsError:
            continue
        if name.product_type.endswith("-flc"):
            out.append(path)
    return out


def _mosaic_delivery(ctx: StageContext, exposures: list[Exposure], sci: Path) -> Delivery:
    """Delivery facts of the mosaic: all exposures' time span, target at the grid centre."""
    header = fits.getheader(sci)
    wcs = grid_wcs(header)
    ny, nx = int(header["NAXIS2"]), int(header["NAXIS1"])
    centre = wcs.pixel_to_world((nx - 1) / 2.0, (ny - 1) / 2.0)
    return delivery_of(
        ctx,
        min(e.expstart for e in exposures),
        max(e.expend for e in exposures),
        float(centre.ra.deg),
        float(centre.dec.deg),
        [e.path for e in exposures],
    )


def mosaic_stage(ctx: StageContext) -> Outputs:
    """Drizzle each band from the aligned FLCs of all pointings onto one common grid.

    ``ctx.run.pointings`` name the pointings and the folders of their aligned FLC products
    (:meth:`RunConfig.mosaic_run`).  Bands that fail are reported and skipped, except the
    reference band, which defines the grid.

    Returns
    -------
    dict
        ``drc-sci``, ``drc-err``, ``drc-exp``: the mosaic products (field ``ctx.run.field``).

    Raises
    ------
    ImagingError
        If the run has no pointings, a pointing has no aligned FLC products or the reference
        band cannot be drizzled.
    """
    config: ImagingConfig = ctx.config
    run = ctx.run
    if len(run.pointings) < 2:
        raise ImagingError(f"{run.field}: a mosaic needs at least two pointings")
    paths: list[Path] = []
    for pointing in run.pointings:
        found = aligned_flcs(pointing.input)
        if not found:
            raise ImagingError(
                f"{run.field}: pointing {pointing.field} has no aligned FLC products in "
                f"{pointing.input} (run the pointing first)"
            )
        log.info("pointing %s: %d aligned FLC(s)", pointing.field, len(found))
        paths += found
    groups, errors = group_exposures(paths, run.bands)
    refuse_unusable(errors, config.allow_missing_inputs)
    for line in errors:
        ctx.skip_input(line)
    if config.reference_filter not in groups:
        raise ImagingError(
            f"{run.field}: no usable {config.reference_filter} exposures; the reference band "
            "defines the mosaic grid"
        )
    scratch = ctx.folder / "scratch"
    order = [config.reference_filter, *sorted(f for f in groups if f != config.reference_filter)]
    all_exposures = [e for f in order for e in groups[f]]
    outputs: Outputs = {ProductKey.DRC_SCI: [], ProductKey.DRC_ERR: [], ProductKey.DRC_EXP: []}
    refimage: Path | None = None
    delivery: Delivery | None = None

    def add_products(images: BandImages) -> None:
        nonlocal refimage, delivery
        if refimage is None or delivery is None:
            refimage = images.sci
            delivery = _mosaic_delivery(ctx, all_exposures, images.sci)
        sci, err, exp = drc_products(ctx, delivery, images, config, pointing=MOSAIC_POINTING)
        outputs[ProductKey.DRC_SCI].append(sci)
        outputs[ProductKey.DRC_ERR].append(err)
        outputs[ProductKey.DRC_EXP].append(exp)

    workers = worker_count(config, len(order))
    if workers > 1:  # the bands side by side, as in the imaging stage (no alignment here)
        log.info("mosaic: %d bands on %d worker processes", len(order), workers)
        bands = [(f, copy_inputs(groups[f], scratch / f.lower())) for f in order]
        tasks = run_bands(bands, None, config, scratch, workers, align=False)
        ref = config.reference_filter
        for task in usable_bands(tasks, len(bands), ref, ctx.progress, "drizzled", "mosaic band"):
            add_products(task.images)
        order = []  # every band is done
    for done, filt in enumerate(order):
        ctx.progress(f"{order[done - 1]} drizzled" if done else "started", done, len(order))
        log.info("mosaic band %s: %d exposure(s)", filt, len(groups[filt]))
        exposures = copy_inputs(groups[filt], scratch)
        try:
            images = drizzle_band(exposures, scratch, config, refimage)
        except Exception as exc:
            if filt == config.reference_filter:
                raise
            log.error("mosaic band %s failed and is skipped: %s", filt, exc)
            continue
        add_products(images)
    shutil.rmtree(scratch, ignore_errors=True)
    return outputs

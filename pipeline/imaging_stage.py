"""The imaging stage as the orchestrator runs it: FLC folder in; FLC and DRC products out."""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from phangs_products.bands import band
from phangs_products.hlsp import Delivery, common_meta
from phangs_products.models import FlcModel, ImageModel
from phangs_products.naming import build_name
from phangs_products.registry import get_schema

from .imaging import (
    BandImages,
    ImagingConfig,
    ImagingError,
    align_exposures,
    clean_header,
    copy_inputs,
    drizzle_band,
    error_map,
    grid_wcs,
    group_exposures,
)
from .runner import Outputs, StageContext

__all__ = ["delivery_of", "drc_products", "imaging_stage", "input_files"]

log = logging.getLogger(__name__)


def input_files(folder: Path) -> list[Path]:
    """FLC files of an input folder (``*_flc.fits`` when there are any, else ``*.fits``)."""
    files = sorted(folder.glob("*_flc.fits")) or sorted(folder.glob("*.fits"))
    return files


def delivery_of(
    ctx: StageContext,
    mjd_beg: float,
    mjd_end: float,
    ra: float | None = None,
    dec: float | None = None,
) -> Delivery:
    """Delivery facts of the run (target position: the pointing of the exposures)."""
    return Delivery(
        ctx.run.galaxy,
        ctx.run.field,
        ctx.run.version,
        mjd_beg,
        mjd_end,
        simulated=ctx.run.simulated,
        ra=ra,
        dec=dec,
    )


def pointing_of(path: Path) -> tuple[float | None, float | None]:
    """RA_TARG/DEC_TARG of an exposure (its pointing), None when absent."""
    header = fits.getheader(path)
    if "RA_TARG" in header and "DEC_TARG" in header:
        return float(header["RA_TARG"]), float(header["DEC_TARG"])
    return None, None


def _instrument_keyword(instrument: str) -> str:
    return instrument.split("/")[0]


def _drc_meta(
    delivery: Delivery, images: BandImages, config: ImagingConfig, pointing: str | None = None
) -> dict:
    facts = band(images.filter, images.exposures[0].instrument)
    hdr = images.header
    photflam = float(hdr.get("PHOTFLAM", 0.0)) or facts.photflam_typical
    photplam = float(hdr.get("PHOTPLAM", 0.0)) or facts.photplam_typical
    total = float(sum(e.exptime for e in images.exposures))
    meta = {
        **common_meta(
            delivery,
            "phangs-hst",
            instrument=_instrument_keyword(images.exposures[0].instrument),
            xposure=total,
        ),
        "filter": images.filter,
        "detector": images.exposures[0].instrument.split("/")[1],
        "photflam": photflam,
        "photplam": photplam,
        "photfnu": float(hdr.get("PHOTFNU", 0.0)),
        "zp_vega": facts.zp_vega,
        "zp_ab": -2.5 * math.log10(photflam) - 5 * math.log10(photplam) - 2.408,
        "exptime": total,
        "ncombine": len(images.exposures),
        "pixscale": config.pixscale,
        "refband": config.reference_filter,
        "pointing": pointing or delivery.field,
        "wcsname": str(hdr.get("WCSNAME", "")) or "DRZWCS",
    }
    if not math.isnan(facts.psf_fwhm):
        meta["psfsize"] = facts.psf_fwhm
    return meta


def _save(model, folder: Path, name: str, ctx: StageContext, inputs: list[Path]) -> Path:
    prov = ctx.provenance(inputs)
    return model.save(folder / name, overwrite=True, provenance=prov)


def imaging_stage(ctx: StageContext) -> Outputs:
    """Align every FLC to the reference catalog and drizzle each band onto the F555W grid.

    Bands whose files are bad are reported and skipped; the other bands still finish.
    """
    config: ImagingConfig = ctx.config
    run = ctx.run
    groups, errors = group_exposures(input_files(run.input), run.bands)
    for line in errors:
        log.error("skipped input: %s", line)
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
    delivery = delivery_of(ctx, mjd_beg, mjd_end, ra, dec)
    outputs: Outputs = {"flc": [], "drc-sci": [], "drc-err": [], "drc-exp": [], "alignment": []}
    reports = []
    refimage: Path | None = None
    for filt in order:
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
        outputs["drc-sci"] += _drc_products(ctx, delivery, images, config, outputs)
        for exp in exposures:
            outputs["flc"].append(_flc_product(ctx, delivery, exp.path, filt))
    table = Table(rows=[asdict(r) for r in reports]) if reports else Table()
    report_path = ctx.folder / "alignment.ecsv"
    table.write(report_path, format="ascii.ecsv", overwrite=True)
    outputs["alignment"] = [report_path]
    shutil_rmtree(scratch)
    return outputs


def shutil_rmtree(path: Path) -> None:
    """Remove the drizzlepac scratch folder (its intermediates are not products)."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _drc_products(
    ctx: StageContext,
    delivery: Delivery,
    images: BandImages,
    config: ImagingConfig,
    outputs: Outputs,
) -> list[Path]:
    sci, err, exp = drc_products(ctx, delivery, images, config)
    outputs["drc-err"].append(err)
    outputs["drc-exp"].append(exp)
    return [sci]


def drc_products(
    ctx: StageContext,
    delivery: Delivery,
    images: BandImages,
    config: ImagingConfig,
    pointing: str | None = None,
) -> tuple[Path, Path, Path]:
    """Write the DRC science, ERR and EXP products of one drizzled band.

    Parameters
    ----------
    ctx : StageContext
        The stage (products go to its folder, provenance from it).
    delivery : Delivery
        Field (HLSP target), version, time span and target position.
    images : BandImages
        AstroDrizzle's science and weight files of the band.
    config : ImagingConfig
        Drizzle settings (pixel scale, reference band).
    pointing : str, optional
        POINTING keyword (default the field; ``'mosaic'`` for mosaics).

    Returns
    -------
    sci, err, exp : Path
        The three products.
    """
    sci = fits.getdata(images.sci).astype(np.float32)
    wht = fits.getdata(images.wht).astype(np.float32)
    sci[~np.isfinite(sci)] = 0.0
    exp0 = images.exposures[0]
    err = error_map(sci, wht, images.sky_rate, exp0.read_noise, exp0.exptime)
    wcs = grid_wcs(clean_header(images.header))
    meta = _drc_meta(delivery, images, config, pointing)
    inputs = [e.path for e in images.exposures]
    names = {}
    # the EXP weight scales with the output/input pixel area; the product holds seconds
    area = (config.pixscale / images.input_scale) ** 2
    for kind, data, bunit in (
        ("drc-sci", sci, "ELECTRONS/S"),
        ("drc-err", err, "ELECTRONS/S"),
        ("drc-exp", wht / area, "s"),
    ):
        model = ImageModel.create(kind, data, wcs, {**meta, "bunit": bunit})
        name = build_name(
            get_schema(kind),
            target=delivery.field,
            version=delivery.version,
            instruments=exp0.instrument,
            filter=images.filter,
        )
        names[kind] = _save(model, ctx.folder, name, ctx, inputs)
    log.info("band %s: DRC %s %s written", images.filter, delivery.field, sci.shape)
    return names["drc-sci"], names["drc-err"], names["drc-exp"]


def _flc_product(ctx: StageContext, delivery: Delivery, path: Path, filt: str) -> Path:
    with fits.open(path) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul if h.name not in ("HDRLET",)])
    primary = hdul[0].header
    instrument = f"{primary['INSTRUME'].strip()}/{primary['DETECTOR'].strip()}"
    exptime = float(primary["EXPTIME"])
    exp_delivery = dataclasses.replace(
        delivery, mjd_beg=float(primary["EXPSTART"]), mjd_end=float(primary["EXPEND"])
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


def _wcsaxes_first(header: fits.Header) -> None:
    """Move WCSAXES before the other WCS cards (the FITS standard requires it)."""
    if "WCSAXES" not in header:
        return
    value = header["WCSAXES"]
    header.remove("WCSAXES")
    anchor = next((k for k in ("CRPIX1", "CTYPE1", "CRVAL1") if k in header), None)
    if anchor is not None:
        header.insert(anchor, ("WCSAXES", value, "number of World Coordinate System axes"))
    else:
        header["WCSAXES"] = value

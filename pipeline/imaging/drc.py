"""FLC and DRC products of the imaging and mosaic stages: headers, names, saving."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits

from phangs_products.bands import band, zp_ab
from phangs_products.hlsp import Delivery, common_meta
from phangs_products.models import ImageModel
from phangs_products.naming import build_name
from phangs_products.pipeline.imaging.drizzle import (
    BandImages,
    clean_header,
    error_map,
    grid_wcs,
)
from phangs_products.pipeline.imaging.exposures import (
    ImagingConfig,
)
from phangs_products.pipeline.psf import MeasuredPSF, measure_psf
from phangs_products.pipeline.runner import StageContext
from phangs_products.registry import get_schema

log = logging.getLogger(__name__)


def input_facts(paths: Sequence[Path]) -> tuple[int | None, bool]:
    """PROPOSID and SIMULATD of input exposures (primary headers).

    Returns
    -------
    proposid : int or None
        The program of the inputs (the most frequent one when they come from several, which
        is logged); None when no input has PROPOSID.
    simulated : bool
        True when any input says ``SIMULATD = T``.
    """
    ids: list[int] = []
    simulated = False
    for path in paths:
        header = fits.getheader(path)
        if header.get("PROPOSID") not in (None, ""):
            ids.append(int(header["PROPOSID"]))
        simulated |= bool(header.get("SIMULATD", False))
    if not ids:
        return None, simulated
    counts = Counter(ids)
    if len(counts) > 1:
        log.info(
            "inputs come from programs %s; PROPOSID %d (most exposures)",
            sorted(counts),
            counts.most_common(1)[0][0],
        )
    return counts.most_common(1)[0][0], simulated


def delivery_of(
    ctx: StageContext,
    mjd_beg: float,
    mjd_end: float,
    ra: float | None = None,
    dec: float | None = None,
    inputs: Sequence[Path] = (),
) -> Delivery:
    """Delivery facts of the run (target position: the pointing of the exposures).

    PROPOSID and SIMULATD come from the input exposures' headers (a run whose inputs are
    simulated makes simulated products even if its configuration does not say so).
    """
    proposid, simulated = input_facts(inputs)
    return Delivery(
        ctx.run.galaxy,
        ctx.run.field,
        ctx.run.version,
        mjd_beg,
        mjd_end,
        simulated=ctx.run.simulated or simulated,
        ra=ra,
        dec=dec,
        identity=ctx.run.identity(),
        proposid=proposid,
    )


def pointing_of(path: Path) -> tuple[float | None, float | None]:
    """RA_TARG/DEC_TARG of an exposure (its pointing), None when absent."""
    header = fits.getheader(path)
    if "RA_TARG" in header and "DEC_TARG" in header:
        return float(header["RA_TARG"]), float(header["DEC_TARG"])
    return None, None


def _instrument_keyword(instrument: str) -> str:
    return instrument.split("/")[0]


def _photmode(images: BandImages) -> str:
    """PHOTMODE of the drizzled image, else of its first input exposure (SCI,1)."""
    mode = str(images.header.get("PHOTMODE", "")).strip()
    if not mode:
        header = fits.getheader(images.exposures[0].path, ("SCI", 1))
        mode = str(header.get("PHOTMODE", "")).strip()
    return mode or f"{images.exposures[0].instrument.replace('/', ' ')} {images.filter}"


def _drc_meta(
    delivery: Delivery,
    images: BandImages,
    config: ImagingConfig,
    psf: MeasuredPSF,
    pointing: str | None = None,
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
        "photmode": _photmode(images),
        "zp_vega": facts.zp_vega,
        "zp_ab": zp_ab(photflam, photplam),
        "exptime": total,
        "ncombine": len(images.exposures),
        "pixscale": config.pixscale,
        "refband": config.reference_filter,
        "pointing": pointing or delivery.field,
        "wcsname": str(hdr.get("WCSNAME", "")) or "DRZWCS",
        # measured on this image (or the instrument model where it has too few stars)
        "psfsize": round(psf.fwhm_px * config.pixscale, 4),
    }
    return meta


def _save(model, folder: Path, name: str, ctx: StageContext, inputs: list[Path]) -> Path:
    prov = ctx.provenance(inputs)
    return model.save(folder / name, overwrite=True, provenance=prov)


def shutil_rmtree(path: Path) -> None:
    """Remove the drizzlepac scratch folder (its intermediates are not products)."""
    shutil.rmtree(path, ignore_errors=True)


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
    psf = measure_psf(sci, images.filter, config.pixscale)
    log.info(
        'band %s: PSF FWHM %.3f" (%s, %d stars)',
        images.filter,
        psf.fwhm_px * config.pixscale,
        psf.source,
        psf.n_stars,
    )
    inputs = [e.path for e in images.exposures]
    proposid, _ = input_facts(inputs)  # the band's own program
    delivery = dataclasses.replace(delivery, proposid=proposid)
    meta = _drc_meta(delivery, images, config, psf, pointing)
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

"""Drizzling one band's aligned exposures into DRC, ERR and EXP arrays (AstroDrizzle)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from astropy.wcs import WCS

from phangs_products.pipeline.imaging.exposures import (
    Exposure,
    ImagingConfig,
    ImagingError,
    captured,
    in_folder,
)

log = logging.getLogger(__name__)


#: Header cards that record paths of the machine that ran drizzlepac.
PATH_KEYWORDS = ("FILENAME", "RULEFILE", "ROOTNAME", "ASN_TAB", "ASN_ID", "IRAF-TLM")


PATH_PATTERNS = ("DATA", "OUDA", "OUWE", "OUCO", "MASK", "XGEIM", "YGEIM")


@dataclass
class BandImages:
    """Drizzled outputs of one band (files in the scratch folder)."""

    filter: str
    sci: Path
    wht: Path
    exposures: list[Exposure]
    sky_rate: float
    header: fits.Header = field(default_factory=fits.Header)
    input_scale: float = 0.0396


def sky_rate(exposures: Sequence[Exposure]) -> float:
    """Noise-equivalent background count rate (e-/s) of the inputs.

    The sigma-clipped median of the SCI pixels (the sky left in the FLC) plus the dark and
    post-flash electrons the calibration subtracted (``MEANDARK``, ``MEANFLSH``): subtracted
    counts still add Poisson noise.
    """
    rates = []
    for exp in exposures:
        with fits.open(exp.path) as hdul:
            for hdu in hdul:
                if hdu.name == "SCI" and hdu.data is not None:
                    dq = hdul["DQ", hdu.ver].data if ("DQ", hdu.ver) in hdul else None
                    data = hdu.data[dq == 0] if dq is not None else hdu.data.ravel()
                    _, median, _ = sigma_clipped_stats(data, sigma=3.0, maxiters=5)
                    removed = float(hdu.header.get("MEANDARK", 0.0)) + float(
                        hdu.header.get("MEANFLSH", 0.0)
                    )
                    rates.append((max(median, 0.0) + max(removed, 0.0)) / exp.exptime)
    return float(np.median(rates)) if rates else 0.0


def astrodrizzle_arguments(output: str, config: ImagingConfig, refimage: Path | None) -> dict:
    """The keyword arguments of our AstroDrizzle call of one band.

    ``output`` is a bare name, written in the current folder: AstroDrizzle names its static
    masks after the output up to its last underscore, so an absolute path with an underscore in
    a parent folder put them outside the scratch folder, where concurrent runs overwrote them.
    """
    kwargs = {
        "output": output,
        "final_scale": config.pixscale,
        "final_rot": 0.0,
        "final_pixfrac": config.final_pixfrac,
        "skymethod": config.skymethod,
        "final_units": "cps",
        "final_wht_type": "EXP",
        "driz_cr": config.driz_cr,
        "resetbits": 4096,
        "build": False,
        "clean": True,
        "preserve": False,
        "num_cores": 1,
        "context": False,
        "in_memory": False,
    }
    if refimage is not None:
        kwargs["final_refimage"] = str(refimage)
    return kwargs


def drizzle_band(
    exposures: Sequence[Exposure],
    scratch: Path,
    config: ImagingConfig,
    refimage: Path | None = None,
) -> BandImages:
    """AstroDrizzle one band; ``refimage`` (the F555W DRC) fixes the output grid.

    Returns the science and weight files AstroDrizzle wrote in ``scratch``.
    """
    filt = exposures[0].filter
    root = scratch / filt.lower()
    sky = sky_rate(exposures)  # before AstroDrizzle subtracts it (it edits only DQ/headers)
    kwargs = astrodrizzle_arguments(root.name, config, refimage)
    with in_folder(scratch), captured(scratch / f"astrodrizzle_{filt.lower()}.log"):
        from drizzlepac import astrodrizzle

        astrodrizzle.AstroDrizzle([str(e.path) for e in exposures], **kwargs)
    sci = Path(f"{root}_drc_sci.fits")
    wht = Path(f"{root}_drc_wht.fits")
    if not sci.exists():
        sci, wht = Path(f"{root}_drz_sci.fits"), Path(f"{root}_drz_wht.fits")
    if not sci.exists():
        raise ImagingError(
            f"{filt}: AstroDrizzle wrote no output (see astrodrizzle_{filt.lower()}.log)"
        )
    header = fits.getheader(sci)
    scale = float(fits.getval(exposures[0].path, "IDCSCALE", ("SCI", 1), default=0.0396))
    return BandImages(filt, sci, wht, list(exposures), sky, header, scale)


def error_map(
    sci: np.ndarray, wht: np.ndarray, sky: float, read_noise: float, exptime: float
) -> np.ndarray:
    """One-sigma error (e-/s) per pixel from the EXP weight and the noise model (module doc)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (np.clip(sci, 0.0, None) + max(sky, 0.0)) / wht + read_noise**2 / (exptime * wht)
        err = np.sqrt(var)
    err[~np.isfinite(err) | (wht <= 0)] = 0.0
    return err.astype(np.float32)


def grid_wcs(header: fits.Header) -> WCS:
    """Celestial WCS of a drizzled image."""
    return WCS(header).celestial


def clean_header(header: fits.Header) -> fits.Header:
    """Drop cards that hold paths of the machine that made the file."""
    out = header.copy()
    for key in list(out.keys()):
        if key in PATH_KEYWORDS or (key.startswith("D0") and key.endswith(PATH_PATTERNS)):
            out.remove(key, ignore_missing=True, remove_all=True)
    return out

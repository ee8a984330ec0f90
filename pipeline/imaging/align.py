"""Alignment of FLC exposures to the reference catalog (TweakReg), with retries."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from astropy.table import Table
from astropy.wcs import WCS
from photutils.detection import DAOStarFinder

from phangs_products.pipeline.imaging.exposures import Exposure, ImagingConfig, captured, in_folder

log = logging.getLogger(__name__)

ALIGNED_WCSNAME = "PHANGS-REFCAT"


@dataclass(frozen=True)
class AlignmentResult:
    """TweakReg fit of one exposure."""

    rootname: str
    filter: str
    nmatch: int
    rms_ra_mas: float
    rms_dec_mas: float
    aligned: bool


def align_exposures(
    exposures: Sequence[Exposure], refcat: Path, config: ImagingConfig, scratch: Path
) -> list[AlignmentResult]:
    """TweakReg the exposures (in place) against the reference catalog.

    Exposures that fail (fewer than ``minobj`` matches, or a fit rms above ``max_rms_mas``:
    typically the 2-D histogram's initial shift landed on a false peak) are retried on their
    own, first from the sky shift the fits gave the band's aligned exposures of the same visit
    (any visit when none of its own aligned; the header WCS moved by the median of those
    shifts, searched within ``retry_searchrad``), then with ``retry_tolerance``.  Failed fits
    are reported with ``aligned=False``.
    """
    radec = np.loadtxt(refcat, usecols=(0, 1), ndmin=2, comments="#")
    n_ref = min(_reference_stars_on(exp, radec) for exp in exposures)
    geometry = config.fitgeometry if n_ref >= config.min_refstars_rscale else "shift"
    if geometry != config.fitgeometry:
        log.info(
            "%s: %d reference stars per chip (< %d): fitting shifts only",
            exposures[0].filter,
            n_ref,
            config.min_refstars_rscale,
        )
    config = dataclasses.replace(config, fitgeometry=geometry)
    before = {exp.rootname: _chip_centre(exp.path) for exp in exposures}
    _tweakreg([str(e.path) for e in exposures], refcat, config, scratch)
    results = {exp.rootname: _alignment_result(exp, config) for exp in exposures}
    failed = [exp for exp in exposures if not results[exp.rootname].aligned]
    good = [exp for exp in exposures if results[exp.rootname].aligned]
    if failed and good:
        shifts = {e.rootname: _sky_offset(before[e.rootname], _chip_centre(e.path)) for e in good}
        for exp in failed:
            # exposures of one visit (rootname ipppss) share its guide-star pointing error
            same = [r for r in shifts if r[:6] == exp.rootname[:6]] or list(shifts)
            shift = np.median([shifts[r] for r in same], axis=0)
            log.info(
                'retrying %s from the shift of the aligned %s exposures %s (%.3f" E, %.3f" N)',
                exp.rootname,
                exp.filter,
                ", ".join(same),
                *(shift * 3600.0),
            )
            ra, dec = before[exp.rootname]
            target = np.array([ra + shift[0] / np.cos(np.radians(dec)), dec + shift[1]])
            _move_wcs(exp.path, target - _chip_centre(exp.path))
        retry = dataclasses.replace(config, searchrad=config.retry_searchrad)
        _tweakreg([str(e.path) for e in failed], refcat, retry, scratch)
        results.update({e.rootname: _alignment_result(e, config) for e in failed})
        failed = [exp for exp in failed if not results[exp.rootname].aligned]
    if failed and config.retry_tolerance > config.tolerance:
        log.info(
            "retrying %s with tolerance %.1f px",
            ", ".join(e.rootname for e in failed),
            config.retry_tolerance,
        )
        retry = dataclasses.replace(config, tolerance=config.retry_tolerance)
        _tweakreg([str(e.path) for e in failed], refcat, retry, scratch)
        results.update({e.rootname: _alignment_result(e, config) for e in failed})
    for res in results.values():
        level = logging.INFO if res.aligned else logging.WARNING
        log.log(
            level,
            "%s %s: %s, %d matches, rms %.1f/%.1f mas",
            res.rootname,
            res.filter,
            "aligned" if res.aligned else "NOT aligned",
            res.nmatch,
            res.rms_ra_mas,
            res.rms_dec_mas,
        )
    return [results[exp.rootname] for exp in exposures]


def _chip_centre(path: Path) -> np.ndarray:
    """RA and Dec (deg) of the centre of the exposure's chip 1."""
    with fits.open(path) as hdul:
        hdu = hdul["SCI", 1]
        ny, nx = hdu.header["NAXIS2"], hdu.header["NAXIS1"]
        ra, dec = WCS(hdu.header, hdul).all_pix2world((nx - 1) / 2.0, (ny - 1) / 2.0, 0)
    return np.array([float(ra), float(dec)])


def _sky_offset(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Offset (deg on the sky: east, north) from one RA, Dec to a nearby one."""
    cosd = np.cos(np.radians(0.5 * (start[1] + end[1])))
    return np.array([(end[0] - start[0]) * cosd, end[1] - start[1]])


def _move_wcs(path: Path, delta: np.ndarray) -> None:
    """Add ``delta`` (deg of RA and of Dec) to the reference point of every SCI extension."""
    with fits.open(path, mode="update") as hdul:
        for hdu in hdul:
            if hdu.name == "SCI" and "CRVAL1" in hdu.header:
                hdu.header["CRVAL1"] += float(delta[0])
                hdu.header["CRVAL2"] += float(delta[1])


def chip_sources(data: np.ndarray, bad: np.ndarray, config: ImagingConfig) -> Table | None:
    """Point-like sources of one chip, brightest first (0-based x, y; flux).

    DAOStarFinder above ``threshold`` times the sigma-clipped sky scatter with a kernel of
    ``conv_width`` px; sharpness 0.2-1 (cosmic rays and hot pixels are sharper).
    """
    good = ~bad & np.isfinite(data)
    if good.sum() < 100:
        return None
    _, median, std = sigma_clipped_stats(data[good], sigma=3.0, maxiters=5)
    if not np.isfinite(std) or std <= 0:
        return None
    finder = DAOStarFinder(
        threshold=config.threshold * float(std),
        fwhm=config.conv_width,
        sharpness_range=(0.2, 1.0),
        exclude_border=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # photutils warns when a chip has no source
        found = finder(np.where(good, data - median, 0.0), mask=~good)
    if found is None:
        return None
    found.sort("flux", reverse=True)
    return found


def alignment_catalog(files: list[str], config: ImagingConfig, scratch: Path) -> Path | None:
    """TweakReg catalog file of each chip's ``max_sources`` brightest sources.

    None when no chip holds more than ``max_sources``: TweakReg then finds its own sources.
    """
    lines, crowded = [], False
    for name in files:
        path = Path(name)
        lists = []
        with fits.open(path) as hdul:
            for hdu in (h for h in hdul if h.name == "SCI"):
                data = np.asarray(hdu.data, float)
                dq = hdul["DQ", hdu.ver].data if ("DQ", hdu.ver) in hdul else None
                bad = np.zeros(data.shape, bool) if dq is None else np.asarray(dq) != 0
                found = chip_sources(data, bad, config)
                n_found = 0 if found is None else len(found)
                crowded |= n_found > config.max_sources
                rows = (
                    np.zeros((0, 3))
                    if found is None
                    else np.column_stack(
                        [found["x_centroid"] + 1, found["y_centroid"] + 1, found["flux"]]
                    )[: config.max_sources]
                )
                out = scratch / f"{path.stem}_sci{hdu.ver}.xy"
                np.savetxt(out, rows, fmt="%.4f", header="x y flux (1-based pixels)")
                lists.append(str(out))
                log.debug("%s[SCI,%d]: %d point-like sources", path.name, hdu.ver, n_found)
        lines.append(" ".join([str(path), *lists]))
    if not crowded:
        return None
    log.info(
        "%d exposure(s): a chip holds more than %d point-like sources; TweakReg gets the "
        "brightest %d of each chip",
        len(files),
        config.max_sources,
        config.max_sources,
    )
    catfile = scratch / "alignment_sources.cat"
    catfile.write_text("\n".join(lines) + "\n")
    return catfile


def tweakreg_arguments(refcat: Path, catfile: Path | None, config: ImagingConfig) -> dict:
    """The keyword arguments of our TweakReg call (``catfile``: None lets TweakReg find sources)."""
    sources = (
        {"catfile": str(catfile), "xcol": 1, "ycol": 2, "fluxcol": 3}
        if catfile is not None
        else {"imagefindcfg": {"threshold": config.threshold, "conv_width": config.conv_width}}
    )
    return {
        **sources,
        "refcat": str(refcat),
        "refxcol": 1,
        "refycol": 2,
        "refxyunits": "degrees",
        "searchrad": config.searchrad,
        "searchunits": "pixels",
        "tolerance": config.tolerance,
        "use2dhist": True,
        "minobj": config.minobj,
        "fitgeometry": config.fitgeometry,
        "nclip": config.nclip,
        "sigma": config.sigma,
        "updatehdr": True,
        "wcsname": ALIGNED_WCSNAME,
        "reusename": True,
        "interactive": False,
        "see2dplot": False,
        "residplot": "No plot",
        "shiftfile": False,
        "clean": True,
    }


def _tweakreg(files: list[str], refcat: Path, config: ImagingConfig, scratch: Path) -> None:
    """One TweakReg run of ``files`` against the reference catalog, log captured."""
    catfile = alignment_catalog(files, config, scratch) if config.max_sources else None
    with in_folder(scratch), captured(scratch / "tweakreg.log"):
        from drizzlepac import tweakreg  # its import logs to the console: capture it too

        tweakreg.TweakReg(files, **tweakreg_arguments(refcat, catfile, config))


def _reference_stars_on(exp: Exposure, radec: np.ndarray) -> int:
    """Reference stars ((N, 2) RA, Dec in deg) inside the exposure's first chip (header WCS)."""
    with fits.open(exp.path) as hdul:
        hdu = hdul["SCI", 1]
        x, y = WCS(hdu.header, hdul).all_world2pix(radec[:, 0], radec[:, 1], 0)
        ny, nx = hdu.data.shape
    return int(np.count_nonzero((x >= 0) & (x < nx) & (y >= 0) & (y < ny)))


def _alignment_result(exp: Exposure, config: ImagingConfig) -> AlignmentResult:
    """The fit TweakReg recorded in the exposure's first SCI header, judged by its rms."""
    hdr = fits.getheader(exp.path, ("SCI", 1))
    rms = (float(hdr.get("RMS_RA", np.nan)) * 3.6e6, float(hdr.get("RMS_DEC", np.nan)) * 3.6e6)
    fitted = "NMATCH" in hdr and "user" in str(hdr.get("WCSTYPE", "user"))
    return AlignmentResult(
        rootname=exp.rootname,
        filter=exp.filter,
        nmatch=int(hdr.get("NMATCH", 0)),
        rms_ra_mas=rms[0],
        rms_dec_mas=rms[1],
        aligned=fitted and max(rms) <= config.max_rms_mas,
    )

"""Imaging stage: align FLC exposures to the reference catalog and drizzle DRC/ERR/EXP products.

Paper Sect. 4.1 (Lee et al. 2022): every FLC is aligned with drizzlepac TweakReg against the
reference astrometric catalog (Gaia DR2 for real data); the FLC headers carry the solution
(``updatehdr``), and AstroDrizzle combines each band onto one north-up 0.04"/px grid defined by
F555W, with ``skymethod='globalmin+match'``, cosmic-ray rejection and output in e-/s.

The EXP map is AstroDrizzle's exposure-time weight map (``final_wht_type='EXP'``).  The ERR map
follows from that weight and the detector noise model (per output pixel, e-/s)::

    sigma^2 = (max(S, 0) + B) / W  +  RN^2 / (t_exp * W)

with S the drizzled count rate, B the background rate of the inputs (sky measured on the FLCs plus
the dark and post-flash electrons the calibration subtracted, MEANDARK and MEANFLSH),
W the EXP weight (s), RN the read noise (e-) and t_exp the single-exposure time (W / t_exp is the
number of overlapping exposures).  It is the uncertainty of one output pixel before drizzle's
pixel-to-pixel correlation; sums over apertures of several pixels have that variance.

drizzlepac writes logs and intermediate files in the current folder: every call runs inside the
stage's scratch folder with its log captured to a file, never the console.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import shutil
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from astropy.wcs import WCS

from phangs_products.bands import band
from phangs_products.errors import PhangsProductsError

__all__ = [
    "AlignmentResult",
    "BandImages",
    "ImagingConfig",
    "ImagingError",
    "align_exposures",
    "drizzle_band",
    "group_exposures",
]

log = logging.getLogger(__name__)
ALIGNED_WCSNAME = "PHANGS-REFCAT"
#: Header cards that record paths of the machine that ran drizzlepac.
PATH_KEYWORDS = ("FILENAME", "RULEFILE", "ROOTNAME", "ASN_TAB", "ASN_ID", "IRAF-TLM")
PATH_PATTERNS = ("DATA", "OUDA", "OUWE", "OUCO", "MASK", "XGEIM", "YGEIM")


class ImagingError(PhangsProductsError):
    """An exposure cannot be aligned or drizzled."""


@dataclass(frozen=True)
class ImagingConfig:
    """Alignment and drizzling settings (paper defaults; TweakReg values from measured recipe).

    Attributes
    ----------
    pixscale : float
        Output pixel scale in arcsec (0.04, paper Sect. 4.1).
    reference_filter : str
        Filter whose DRC defines the common grid (F555W).
    skymethod : str
        AstroDrizzle sky method (``globalmin+match``).
    threshold, conv_width : float
        TweakReg source finding: threshold (sigma) and kernel width (px).
    searchrad, tolerance : float
        TweakReg matching radius and tolerance in pixels (integer radius avoids a bias;
        tolerance 1.0 px: 0.084 px alignment rms on the simulated field vs 0.106 px at 1.5).
    retry_tolerance : float
        Tolerance (px) of the last TweakReg try of exposures the first ones could not align.
    retry_searchrad : float
        Search radius (px) of the retry from the shift of the visit's aligned exposures.
    max_rms_mas : float
        Largest accepted fit rms (mas, either axis); worse fits count as not aligned.  Measured
        on the simulated fields: good fits 4-10 mas; a false 2-D histogram peak (medium demo
        field, one F555W exposure matched 20 px off) fitted 20 wrong pairs at 60 mas.
    minobj : int
        Minimum matched stars for a fit.
    fitgeometry : str
        TweakReg fit model (``rscale``: shift, rotation, scale).
    min_refstars_rscale : int
        Fewest reference stars per chip for ``fitgeometry``; below it only shifts are fitted.
        Measured on the small simulated field (42 reference stars per chip, pointing errors
        0.25" and 0.01 deg): alignment rms vs the true WCS 0.050 DRC px fitting shifts,
        0.084 px with ``rscale`` (F275W 0.06 vs 0.16 px): with few, noisy matches rotation
        and scale cost more than they correct.  With ~130 matches ``rscale`` reaches
        0.004-0.010 px (toolchain notes).
    final_pixfrac : float
        Drizzle drop size.
    driz_cr : bool
        Cosmic-ray rejection.
    """

    pixscale: float = 0.04
    reference_filter: str = "F555W"
    skymethod: str = "globalmin+match"
    threshold: float = 5.0
    conv_width: float = 2.5
    searchrad: float = 25.0
    tolerance: float = 1.0
    minobj: int = 10
    retry_tolerance: float = 3.0
    retry_searchrad: float = 5.0
    max_rms_mas: float = 25.0
    fitgeometry: str = "rscale"
    min_refstars_rscale: int = 100
    nclip: int = 3
    sigma: float = 3.0
    final_pixfrac: float = 1.0
    driz_cr: bool = True


@dataclass(frozen=True)
class Exposure:
    """An input FLC exposure."""

    path: Path
    filter: str
    instrument: str
    rootname: str
    exptime: float
    expstart: float
    expend: float
    read_noise: float


@dataclass(frozen=True)
class AlignmentResult:
    """TweakReg fit of one exposure."""

    rootname: str
    filter: str
    nmatch: int
    rms_ra_mas: float
    rms_dec_mas: float
    aligned: bool


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


@contextlib.contextmanager
def in_folder(folder: Path) -> Iterator[None]:
    """Run inside ``folder`` (drizzlepac writes into the current folder)."""
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


@contextlib.contextmanager
def captured(log_file: Path) -> Iterator[None]:
    """Send drizzlepac's stdout/stderr and log records to ``log_file`` instead of the console."""
    buffer = io.StringIO()
    names = ("drizzlepac", "stsci", "stwcs", "tweakwcs", "stsci.skypac")
    handler = logging.FileHandler(log_file, mode="a")
    saved = []
    for name in names:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.propagate))
        for h in logger.handlers[:]:
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                logger.removeHandler(h)
        logger.addHandler(handler)
        logger.propagate = False
    try:
        with (
            contextlib.redirect_stdout(buffer),
            contextlib.redirect_stderr(buffer),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, handlers, propagate in saved:
            logger.removeHandler(handler)
            for h in handlers:
                if h not in logger.handlers:
                    logger.addHandler(h)
            logger.propagate = propagate
        handler.close()
        with open(log_file, "a") as fh:
            fh.write(buffer.getvalue())


def read_exposure(path: Path) -> Exposure:
    """Read the facts of an FLC exposure from its headers.

    Raises
    ------
    ImagingError
        If a needed HDU or keyword is missing or the band is not a survey band.
    """
    try:
        with fits.open(path) as hdul:
            primary = hdul[0].header
            if ("SCI", 1) not in hdul:
                raise ImagingError(
                    f"{path.name}: HDU SCI,1 is missing (expected an FLC with "
                    "SCI/ERR/DQ extensions)"
                )
            missing = [
                k
                for k in ("INSTRUME", "DETECTOR", "FILTER", "EXPTIME", "EXPSTART", "EXPEND")
                if k not in primary
            ]
            if missing:
                raise ImagingError(f"{path.name}: HDU PRIMARY: missing keyword(s) {missing}")
            instrument = f"{primary['INSTRUME'].strip()}/{primary['DETECTOR'].strip()}"
            filt = str(primary["FILTER"]).strip().upper()
            if filt.startswith("CLEAR") or not filt:
                filt = str(primary.get("FILTER2", primary.get("FILTER1", ""))).strip().upper()
            read_noise = float(np.mean([primary.get(f"READNSE{a}", 3.1) for a in "ABCD"]))
    except OSError as exc:
        raise ImagingError(f"{path.name}: not a readable FITS file ({exc})") from None
    band(filt, instrument)  # raises for a band outside the survey's band table
    return Exposure(
        path=path,
        filter=filt,
        instrument=instrument,
        rootname=str(primary.get("ROOTNAME", path.stem.split("_")[0])).strip().lower(),
        exptime=float(primary["EXPTIME"]),
        expstart=float(primary["EXPSTART"]),
        expend=float(primary["EXPEND"]),
        read_noise=read_noise,
    )


def group_exposures(
    paths: Sequence[Path], bands: Sequence[str]
) -> tuple[dict[str, list[Exposure]], list[str]]:
    """Group FLC files by filter; bad files become error lines, the others still proceed.

    Returns
    -------
    groups : dict
        Exposures per requested filter.
    errors : list of str
        One line per file that cannot be used.
    """
    groups: dict[str, list[Exposure]] = {}
    errors: list[str] = []
    for path in sorted(paths):
        try:
            exp = read_exposure(path)
        except PhangsProductsError as exc:
            errors.append(str(exc))
            continue
        if exp.filter not in bands:
            errors.append(
                f"{path.name}: FILTER {exp.filter} is not one of the run's bands {list(bands)}"
            )
            continue
        groups.setdefault(exp.filter, []).append(exp)
    return groups, errors


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


def _tweakreg(files: list[str], refcat: Path, config: ImagingConfig, scratch: Path) -> None:
    """One TweakReg run of ``files`` against the reference catalog, log captured."""
    with in_folder(scratch), captured(scratch / "tweakreg.log"):
        from drizzlepac import tweakreg  # its import logs to the console: capture it too

        tweakreg.TweakReg(
            files,
            imagefindcfg={"threshold": config.threshold, "conv_width": config.conv_width},
            refcat=str(refcat),
            refxcol=1,
            refycol=2,
            refxyunits="degrees",
            searchrad=config.searchrad,
            searchunits="pixels",
            tolerance=config.tolerance,
            use2dhist=True,
            minobj=config.minobj,
            fitgeometry=config.fitgeometry,
            nclip=config.nclip,
            sigma=config.sigma,
            updatehdr=True,
            wcsname=ALIGNED_WCSNAME,
            reusename=True,
            interactive=False,
            see2dplot=False,
            residplot="No plot",
            shiftfile=False,
            clean=True,
        )


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
    kwargs = dict(
        # a bare name, written in ``scratch``: AstroDrizzle names its static masks after the
        # output up to its last underscore, so an absolute path with an underscore in a parent
        # folder put them outside the scratch folder, where concurrent runs overwrote them
        output=root.name,
        final_scale=config.pixscale,
        final_rot=0.0,
        final_pixfrac=config.final_pixfrac,
        skymethod=config.skymethod,
        final_units="cps",
        final_wht_type="EXP",
        driz_cr=config.driz_cr,
        resetbits=4096,
        build=False,
        clean=True,
        preserve=False,
        num_cores=1,
        context=False,
        in_memory=False,
    )
    if refimage is not None:
        kwargs["final_refimage"] = str(refimage)
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


def copy_inputs(exposures: Sequence[Exposure], scratch: Path) -> list[Exposure]:
    """Copy input FLCs into the scratch folder as ``<rootname>_flc.fits``.

    TweakReg and AstroDrizzle edit their inputs in place and name their intermediates after
    them: they get short, unique names and copies, never the inputs or published products.

    Raises
    ------
    ImagingError
        If two exposures share a rootname.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    out = []
    for exp in exposures:
        target = scratch / f"{exp.rootname}_flc.fits"
        if target.exists():
            raise ImagingError(f"{exp.path.name}: rootname {exp.rootname} is not unique")
        shutil.copy2(exp.path, target)
        target.chmod(0o644)
        out.append(dataclasses.replace(exp, path=target))
    return out

"""FLC exposures of the imaging stage: settings, reading, grouping by band and scratch copies."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import re
import shutil
import stat
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from phangs_products.atomic import inside
from phangs_products.bands import band, resolve_bands
from phangs_products.errors import PhangsProductsError

log = logging.getLogger(__name__)

#: An HST rootname (``ipppssoot``): nine lower-case letters and digits.
ROOTNAME_RE = re.compile(r"^[a-z0-9]{9}$")


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
        Source finding for the alignment: threshold (sigma of the chip's sky) and kernel FWHM
        (px).
    max_sources : int
        When a chip of a band holds more point-like sources than this (DAOStarFinder above
        ``threshold``, sharpness 0.2-1, which leaves out cosmic rays and hot pixels), TweakReg
        gets each chip's ``max_sources`` brightest instead of finding its own; 0: never.  A
        full-size F336W chip holds ~148,000 peaks above 5 sigma, most of them noise and cosmic
        rays; on the full-size simulated field TweakReg aligned the F336W exposures in 52 s
        with the 3000 brightest (about 100 matches each, rms 1.8 mas) against 150 s with its
        own sources (about 1,070 matches, rms 8.3 mas).  The small and medium fields stay
        below the cap and are aligned as before.
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
    nclip, sigma : int, float
        TweakReg fit: rejection iterations and clipping limit (sigma) of outlying matches.
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
    allow_missing_inputs : bool
        Run without the input files that cannot be used (unreadable, not an FLC, not a
        regular file, a band outside the survey): they are listed in the console summary, the
        run manifest and the README.  By default such a file stops the run.
    workers : int
        Worker processes that align and drizzle the bands of a field concurrently (after the
        reference band's grid exists); 0: as many as the cores this process may use, 1: the
        bands one after another in this process.  The products do not depend on it, so it is
        not part of the stage key (changing it does not redo the stage).
    """

    pixscale: float = field(default=0.04, metadata={"gt": 0})
    reference_filter: str = "F555W"
    skymethod: str = "globalmin+match"
    threshold: float = field(default=5.0, metadata={"gt": 0})
    conv_width: float = field(default=2.5, metadata={"gt": 0})
    max_sources: int = field(default=3000, metadata={"ge": 0})
    searchrad: float = field(default=25.0, metadata={"gt": 0})
    tolerance: float = field(default=1.0, metadata={"gt": 0})
    minobj: int = field(default=10, metadata={"ge": 1})
    retry_tolerance: float = field(default=3.0, metadata={"gt": 0})
    retry_searchrad: float = field(default=5.0, metadata={"gt": 0})
    max_rms_mas: float = field(default=25.0, metadata={"gt": 0})
    fitgeometry: str = "rscale"
    min_refstars_rscale: int = field(default=100, metadata={"ge": 0})
    nclip: int = field(default=3, metadata={"ge": 0})
    sigma: float = field(default=3.0, metadata={"gt": 0})
    final_pixfrac: float = field(default=1.0, metadata={"gt": 0, "le": 1})
    driz_cr: bool = True
    allow_missing_inputs: bool = False
    workers: int = field(default=0, metadata={"ge": 0, "in_key": False})


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
        If the file is not a regular file (a FIFO would block the read) or not a readable
        FITS file, a needed HDU or keyword is missing, the rootname is not an HST rootname or
        the band is not a survey band.
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ImagingError(f"{path.name}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO, socket or device"
        raise ImagingError(f"{path.name}: not a regular file ({kind}); expected an FLC file")
    try:
        with warnings.catch_warnings(record=True) as caught, fits.open(path) as hdul:
            warnings.simplefilter("always")
            len(hdul)  # reads every header (not the data)
            damaged = [
                w for w in caught if "truncated" in str(w.message) or "corrupt" in str(w.message)
            ]
            if damaged:
                reason = str(damaged[0].message).splitlines()[0]
                raise ImagingError(f"{path.name}: damaged FITS file ({reason})")
            _check_sizes(hdul, path)
            primary = hdul[0].header
            if ("SCI", 1) not in hdul:
                raise ImagingError(
                    f"{path.name}: HDU SCI,1 is missing (expected an FLC with "
                    "SCI/ERR/DQ extensions)"
                )
            missing = [
                k
                for k in ("INSTRUME", "DETECTOR", "EXPTIME", "EXPSTART", "EXPEND")
                if k not in primary
            ]
            if missing:
                raise ImagingError(f"{path.name}: HDU PRIMARY: missing keyword(s) {missing}")
            instrument = f"{primary['INSTRUME'].strip()}/{primary['DETECTOR'].strip()}"
            filt = exposure_filter(primary, path.name)
            noise = [float(primary.get(f"READNSE{a}", 0.0)) for a in "ABCD"]
            used = [n for n in noise if n > 0]  # ACS headers give 0 for amplifiers not read
            read_noise = float(np.mean(used)) if used else 3.1
    except PhangsProductsError:
        raise
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        # astropy raises these (VerifyError is a ValueError) for empty, truncated or damaged
        # headers, e.g. a bad NAXIS
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImagingError(f"{path.name}: not a readable FITS file ({reason})") from None
    band(filt, instrument)  # raises for a band outside the survey's band table
    return Exposure(
        path=path,
        filter=filt,
        instrument=instrument,
        rootname=_rootname(path, primary),
        exptime=float(primary["EXPTIME"]),
        expstart=float(primary["EXPSTART"]),
        expend=float(primary["EXPEND"]),
        read_noise=read_noise,
    )


def exposure_filter(primary: fits.Header, name: str) -> str:
    """The filter of an exposure from its primary header.

    ``FILTER`` (WFC3), else the element of ``FILTER1``/``FILTER2`` that is not a ``CLEAR``
    position (ACS has two filter wheels).

    Raises
    ------
    ImagingError
        If the header names no filter.
    """
    for key in ("FILTER", "FILTER1", "FILTER2"):
        value = str(primary.get(key, "")).strip().upper()
        if value and not value.startswith("CLEAR") and value != "N/A":
            return value
    raise ImagingError(
        f"{name}: HDU PRIMARY: no filter in FILTER, FILTER1 or FILTER2 (expected e.g. F555W)"
    )


def _check_sizes(hdul: fits.HDUList, path: Path) -> None:
    """Every HDU announces a sane size and the file holds its bytes (headers only are read).

    A bad NAXIS or a truncated file would otherwise fail deep inside TweakReg.
    """
    size = path.stat().st_size
    for index, hdu in enumerate(hdul):
        header = hdu.header
        naxis = header.get("NAXIS")
        if not isinstance(naxis, int) or not 0 <= naxis <= 999:
            raise ImagingError(f"{path.name}: HDU {index} keyword NAXIS: {naxis!r} is not 0-999")
        axes = [header.get(f"NAXIS{i}") for i in range(1, naxis + 1)]
        bad = [a for a in axes if not isinstance(a, int) or a < 0]
        if bad:
            raise ImagingError(f"{path.name}: HDU {index}: NAXISn {bad[0]!r} is not a length")
        count = int(np.prod(axes, dtype=np.int64)) if axes else 0
        nbytes = abs(int(header.get("BITPIX", 8))) // 8 * count
        info = hdu.fileinfo()
        end = info["datLoc"] + nbytes if info else 0
        if end > size:
            raise ImagingError(
                f"{path.name}: HDU {index} is truncated (the file has {size} bytes, its headers "
                f"announce at least {end})"
            )


def _rootname(path: Path, primary: fits.Header) -> str:
    """The exposure's rootname (keyword ROOTNAME, else the file name's first part), checked.

    It names the scratch copies and the FLC products, so it must be an HST rootname.
    """
    if "ROOTNAME" in primary:
        value, where = primary["ROOTNAME"], "HDU PRIMARY keyword ROOTNAME"
    else:
        value, where = path.name.split("_")[0], "no keyword ROOTNAME; file name"
    rootname = str(value).strip().lower()
    if not ROOTNAME_RE.match(rootname):
        raise ImagingError(
            f"{path.name}: {where}: {str(value)[:80]!r} is not an HST rootname "
            "(9 letters and digits, e.g. 'ib1f01baq')"
        )
    return rootname


def group_exposures(
    paths: Sequence[Path], bands: Sequence[str]
) -> tuple[dict[str, list[Exposure]], list[str]]:
    """Group FLC files by band; bad files become error lines, the others still proceed.

    The run's bands (``F555W`` or ``ACS/WFC F555W``) are matched to the instrument and filter
    of the exposures (:func:`phangs_products.bands.resolve_bands`): a plain filter takes the
    one instrument whose exposures hold it.  Files of a band the run does not process are left
    out on purpose (logged, not errors).

    Returns
    -------
    groups : dict
        Exposures per filter of the run's bands (each filter from one instrument).
    errors : list of str
        One line per file that cannot be used (``<file>: <why>``).

    Raises
    ------
    ImagingError
        If a plain filter of the run is in the inputs from two instruments (the configuration
        must say which), or a filter is requested from two instruments.
    """
    exposures: list[Exposure] = []
    errors: list[str] = []
    for path in sorted(paths):
        try:
            exposures.append(read_exposure(path))
        except PhangsProductsError as exc:
            errors.append(str(exc))
    try:
        chosen = resolve_bands(bands, {(e.instrument, e.filter) for e in exposures})
    except PhangsProductsError as exc:
        raise ImagingError(str(exc)) from None
    wanted = {(b.instrument, b.filter) for b in chosen}
    groups: dict[str, list[Exposure]] = {}
    for exp in exposures:
        if (exp.instrument, exp.filter) not in wanted:
            log.info(
                "%s: %s %s is not one of the run's bands",
                exp.path.name,
                exp.instrument,
                exp.filter,
            )
            continue
        groups.setdefault(exp.filter, []).append(exp)
    return groups, errors


def refuse_unusable(errors: Sequence[str], allow_missing_inputs: bool) -> None:
    """Stop the run when input files cannot be used, unless the run allows missing inputs.

    Parameters
    ----------
    errors : sequence of str
        One line per unusable file (:func:`group_exposures`).
    allow_missing_inputs : bool
        The ``allow_missing_inputs`` setting: when true the caller reports the files instead.

    Raises
    ------
    ImagingError
        One line naming every unusable file and why.
    """
    if errors and not allow_missing_inputs:
        raise ImagingError(
            f"{len(errors)} input file(s) cannot be used: {'; '.join(errors)} "
            "(fix or remove them, or set allow_missing_inputs = true in [stages.imaging] "
            "to run without them)"
        )


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
        target = inside(scratch, f"{exp.rootname}_flc.fits")
        if target.exists():
            raise ImagingError(f"{exp.path.name}: rootname {exp.rootname} is not unique")
        shutil.copy2(exp.path, target)
        target.chmod(0o644)
        out.append(dataclasses.replace(exp, path=target))
    return out

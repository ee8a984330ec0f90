"""FLC exposures of the imaging stage: settings, reading, grouping by band and scratch copies."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import shutil
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from phangs_products.bands import band
from phangs_products.errors import PhangsProductsError


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
    workers : int
        Worker processes that align and drizzle the bands of a field concurrently (after the
        reference band's grid exists); 0: as many as the cores this process may use, 1: the
        bands one after another in this process.  The products do not depend on it.
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
    workers: int = 0


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

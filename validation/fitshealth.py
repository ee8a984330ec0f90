"""FITS health: structure (not FITS, truncated, broken headers), astropy verify, WCS, units.

Every function returns :class:`~phangs_products.errors.Problem` records; none raises on a bad
file.  A damaged file gives one clear problem (``fits.not-fits``, ``fits.truncated``,
``fits.structure`` or ``fits.unreadable``) and the other FITS checks are skipped.  The
structure check is the readers' own (:mod:`phangs_products.fitsscan`), so
``phangs_products.open`` and the validator call the same files broken.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS, FITSFixedWarning

from phangs_products.conformance import is_fits_unit
from phangs_products.errors import Problem, describe
from phangs_products.models.image import read_wcs

__all__ = [
    "check_extra_units",
    "check_target_in_footprint",
    "check_wcs",
    "open_fits",
    "verify_hdul",
]


def open_fits(source: bytes | str, file: str) -> tuple[fits.HDUList | None, Problem | None]:
    """Open a FITS file whose structure was checked (bytes in memory, or a path read lazily).

    Every header is loaded; data stay on disk (memory-mapped) or in the given bytes.

    Returns
    -------
    (HDUList or None, Problem or None)
        The HDU list, or a ``fits.unreadable`` problem.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if isinstance(source, bytes):
                hdul = fits.open(io.BytesIO(source), memmap=False, lazy_load_hdus=False)
            else:
                hdul = fits.open(source, memmap=True, lazy_load_hdus=False)
    except Exception as exc:  # astropy raises OSError, ValueError, ... on damaged files
        return None, Problem("fits.unreadable", f"cannot be read as FITS ({describe(exc)})", file)
    return hdul, None


def verify_hdul(hdul: fits.HDUList, file: str, schema_id: str = "") -> list[Problem]:
    """Run astropy's FITS-standard verification; one problem per violation it reports.

    The validator calls it only for headers :func:`~.fitsstandard.clean_headers` cannot
    prove clean.
    """
    problems = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul.verify("warn")
        except Exception as exc:  # verify itself failing is a violation too
            problems.append(Problem("fits.verify", f"verify failed: {exc}", file, schema_id))
    seen = set()
    for w in caught:
        if not issubclass(w.category, AstropyWarning):
            continue
        text = " ".join(str(w.message).split())
        if not text or text.startswith("Verification reported") or text in seen:
            continue
        seen.add(text)
        where = ""
        if text.startswith("HDU "):
            where, _, text = text.partition(":")
            text = text.strip()
        problems.append(Problem("fits.verify", text, file, schema_id, where))
    return problems


def check_wcs(
    header: fits.Header,
    file: str,
    schema_id: str = "",
    where: str = "HDU 0",
    hdul: fits.HDUList | None = None,
) -> tuple[WCS | None, list[Problem]]:
    """A valid two-axis celestial WCS in ``header``.

    ``hdul`` is the file the header belongs to, for lookup-table distortions (FLC
    ``WCSDVARR``/``D2IMARR`` extensions).

    Returns
    -------
    (WCS or None, list of Problem)
        The WCS (``None`` when invalid) and ``wcs.invalid`` problems.
    """
    problems = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            w = read_wcs(header, hdul)
        except Exception as exc:
            return None, [Problem("wcs.invalid", f"no usable WCS: {exc}", file, schema_id, where)]
    for item in caught:
        if issubclass(item.category, FITSFixedWarning):
            continue  # astropy's own normalisations (e.g. 'datfix'), not errors
        problems.append(
            Problem("wcs.invalid", f"WCS warning: {item.message}", file, schema_id, where)
        )
    if not w.has_celestial or w.naxis != 2:
        problems.append(
            Problem(
                "wcs.invalid",
                f"not a two-axis celestial WCS (CTYPE {list(w.wcs.ctype)})",
                file,
                schema_id,
                where,
            )
        )
        return None, problems
    cd = w.pixel_scale_matrix
    if not np.all(np.isfinite(cd)) or abs(np.linalg.det(cd)) == 0:
        problems.append(
            Problem("wcs.invalid", "singular or non-finite CD matrix", file, schema_id, where)
        )
        return None, problems
    return w, problems


def check_target_in_footprint(
    w: WCS, shape: tuple[int, int], values: Mapping[str, Any], file: str, schema_id: str = ""
) -> list[Problem]:
    """The image footprint contains RA_TARG/DEC_TARG (``wcs.target``)."""
    ra, dec = values.get("RA_TARG"), values.get("DEC_TARG")
    if not isinstance(ra, int | float) or not isinstance(dec, int | float):
        return []  # keyword.missing / keyword.value report it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x, y = w.world_to_pixel_values(float(ra), float(dec))
    ny, nx = shape
    if np.isfinite(x) and np.isfinite(y) and -0.5 <= x <= nx - 0.5 and -0.5 <= y <= ny - 0.5:
        return []
    return [
        Problem(
            "wcs.target",
            f"RA_TARG/DEC_TARG ({ra:.6f}, {dec:.6f}) falls at pixel ({x:.1f}, {y:.1f}), "
            f"outside the {nx}x{ny} image",
            file,
            schema_id,
            "HDU 0 keywords RA_TARG/DEC_TARG",
        )
    ]


def check_extra_units(
    header: Mapping[str, Any],
    known: set[str],
    file: str,
    schema_id: str = "",
    where: str = "HDU 1",
) -> list[Problem]:
    """TUNITn of columns the schema does not cover are FITS-standard (schema ones: conformance)."""
    problems = []
    for i in range(1, int(header.get("TFIELDS", 0)) + 1):
        name = str(header.get(f"TTYPE{i}", f"col{i}"))
        unit = header.get(f"TUNIT{i}")
        if name in known or not unit:
            continue
        if not is_fits_unit(str(unit)):
            problems.append(
                Problem(
                    "column.unit",
                    f"unit {unit!r} is not a FITS unit",
                    file,
                    schema_id,
                    f"{where} column {name}",
                )
            )
    return problems

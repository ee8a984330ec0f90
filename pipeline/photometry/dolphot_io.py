"""Reading real DOLPHOT output: the ``.columns`` listing and the ``.phot`` table.

DOLPHOT writes a whitespace table (``.phot``) and a ``.columns`` file naming each column as
``N. <description>[, <filter or image>]``: 11 global columns, then 13 per filter (only for filters
with more than one image), then per-image columns.  :func:`read_dolphot` maps any number of
filters onto the dolphot-catalog schema; 99.999 (DOLPHOT's "no measurement") is kept.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import numpy as np
from astropy.table import Table

from phangs_products.errors import PhangsProductsError
from phangs_products.spec import BandInfo

log = logging.getLogger(__name__)

NOT_MEASURED = 99.999


GLOBAL = {
    "Object X position": "X",
    "Object Y position": "Y",
    "Chi for fit": "CHI",
    "Signal-to-noise": "SNR",
    "Object sharpness": "SHARP",
    "Object roundness": "ROUND",
    "Crowding": "CROWD",
    "Object type": "OBJTYPE",
}


PER_FILTER = {
    "Total sky level": "SKY",
    "Normalized count rate": "RATE",
    "Normalized count rate uncertainty": "RATEERR",
    "Instrumental VEGAMAG magnitude": "VEGA",
    "Magnitude uncertainty": "ERR",
    "Signal-to-noise": "SNR",
    "Sharpness": "SHARP",
    "Roundness": "ROUND",
    "Crowding": "CROWD",
    "Photometry quality flag": "FLAG",
}


_LINE_RE = re.compile(r"^\s*(\d+)\.\s+(.*?)\s*$")


_FILTER_RE = re.compile(r"^(?:(WFC3|ACS)_)?(F\d{3}[WMNX])$")


class DolphotError(PhangsProductsError):
    """DOLPHOT output cannot be read."""


def dolphot_available() -> bool:
    """Whether the ``dolphot`` program is on PATH."""
    return shutil.which("dolphot") is not None


def parse_columns(path: Path) -> tuple[dict[int, tuple[str, str | None]], list[BandInfo]]:
    """Column number -> (schema column template, filter or None), and the filters in order.

    Raises
    ------
    DolphotError
        If a line does not follow the ``N. description[, name]`` form.
    """
    columns: dict[int, tuple[str, str | None]] = {}
    filters: list[BandInfo] = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE_RE.match(line)
        if match is None:
            raise DolphotError(f"{path.name}: line {line_no} is not 'N. description': {line!r}")
        number = int(match[1])
        desc, _, name = match[2].rpartition(", ")
        if not _FILTER_RE.match(name.strip()) and not re.search(r"\(F\d{3}[WMNX], ", name):
            desc, name = match[2], ""  # a global column whose text holds a comma
        if not name:
            key = next((v for k, v in GLOBAL.items() if desc.startswith(k)), None)
            if key is not None and number <= 11:
                columns[number] = (key, None)
            continue
        fmatch = _FILTER_RE.match(name.strip())
        if fmatch is None:
            continue  # per-image columns ("<image> (<FILTER>, <exptime> sec)")
        key = PER_FILTER.get(desc)
        if key is None:
            continue
        instrument = "ACS/WFC" if fmatch[1] == "ACS" else "WFC3/UVIS"
        band = BandInfo(fmatch[2], instrument)
        if band not in filters:
            filters.append(band)
        columns[number] = (f"{{FILTER}}_{key}", band.filter)
    if not filters:
        raise DolphotError(f"{path.name}: no per-filter columns found")
    return columns, filters


_VERSION_RE = re.compile(r"\bDOLPHOT\s+(?:version\s+)?v?(\d+(?:\.\d+)*)", re.IGNORECASE)
#: PHOTENGV of a catalog whose DOLPHOT files state no version.
UNSTATED = "unstated"


def stated_version(phot_path: str | Path) -> str:
    """The DOLPHOT version the run's own files state, or :data:`UNSTATED`.

    Looks for ``DOLPHOT <version>`` in the text files DOLPHOT writes beside the ``.phot``
    table (``.info``, ``.param``, ``.log``, first 64 kB of each); a version is never assumed.
    """
    base = Path(phot_path)
    for suffix in (".info", ".param", ".log"):
        path = base.with_name(base.name + suffix)
        if not path.is_file():
            continue
        with path.open("rb") as fh:
            text = fh.read(65536).decode("ascii", "replace")
        match = _VERSION_RE.search(text)
        if match:
            return match.group(1)
    return UNSTATED


def read_dolphot(phot_path: str | Path, columns_path: str | Path, wcs=None) -> Table:
    """Read DOLPHOT ``.phot`` output into a table with dolphot-catalog column names.

    Parameters
    ----------
    phot_path, columns_path : path-like
        The ``.phot`` table and its ``.columns`` description.
    wcs : astropy.wcs.WCS, optional
        WCS of the reference image, for RA/Dec.  DOLPHOT puts the lower-left corner of the
        first pixel at (0, 0), so its centre is (0.5, 0.5); X and Y become 0-based centres.

    Raises
    ------
    DolphotError
        One line naming the file when the widths disagree or a line is malformed.
    """
    phot_path, columns_path = Path(phot_path), Path(columns_path)
    columns, filters = parse_columns(columns_path)
    try:
        raw = np.loadtxt(phot_path, ndmin=2)
    except ValueError as exc:
        raise DolphotError(f"{phot_path.name}: not a numeric table ({exc})") from None
    ncol = max(columns) if columns else 0
    described = sum(1 for line in columns_path.read_text().splitlines() if line.strip())
    if raw.shape[1] != described:
        raise DolphotError(
            f"{phot_path.name}: {raw.shape[1]} columns but {columns_path.name} describes "
            f"{described} (the .columns file does not belong to this .phot file)"
        )
    if ncol > raw.shape[1]:
        raise DolphotError(f"{phot_path.name}: fewer columns than {columns_path.name} names")
    table = Table()
    table["ID"] = np.arange(1, raw.shape[0] + 1, dtype=np.int64)
    for number, (template, filt) in sorted(columns.items()):
        name = template.replace("{FILTER}", filt) if filt else template
        table[name] = raw[:, number - 1]
    table["X"] = table["X"] - 0.5
    table["Y"] = table["Y"] - 0.5
    if wcs is not None:
        ra, dec = wcs.pixel_to_world_values(table["X"], table["Y"])
        table["RA"], table["DEC"] = ra, dec
    table.meta["bands"] = filters
    table.meta["version"] = stated_version(phot_path)
    log.info(
        "read %d DOLPHOT sources in %d filters from %s", len(table), len(filters), phot_path.name
    )
    return table

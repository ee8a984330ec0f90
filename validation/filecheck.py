"""Every check of one file, run in a worker: names, metadata, FITS health, name vs header.

:func:`check_file` never raises: a failure inside a check becomes an ``internal.error``
problem, so one odd file cannot stop the validation of a delivery.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from phangs_products import fitsscan, fitssum
from phangs_products.conformance import header_values
from phangs_products.errors import PhangsProductsError, Problem
from phangs_products.models import RegionsModel
from phangs_products.safeio import regular_file
from phangs_products.spec import ProductSchema

from . import content, fitshealth, metadata, names
from .facts import FACT_KEYWORDS, FileFacts, FileResult, Grid
from .fitsstandard import clean_headers

__all__ = ["check_file"]

log = logging.getLogger(__name__)

#: Catalog coordinate columns, in order of preference: (RA, Dec, X, Y).
COORD_COLUMNS = (
    ("RA", "DEC", "X", "Y"),
    ("PHANGS_RA", "PHANGS_DEC", "PHANGS_X", "PHANGS_Y"),
    ("ASC_RA", "ASC_DEC", "ASC_X", "ASC_Y"),
)


def check_file(path: str, field: str, data: bool = True) -> FileResult:
    """Run the per-file checks of one delivery file.

    Parameters
    ----------
    path : str
        The file.
    field : str
        Name of the field folder the file sits in.
    data : bool
        Read the data too (checksums, SHA-256, NaN/range checks, catalog positions).
        Otherwise only headers are read.

    Returns
    -------
    FileResult
        Problems, the check groups run, and the facts for the cross-file checks.
    """
    start = time.perf_counter()
    p = Path(path)
    name = p.name
    problems: list[Problem] = []
    checks = ["names"]
    facts: FileFacts | None = None
    sha = None
    size = 0
    try:
        problems += names.check_file_name(name)
        try:
            size = regular_file(p).st_size
        except PhangsProductsError as exc:
            text = str(exc).removeprefix(f"{name}: ").removeprefix(f"{p}: ")
            problems.append(Problem("file.not-regular", text, name))
            return FileResult(
                path=str(p),
                name=name,
                size=0,
                sha256=None,
                problems=problems,
                checks=tuple(checks),
                facts=None,
                seconds=time.perf_counter() - start,
            )
        if p.suffix.lower() == ".fits":
            checks += ["metadata", "fits"]
            facts, sha, more, extra_checks = _check_fits(p, data)
            problems += more
            checks += extra_checks
        else:
            checks.append("metadata")
            sha = fitssum.sha256_of(p) if data else None
            facts, more = _check_other(p, data)
            problems += more
        if facts is not None:
            from phangs_products.registry import get_schema

            schema = get_schema(facts.schema_id) if facts.schema_id else None
            problems += names.check_name_header(name, facts.values, field, schema)
            checks.append("consistency")
    except Exception as exc:  # never let one file stop the run
        log.debug("check of %s failed", name, exc_info=True)
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        problems.append(
            Problem(
                "internal.error",
                f"{type(exc).__name__}: {exc} (at {Path(frame.filename).name}:{frame.lineno})",
                name,
            )
        )
    return FileResult(
        path=str(p),
        name=name,
        size=size,
        sha256=sha,
        problems=problems,
        checks=tuple(dict.fromkeys(checks)),
        facts=facts,
        seconds=time.perf_counter() - start,
    )


class _Unreadable(Exception):
    """astropy cannot open a file the structure scan passed (carries the problem)."""

    def __init__(self, problem: Problem):
        super().__init__(problem.message)
        self.problem = problem


class _Opener:
    """The file opened by astropy on first call, for the checks the scanned bytes cannot do.

    A clean product never needs it (headers, arrays and tables come from the scan and the
    memory map); dirty headers (astropy's verification), FLC lookup-table distortions and
    unusual tables do.
    """

    def __init__(self, path: Path):
        self.path = path
        self.hdul: fits.HDUList | None = None

    def __call__(self) -> fits.HDUList:
        if self.hdul is None:
            hdul, fatal = fitshealth.open_fits(str(self.path), self.path.name)
            if hdul is None:
                assert fatal is not None
                raise _Unreadable(fatal)
            self.hdul = hdul
        return self.hdul

    def close(self) -> None:
        if self.hdul is not None:
            self.hdul.close()


def _check_fits(
    p: Path, data: bool
) -> tuple[FileFacts | None, str | None, list[Problem], list[str]]:
    """Every check of a FITS file, reading its bytes once for the digests.

    The structure scan reads the headers; with ``data`` one streamed pass gives the SHA-256
    and the FITS checksums of every HDU, and the content rules read arrays and tables from a
    read-only memory map of the file (the pages the pass just read).  astropy opens the file
    only when a check needs it (:class:`_Opener`); a file it cannot open gets one
    ``fits.unreadable`` problem.
    """
    name = p.name
    try:
        layout = fitsscan.scan_file(p)
    except fitsscan.FitsStructureError as exc:
        return None, fitssum.sha256_of(p) if data else None, [exc.problem], []
    sums = fitssum.stream_sums(p, layout) if data else None
    sha = sums.sha256 if sums is not None else None
    raw = np.memmap(p, dtype=np.uint8, mode="r") if data and layout.size else None
    hdul = _Opener(p)
    try:
        return (*_fits_checks(name, layout, hdul, data, raw, sums, sha),)
    except _Unreadable as exc:
        return None, sha, [exc.problem], []
    finally:
        hdul.close()
        del raw  # unmaps the file once no array view of it is left


def _fits_checks(
    name: str,
    layout: fitsscan.FitsLayout,
    hdul: _Opener,
    data: bool,
    raw: np.ndarray | None,
    sums: fitssum.FileSums | None,
    sha: str | None,
) -> tuple[FileFacts, str | None, list[Problem], list[str]]:
    problems: list[Problem] = []
    checks: list[str] = []
    values = layout[0].values
    facts = FileFacts(name=name, values={k: values[k] for k in FACT_KEYWORDS if k in values})
    facts.product = str(values.get("PPSCHEMA") or "").strip()
    schema, more = metadata.resolve_schema(values, name)
    problems += more
    sid = schema.id if schema else ""
    if not clean_headers(layout):
        problems += fitshealth.verify_hdul(hdul(), name, sid)
    if schema is None:
        if sums is not None:
            problems += fitssum.checksum_problems(layout, sums, file=name)
        return facts, sha, problems, checks
    facts.schema_id = schema.id
    problems += metadata.check_fits_metadata(schema, hdul, layout, name, data, raw, sums)
    if schema.kind in ("image", "mask"):
        checks.append("wcs")
        problems += _image_checks(schema, layout, values, facts)
        if raw is not None:
            problems += _array_content(schema, layout, raw, facts)
    elif schema.kind == "flc":
        checks.append("wcs")
        for hdu in hdul()[1:]:
            if hdu.name == "SCI":
                where = f"HDU SCI,{hdu.ver}"
                problems += fitshealth.check_wcs(hdu.header, name, sid, where, hdul())[1]
    elif schema.kind == "catalog" and schema.table_hdu:
        checks.append("table")
        problems += _table_checks(schema, hdul, layout, facts, data, raw)
    return facts, sha, problems, checks


def _image_checks(
    schema: ProductSchema,
    layout: fitsscan.FitsLayout,
    values: Mapping[str, Any],
    facts: FileFacts,
) -> list[Problem]:
    spec = schema.arrays.get("data")
    index = spec.fits_hdu if spec else 0
    if index not in layout:
        return []  # hdu.missing reports it
    header = layout[index].header
    w, problems = fitshealth.check_wcs(header, facts.name, schema.id, "HDU 0")
    if w is None or header.get("NAXIS") != 2:
        return problems
    shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
    problems += fitshealth.check_target_in_footprint(w, shape, values, facts.name, schema.id)
    cd = w.pixel_scale_matrix
    facts.grid = Grid(
        shape=shape,
        ctype=(str(w.wcs.ctype[0]), str(w.wcs.ctype[1])),
        crval=(float(w.wcs.crval[0]), float(w.wcs.crval[1])),
        crpix=(float(w.wcs.crpix[0]), float(w.wcs.crpix[1])),
        cd=((float(cd[0, 0]), float(cd[0, 1])), (float(cd[1, 0]), float(cd[1, 1]))),
    )
    return problems


def _array_content(
    schema: ProductSchema, layout: fitsscan.FitsLayout, raw: np.ndarray, facts: FileFacts
) -> list[Problem]:
    """Content rules of the schema's arrays, on a view of the file bytes; a mask's labels."""
    problems = []
    for spec in schema.arrays.values():
        if spec.fits_hdu not in layout:
            continue  # hdu.missing reports it
        values = content.array_view(layout[spec.fits_hdu], raw)
        if values is None:
            continue
        where = f"HDU {spec.fits_hdu}"
        problems += content.check_array(
            spec, values, file=facts.name, schema_id=schema.id, where=where
        )
        if spec.labels_in is not None and values.dtype.kind in "iu":
            facts.labels = content.label_set(values)
            facts.labels_in = spec.labels_in
    return problems


def _table_checks(
    schema: ProductSchema,
    hdul: _Opener,
    layout: fitsscan.FitsLayout,
    facts: FileFacts,
    data: bool,
    raw: np.ndarray | None = None,
) -> list[Problem]:
    if schema.table_hdu not in layout:
        return []  # hdu.missing reports it
    index = layout.index_of(schema.table_hdu)
    scanned = layout[index]
    if scanned.xtension != "BINTABLE" or scanned.compressed:
        if index == 0:
            kind = "primary HDU"
        elif scanned.compressed:
            kind = "tile-compressed image"
        else:
            kind = scanned.xtension
        return [
            Problem(
                "fits.structure",
                f"HDU {schema.table_hdu} is a {kind}, not a binary table",
                facts.name,
                schema.id,
            )
        ]
    from phangs_products.conformance import bands_from_meta

    bands = bands_from_meta(layout[0].values)
    known = {c.name for c in schema.expand_columns(bands)}
    problems = fitshealth.check_extra_units(
        layout[index].values, known, facts.name, schema.id, f"HDU {index}"
    )
    if data:
        table = metadata.fast_table(layout[index], raw) if raw is not None else None
        if table is None:
            try:
                table = hdul()[index].data
            except _Unreadable:
                raise
            except Exception:  # conformance reports it as fits.data
                return problems
        if table is None:
            return problems
        colnames = set(table.colnames if hasattr(table, "colnames") else table.columns.names)
        facts.ids = {
            c.name: np.array(table[c.name])
            for c in schema.columns
            if c.unique and not c.per_band and c.name in colnames
        }
        for ra, dec, x, y in COORD_COLUMNS:
            if ra in colnames and dec in colnames:
                pos = {
                    "ra": np.asarray(table[ra], float),
                    "dec": np.asarray(table[dec], float),
                }
                if x in colnames and y in colnames:
                    pos["x"] = np.asarray(table[x], float)
                    pos["y"] = np.asarray(table[y], float)
                facts.positions = pos
                facts.position_columns = (ra, dec, x, y)
                break
    return problems


def _check_other(p: Path, data: bool) -> tuple[FileFacts | None, list[Problem]]:
    model, problems = metadata.check_other_product(p, data)
    if model is None:
        return None, problems
    values = header_values(model.meta.header()) if model.meta.headers else {}
    facts = FileFacts(
        name=p.name,
        product=model.schema.name,
        schema_id=model.schema.id,
        values={k: values[k] for k in FACT_KEYWORDS if k in values},
    )
    if isinstance(model, RegionsModel) and not any(p.rule == "content.parse" for p in problems):
        facts.region_points = _region_points(model)
    return facts, problems


def _region_points(model: RegionsModel) -> np.ndarray:
    points = []
    for reg in model.regions:
        for attr in ("center", "vertices"):
            coord = getattr(reg, attr, None)
            if coord is None or not hasattr(coord, "ra"):
                continue
            icrs = coord.icrs
            ra = np.atleast_1d(icrs.ra.deg)
            dec = np.atleast_1d(icrs.dec.deg)
            points.append(np.column_stack([ra, dec]))
    return np.vstack(points) if points else np.zeros((0, 2))

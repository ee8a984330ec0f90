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


def _check_fits(
    p: Path, data: bool
) -> tuple[FileFacts | None, str | None, list[Problem], list[str]]:
    """Every check of a FITS file, reading its bytes once for the digests.

    The structure scan reads the headers; with ``data`` one streamed pass gives the SHA-256
    and the FITS checksums of every HDU, and the content rules read arrays and tables from a
    read-only memory map of the file (the pages the pass just read).
    """
    name = p.name
    try:
        layout = fitsscan.scan_file(p)
    except fitsscan.FitsStructureError as exc:
        return None, fitssum.sha256_of(p) if data else None, [exc.problem], []
    sums = fitssum.stream_sums(p, layout) if data else None
    sha = sums.sha256 if sums is not None else None
    hdul, fatal = fitshealth.open_fits(str(p), name)
    if fatal is not None or hdul is None:
        return None, sha, [fatal] if fatal else [], []
    raw = np.memmap(p, dtype=np.uint8, mode="r") if data else None
    problems: list[Problem] = []
    checks: list[str] = []
    try:
        values = layout[0].values
        facts = FileFacts(name=name, values={k: values[k] for k in FACT_KEYWORDS if k in values})
        facts.product = str(values.get("PPSCHEMA") or "").strip()
        schema, more = metadata.resolve_schema(values, name)
        problems += more
        sid = schema.id if schema else ""
        problems += fitshealth.verify_hdul(hdul, name, sid)
        if schema is None:
            if sums is not None:
                problems += fitssum.checksum_problems(layout, sums, file=name)
            return facts, sha, problems, checks
        facts.schema_id = schema.id
        problems += metadata.check_fits_metadata(schema, hdul, layout, name, data, raw, sums)
        if schema.kind in ("image", "mask"):
            checks.append("wcs")
            problems += _image_checks(schema, hdul, values, facts)
            if raw is not None:
                problems += _array_content(schema, hdul, raw, facts)
        elif schema.kind == "flc":
            checks.append("wcs")
            for hdu in hdul[1:]:
                if hdu.name == "SCI":
                    where = f"HDU SCI,{hdu.ver}"
                    problems += fitshealth.check_wcs(hdu.header, name, sid, where, hdul)[1]
        elif schema.kind == "catalog" and schema.table_hdu:
            checks.append("table")
            problems += _table_checks(schema, hdul, layout, facts, data, raw)
        return facts, sha, problems, checks
    finally:
        hdul.close()
        del raw  # unmaps the file once no array view of it is left


def _image_checks(
    schema: ProductSchema, hdul: fits.HDUList, values: Mapping[str, Any], facts: FileFacts
) -> list[Problem]:
    spec = schema.arrays.get("data")
    hdu = hdul[spec.fits_hdu if spec else 0]
    header = hdu.header
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
    schema: ProductSchema, hdul: fits.HDUList, raw: np.ndarray, facts: FileFacts
) -> list[Problem]:
    """Content rules of the schema's arrays, on a view of the file bytes; a mask's labels."""
    problems = []
    for spec in schema.arrays.values():
        if spec.fits_hdu not in hdul:
            continue  # hdu.missing reports it
        hdu = hdul[spec.fits_hdu]
        values = content.array_view(hdu, raw)
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
    hdul: fits.HDUList,
    layout: fitsscan.FitsLayout,
    facts: FileFacts,
    data: bool,
    raw: np.ndarray | None = None,
) -> list[Problem]:
    try:
        hdu = hdul[schema.table_hdu]
    except KeyError:
        return []  # hdu.missing reports it
    if not isinstance(hdu, fits.BinTableHDU):
        return [
            Problem(
                "fits.structure",
                f"HDU {schema.table_hdu} is a {hdu.header.get('XTENSION', 'primary HDU')}, "
                "not a binary table",
                facts.name,
                schema.id,
            )
        ]
    index = hdul.index_of(schema.table_hdu)
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
                table = hdu.data
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

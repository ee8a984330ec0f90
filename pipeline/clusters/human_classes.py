"""Human (visual) classes of cluster candidates from a user table.

:func:`import_human_classes` fills ``PHANGS_CLUSTER_CLASS_HUMAN`` from a CSV/ECSV table, by
candidate id or by RA/Dec cross-match.  Classes follow Lee et al. (2022) Sect. 4.5 (LEGUS
scheme): 1 symmetric compact cluster, 2 asymmetric compact cluster, 3 compact association,
4 not a cluster.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table

from phangs_products.errors import PhangsProductsError
from phangs_products.registry import get_schema
from phangs_products.safeio import regular_file


class ClassifyError(PhangsProductsError):
    """Bad classifier weights, stamps or user class table."""


log = logging.getLogger(__name__)

#: Marks a candidate without a human class (the catalog schema's sentinel).
HUMAN_SENTINEL = get_schema("cluster-catalog").sentinel


ID_COLUMNS = ("ID_PHANGS_CANDIDATE", "id")


CLASS_COLUMNS = ("PHANGS_CLUSTER_CLASS_HUMAN", "class_human", "class")


RA_COLUMNS = ("PHANGS_RA", "ra", "raj2000")


DEC_COLUMNS = ("PHANGS_DEC", "dec", "dej2000", "decj2000")


#: The class codes (Lee et al. 2022 Sect. 4.5, the LEGUS scheme).
CLASS_CODES: dict[int, str] = {
    1: "symmetric compact cluster",
    2: "asymmetric compact cluster",
    3: "compact association (multiple peaks)",
    4: "not a cluster (star, artefact, background)",
}

#: Default RA/Dec matching radius, arcsec.
MATCH_RADIUS_ARCSEC = 0.1


def table_format(match_radius_arcsec: float = MATCH_RADIUS_ARCSEC) -> dict[str, object]:
    """The human-class table format, for the README (the checks below enforce it).

    Returns
    -------
    dict
        ``formats``, ``class_columns``, ``id_columns``, ``ra_columns``, ``dec_columns`` (names,
        case-insensitive), ``unit`` of RA/Dec, ``match_radius_arcsec``, ``codes`` (class code
        to meaning) and ``unclassified`` (what counts as no class).
    """
    return {
        "formats": "CSV, ECSV or FITS table",
        "class_columns": CLASS_COLUMNS,
        "id_columns": ID_COLUMNS,
        "ra_columns": RA_COLUMNS,
        "dec_columns": DEC_COLUMNS,
        "unit": "deg (ICRS); columns with another angle unit are converted",
        "match_radius_arcsec": match_radius_arcsec,
        "codes": CLASS_CODES,
        "unclassified": "empty, masked, 0 or negative",
    }


def _column(table: Table, names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in table.colnames}
    for name in names:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def _read_user_table(path: Path) -> Table:
    try:
        regular_file(path)  # a FIFO or a device would block the read
    except PhangsProductsError as exc:
        raise ClassifyError(f"user class table: {exc}") from None
    suffix = path.suffix.lower()
    fmt = {".ecsv": "ascii.ecsv", ".csv": "ascii.csv", ".fits": "fits", ".fit": "fits"}.get(suffix)
    try:
        return Table.read(path, format=fmt) if fmt else Table.read(path, format="ascii")
    except Exception as exc:  # astropy raises many types for bad files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClassifyError(f"{path}: cannot read user class table ({first})") from None


def _degrees(table: Table, name: str) -> np.ndarray:
    col = table[name]
    values = np.ma.filled(np.ma.asarray(col, dtype=float), np.nan)
    unit = getattr(col, "unit", None)
    if unit is not None and str(unit) not in ("", "deg"):
        values = (values * unit).to_value("deg")
    return values


def import_human_classes(
    candidates: Table,
    user_table_path: str | Path,
    match_radius_arcsec: float = MATCH_RADIUS_ARCSEC,
) -> np.ndarray:
    """Human classes of the candidates from a user table.

    The user table (CSV, ECSV or FITS) needs a class column (``PHANGS_CLUSTER_CLASS_HUMAN``,
    ``class_human`` or ``class``; case-insensitive) and either an id column
    (``ID_PHANGS_CANDIDATE`` or ``id``, matched to ``ID_PHANGS_CANDIDATE``) or RA/Dec columns in
    degrees (``PHANGS_RA``/``PHANGS_DEC`` or ``ra``/``dec``), cross-matched to the candidates'
    ``PHANGS_RA``/``PHANGS_DEC`` within ``match_radius_arcsec`` (nearest wins).  The id is used
    when both are present.  Empty, masked or negative classes count as not classified.

    Parameters
    ----------
    candidates : Table
        Candidate catalogue.
    user_table_path : str or Path
        User table.
    match_radius_arcsec : float
        Cross-match radius for RA/Dec matching.

    Returns
    -------
    ndarray
        int16 ``(len(candidates),)``: the class, or -9999 where not classified.

    Raises
    ------
    ClassifyError
        If the file is missing or unreadable, a needed column is missing (in either table),
        classes are not integers or not one of the codes 1-4, or an id occurs twice with
        different classes.  Every message is one line naming the file and the column.
    """
    path = Path(user_table_path)
    user = _read_user_table(path)
    out = np.full(len(candidates), HUMAN_SENTINEL, np.int16)
    class_col = _column(user, CLASS_COLUMNS)
    if class_col is None:
        raise ClassifyError(
            f"{path}: no class column (expected one of {', '.join(CLASS_COLUMNS)};"
            f" columns are {', '.join(user.colnames)})"
        )
    raw = np.ma.filled(np.ma.asarray(user[class_col], dtype=float), np.nan)
    finite = np.isfinite(raw)
    if np.any(finite & (raw != np.round(raw))):
        raise ClassifyError(f"{path}: column {class_col} holds non-integer classes")
    valid = finite & (raw >= 1)
    unknown = sorted({int(v) for v in raw[valid]} - set(CLASS_CODES))
    if unknown:
        raise ClassifyError(
            f"{path}: column {class_col} holds class {unknown[0]} (expected "
            f"{', '.join(str(c) for c in CLASS_CODES)}, or empty/0/negative for not classified)"
        )
    values = np.where(valid, raw, HUMAN_SENTINEL).astype(np.int16)

    id_col = _column(user, ID_COLUMNS)
    ra_col, dec_col = _column(user, RA_COLUMNS), _column(user, DEC_COLUMNS)
    if id_col is not None:
        if "ID_PHANGS_CANDIDATE" not in candidates.colnames:
            raise ClassifyError(
                "candidate table has no column ID_PHANGS_CANDIDATE to match "
                f"{path.name} column {id_col}"
            )
        user_ids = np.ma.filled(np.ma.asarray(user[id_col]), -1).astype(np.int64)[valid]
        vals = values[valid]
        uniq, first, counts = np.unique(user_ids, return_index=True, return_counts=True)
        for dup in uniq[counts > 1]:
            if len(set(vals[user_ids == dup].tolist())) > 1:
                raise ClassifyError(f"{path}: id {dup} has conflicting classes")
        cand_ids = np.asarray(candidates["ID_PHANGS_CANDIDATE"], np.int64)
        pos = np.searchsorted(uniq, cand_ids)
        pos_c = np.clip(pos, 0, max(uniq.size - 1, 0))
        hit = (uniq.size > 0) & (uniq[pos_c] == cand_ids) if uniq.size else np.zeros(0, bool)
        if uniq.size:
            out[hit] = vals[first[pos_c[hit]]]
        n_unused = int(np.sum(~np.isin(uniq, cand_ids)))
        how = f"id column {id_col}"
    elif ra_col is not None and dec_col is not None:
        c_ra, c_dec = _column(candidates, RA_COLUMNS), _column(candidates, DEC_COLUMNS)
        if c_ra is None or c_dec is None:
            raise ClassifyError(
                f"candidate table has no PHANGS_RA/PHANGS_DEC to match "
                f"{path.name} columns {ra_col}/{dec_col}"
            )
        ra, dec = _degrees(user, ra_col), _degrees(user, dec_col)
        keep = valid & np.isfinite(ra) & np.isfinite(dec)
        n_unused = 0
        if keep.any() and len(candidates):
            users = SkyCoord(ra[keep] * u.deg, dec[keep] * u.deg)
            cands = SkyCoord(
                _degrees(candidates, c_ra) * u.deg, _degrees(candidates, c_dec) * u.deg
            )
            idx, sep, _ = users.match_to_catalog_sky(cands)
            sep_arcsec = sep.to_value(u.arcsec)
            ok = sep_arcsec <= match_radius_arcsec
            n_unused = int(np.sum(~ok))
            order = np.argsort(-sep_arcsec[ok], kind="stable")  # closest assigned last, wins
            out[idx[ok][order]] = values[keep][ok][order]
            n_multi = int(ok.sum() - np.unique(idx[ok]).size)
            if n_multi:
                log.warning(
                    "%s: %d row(s) matched a candidate already matched by a closer row",
                    path.name,
                    n_multi,
                )
        else:
            n_unused = int(keep.sum())
        how = f'RA/Dec within {match_radius_arcsec}"'
    else:
        raise ClassifyError(
            f"{path}: no id column ({' or '.join(ID_COLUMNS)}) and no RA/Dec columns "
            f"({'/'.join(RA_COLUMNS[:2])} and {'/'.join(DEC_COLUMNS[:2])}); columns are "
            f"{', '.join(user.colnames)}"
        )
    if n_unused:
        log.warning("%s: %d classified row(s) match no candidate", path.name, n_unused)
    log.info(
        "%s: human classes for %d of %d candidates (matched by %s)",
        path.name,
        int(np.sum(out != HUMAN_SENTINEL)),
        len(candidates),
        how,
    )
    return out

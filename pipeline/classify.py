"""Cluster-candidate classes: human classes from a user table and a CNN on postage stamps.

Classes follow Lee et al. (2022) Sect. 4.5 (LEGUS scheme): 1 symmetric compact cluster,
2 asymmetric/elongated compact cluster, 3 compact association (>= 4 peaks within 5 px), 4 not a
cluster (star, star pair, artefact, background galaxy).

* :func:`import_human_classes` fills ``PHANGS_CLUSTER_CLASS_HUMAN`` from a user CSV/ECSV, by
  candidate id or by RA/Dec cross-match.
* :func:`cut_stamps` cuts normalised five-band stamps around candidates, and :func:`classify` runs
  an ONNX model on them with onnxruntime (CPU), giving ``PHANGS_CLUSTER_CLASS_ML`` and
  ``PHANGS_CLUSTER_CLASS_ML_QUAL`` (softmax probability of the chosen class).

The shipped model ``data/cluster_classifier.onnx`` is a small CNN trained on simulated stamps by
``scripts/train_classifier.py``; its provenance and held-out accuracies are in the sidecar
``data/cluster_classifier.json``.  Stamps are normalised by
:func:`phangs_products.pipeline.stamps.normalise_stamps`, the function the training used.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from phangs_products.bands import data_path
from phangs_products.errors import PhangsProductsError

from .stamps import BANDS, CLASS_CODES, NORMALISATION, normalise_stamps

__all__ = [
    "HUMAN_SENTINEL",
    "ClassifierConfig",
    "ClassifyError",
    "classify",
    "classify_candidates",
    "cut_stamps",
    "default_model_path",
    "import_human_classes",
    "model_info",
]

log = logging.getLogger(__name__)

HUMAN_SENTINEL = -9999
#: Filters accepted in place of a band when the band itself has no image (ACS archival bands).
FILTER_ALIASES = {"F438W": ("F435W",), "F555W": ("F606W",), "F814W": ()}
ID_COLUMNS = ("ID_PHANGS_CANDIDATE", "id")
CLASS_COLUMNS = ("PHANGS_CLUSTER_CLASS_HUMAN", "class_human", "class")
RA_COLUMNS = ("PHANGS_RA", "ra", "raj2000")
DEC_COLUMNS = ("PHANGS_DEC", "dec", "dej2000", "decj2000")


class ClassifyError(PhangsProductsError):
    """Bad classifier weights, stamps or user class table."""


def default_model_path() -> Path:
    """Path of the shipped ONNX classifier."""
    return data_path("cluster_classifier.onnx")


@dataclass(frozen=True)
class ClassifierConfig:
    """Settings of the machine classification.

    Attributes
    ----------
    model : Path or None
        ONNX weights; ``None`` means the shipped model.  A sidecar ``<model>.json`` next to it
        (optional for user models) gives the class codes of the outputs and the normalisation.
    stamp_size : int
        Stamp side in pixels (must match the model's input).
    batch_size : int
        Stamps per onnxruntime call.
    filters : tuple of str
        Bands in the order of the model's input channels.
    threads : int
        onnxruntime intra-op threads.
    """

    model: Path | None = None
    stamp_size: int = 32
    batch_size: int = 1024
    filters: tuple[str, ...] = field(default=BANDS)
    threads: int = 2

    @property
    def model_path(self) -> Path:
        """The weights file used."""
        return Path(self.model) if self.model is not None else default_model_path()


# --------------------------------------------------------------------------------------------
# stamps
# --------------------------------------------------------------------------------------------


def _find_image(images: Mapping[str, np.ndarray], filt: str) -> np.ndarray | None:
    upper = {str(k).upper(): v for k, v in images.items()}
    for name in (filt.upper(), *FILTER_ALIASES.get(filt.upper(), ())):
        if name in upper:
            return upper[name]
    return None


def cut_stamps(
    images: Mapping[str, np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    size: int = 32,
    filters: tuple[str, ...] = BANDS,
    normalise: bool = True,
) -> np.ndarray:
    """Cut five-band stamps centred on candidates, normalised as for training.

    The candidate's pixel ``(round(y), round(x))`` lands on stamp pixel ``(size // 2, size // 2)``.
    Pixels outside an image, and whole bands without an image, are NaN before normalisation
    (0 after it).

    Parameters
    ----------
    images : mapping of str to ndarray
        2-D images on one pixel grid (e.g. the five DRCs in e-/s), keyed by filter name
        (case-insensitive; F435W is accepted for F438W).
    x, y : array_like
        0-based pixel positions of the candidates (``PHANGS_X``, ``PHANGS_Y``).
    size : int
        Stamp side in pixels.
    filters : tuple of str
        Bands in channel order.
    normalise : bool
        Apply :func:`~phangs_products.pipeline.stamps.normalise_stamps` (the training
        normalisation); ``False`` returns the raw pixel values.

    Returns
    -------
    ndarray
        float32 ``(N, len(filters), size, size)``.

    Raises
    ------
    ClassifyError
        If there is no F555W image, the images differ in shape, or x and y differ in length.
    """
    x = np.atleast_1d(np.asarray(x, float))
    y = np.atleast_1d(np.asarray(y, float))
    if x.shape != y.shape or x.ndim != 1:
        raise ClassifyError(f"x and y must be 1-D of equal length, got {x.shape} and {y.shape}")
    found = {f: _find_image(images, f) for f in filters}
    if "F555W" in filters and found["F555W"] is None:
        raise ClassifyError(f"no F555W image among {sorted(images)}: the stamps are scaled by V")
    shapes = {np.shape(v) for v in found.values() if v is not None}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ClassifyError(f"images must be 2-D on one pixel grid, got shapes {sorted(shapes)}")
    (ny, nx) = next(iter(shapes))
    half = size // 2
    bad = ~(np.isfinite(x) & np.isfinite(y))
    ix = np.where(bad, -(10**6), np.round(np.nan_to_num(x)).astype(np.int64)) - half
    iy = np.where(bad, -(10**6), np.round(np.nan_to_num(y)).astype(np.int64)) - half
    offs = np.arange(size)
    rows = iy[:, None, None] + offs[None, :, None]
    cols = ix[:, None, None] + offs[None, None, :]
    inside = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
    rows_c = np.clip(rows, 0, ny - 1)
    cols_c = np.clip(cols, 0, nx - 1)
    out = np.full((x.size, len(filters), size, size), np.nan, np.float32)
    for b, filt in enumerate(filters):
        image = found[filt]
        if image is None:
            log.warning("no %s image: its stamp channel is left empty", filt)
            continue
        out[:, b] = np.where(inside, np.asarray(image, np.float32)[rows_c, cols_c], np.nan)
    return normalise_stamps(out) if normalise else out


# --------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------


def model_info(path: str | Path) -> dict[str, Any]:
    """The sidecar JSON of a model (``{}`` when there is none).

    Raises
    ------
    ClassifyError
        If the sidecar exists but is not valid JSON.
    """
    sidecar = Path(path).with_suffix(".json")
    if not sidecar.is_file():
        return {}
    try:
        return json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        raise ClassifyError(f"{sidecar}: cannot read classifier sidecar ({exc})") from None


@functools.lru_cache(maxsize=4)
def _session(path: str, mtime_ns: int, threads: int):  # mtime_ns keys the cache
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClassifyError(f"{path}: not a usable ONNX model ({first})") from None


def _load(config: ClassifierConfig):
    path = config.model_path
    if not path.is_file():
        raise ClassifyError(f"classifier weights {path} not found")
    session = _session(str(path.resolve()), path.stat().st_mtime_ns, config.threads)
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ClassifyError(f"{path}: the model must have one input, it has {len(inputs)}")
    shape = list(inputs[0].shape)
    want = [len(config.filters), config.stamp_size, config.stamp_size]
    fixed = [d if isinstance(d, int) else None for d in shape[1:]]
    if len(shape) != 4 or any(d is not None and d != w for d, w in zip(fixed, want, strict=True)):
        raise ClassifyError(
            f"{path}: model input shape {shape} does not match stamps (batch, {want[0]}, "
            f"{want[1]}, {want[2]}) (check ClassifierConfig.stamp_size and filters)"
        )
    info = model_info(path)
    codes = tuple(int(c) for c in info.get("class_codes", CLASS_CODES))
    norm = info.get("normalisation", NORMALISATION)
    if norm != NORMALISATION:
        log.warning(
            "%s was trained with normalisation %s, stamps use %s", path, norm, NORMALISATION
        )
    return session, inputs[0].name, codes


def classify(
    stamps: np.ndarray, config: ClassifierConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Classify normalised stamps with the ONNX model.

    Parameters
    ----------
    stamps : ndarray
        ``(N, 5, size, size)`` stamps from :func:`cut_stamps` (normalised).
    config : ClassifierConfig, optional
        Model path, stamp size, batch size.

    Returns
    -------
    classes : ndarray
        int16 ``(N,)`` class codes (1-4).
    quality : ndarray
        float32 ``(N,)`` probability of the chosen class.

    Raises
    ------
    ClassifyError
        If the weights file is missing or unusable, or its input shape does not match.
    """
    config = config or ClassifierConfig()
    session, name, codes = _load(config)
    stamps = np.asarray(stamps, np.float32)
    want = (len(config.filters), config.stamp_size, config.stamp_size)
    if stamps.ndim != 4 or stamps.shape[1:] != want:
        raise ClassifyError(
            f"stamps must have shape (N, {want[0]}, {want[1]}, {want[2]}), got {stamps.shape}"
        )
    n = stamps.shape[0]
    classes = np.full(n, HUMAN_SENTINEL, np.int16)
    quality = np.full(n, HUMAN_SENTINEL, np.float32)
    if n == 0:
        return classes, quality
    stamps = np.nan_to_num(stamps, nan=0.0, posinf=0.0, neginf=0.0)
    code_arr = np.asarray(codes, np.int16)
    for start in range(0, n, max(1, config.batch_size)):
        sl = slice(start, start + config.batch_size)
        (out,) = session.run(None, {name: np.ascontiguousarray(stamps[sl])})[:1]
        out = np.asarray(out, np.float64)
        if out.ndim != 2 or out.shape[1] != len(codes):
            raise ClassifyError(
                f"{config.model_path}: model output shape {out.shape} does not "
                f"match its {len(codes)} class codes {list(codes)}"
            )
        is_prob = np.all(out >= 0) and np.allclose(out.sum(axis=1), 1.0, atol=1e-3)
        if not is_prob:  # logits: softmax
            out = np.exp(out - out.max(axis=1, keepdims=True))
            out /= out.sum(axis=1, keepdims=True)
        best = out.argmax(axis=1)
        classes[sl] = code_arr[best]
        quality[sl] = out[np.arange(out.shape[0]), best]
    return classes, quality


def classify_candidates(
    candidates: Table, images: Mapping[str, np.ndarray], config: ClassifierConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``PHANGS_CLUSTER_CLASS_ML`` and ``_QUAL`` of a candidate table (``PHANGS_X``/``Y``).

    Raises
    ------
    ClassifyError
        If the table lacks ``PHANGS_X`` or ``PHANGS_Y``, or as :func:`classify`.
    """
    config = config or ClassifierConfig()
    missing = [c for c in ("PHANGS_X", "PHANGS_Y") if c not in candidates.colnames]
    if missing:
        raise ClassifyError(f"candidate table has no column {', '.join(missing)}")
    stamps = cut_stamps(
        images, candidates["PHANGS_X"], candidates["PHANGS_Y"], config.stamp_size, config.filters
    )
    return classify(stamps, config)


# --------------------------------------------------------------------------------------------
# human classes
# --------------------------------------------------------------------------------------------


def _column(table: Table, names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in table.colnames}
    for name in names:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def _read_user_table(path: Path) -> Table:
    if not path.is_file():
        raise ClassifyError(f"user class table {path} not found")
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
    candidates: Table, user_table_path: str | Path, match_radius_arcsec: float = 0.1
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
        classes are not integers, or an id occurs twice with different classes.
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
        from astropy import units as u
        from astropy.coordinates import SkyCoord

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

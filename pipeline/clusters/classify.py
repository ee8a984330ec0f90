"""Machine classes of cluster candidates: a CNN (ONNX) on normalised five-band stamps.

:func:`cut_stamps` cuts stamps around candidates, :func:`normalise_stamps` normalises them as
the training did (``scripts/train_classifier.py``), and :func:`classify` runs the shipped model
``data/cluster_classifier.onnx`` with onnxruntime (CPU), giving ``PHANGS_CLUSTER_CLASS_ML`` and
``PHANGS_CLUSTER_CLASS_ML_QUAL``.  Its provenance and held-out accuracies are in the sidecar
``data/cluster_classifier.json``.
"""

from __future__ import annotations

import functools
import json
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from phangs_products.bands import band, data_path, survey_filters
from phangs_products.pipeline.clusters.human_classes import HUMAN_SENTINEL, ClassifyError

log = logging.getLogger(__name__)


#: Filters accepted in place of a band when the band itself has no image (ACS archival bands).
FILTER_ALIASES = {"F438W": ("F435W",), "F555W": ("F606W",), "F814W": ()}


#: Bands of the stamps, in order (the survey's five filters, from the band table).
BANDS = survey_filters()
#: Index of the V band, whose core flux scales every stamp.
V_INDEX = [band(f).label for f in BANDS].index("V")


#: Identifier of the normalisation, written into the model sidecar and checked at inference.
NORMALISATION = "asinh10-vcore-v1"


_ASINH_GAIN = 10.0


_CLIP = (-3.0, 8.0)


_BORDER = 3


def normalise_stamps(stamps: np.ndarray) -> np.ndarray:
    """Normalise raw stamps (e-/s) for the classifier; used by training and inference alike.

    Steps: per band, subtract the median of the 3-px frame of the stamp (local background);
    divide all bands by one scale, the background-subtracted F555W flux within 3 px of the
    centre (floored at 5 times its noise from the frame's MAD, so faint or negative cores do not
    blow up), which keeps the colours; compress with ``asinh(10 x)`` and clip to [-3, 8].
    Non-finite pixels (no coverage) become 0.

    Parameters
    ----------
    stamps : ndarray
        ``(N, 5, size, size)`` stamps in count-rate units, band order ``BANDS``.

    Returns
    -------
    ndarray
        float32 array of the same shape.
    """
    x = np.asarray(stamps, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] != len(BANDS) or x.shape[2] != x.shape[3]:
        raise ValueError(f"stamps must have shape (N, {len(BANDS)}, size, size), got {x.shape}")
    size = x.shape[-1]
    frame = np.ones((size, size), bool)
    frame[_BORDER:-_BORDER, _BORDER:-_BORDER] = False
    border = x[:, :, frame]
    with np.errstate(all="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bands
            bkg = np.nanmedian(border, axis=2)
            bkg = np.where(np.isfinite(bkg), bkg, 0.0).astype(np.float32)
            mad = np.nanmedian(np.abs(border - bkg[:, :, None]), axis=2)
    x = x - bkg[:, :, None, None]
    x = np.where(np.isfinite(x), x, np.float32(0.0))
    c = size // 2
    yy, xx = np.mgrid[:size, :size]
    core = (yy - c) ** 2 + (xx - c) ** 2 <= 9
    sigma_v = np.where(np.isfinite(mad[:, V_INDEX]), 1.4826 * mad[:, V_INDEX], 0.0)
    floor = 5.0 * sigma_v * np.sqrt(core.sum()) + 1e-12
    scale = np.maximum(x[:, V_INDEX][:, core].sum(axis=1), floor).astype(np.float32)
    out = np.arcsinh(np.float32(_ASINH_GAIN) * x / scale[:, None, None, None])
    return np.clip(out, *_CLIP).astype(np.float32)


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
    stamp_size: int = field(default=32, metadata={"ge": 1})
    batch_size: int = field(default=1024, metadata={"ge": 1})
    filters: tuple[str, ...] = field(default=BANDS)
    threads: int = field(default=2, metadata={"ge": 0})

    @property
    def model_path(self) -> Path:
        """The weights file used."""
        return Path(self.model) if self.model is not None else default_model_path()


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
        Apply :func:`~phangs_products.pipeline.clusters.classify.normalise_stamps` (the training
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
    # a model without a sidecar is taken to have the shipped model's outputs
    codes = tuple(
        int(c) for c in info.get("class_codes") or model_info(default_model_path())["class_codes"]
    )
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

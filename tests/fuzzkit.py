"""Hostile-input kit: valid products of every kind, byte mutations, and every reader call.

Used by ``tests/test_fuzz.py`` (a bounded hypothesis run) and ``benchmarks/fuzz_readers.py``
(thousands of seeded mutations).  Only the public entry points are called (``open``,
``read_meta``, lazy ``.data``/``.table``, ``problems``, ``info`` and the validator's
``check_file``), so the same harness measures any version of the library.

A mutation is a list of operations ``(op, where, arg)`` with ``where`` and ``arg`` 32-bit
integers: hypothesis draws them, the benchmark takes them from a seeded ``random.Random``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import io
import random
import signal
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from astropy.io import fits

import phangs_products as pp
from phangs_products.cli import main as cli_main
from phangs_products.errors import PhangsProductsError
from phangs_products.models import FitsModel
from phangs_products.naming import build_name
from phangs_products.testing import make_clean_delivery

FIELD = "ngc628c"
SAMPLE_FLC = Path(__file__).parent / "data" / "real" / "sample_ipppssoot_flc.fits"

#: Product kinds of the corpus -> file-name suffix that picks the file in a clean delivery.
KINDS: dict[str, str] = {
    "drc-sci": "f555w_v1_drc-sci.fits",
    "assoc-mask": "asc-v-16pc-msk.fits",
    "cluster-catalog": "cl-hum-c12.fits",
    "assoc-catalog": "asc-v-16pc.fits",
    "dolphot-catalog": "dolphot-cat.fits",
    "flc": "ipppssoot-flc.fits",
    "parquet": "cl-hum-c12.parquet",
    "ecsv": "cl-hum-c12.ecsv",
    "regions": "cl-hum-c12-reg.reg",
    "readme": "readme.md",
    "manifest": "manifest.asdf",
    "legus-table": "padagb-mwext-avgapcor.tab",
    "dr4-catalog": "obs-human-cluster-class12.fits",
}

#: The historical kinds: read by ``open``, but not products of a delivery.
HISTORICAL = ("legus-table", "dr4-catalog")
REAL = Path(__file__).parent / "data" / "real"
#: Historical products in the corpus: a real LEGUS table (its first rows) and a PHANGS-CAT DR4
#: catalog as the release code wrote it (names of the historical release).
LEGUS_TABLE = "hlsp_legus_hst_acs-wfc3_ngc628-c_multiband_v1_padagb-mwext-avgapcor.tab"
LEGUS_ROWS = 300
DR4_CATALOG = "hlsp_phangs-cat_hst_acs-uvis_ngc0628e_multi_v1_obs-human-cluster-class12.fits"

#: Mutation operations.  ``value`` and ``key`` rewrite one header card (FITS) or overwrite
#: bytes with a hostile token (other files); ``block`` drops or repeats a 2880-byte block.
OPS: tuple[str, ...] = ("flip", "byte", "value", "key", "insert", "delete", "truncate", "block")

#: Values written into FITS cards (and tokens into text files).
VALUES: tuple[str, ...] = (
    "0",
    "-1",
    "1",
    "3",
    "17",
    "999",
    "1000",
    "2147483648",
    "1000000000000",
    "-1000000000000",
    "99999999999999999999999",
    "1E400",
    "NaN",
    "T",
    "F",
    "''",
    "'",
    "'1PE(999999999)'",
    "'999999999A'",
    "'9999K'",
    "'Q'",
    "'X'",
    "'BINTABLE'",
    "'IMAGE   '",
    "'TABLE   '",
    "'PRIMARY'",
    "'\xe9\xe8'",
    "\x00\x01",
    "",
)

#: Keywords written over a card's keyword by the ``key`` operation.
KEYS: tuple[str, ...] = (
    "NAXIS",
    "NAXIS1",
    "NAXIS2",
    "NAXIS3",
    "BITPIX",
    "PCOUNT",
    "GCOUNT",
    "TFIELDS",
    "TFORM1",
    "TFORM2",
    "THEAP",
    "EXTEND",
    "XTENSION",
    "SIMPLE",
    "END",
    "EXTNAME",
    "CONTINUE",
    "HIERARCH",
    "ZIMAGE",
    "GROUPS",
)

#: Keywords (without their index) of the cards that give a FITS file its layout.
_LAYOUT_KEYS = frozenset(
    {b"SIMPLE", b"XTENSION", b"BITPIX", b"NAXIS", b"PCOUNT", b"GCOUNT", b"GROUPS", b"EXTEND"}
    | {b"TFIELDS", b"TFORM", b"TTYPE", b"THEAP", b"TDIM", b"TSCAL", b"TZERO", b"TNULL"}
    | {b"BSCALE", b"BZERO", b"BLANK", b"EXTNAME", b"EXTVER"}
)

CARD = 80
BLOCK = 2880


# ---------------------------------------------------------------------------------- corpus
def _write_flc(path: Path) -> Path:
    """An FLC product from the real MAST sample, written by the FLC model."""
    import phangs_products.hlsp as hlsp
    from phangs_products.bands import galaxy
    from phangs_products.hlsp import Delivery

    with fits.open(SAMPLE_FLC) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul if h.name != "HDRLET"])
    primary = hdul[0].header
    delivery = Delivery(
        galaxy("ngc628"),
        FIELD,
        "v1",
        float(primary["EXPSTART"]),
        float(primary["EXPEND"]),
        simulated=True,
    )
    meta = hlsp.common_meta(
        delivery, "phangs-hst", instrument="WFC3", xposure=float(primary["EXPTIME"])
    )
    for hdu in hdul:
        if hdu.name == "SCI":
            hdu.header.remove("EQUINOX", ignore_missing=True)
    pp.FlcModel.from_hdulist(hdul, meta=meta).save(path)
    return path


def write_corpus(folder: Path) -> dict[str, Path]:
    """One valid product of every kind in ``folder/<field>``, written by the project's writers.

    Returns
    -------
    dict
        Kind (see :data:`KINDS`) -> file.
    """
    field = make_clean_delivery(folder)
    catalog = pp.open(next(field.glob(f"*{KINDS['cluster-catalog']}")))
    stem = catalog.path.name.removesuffix(".fits")
    table = catalog.table
    for name in table.colnames:  # native byte order: older versions could not export others
        table[name] = table[name].astype(table[name].dtype.newbyteorder("="))
    catalog.save(field / f"{stem}.parquet")
    catalog.save(field / f"{stem}.ecsv")
    flc_name = build_name(
        pp.get_schema("flc"),
        target=FIELD,
        version="v1",
        instruments="wfc3-uvis",
        filter="f555w",
        rootname="ipppssoot",
    )
    _write_flc(field / flc_name)
    _write_historical(field)
    return {kind: next(field.glob(f"*{suffix}")) for kind, suffix in KINDS.items()}


def _write_historical(field: Path) -> None:
    """The real LEGUS table's first rows, and a DR4 catalog written as the release code did."""
    from test_legacy import DR4_NAME, columns_of, write_dr4

    lines = gzip.decompress((REAL / "legus" / f"{LEGUS_TABLE}.gz").read_bytes()).splitlines(True)
    (field / LEGUS_TABLE).write_bytes(b"".join(lines[:LEGUS_ROWS]))
    target = DR4_NAME.match(DR4_CATALOG)["target"]
    write_dr4(field / DR4_CATALOG, columns_of("obs", target), target)


def is_fits(path: Path) -> bool:
    """Whether a corpus file is FITS."""
    return path.suffix.lower() == ".fits"


# ------------------------------------------------------------------------------- mutations
@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the interesting bytes of a valid file are.

    Attributes
    ----------
    hot : list of (start, stop)
        Byte ranges most mutations aim at (FITS headers; the footer of Parquet; the
        commented header of ECSV; the whole of small text files).
    cards : list of int
        Offsets of value cards (``KEY     = ...``) in FITS headers.
    structural : list of int
        Offsets of the cards that give the layout (BITPIX, NAXISn, PCOUNT, TFORMn, ...).
    """

    hot: list[tuple[int, int]]
    cards: list[int]
    structural: list[int] = dataclasses.field(default_factory=list)


def layout(raw: bytes, suffix: str) -> Layout:
    """The :class:`Layout` of a valid product's bytes."""
    size = len(raw)
    if suffix == ".fits":
        hot, cards, structural = [], [], []
        with fits.open(io.BytesIO(raw)) as hdul:
            for hdu in hdul:
                info = hdu.fileinfo()
                start, stop = info["hdrLoc"], info["datLoc"]
                hot.append((start, stop))
                for off in range(start, stop, CARD):
                    if raw[off + 8 : off + 10] == b"= ":
                        cards.append(off)
                        if raw[off : off + 8].rstrip(b" 0123456789") in _LAYOUT_KEYS:
                            structural.append(off)
        return Layout(hot, cards, structural)
    if suffix == ".parquet":
        return Layout([(0, 8), (max(0, size - 4096), size)], [])
    if suffix == ".ecsv":
        end = raw.find(b"\n", raw.rfind(b"\n# ") + 1)
        return Layout([(0, end if end > 0 else size)], [])
    return Layout([(0, min(size, 4096))], [])


def _position(lay: Layout, size: int, where: int) -> int:
    """A byte offset: in a hot range three times in four, anywhere otherwise."""
    if size == 0:
        return 0
    if where >> 30 and lay.hot:
        start, stop = lay.hot[where % len(lay.hot)]
        if stop > start:
            return start + (where >> 8) % (stop - start)
    return where % size


def mutate(raw: bytes, suffix: str, ops: Sequence[tuple[str, int, int]]) -> bytes:
    """Apply mutation operations to a valid product's bytes.

    Parameters
    ----------
    raw : bytes
        The valid file.
    suffix : str
        Its suffix (``.fits``, ``.parquet``, ...), which says where the hot bytes are.
    ops : sequence of (op, where, arg)
        Operations from :data:`OPS`; ``where`` and ``arg`` are 32-bit integers.
    """
    lay = layout(raw, suffix)
    data = bytearray(raw)
    for op, where, arg in ops:
        size = len(data)
        pos = _position(lay, size, where)
        if op == "flip" and size:
            data[pos % size] ^= 1 << (arg % 8)
        elif op == "byte" and size:
            data[pos % size] = arg % 256
        elif op in ("value", "key"):
            token = VALUES[arg % len(VALUES)] if op == "value" else KEYS[arg % len(KEYS)]
            if lay.cards and suffix == ".fits":
                pool = lay.structural if (arg >> 16) % 2 and lay.structural else lay.cards
                off = pool[where % len(pool)]
                if off + CARD > size:
                    continue
                if op == "value":
                    card = f"{data[off : off + 8].decode('latin-1')}= {token:>20}"
                else:
                    card = f"{token:<8}{data[off + 8 : off + CARD].decode('latin-1')}"
                data[off : off + CARD] = card.encode("latin-1")[:CARD].ljust(CARD, b" ")
            else:
                blob = token.encode("latin-1")
                data[pos : pos + len(blob)] = blob
        elif op == "insert":
            blob = bytes((arg >> (8 * (i % 4))) % 256 for i in range(1 + arg % 64))
            data[pos:pos] = blob
        elif op == "delete":
            del data[pos : pos + 1 + arg % BLOCK]
        elif op == "truncate":
            del data[max(0, size - 1 - arg % (3 * BLOCK)) :]
        elif op == "block" and size >= BLOCK:
            start = (pos // BLOCK) * BLOCK
            chunk = bytes(data[start : start + BLOCK])
            if arg % 2:
                del data[start : start + BLOCK]
            else:
                data[start:start] = chunk
    return bytes(data)


def set_card(path: Path, key: str, value: str, hdu: int = 0) -> Path:
    """Rewrite the value of one card of a valid FITS file in place, byte for byte.

    Parameters
    ----------
    path : Path
        A valid FITS file.
    key : str
        Keyword whose (first) card is rewritten.
    value : str
        The new value field, as written in the card (``'1000000000000'``, ``"'X'"``).
    hdu : int
        Index of the HDU.
    """
    raw = bytearray(path.read_bytes())
    with fits.open(io.BytesIO(bytes(raw))) as hdul:
        info = hdul[hdu].fileinfo()
    for off in range(info["hdrLoc"], info["datLoc"], CARD):
        if raw[off : off + 8].rstrip() == key.encode():
            raw[off : off + CARD] = f"{key:<8}= {value:>20}".ljust(CARD).encode("latin-1")
            path.write_bytes(bytes(raw))
            return path
    raise KeyError(f"{path.name}: HDU {hdu} has no {key} card")


def random_ops(rng: random.Random, max_ops: int = 4) -> list[tuple[str, int, int]]:
    """Mutation operations drawn from a seeded random generator."""
    return [
        (rng.choice(OPS), rng.getrandbits(32), rng.getrandbits(32))
        for _ in range(rng.randint(1, max_ops))
    ]


# ------------------------------------------------------------------------------ the calls
class Hang(BaseException):
    """A reader call ran past its time limit."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` in the main thread when the block runs longer than ``seconds``."""

    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"no answer after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclasses.dataclass
class Outcome:
    """What one reader call did with one file.

    Attributes
    ----------
    call : str
        ``read_meta``, ``open``, ``load``, ``problems``, ``strict``, ``info`` or ``validate``.
    status : str
        ``ok`` (returned), ``clean`` (a :class:`PhangsProductsError`), ``foreign`` (any
        other exception, or an ``internal.error`` of the validator), ``hang`` (time limit).
    error : str
        Exception type (``''`` when ok).
    place : str
        ``file:line`` of the innermost project frame, and of the raising frame.
    message : str
        First line of the message.
    seconds : float
        Wall time of the call.
    """

    call: str
    status: str
    error: str = ""
    place: str = ""
    message: str = ""
    seconds: float = 0.0


_ROOT = Path(pp.__file__).resolve().parent.parent  # the library under test, wherever it is
_PROJECT_DIRS = tuple((_ROOT / d).resolve() for d in ("phangs_products", "validation", "pipeline"))


def _place(exc: BaseException) -> str:
    """``file:line`` of the innermost project frame (and of the raising frame, if elsewhere)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    ours = [
        f
        for f in frames
        if any(Path(f.filename).resolve().is_relative_to(d) for d in _PROJECT_DIRS)
    ]
    last = frames[-1]
    raiser = f"{Path(last.filename).parent.name}/{Path(last.filename).name}:{last.lineno}"
    if not ours:
        return raiser
    mine = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}"
    return mine if ours[-1] is last else f"{mine} -> {raiser}"


def _run(call: str, func: Callable[[], Any], timeout: float) -> tuple[Outcome, Any]:
    start = time.perf_counter()
    result = None
    try:
        with deadline(timeout), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = func()
        outcome = Outcome(call, "ok")
    except Hang as exc:
        outcome = Outcome(call, "hang", "Hang", _place(exc), str(exc))
    except PhangsProductsError as exc:
        outcome = Outcome(call, "clean", type(exc).__name__, "", _first_line(exc))
    except Exception as exc:
        outcome = Outcome(call, "foreign", type(exc).__name__, _place(exc), _first_line(exc))
    outcome.seconds = time.perf_counter() - start
    return outcome, result


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else ""


def _load(model: pp.Model) -> object:
    """Touch the lazily loaded content of a model (arrays, tables, regions, WCS)."""
    if isinstance(model, pp.CatalogModel):
        return len(model.table)
    if isinstance(model, pp.FlcModel):
        return [(model.sci(chip).shape, model.chip_wcs(chip)) for chip in model.chips]
    if isinstance(model, pp.ImageModel):
        return model.data.sum(), model.wcs
    if isinstance(model, pp.RegionsModel):
        return len(model.regions)
    return None


class MultiLineError(Exception):
    """``info`` wrote more than one line on stderr."""


def _info(path: Path) -> int:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["info", str(path)])
    lines = err.getvalue().splitlines()
    if len(lines) > 1:
        raise MultiLineError(f"info wrote {len(lines)} error lines: {err.getvalue()[:200]!r}")
    return code


def _validate(path: Path) -> list[Any]:
    from phangs_products.validation.filecheck import check_file

    result = check_file(str(path), FIELD, data=True)
    internal = [p for p in result.problems if p.rule == "internal.error"]
    if internal:
        raise _Internal(internal[0].message)
    return result.problems


class _Internal(Exception):
    """The validator reported ``internal.error`` (an exception it caught)."""


#: Validator rules that say a FITS file is structurally damaged.
STRUCTURAL = ("fits.not-fits", "fits.truncated", "fits.unreadable", "fits.structure")


def exercise(path: Path, timeout: float = 10.0) -> list[Outcome]:
    """Every reader call on one file, each with a time limit.

    Returns
    -------
    list of Outcome
        ``read_meta``, ``open``, ``load`` and ``problems`` (when ``open`` returned),
        ``strict``, ``info`` and ``validate``; plus an ``agree`` outcome (status ``foreign``)
        when the validator reports structural damage that ``open(strict=True)`` accepted.
    """
    outcomes = []
    out, _ = _run("read_meta", lambda: pp.read_meta(path), timeout)
    outcomes.append(out)
    out, model = _run("open", lambda: pp.open(path), timeout)
    outcomes.append(out)
    if model is not None:
        try:
            outcomes.append(_run("load", lambda: _load(model), timeout)[0])
            outcomes.append(_run("problems", lambda: model.problems(data=True), timeout)[0])
        finally:
            if isinstance(model, FitsModel):
                model.close()
    strict, model = _run("strict", lambda: pp.open(path, strict=True), timeout)
    if isinstance(model, FitsModel):
        model.close()
    outcomes.append(strict)
    out, code = _run("info", lambda: _info(path), timeout)
    if out.status == "ok":
        out.message = f"exit {code}"
    outcomes.append(out)
    out, problems = _run("validate", lambda: _validate(path), timeout)
    if out.status == "ok":
        out.message = " ".join(sorted({p.rule for p in problems if p.severity == "error"}))
    if out.error == "_Internal":
        out.error, out.place = "internal.error", out.message.rpartition("(at ")[2].rstrip(")")
    outcomes.append(out)
    structural = [p for p in problems or [] if p.rule in STRUCTURAL]
    if structural and strict.status == "ok":
        outcomes.append(
            Outcome("agree", "foreign", "accepted", structural[0].rule, str(structural[0]))
        )
    return outcomes

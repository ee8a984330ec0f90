"""Bounded FITS structure scan: check the layout a file announces before astropy reads it.

astropy trusts what a header says: ``NAXIS = 1000000000000`` makes it loop while memory grows,
``BITPIX = 17`` or ``TFIELDS = 999`` surface later as ``KeyError`` from deep inside, and a
header that announces more data than the file holds is found only when the data are read.
:func:`scan_file` (and :func:`scan_bytes` for a file already in memory) walks the 2880-byte
header blocks with plain byte parsing, in bounded time and memory, and checks

* the file is a regular file (a FIFO would block the reader) that starts with ``SIMPLE  =``;
* every header is printable ASCII, its cards are parseable and it ends with an ``END`` card;
  at most :data:`MAX_CARDS` header cards and :data:`MAX_HDUS` HDUs in the file;
* the mandatory keywords: ``BITPIX`` in {8, 16, 32, 64, -32, -64}, ``NAXIS`` in 0..999 with
  every ``NAXISn`` present and >= 0, ``PCOUNT``/``GCOUNT`` sane for the HDU type;
* binary and ASCII tables: ``TFIELDS`` in 0..999 with every ``TFORMn`` present and valid, and
  the row width the columns need equal to ``NAXIS1``;
* the data every header announces fit in the file, and nothing but extensions follow.

The first violation raises :class:`FitsStructureError`, a
:class:`~phangs_products.errors.ProductError` that carries a
:class:`~phangs_products.errors.Problem` (rule ``fits.not-fits``, ``fits.truncated`` or
``fits.structure``), so readers raise it and the validator reports it.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from astropy.io import fits

from phangs_products.errors import Problem, ProductError, reading
from phangs_products.safeio import open_regular

__all__ = [
    "BLOCK",
    "CARD",
    "LEFT_TO_ASTROPY",
    "MAX_CARDS",
    "MAX_HDUS",
    "FitsLayout",
    "FitsStructureError",
    "HduLayout",
    "HeaderValues",
    "card_lines",
    "parse_value",
    "scan_bytes",
    "scan_file",
]

log = logging.getLogger(__name__)

BLOCK = 2880
CARD = 80
#: Most HDUs a product may have (an FLC has about 25).
MAX_HDUS = 1000
#: Most header cards a file may have, all HDUs together (8 MB of headers; an FLC has 1,500).
MAX_CARDS = 100_000
BITPIX_VALUES = (8, 16, 32, 64, -32, -64)
MAX_AXES = 999
MAX_FIELDS = 999

#: Bytes of one binary-table element per TFORM type code (X is counted in bits).
_BINARY_WIDTH = {
    "L": 1,
    "X": 1,
    "B": 1,
    "I": 2,
    "J": 4,
    "K": 8,
    "A": 1,
    "E": 4,
    "D": 8,
    "C": 8,
    "M": 16,
    "P": 8,
    "Q": 16,
}
_BINARY_TFORM = re.compile(r"\s*(\d*)([LXBIJKAEDCMPQ])(.*?)\s*")
_ASCII_TFORM = re.compile(r"\s*([AIFED])(\d+)(?:\.\d+)?\s*")
_KEYWORD = re.compile(rb"[A-Z0-9_-]*")
_END = re.compile(rb"END(?![A-Z0-9_-])")
_NUMBER = rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[EDed][+-]?\d+)?"
#: A ``KEYWORD = value`` card whose value follows the FITS fixed or free format.
_VALUE_CARD = re.compile(
    rb"(?=[A-Z0-9_ -]{8}= )([A-Z0-9_-]{1,8}) *= *(?:'(?:[^']|'')*'|[TF]|"
    + _NUMBER
    + rb"|\( *"
    + _NUMBER
    + rb" *, *"
    + _NUMBER
    + rb" *\)|) *(?:/|\Z)",
    re.DOTALL,
)
_CARDS = re.compile(rb".{80}", re.DOTALL)
#: The value of a record-valued keyword card (``DP1 = 'AXIS.1: 1'``): its field specifier.
_RECORD_FIELD = rb"[A-Za-z_]\w*(?:\.\d+)?(?:\.[A-Za-z_]\w*(?:\.\d+)?)*"
_RECORD_VALUE = rb": +" + _NUMBER + rb" *'"
_RECORD = re.compile(rb"'(" + _RECORD_FIELD + rb")" + _RECORD_VALUE)
_STRING = re.compile(rb" *'((?:[^']|'')*)' *(?:/.*)?", re.DOTALL)
_INTEGER = re.compile(rb" *([+-]?\d+) *(?:/.*)?", re.DOTALL)
_COMMENTARY = (b"COMMENT ", b"HISTORY ", b"        ")
_NOT_PRINTABLE = bytes(b for b in range(256) if not 0x20 <= b <= 0x7E)


class FitsStructureError(ProductError):
    """A FITS file whose structure is broken: one :class:`Problem`, printable as one line.

    Attributes
    ----------
    problem : Problem
        Rule ``fits.not-fits``, ``fits.truncated`` or ``fits.structure``, with file and HDU.
    """

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__(str(problem))


@dataclasses.dataclass(frozen=True)
class HduLayout:
    """Where one HDU lies in the file, as its header announces, and its header.

    Attributes
    ----------
    index : int
        Position in the file (0 = primary).
    xtension : str
        ``PRIMARY`` or the ``XTENSION`` value (``IMAGE``, ``BINTABLE``, ...).
    extname : str
        ``EXTNAME`` (``''`` when absent).
    extver : int or None
        ``EXTVER`` (1 when absent, ``None`` when not an integer).
    header_start, data_start : int
        Byte offsets of the header and of the data.
    data_size : int
        Bytes of data the header announces (before padding to a whole block).
    cards : int
        Cards before the END card.
    raw_header : bytes
        The header's blocks, END card included.
    raw_values : dict, optional
        The value field (columns 11-80) of every ``KEY = value`` card by keyword (the first
        card of a repeated keyword), when the scan read every value card of the header;
        ``None`` when the header has cards only astropy reads (``HIERARCH``, record-valued
        keywords, unusual value formats).
    file : str
        File name used in messages.
    compressed : bool
        A tile-compressed image: a binary table whose ``ZIMAGE`` astropy reads as true.
    """

    index: int
    xtension: str
    extname: str
    extver: int | None
    header_start: int
    data_start: int
    data_size: int
    cards: int
    raw_header: bytes = dataclasses.field(repr=False, compare=False)
    raw_values: dict[str, bytes] | None = dataclasses.field(default=None, repr=False, compare=False)
    file: str = dataclasses.field(default="", repr=False, compare=False)
    compressed: bool = False

    @property
    def end(self) -> int:
        """Offset just past the data, padded to a whole block (where the next HDU starts)."""
        return self.data_start + -(-self.data_size // BLOCK) * BLOCK

    @property
    def name(self) -> str:
        """HDU name as astropy gives it: upper-case ``EXTNAME``, ``PRIMARY`` for HDU 0."""
        return self.extname.upper() or ("PRIMARY" if self.index == 0 else "")

    @property
    def ver(self) -> int | None:
        """``EXTVER`` (astropy's ``hdu.ver``)."""
        return self.extver

    @functools.cached_property
    def header(self) -> fits.Header:
        """The header, parsed by astropy on first use (the cards were checked by the scan)."""
        with reading(self.file, f"HDU {self.index}", "cannot parse the header"):
            return fits.Header.fromstring(self.raw_header)

    @functools.cached_property
    def values(self) -> Mapping[str, Any]:
        """Keyword values by FITS keyword, parsed from the header bytes as they are asked for.

        Values are those astropy gives (``str`` without trailing blanks, ``bool``, ``int``,
        ``float``; ``None`` for an undefined value); long strings, complex values and headers
        with cards only astropy reads come from the astropy :attr:`header`.
        """
        if self.raw_values is None:
            return self.header
        return HeaderValues(self.raw_values, self)


class HeaderValues(Mapping[str, Any]):
    """Read-only keyword values of one header, each parsed from its value field on first use.

    Parameters
    ----------
    raw : dict
        Value fields (card columns 11-80) by keyword.
    hdu : HduLayout
        The HDU, whose astropy header answers for values this parser leaves to astropy.
    """

    __slots__ = ("_hdu", "_odd", "_raw")

    def __init__(self, raw: dict[str, bytes], hdu: HduLayout):
        self._raw = raw
        self._hdu = hdu
        self._odd: dict[str, Any] = {}  # long strings and the values astropy reads

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when the header has no such keyword."""
        raw = self._raw.get(key)
        if raw is None:
            return default
        value = parse_value(raw)
        return self._odd_value(key) if value is LEFT_TO_ASTROPY else value

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, LEFT_TO_ASTROPY)
        if value is LEFT_TO_ASTROPY:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def _odd_value(self, key: str) -> Any:
        """A long string (joined from its CONTINUE cards) or a value only astropy reads."""
        if key not in self._odd:
            raw = self._hdu.raw_header
            card = key.encode("ascii").ljust(8) + b"= "
            at = raw.find(card)
            while at % CARD:  # the keyword's first card is in the values: the loop ends
                at = raw.find(card, at + 1)
            end = at + CARD
            while raw.startswith(b"CONTINUE", end):
                end += CARD
            self._odd[key] = _long_string(raw[at:end]) if end > at + CARD else None
            if self._odd[key] is None:
                where = f"HDU {self._hdu.index} keyword {key}"
                with reading(self._hdu.file, where, "cannot parse the value"):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        card_image = raw[at:end].decode("ascii")
                        self._odd[key] = fits.Card.fromstring(card_image).value
        return self._odd[key]


def _long_string(cards: bytes) -> str | None:
    """The value of a long string over CONTINUE cards, as astropy joins it (None: not one).

    Each card's string loses its trailing blanks and one trailing ``&``; the joined string has
    ``''`` read as ``'`` and loses its trailing blanks.
    """
    parts = []
    for offset in range(0, len(cards), CARD):
        match = _STRING.fullmatch(cards, offset + (10 if offset == 0 else 8), offset + CARD)
        if match is None:
            return None
        part = match[1].decode("ascii").rstrip()
        parts.append(part[:-1] if part.endswith("&") else part)
    return "".join(parts).replace("''", "'").rstrip()


#: What :func:`parse_value` returns for a long string or a value it leaves to astropy.
LEFT_TO_ASTROPY = object()
_QUICK_VALUE = re.compile(
    rb" *(?:'((?:[^']|'')*)'|([TF])|([+-]?\d+)|(" + _NUMBER + rb")|) *(?:/.*)?", re.DOTALL
)


@functools.lru_cache(maxsize=65536)
def parse_value(field: bytes) -> Any:
    """The value of a card's value field as astropy reads it, or ``LEFT_TO_ASTROPY`` (rare forms).

    Strings lose their trailing blanks and have ``''`` read as ``'``; ``T``/``F`` are
    ``bool``; integers ``int``; reals (``E`` or ``D`` exponent) ``float``; an empty value is
    ``None``.  Long strings (ending in ``&``, continued on CONTINUE cards) and complex values
    are left to astropy.  Memoised: most value fields repeat from file to file.
    """
    match = _QUICK_VALUE.fullmatch(field)
    if match is None:
        return LEFT_TO_ASTROPY
    string, logical, integer, real = match.groups()
    if string is not None:
        text = string.decode("ascii").replace("''", "'").rstrip()
        return LEFT_TO_ASTROPY if text.endswith("&") else text
    if logical is not None:
        return logical == b"T"
    if integer is not None:
        return int(integer)
    if real is not None:
        return float(real.replace(b"D", b"E").replace(b"d", b"e"))
    return None


@dataclasses.dataclass(frozen=True)
class FitsLayout:
    """The checked layout of a FITS file; also a header-only stand-in for its ``HDUList``.

    ``layout[0]``, ``layout["SCI", 2]``, ``layout.index_of("CATALOG")`` and iteration work as
    on an ``HDUList`` whose HDUs have ``header``, ``name`` and ``ver`` but no data, which is
    what :func:`phangs_products.conformance.check_hdul` needs without ``data``.

    Attributes
    ----------
    file : str
        File name used in messages.
    size : int
        File size in bytes.
    hdus : tuple of HduLayout
        Every HDU, in file order.
    """

    file: str
    size: int
    hdus: tuple[HduLayout, ...]

    @property
    def primary_header(self) -> bytes:
        """The primary header's blocks (for ``astropy.io.fits.Header.fromstring``)."""
        return self.hdus[0].raw_header

    def index_of(self, key: int | str | tuple[str, int]) -> int:
        """Position of an HDU given as index, ``EXTNAME`` or ``(EXTNAME, EXTVER)``.

        Raises
        ------
        KeyError
            If no HDU matches (as ``HDUList.index_of`` does).
        """
        if isinstance(key, int):
            if 0 <= key < len(self.hdus):
                return key
            raise KeyError(f"HDU {key} not found")
        name, ver = (key, None) if isinstance(key, str) else key
        name = name.strip().upper()
        for hdu in self.hdus:
            if hdu.name == name and (ver is None or hdu.ver == ver):
                return hdu.index
        raise KeyError(f"Extension {key!r} not found.")

    def __getitem__(self, key: int | str | tuple[str, int]) -> HduLayout:
        return self.hdus[self.index_of(key)]

    def __contains__(self, key: object) -> bool:
        try:
            self.index_of(key)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            return False
        return True

    def __iter__(self) -> Iterator[HduLayout]:
        return iter(self.hdus)

    def __len__(self) -> int:
        return len(self.hdus)


def scan_file(
    path: str | Path, *, max_hdus: int = MAX_HDUS, max_cards: int = MAX_CARDS
) -> FitsLayout:
    """Check the structure of a FITS file on disk, reading its headers only.

    Parameters
    ----------
    path : path-like
        The file.  Anything but a regular file is refused before it is opened.
    max_hdus : int
        Most HDUs accepted.
    max_cards : int
        Most header cards accepted, all HDUs together.

    Returns
    -------
    FitsLayout
        Every HDU's place and announced data size.

    Raises
    ------
    FitsStructureError
        On the first structural violation (not FITS, truncated, broken header).
    ProductError
        If the path is missing or not a regular file.
    """
    path = Path(path)
    with open_regular(path) as fh:
        size = fh.seek(0, 2)

        def read(offset: int, n: int) -> bytes:
            fh.seek(offset)
            return fh.read(n)

        return _scan(read, size, path.name, max_hdus, max_cards)


def scan_bytes(
    raw: bytes, file: str, *, max_hdus: int = MAX_HDUS, max_cards: int = MAX_CARDS
) -> FitsLayout:
    """Check the structure of a FITS file held in memory (see :func:`scan_file`)."""
    view = memoryview(raw)
    return _scan(
        lambda offset, n: bytes(view[offset : offset + n]), len(raw), file, max_hdus, max_cards
    )


# ------------------------------------------------------------------------------- the walk
def _fail(rule: str, file: str, where: str, message: str) -> FitsStructureError:
    return FitsStructureError(Problem(rule, message, file, where=where))


def _scan(
    read: Callable[[int, int], bytes], size: int, file: str, max_hdus: int, max_cards: int
) -> FitsLayout:
    head = read(0, CARD)
    if size == 0:
        raise _fail("fits.truncated", file, "HDU 0", "file is empty (0 bytes)")
    if not head.startswith(b"SIMPLE  ="):
        shown = head[:16].decode("latin-1").encode("unicode_escape").decode()
        raise _fail(
            "fits.not-fits",
            file,
            "",
            f"not a readable FITS file: it starts with {shown!r} (expected 'SIMPLE  =')",
        )
    hdus: list[HduLayout] = []
    budget = max_cards  # header cards left for the rest of the file
    offset = 0
    while offset < size:
        index = len(hdus)
        if index >= max_hdus:
            raise _fail(
                "fits.structure", file, f"HDU {index}", f"more than {max_hdus} HDUs in one file"
            )
        if index and read(offset, 9) != b"XTENSION=":
            raise _fail(
                "fits.structure",
                file,
                f"HDU {index}",
                f"expected an XTENSION card at byte {offset} (the {size - offset} bytes from "
                "there to the end of the file are not an extension)",
            )
        header = _read_header(read, offset, size, file, index, budget, max_cards)
        budget -= len(header) // CARD
        hdu = _check_header(header, offset, file, index)
        if hdu.data_start + hdu.data_size > size:
            raise _fail(
                "fits.truncated",
                file,
                f"HDU {index}",
                f"truncated: the data end at byte {hdu.data_start + hdu.data_size}, "
                f"the file has {size} bytes",
            )
        hdus.append(hdu)
        offset = hdu.end
    if size % BLOCK:
        raise _fail(
            "fits.truncated",
            file,
            f"HDU {len(hdus) - 1}",
            f"truncated: {size} bytes is not a whole number of 2880-byte FITS blocks "
            f"(expected {size + BLOCK - size % BLOCK})",
        )
    return FitsLayout(file, size, tuple(hdus))


def _read_header(
    read: Callable[[int, int], bytes],
    start: int,
    size: int,
    file: str,
    index: int,
    budget: int,
    limit: int,
) -> bytes:
    """The blocks of one header, up to and including the block of its END card."""
    where = f"HDU {index}"
    blocks: list[bytes] = []
    offset = start
    while True:
        if len(blocks) * (BLOCK // CARD) >= budget:
            raise _fail(
                "fits.structure",
                file,
                where,
                f"no END card within {limit} header cards (all HDUs together)",
            )
        block = read(offset, BLOCK)
        if len(block) < BLOCK:
            raise _fail(
                "fits.truncated",
                file,
                where,
                f"truncated: the header has no END card before the end of the file ({size} bytes)",
            )
        bad = block.translate(None, _NOT_PRINTABLE)
        if len(bad) != BLOCK:
            at = next(i for i, b in enumerate(block) if not 0x20 <= b <= 0x7E)
            card = len(blocks) * (BLOCK // CARD) + at // CARD + 1
            key = block[at - at % CARD : at - at % CARD + 8].decode("latin-1").strip()
            raise _fail(
                "fits.structure",
                file,
                f"{where} card {card}" + (f" ({key})" if key.isprintable() and key else ""),
                f"byte 0x{block[at]:02x} at column {at % CARD + 1} is not printable ASCII "
                "(FITS headers are ASCII text)",
            )
        blocks.append(block)
        offset += BLOCK
        for found in _END.finditer(block):
            pos = found.start()
            if pos % CARD:
                continue
            if block[pos + 3 : pos + CARD].strip():
                card = (len(blocks) - 1) * (BLOCK // CARD) + pos // CARD + 1
                raise _fail("fits.structure", file, f"{where} card {card}", "malformed END card")
            if block[pos + CARD :].strip():
                raise _fail(
                    "fits.structure", file, where, "the bytes after the END card are not blank"
                )
            return b"".join(blocks)


_KEY_CHARS = frozenset(bytes([c]) for c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _check_header(header: bytes, start: int, file: str, index: int) -> HduLayout:
    """Parse the cards of one header and check its mandatory keywords; return its layout."""
    where = f"HDU {index}"
    ncards = _end_card(header)
    values, quick = _quick_values(header, ncards)
    if values is None:
        values, quick = _card_values(header, ncards, file, where)
    first = header[:8].rstrip()
    if index == 0:
        if first != b"SIMPLE" or _bare(values.get("SIMPLE")) != "T":
            raise _fail("fits.structure", file, where, "the first card is not SIMPLE = T")
        xtension = "PRIMARY"
    else:
        if first != b"XTENSION":
            raise _fail("fits.structure", file, where, "the first card is not XTENSION")
        xtension = _string(values, "XTENSION", file, where).strip()
    bitpix = _integer(values, "BITPIX", file, where)
    if bitpix not in BITPIX_VALUES:
        raise _fail(
            "fits.structure",
            file,
            where,
            f"BITPIX = {bitpix} (expected one of {', '.join(map(str, BITPIX_VALUES))})",
        )
    naxis = _integer(values, "NAXIS", file, where)
    if not 0 <= naxis <= MAX_AXES:
        raise _fail(
            "fits.structure",
            file,
            where,
            f"NAXIS = {naxis} is not a number of axes (expected 0 to {MAX_AXES})",
        )
    axes = []
    for n in range(1, naxis + 1):
        value = _integer(values, f"NAXIS{n}", file, where, f" (NAXIS = {naxis})")
        if value < 0:
            raise _fail("fits.structure", file, where, f"NAXIS{n} = {value} is negative")
        axes.append(value)
    extension = index > 0
    pcount = _integer(values, "PCOUNT", file, where) if extension or "PCOUNT" in values else 0
    gcount = _integer(values, "GCOUNT", file, where) if extension or "GCOUNT" in values else 1
    if pcount < 0 or gcount < 0:
        raise _fail(
            "fits.structure", file, where, f"PCOUNT = {pcount}, GCOUNT = {gcount} (expected >= 0)"
        )
    groups = bool(index == 0 and axes and axes[0] == 0 and _bare(values.get("GROUPS")) == "T")
    if xtension in ("A3DTABLE", "BINTABLE"):
        xtension = "BINTABLE"  # the old name of binary tables, read as such by astropy
    if xtension in ("IMAGE", "BINTABLE", "TABLE") and gcount != 1:
        raise _fail("fits.structure", file, where, f"GCOUNT = {gcount} (expected 1)")
    if xtension in ("IMAGE", "TABLE") and pcount != 0:
        raise _fail("fits.structure", file, where, f"PCOUNT = {pcount} (expected 0)")
    if xtension in ("BINTABLE", "TABLE"):
        _check_table(values, xtension, bitpix, axes, pcount, file, where)
    compressed = xtension == "BINTABLE" and "ZIMAGE" in values and _truthy(values["ZIMAGE"])
    if compressed:
        _check_compressed(values, file, where)
    if naxis == 0:
        elements = 0
    elif groups:
        elements = math.prod(axes[1:])
    else:
        elements = math.prod(axes)
    data_size = abs(bitpix) // 8 * gcount * (pcount + elements) if naxis else 0
    extname = _STRING.fullmatch(values.get("EXTNAME", b""))
    extver = _INTEGER.fullmatch(values.get("EXTVER", b"1"))
    return HduLayout(
        index=index,
        xtension=xtension,
        extname=extname[1].decode().replace("''", "'").strip() if extname else "",
        extver=int(extver[1]) if extver else None,
        header_start=start,
        data_start=start + len(header),
        data_size=data_size,
        cards=ncards,
        raw_header=header,
        raw_values=values if quick else None,
        file=file,
        compressed=compressed,
    )


def _end_card(header: bytes) -> int:
    """Number of cards before the END card (the header was read up to its END card)."""
    for found in _END.finditer(header):
        if not found.start() % CARD:
            return found.start() // CARD
    raise AssertionError("a header read by _read_header ends with an END card")


def _card_values(
    header: bytes, ncards: int, file: str, where: str
) -> tuple[dict[str, bytes], bool]:
    """The value fields by keyword, card by card (any header; raises on a broken card).

    Also returns whether every value card was read here (no card left to astropy).
    """
    values: dict[str, bytes] = {}
    quick = True
    after_number = False  # the previous card has a value that is not a string
    for number, card in enumerate(_CARDS.findall(header, 0, ncards * CARD), start=1):
        if card[:8] in _COMMENTARY:
            after_number = False
            continue
        if card[:8] == b"CONTINUE":  # long-string convention: a string continuing a string
            if _STRING.fullmatch(card, 8) is None or after_number:
                raise _fail(
                    "fits.structure",
                    file,
                    _place(where, number, card),
                    "a CONTINUE card holds the rest of a string value",
                )
            continue
        match = _VALUE_CARD.match(card)
        if match is not None:
            key = match[1].decode("ascii")
            first = card[10:].lstrip(b" ")[:1]
            if first == b"'" and (record := _RECORD.match(card, card.index(b"'"))) is not None:
                if key in _MANDATORY or _MANDATORY_INDEXED.fullmatch(key):
                    # astropy reads such a card as a record value of the keyword (a float)
                    raise _fail(
                        "fits.structure",
                        file,
                        _place(where, number, card),
                        f"{key} holds a record value ({_bare(card[10:])}; expected a plain value)",
                    )
                key = f"{key}.{record[1].decode('ascii')}"  # DP1 = 'AXIS.1: 1' is DP1.AXIS.1
                quick = False  # astropy reads the header differently
                if key in values:  # wcslib corrupts memory on repeated distortion records
                    raise _fail(
                        "fits.structure",
                        file,
                        _place(where, number, card),
                        f"record-valued keyword {key} appears twice",
                    )
            if key not in values:
                values[key] = card[10:]
            elif key in _MANDATORY or _MANDATORY_INDEXED.fullmatch(key):
                raise _fail(
                    "fits.structure", file, _place(where, number, card), "keyword appears twice"
                )
            after_number = first not in (b"'", b"/", b"")
            continue
        _check_odd_card(card, file, _place(where, number, card))
        quick = False
        after_number = False
    return values, quick


# Line-wise patterns over a header's cards joined by newlines (headers are printable ASCII,
# so a newline never occurs inside a card): each mirrors a test of :func:`_card_values`.
_LINE_COMMENTARY = rb"(?:COMMENT |HISTORY |        )"
_LINE_STRING = rb"'[^'\n]*(?:''[^'\n]*)*'"
_LINE_VALUE = (
    rb"(?=[A-Z0-9_ -]{8}= )[A-Z0-9_-]{1,8} *= *(?:"
    + _LINE_STRING
    + rb"|[TF]|"
    + _NUMBER
    + rb"|\( *"
    + _NUMBER
    + rb" *, *"
    + _NUMBER
    + rb" *\)|) *(?:/|$)"
)
#: One card per match: a plain ``KEY = value`` card (groups 1 and 2: keyword and value field),
#: commentary, a CONTINUE card holding a string, or any other card (group 3).  The value
#: card comes first: most cards are value cards, and this order is twice as fast.
_LINE = re.compile(
    rb"^(?:(?!CONTINUE|COMMENT |HISTORY )(?="
    + _LINE_VALUE
    + rb")([A-Z0-9_-]{1,8}) *= (.*)|"
    + _LINE_COMMENTARY
    + rb".*|CONTINUE *"
    + _LINE_STRING
    + rb" *(?:/.*)?|(.+))$",
    re.MULTILINE,
)
#: The end of what could be the value of a record-valued keyword card (``: 1'``), anywhere.
_RECORD_TAIL = re.compile(_RECORD_VALUE)
#: A card whose value is neither a string nor empty (a CONTINUE card may not follow it).
_NOT_STRING = re.compile(rb"(?!COMMENT |HISTORY |        |CONTINUE).{8}= *[^'/ ]")


def card_lines(header: bytes, ncards: int) -> bytes:
    """The first ``ncards`` cards of a header joined by newlines, for line-wise patterns.

    Headers are printable ASCII, so a newline never occurs inside a card.
    """
    return b"\n".join(_CARDS.findall(header, 0, ncards * CARD))


def _quick_values(header: bytes, ncards: int) -> tuple[dict[str, bytes] | None, bool]:
    """The value fields by keyword of a header of plain cards, read in one regex pass.

    Returns ``(None, False)`` when a card needs :func:`_card_values` (an odd card, what may
    be a record-valued keyword, a CONTINUE card after a value that is not a string, a
    repeated keyword): it reads such headers card by card and says what is wrong.
    """
    lines = card_lines(header, ncards)
    rows = _LINE.findall(lines)
    if any(odd for _, _, odd in rows) or _RECORD_TAIL.search(lines):
        return None, False
    at = lines.find(b"\nCONTINUE")
    while at >= 0:
        if _NOT_STRING.match(lines, at - CARD, at):
            return None, False
        at = lines.find(b"\nCONTINUE", at + 1)
    keyed = [(key, value) for key, value, _ in rows if key]
    values = dict(keyed)
    if len(values) != len(keyed):
        return None, False
    return {key.decode("ascii"): value for key, value in values.items()}, True


_MANDATORY = frozenset(
    {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "TFIELDS", "THEAP"}
)
_MANDATORY_INDEXED = re.compile(r"(?:NAXIS|TFORM|TBCOL)[1-9][0-9]{0,2}")


def _place(where: str, number: int, card: bytes) -> str:
    key = card[:8].rstrip().decode("ascii")
    return f"{where} card {number} ({key})" if key else f"{where} card {number}"


def _check_odd_card(card: bytes, file: str, place: str) -> None:
    """A card that is neither commentary nor a plain ``KEY = value`` card (rare)."""
    if card.startswith(b"HIERARCH "):
        ok = _astropy_parses(card)
    elif not _KEYWORD.fullmatch(card[:8].rstrip(b" ")):
        raise _fail(
            "fits.structure", file, place, "keyword has characters other than A-Z, 0-9, _ and -"
        )
    elif card[8:10] == b"= ":
        ok = _astropy_parses(card)
    else:
        ok = _astropy_parses(card)
    if not ok:
        raise _fail("fits.structure", file, place, "card cannot be parsed as a FITS card")


def _check_table(
    values: dict[str, bytes],
    xtension: str,
    bitpix: int,
    axes: list[int],
    pcount: int,
    file: str,
    where: str,
) -> None:
    """TFIELDS, TFORMn (and TBCOLn) of a table agree with its row width ``NAXIS1``."""
    if bitpix != 8 or len(axes) != 2:
        raise _fail(
            "fits.structure",
            file,
            where,
            f"a {xtension} has BITPIX = 8 and NAXIS = 2 (got {bitpix} and {len(axes)})",
        )
    width, rows = axes
    tfields = _integer(values, "TFIELDS", file, where)
    if not 0 <= tfields <= MAX_FIELDS:
        raise _fail(
            "fits.structure",
            file,
            where,
            f"TFIELDS = {tfields} is not a number of columns (expected 0 to {MAX_FIELDS})",
        )
    need = 0
    for n in range(1, tfields + 1):
        tform = _string(values, f"TFORM{n}", file, where, f" (TFIELDS = {tfields})")
        if xtension == "BINTABLE":
            match = _BINARY_TFORM.fullmatch(tform)
            if match is None:
                raise _fail(
                    "fits.structure",
                    file,
                    where,
                    f"TFORM{n} = {tform!r} is not a binary-table column format",
                )
            repeat = int(match[1]) if match[1] else 1
            code = match[2]
            need += -(-repeat // 8) if code == "X" else repeat * _BINARY_WIDTH[code]
        else:
            match = _ASCII_TFORM.fullmatch(tform)
            if match is None:
                raise _fail(
                    "fits.structure",
                    file,
                    where,
                    f"TFORM{n} = {tform!r} is not an ASCII-table column format",
                )
            column = _integer(values, f"TBCOL{n}", file, where)
            end = column + int(match[2]) - 1
            if column < 1 or end > width:
                raise _fail(
                    "fits.structure",
                    file,
                    where,
                    f"column {n} (TBCOL{n} = {column}, TFORM{n} = {tform!r}) does not fit "
                    f"in the NAXIS1 = {width} characters of a row",
                )
        if f"TTYPE{n}" in values and _STRING.fullmatch(values[f"TTYPE{n}"]) is None:
            raise _fail("fits.structure", file, where, f"TTYPE{n} is not a string")
    if xtension == "BINTABLE" and need != width:
        raise _fail(
            "fits.structure",
            file,
            where,
            f"NAXIS1 = {width}, but the {tfields} columns need {need} bytes per row (TFORMn)",
        )
    if "THEAP" in values:
        theap = _integer(values, "THEAP", file, where)
        if not width * rows <= theap <= width * rows + pcount:
            raise _fail(
                "fits.structure",
                file,
                where,
                f"THEAP = {theap} is outside the data (table {width * rows} bytes, "
                f"heap {pcount} bytes)",
            )


def _check_compressed(values: dict[str, bytes], file: str, where: str) -> None:
    """The image keywords of a tile-compressed image (a binary table with ``ZIMAGE = T``).

    astropy reads them as soon as it meets the HDU: ``ZBITPIX``, ``ZNAXIS`` and every
    ``ZNAXISn``, and ``TTYPEn`` of every column when it looks for a ``ZBLANK`` column.
    """
    context = " (ZIMAGE = T: a tile-compressed image)"
    zbitpix = _integer(values, "ZBITPIX", file, where, context)
    if zbitpix not in BITPIX_VALUES:
        raise _fail(
            "fits.structure",
            file,
            where,
            f"ZBITPIX = {zbitpix} (expected one of {', '.join(map(str, BITPIX_VALUES))})",
        )
    znaxis = _integer(values, "ZNAXIS", file, where, context)
    if not 0 <= znaxis <= MAX_AXES:
        raise _fail(
            "fits.structure",
            file,
            where,
            f"ZNAXIS = {znaxis} is not a number of axes (expected 0 to {MAX_AXES})",
        )
    for n in range(1, znaxis + 1):
        if _integer(values, f"ZNAXIS{n}", file, where, context) < 0:
            raise _fail("fits.structure", file, where, f"ZNAXIS{n} is negative")
    for n in range(1, _integer(values, "TFIELDS", file, where) + 1):
        _string(values, f"TTYPE{n}", file, where, context)


def _truthy(raw: bytes) -> bool:
    """Whether astropy reads a value field as true (``T``, non-zero, a non-blank string)."""
    bare = _bare(raw)
    if bare in ("", "T"):  # an undefined value is a truthy object in astropy
        return True
    if bare == "F":
        return False
    string = _STRING.fullmatch(raw)
    if string is not None:
        return bool(string[1].rstrip())
    try:
        return float(bare.replace("D", "E")) != 0
    except ValueError:
        return True


def _missing(key: str, file: str, where: str, context: str) -> FitsStructureError:
    return _fail("fits.structure", file, where, f"{key} is missing{context}")


def _integer(values: dict[str, bytes], key: str, file: str, where: str, context: str = "") -> int:
    raw = values.get(key)
    if raw is None:
        raise _missing(key, file, where, context)
    match = _INTEGER.fullmatch(raw)
    if match is None:
        raise _fail("fits.structure", file, where, f"{key} = {_bare(raw)} is not an integer")
    return int(match[1])


def _string(values: dict[str, bytes], key: str, file: str, where: str, context: str = "") -> str:
    raw = values.get(key)
    if raw is None:
        raise _missing(key, file, where, context)
    match = _STRING.fullmatch(raw)
    if match is None:
        raise _fail("fits.structure", file, where, f"{key} = {_bare(raw)} is not a string")
    return match[1].decode().replace("''", "'")


def _bare(raw: bytes | None) -> str:
    """A value field without its comment."""
    return raw.split(b"/")[0].strip().decode() if raw is not None else ""


def _astropy_parses(card: bytes) -> bool:
    """Whether astropy reads a card the quick patterns did not recognise (rare)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = fits.Card.fromstring(card.decode("ascii"))
            _ = parsed.keyword, parsed.value, parsed.comment
    except Exception:  # any failure means astropy cannot read the card either
        return False
    return True

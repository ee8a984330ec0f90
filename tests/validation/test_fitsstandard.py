"""The validator's quick FITS-standard test of headers against astropy's verification.

``clean_headers`` lets clean files skip ``HDUList.verify``; it must never call a header clean
that astropy would fault.  Checked on every FITS product the project writes, on a real HST
FLT file, on hand-made violations and on seeded card-level mutations, each against astropy's
``verify`` of the same bytes.
"""

from __future__ import annotations

import io
import random
import warnings
from pathlib import Path

import fuzzkit
import pytest
from astropy.io import fits

from phangs_products.fitsscan import FitsStructureError, scan_bytes
from phangs_products.validation.fitshealth import verify_hdul
from phangs_products.validation.fitsstandard import clean_headers

REAL_FLT = Path(__file__).parents[1] / "data" / "real" / "hst" / "j8bt06nyq_sip_flt.fits"
CARD = 80


def astropy_problems(raw: bytes) -> list[str]:
    """astropy's verification of a file's bytes (messages)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdul = fits.open(io.BytesIO(raw), lazy_load_hdus=False)
    with hdul:
        return [p.message for p in verify_hdul(hdul, "x.fits")]


def card_offset(raw: bytes, hdu: int, key: str) -> int:
    """Byte offset of the first card ``key`` in header ``hdu``."""
    lay = scan_bytes(raw, "x.fits")[hdu]
    for n in range(lay.cards):
        at = lay.header_start + n * CARD
        if raw[at : at + 8].rstrip() == key.encode():
            return at
    raise KeyError(key)


def put_card(raw: bytes, at: int, card: str) -> bytes:
    return raw[:at] + card.ljust(CARD).encode("latin-1") + raw[at + CARD :]


@pytest.fixture(scope="module")
def fits_corpus(tmp_path_factory) -> list[Path]:
    corpus = fuzzkit.write_corpus(tmp_path_factory.mktemp("corpus"))
    field = next(iter(corpus.values())).parent
    return [*sorted(field.glob("*.fits")), REAL_FLT]


def test_every_product_is_clean_and_astropy_agrees(fits_corpus):
    for path in fits_corpus:
        raw = path.read_bytes()
        assert astropy_problems(raw) == [], path.name
        # an FLC's record-valued distortion cards (DP1 = 'AXIS.1: 1') are left to astropy
        assert clean_headers(scan_bytes(raw, path.name)) == ("flc" not in path.name), path.name


def _exponent(raw: bytes) -> bytes:
    at = card_offset(raw, 0, "CRPIX1")
    return put_card(raw, at, "CRPIX1  =              1.5e+01 / lower-case exponent")


def _extend_string(raw: bytes) -> bytes:
    return put_card(raw, card_offset(raw, 0, "EXTEND"), "EXTEND  = 'T'")


def _old_table_name(raw: bytes) -> bytes:
    return put_card(raw, card_offset(raw, 1, "XTENSION"), "XTENSION= 'A3DTABLE'")


def _extra_axis(raw: bytes) -> bytes:
    return put_card(raw, card_offset(raw, 0, "BUNIT"), "NAXIS3  =                    1")


def _extname_number(raw: bytes) -> bytes:
    return put_card(raw, card_offset(raw, 1, "EXTNAME"), "EXTNAME =                    5")


def _swapped(raw: bytes) -> bytes:
    bitpix, naxis = card_offset(raw, 0, "BITPIX"), card_offset(raw, 0, "NAXIS")
    first, second = raw[bitpix : bitpix + CARD], raw[naxis : naxis + CARD]
    return put_card(put_card(raw, bitpix, second.decode()), naxis, first.decode())


@pytest.mark.parametrize(
    ("kind", "break_it"),
    [
        ("drc-sci", _exponent),
        ("assoc-mask", _extend_string),
        ("cluster-catalog", _old_table_name),
        ("drc-sci", _extra_axis),
        ("cluster-catalog", _extname_number),
        ("drc-sci", _swapped),
    ],
)
def test_a_violation_is_left_to_astropy(tmp_path, kind, break_it):
    corpus = fuzzkit.write_corpus(tmp_path)
    raw = break_it(corpus[kind].read_bytes())
    assert not clean_headers(scan_bytes(raw, "x.fits"))
    assert astropy_problems(raw), "astropy reports the violation"


TOKENS = ("1.0e5", "1.0E5", "1.5D3", "'abc'", "'it''s'", "T", "(1, 2)", "1.", ".5", "+3", "'&'")
TOKENS += ("'a&'", "''", " ", "'x' /c", "5 /", "'open", "1 2", "'a'b'", "NaN", "0x10")
KEYS = ("EXTEND", "EXTNAME", "NAXIS3", "NAXIS", "BITPIX", "CONTINUE", "COMMENT", "HISTORY")
KEYS += ("        ", "BLANK", "PCOUNT", "GCOUNT", "TFIELDS", "XTENSION", "SIMPLE", "TFORM1")


def _mutate_cards(raw: bytes, rng: random.Random) -> bytes:
    """One or two card-level edits: a value, a keyword, a swap, the '=' or a CONTINUE card."""
    lay = scan_bytes(raw, "x.fits")
    data = bytearray(raw)
    for _ in range(rng.randint(1, 2)):
        hdu = rng.choice(lay.hdus)
        at = hdu.header_start + CARD * rng.randrange(hdu.cards)
        card = data[at : at + CARD].decode("latin-1")
        kind = rng.randrange(5)
        if kind == 0:
            new = f"{card[:10]}{rng.choice(TOKENS):>20}{rng.choice(['', ' / note'])}"
        elif kind == 1:
            new = f"{rng.choice(KEYS):<8}{card[8:]}"
        elif kind == 2:
            other = hdu.header_start + CARD * rng.randrange(hdu.cards)
            data[at : at + CARD], data[other : other + CARD] = (
                data[other : other + CARD],
                data[at : at + CARD],
            )
            continue
        elif kind == 3:
            new = card[:8] + rng.choice(["=  ", " = ", "==", "=", "= '"]) + card[10:]
        else:
            new = "CONTINUE  " + rng.choice(["'x'", "'x&'", "'x''y'", "5", "'a' / c", ""])
        data[at : at + CARD] = new[:CARD].ljust(CARD).encode("latin-1")
    return bytes(data)


def test_no_mutated_header_called_clean_is_faulted_by_astropy(fits_corpus):
    rng = random.Random(20261204)
    sources = [p.read_bytes() for p in fits_corpus]
    counts = {"clean": 0, "left to astropy": 0}
    for _ in range(800):
        raw = _mutate_cards(rng.choice(sources), rng)
        try:
            layout = scan_bytes(raw, "x.fits")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fits.open(io.BytesIO(raw), lazy_load_hdus=False).close()
        except (FitsStructureError, OSError, ValueError, KeyError, IndexError, TypeError):
            continue  # the structure checks report these files
        if clean_headers(layout):
            assert astropy_problems(raw) == [], "called clean, faulted by astropy"
            counts["clean"] += 1
        else:
            counts["left to astropy"] += 1
    # both outcomes occur often enough for the comparison to mean something
    assert counts["clean"] > 100 and counts["left to astropy"] > 100, counts

"""The bounded FITS structure scan against files written by astropy, valid and damaged."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from phangs_products.fitsscan import BLOCK, FitsStructureError, scan_bytes, scan_file

SAMPLE_FLC = Path(__file__).parent / "data" / "real" / "sample_ipppssoot_flc.fits"


def astropy_layout(path: Path) -> list[tuple[int, int, int]]:
    with fits.open(path) as hdul:
        return [
            (h.fileinfo()["hdrLoc"], h.fileinfo()["datLoc"], h.fileinfo()["datSpan"]) for h in hdul
        ]


def scanned_layout(path: Path) -> list[tuple[int, int, int]]:
    return [(h.header_start, h.data_start, h.end - h.data_start) for h in scan_file(path).hdus]


def write(path: Path, hdus: list) -> Path:
    fits.HDUList(hdus).writeto(path)
    return path


VALID = {
    "empty primary": lambda: [fits.PrimaryHDU()],
    "image and table": lambda: [
        fits.PrimaryHDU(np.zeros((7, 5), np.float32)),
        fits.BinTableHDU.from_columns(
            [
                fits.Column(name="A", format="3E", array=np.ones((4, 3))),
                fits.Column(name="B", format="12X", array=np.zeros((4, 12), bool)),
                fits.Column(name="C", format="10A", array=np.array(["x"] * 4)),
                fits.Column(name="D", format="PJ()", array=[np.arange(n) for n in range(4)]),
            ]
        ),
    ],
    "ascii table": lambda: [
        fits.PrimaryHDU(),
        fits.TableHDU.from_columns(
            [
                fits.Column(name="a", format="I5", array=np.arange(3)),
                fits.Column(name="b", format="E15.7", array=np.ones(3)),
            ]
        ),
    ],
    "random groups": lambda: [
        fits.GroupsHDU(
            fits.GroupData(
                np.zeros((3, 1, 4), np.float32), parnames=["a"], pardata=[np.zeros(3)], bitpix=-32
            )
        )
    ],
    "compressed image": lambda: [
        fits.PrimaryHDU(),
        fits.CompImageHDU(np.arange(400, dtype=np.int16).reshape(20, 20)),
    ],
}


@pytest.mark.parametrize("kind", sorted(VALID))
def test_layout_of_valid_files_is_astropys(tmp_path, kind):
    path = write(tmp_path / "v.fits", VALID[kind]())
    assert scanned_layout(path) == astropy_layout(path)
    assert scan_bytes(path.read_bytes(), path.name).hdus == scan_file(path).hdus


def test_real_mast_flc_layout_is_astropys():
    assert scanned_layout(SAMPLE_FLC) == astropy_layout(SAMPLE_FLC)
    layout = scan_file(SAMPLE_FLC)
    assert layout.index_of(("SCI", 2)) == 4 and layout["ERR", 1].index == 2
    assert ("WCSDVARR", 4) in layout and ("SCI", 3) not in layout
    assert layout["SCI", 2].header == fits.getheader(SAMPLE_FLC, "SCI", 2)
    with pytest.raises(KeyError):
        layout["NOPE"]


def scan_error(raw: bytes, **limits: int) -> str:
    with pytest.raises(FitsStructureError) as info:
        scan_bytes(raw, "x.fits", **limits)
    assert "\n" not in str(info.value)
    return str(info.value)


def valid_bytes(path: Path, n_ext: int = 0, cards: int = 0) -> bytes:
    primary = fits.PrimaryHDU()
    for i in range(cards):
        primary.header[f"K{i}"] = i
    hdus = [primary] + [fits.ImageHDU(np.zeros(3, np.int16)) for _ in range(n_ext)]
    return write(path, hdus).read_bytes()


def test_hdu_and_card_limits(tmp_path):
    raw = valid_bytes(tmp_path / "a.fits", n_ext=4)
    assert scan_error(raw, max_hdus=3) == "x.fits: HDU 3: more than 3 HDUs in one file"
    raw = valid_bytes(tmp_path / "b.fits", cards=100)
    message = scan_error(raw, max_cards=50)
    assert message == "x.fits: HDU 0: no END card within 50 header cards (all HDUs together)"


def test_header_framing(tmp_path):
    raw = valid_bytes(tmp_path / "a.fits")
    end = raw.index(b"END" + b" " * 77)
    after_end = raw[: end + 100] + b"x" + raw[end + 101 :]
    assert scan_error(after_end).endswith("HDU 0: the bytes after the END card are not blank")
    bad_end = raw[:end] + b"END junk".ljust(80) + raw[end + 80 :]
    assert scan_error(bad_end).endswith("malformed END card")
    trailing = raw + b"\0" * BLOCK
    assert "expected an XTENSION card at byte 2880" in scan_error(trailing)
    lower = raw.replace(b"EXTEND  =", b"extend  =")
    assert "keyword has characters other than A-Z" in scan_error(lower)
    assert "file is empty" in scan_error(b"")


def test_a_mandatory_keyword_with_a_record_value_is_broken(tmp_path):
    """astropy reads ``GCOUNT = 'EXTVER: 1'`` as a record value (a float) and cannot seek past
    the data; the scan refuses it instead of reading the extension's first GCOUNT."""
    hdu = fits.ImageHDU(np.zeros(3, np.int16), name="SCI", ver=1)
    raw = write(tmp_path / "a.fits", [fits.PrimaryHDU(), hdu]).read_bytes()
    at = raw.index(b"EXTVER  =")
    card = b"GCOUNT  = 'EXTVER: 1' / Version number".ljust(80)
    broken = raw[:at] + card + raw[at + 80 :]
    with pytest.raises(TypeError):  # the astropy failure the scan keeps out of the readers
        fits.open(io.BytesIO(broken)).verify("exception")
    assert "GCOUNT holds a record value" in scan_error(broken)


def test_announced_sizes_must_fit(tmp_path):
    raw = valid_bytes(tmp_path / "a.fits", n_ext=1)
    big = raw.replace(b"NAXIS1  =                    3", b"NAXIS1  =              9999999")
    assert "HDU 1: truncated: the data end at byte" in scan_error(big)
    negative = raw.replace(b"NAXIS1  =                    3", b"NAXIS1  =                   -3")
    assert scan_error(negative).endswith("HDU 1: NAXIS1 = -3 is negative")
    pcount = raw.replace(b"PCOUNT  =                    0", b"PCOUNT  =                   16")
    assert scan_error(pcount).endswith("HDU 1: PCOUNT = 16 (expected 0)")
    float_axes = raw.replace(b"NAXIS   =                    1", b"NAXIS   =                  1.0")
    assert scan_error(float_axes).endswith("HDU 1: NAXIS = 1.0 is not an integer")


REAL = Path(__file__).parent / "data" / "real"


def edge_card_file(path: Path) -> Path:
    """Value cards of every form the quick reader parses, and some it leaves to astropy."""
    primary = fits.PrimaryHDU()
    hdr = primary.header
    hdr["LONGSTR"] = "a long string value " * 8  # CONTINUE cards
    hdr["QUOTES"] = "it''s  "
    hdr["LEADING"] = "   lead"
    hdr["EMPTYSTR"] = ""
    hdr["UNDEF"] = None
    hdr["NEGINT"] = -42
    hdr["BIGINT"] = 12345678901234567
    hdr["REAL"] = 1.5e-300
    hdr["LOGICAL"] = False
    hdr["COMPLEX"] = 1 + 2j
    hdr["DEXP"] = 0.0  # rewritten below with a D exponent
    raw = bytearray(write(path, [primary]).read_bytes())
    at = raw.index(b"DEXP    = ")
    raw[at : at + 80] = b"DEXP    =              1.25D+3 / D exponent".ljust(80)
    path.write_bytes(bytes(raw))
    return path


def card_files(tmp_path: Path) -> list[Path]:
    from factories import catalog_product, demo_delivery, image_product

    delivery = demo_delivery()
    made = [
        image_product(delivery, "drc-sci", shape=(8, 8)).save(tmp_path / "drc.fits"),
        catalog_product(delivery).save(tmp_path / "cat.fits"),
        edge_card_file(tmp_path / "edge.fits"),
    ]
    return made + sorted(REAL.rglob("*.fits"))


def test_quick_values_are_the_card_by_card_values_and_astropys(tmp_path):
    """The one-pass reader agrees with the card-by-card reader and values with astropy's."""
    from phangs_products import fitsscan
    from phangs_products.conformance import header_values

    quick = 0
    for path in card_files(tmp_path):
        for hdu in scan_file(path):
            ncards = fitsscan._end_card(hdu.raw_header)
            fast, _ = fitsscan._quick_values(hdu.raw_header, ncards)
            slow, plain = fitsscan._card_values(hdu.raw_header, ncards, path.name, "")
            if fast is not None:
                quick += 1
                assert fast == slow and plain, (path.name, hdu.index)
            header = fits.getheader(path, hdu.index)
            values = hdu.values
            from_images = header_values(header)  # the same reader on astropy's card images
            for key in values:
                want = header[key]
                want = None if isinstance(want, fits.card.Undefined) else want
                got = values[key]
                assert got == want and type(got) is type(want), (path.name, key, got, want)
                if key not in ("", "COMMENT", "HISTORY") and "." not in key:  # no RVKC
                    assert from_images[key] == want, (path.name, key)
            assert set(values) <= set(header)
    assert quick >= 5


def test_quick_values_leave_odd_headers_to_astropy(tmp_path):
    primary = fits.PrimaryHDU()
    primary.header["HIERARCH LONG KEYWORD"] = 1
    primary.header["DP1"] = "AXIS.1: 1"
    path = write(tmp_path / "odd.fits", [primary])
    hdu = scan_file(path)[0]
    assert hdu.raw_values is None
    assert hdu.values is hdu.header and hdu.values["LONG KEYWORD"] == 1


def test_continue_card_after_a_number_is_broken(tmp_path):
    primary = fits.PrimaryHDU()
    primary.header["NUMBER"] = 1
    primary.header["TEXT"] = "x"
    raw = write(tmp_path / "c.fits", [primary]).read_bytes()
    at = raw.index(b"TEXT    = ")
    bad = raw[:at] + b"CONTINUE  'x'".ljust(80) + raw[at + 80 :]
    assert scan_error(bad).endswith(
        "HDU 0 card 6 (CONTINUE): a CONTINUE card holds the rest of a string value"
    )

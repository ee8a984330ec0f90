"""One pass over a FITS file: SHA-256 and per-HDU checksums against astropy's and hashlib's."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from phangs_products.fitsscan import BLOCK, scan_file
from phangs_products.fitssum import checksum_problems, ones_complement_sum, stream_sums


def multi_hdu(path: Path) -> Path:
    """Empty primary, an image, a binary table and an empty extension, with checksums."""
    rng = np.random.default_rng(3)
    hdus = [
        fits.PrimaryHDU(),
        fits.ImageHDU(rng.normal(size=(300, 211)).astype(np.float32), name="SCI"),
        fits.BinTableHDU.from_columns(
            [
                fits.Column(name="ID", format="J", array=np.arange(1000)),
                fits.Column(name="MAG", format="D", array=rng.normal(size=1000)),
            ],
            name="CATALOG",
        ),
        fits.ImageHDU(name="EMPTY"),
    ]
    fits.HDUList(hdus).writeto(path, checksum=True)
    return path


@pytest.mark.parametrize("chunk", [BLOCK, 7 * BLOCK, 2**23 - 2**23 % BLOCK])
def test_sums_are_astropys_datasums_and_the_file_sha256(tmp_path, chunk):
    path = multi_hdu(tmp_path / "m.fits")
    layout = scan_file(path)
    sums = stream_sums(path, layout, chunk=chunk)
    assert sums.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    with fits.open(path) as hdul:
        assert [int(h.header["DATASUM"]) for h in hdul] == list(sums.data_sums)
        assert all(h.verify_checksum() == 1 for h in hdul)
    assert checksum_problems(layout, sums, file="m.fits") == []


def test_a_changed_byte_is_found_in_its_hdu(tmp_path):
    path = multi_hdu(tmp_path / "m.fits")
    layout = scan_file(path)
    raw = bytearray(path.read_bytes())
    raw[layout[2].data_start + 100] ^= 0x10  # one bit of the table's data
    path.write_bytes(bytes(raw))
    problems = checksum_problems(layout, stream_sums(path, layout), file="m.fits")
    assert [(p.rule, p.where) for p in problems] == [("fits.checksum", "HDU 2")]
    with fits.open(path) as hdul:
        assert hdul[2].verify_datasum() == 0 and hdul[1].verify_datasum() == 1


def test_missing_checksum_keywords(tmp_path):
    path = tmp_path / "n.fits"
    fits.PrimaryHDU(np.zeros((4, 4), np.int16)).writeto(path)
    layout = scan_file(path)
    problems = checksum_problems(layout, stream_sums(path, layout), file="n.fits")
    assert [p.message for p in problems] == ["CHECKSUM/DATASUM missing"]


def test_ones_complement_sum_wraps_the_carry():
    words = np.array([0xFFFFFFFF, 0x00000002], ">u4").tobytes()
    assert ones_complement_sum(words) == 2  # 0xFFFFFFFF is -0: adding it changes nothing
    assert ones_complement_sum(np.array([0x80000000] * 2, ">u4").tobytes()) == 1

"""One pass over a FITS file's bytes: its SHA-256 and the FITS checksums of every HDU.

The validator needs three digests of every delivered file: the SHA-256 (compared with the
manifest and the checksum list), and per HDU the 32-bit ones' complement sums behind
``DATASUM`` (the data) and ``CHECKSUM`` (header and data together, which sum to -0 when
intact; FITS Checksum Convention, Seaman et al. 2012).  :func:`stream_sums` reads the file
once in blocks of whole 2880-byte FITS blocks, feeding each block to the SHA-256 and to
the sums of the HDU parts it covers, so memory stays at one block however large the file.
The sums are taken over the bytes as stored, as ``fitsverify`` takes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from phangs_products.errors import Problem
from phangs_products.fitsscan import BLOCK, FitsLayout
from phangs_products.safeio import open_regular

#: Messages of the ``fits.checksum`` rule (here and in :func:`conformance.check_checksums`).
CHECKSUM_MISSING = "CHECKSUM/DATASUM missing"
CHECKSUM_MISMATCH = "CHECKSUM/DATASUM do not match the content (file changed or damaged)"

__all__ = [
    "CHUNK",
    "FileSums",
    "checksum_problems",
    "ones_complement_sum",
    "sha256_of",
    "stream_sums",
]

#: Bytes read at a time: whole FITS blocks, about 8 MB.
CHUNK = BLOCK * 2912
_MINUS_ZERO = 0xFFFFFFFF


@dataclasses.dataclass(frozen=True)
class FileSums:
    """Digests of one FITS file.

    Attributes
    ----------
    sha256 : str
        SHA-256 of the whole file (hex).
    header_sums, data_sums : tuple of int
        32-bit ones' complement sums of each HDU's header blocks and data blocks.
    """

    sha256: str
    header_sums: tuple[int, ...]
    data_sums: tuple[int, ...]


def _fold(total: int) -> int:
    """A sum of 32-bit words folded to 32 bits with end-around carry."""
    while total > _MINUS_ZERO:
        total = (total & _MINUS_ZERO) + (total >> 32)
    return total


def ones_complement_sum(buffer: bytes | memoryview, start: int = 0) -> int:
    """32-bit ones' complement sum of big-endian words (``len(buffer)`` a multiple of 4)."""
    words = np.frombuffer(buffer, dtype=">u4")
    return _fold(start + int(words.sum(dtype=np.uint64)))


def stream_sums(path: str | Path, layout: FitsLayout, chunk: int = CHUNK) -> FileSums:
    """SHA-256 and per-HDU ones' complement sums of a scanned FITS file, in one read.

    Parameters
    ----------
    path : path-like
        The file :func:`phangs_products.fitsscan.scan_file` scanned.
    layout : FitsLayout
        Its layout (HDU parts are whole 2880-byte blocks).
    chunk : int
        Bytes read at a time (a multiple of 2880).
    """
    # the HDU parts in file order: (start, end, HDU index, 0 for the header, 1 for the data)
    parts = [
        part
        for i, hdu in enumerate(layout)
        for part in ((hdu.header_start, hdu.data_start, i, 0), (hdu.data_start, hdu.end, i, 1))
        if part[1] > part[0]
    ]
    sums = [[0, 0] for _ in layout]
    sha = hashlib.sha256()
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    offset = 0
    current = 0  # first part not summed to its end
    with open_regular(path) as fh:
        while True:
            n = fh.readinto(buffer)
            if not n:
                break
            sha.update(view[:n])
            end = offset + n
            while current < len(parts) and parts[current][0] < end:
                start, stop, index, which = parts[current]
                lo, hi = max(start, offset), min(stop, end)
                if hi - lo >= 4:
                    block = view[lo - offset : hi - offset - (hi - lo) % 4]
                    sums[index][which] = ones_complement_sum(block, sums[index][which])
                if stop > end:
                    break
                current += 1
            offset = end
    return FileSums(
        sha256=sha.hexdigest(),
        header_sums=tuple(s[0] for s in sums),
        data_sums=tuple(s[1] for s in sums),
    )


def checksum_problems(
    layout: FitsLayout, sums: FileSums, *, file: str = "", schema_id: str = ""
) -> list[Problem]:
    """``fits.checksum`` of every HDU whose CHECKSUM/DATASUM are missing or do not match.

    ``DATASUM`` must equal the data's sum, and header and data must sum to -0 (the
    ``CHECKSUM`` value makes them so), as :func:`phangs_products.conformance.check_checksums`
    requires of an opened file.
    """
    problems = []
    for index, hdu in enumerate(layout):
        where = f"HDU {index}"
        values = hdu.values
        if "CHECKSUM" not in values or "DATASUM" not in values:
            problems.append(Problem("fits.checksum", CHECKSUM_MISSING, file, schema_id, where))
            continue
        data_sum = sums.data_sums[index]
        ok_data = _as_int(values.get("DATASUM")) == data_sum
        ok_sum = _fold(sums.header_sums[index] + data_sum) == _MINUS_ZERO
        if not (ok_data and ok_sum):
            problems.append(Problem("fits.checksum", CHECKSUM_MISMATCH, file, schema_id, where))
    return problems


def _as_int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def sha256_of(path: str | Path, chunk: int = CHUNK) -> str:
    """SHA-256 of a file read in blocks (for files that are not scanned FITS files)."""
    sha = hashlib.sha256()
    with open_regular(path) as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            sha.update(block)
    return sha.hexdigest()

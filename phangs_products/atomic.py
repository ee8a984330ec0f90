"""Atomic file writes: a temporary file in the target folder, fsync, then rename into place.

A crash or exception during the write leaves the previous file (if any) untouched and no
half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from phangs_products.errors import ProductError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "refuse_overwrite"]


def refuse_overwrite(path: Path, overwrite: bool) -> None:
    """Raise when ``path`` exists and ``overwrite`` is false."""
    if path.exists() and not overwrite:
        raise ProductError(f"{path}: file exists; pass overwrite=True to replace it")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed to ``path``.

    Parameters
    ----------
    path : path-like
        Final file name.
    overwrite : bool
        Replace an existing file; otherwise an existing file raises :class:`ProductError`.
    """
    final = Path(path)
    refuse_overwrite(final, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # writers create the file themselves (astropy refuses an existing one)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        refuse_overwrite(final, overwrite)
        os.replace(tmp, final)
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> Path:
    """Write bytes atomically; return the final path."""
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, overwrite: bool = False) -> Path:
    """Write UTF-8 text atomically; return the final path."""
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite)

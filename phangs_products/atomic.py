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

__all__ = [
    "TEMP_SUFFIX",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "inside",
    "is_temp_file",
    "refuse_overwrite",
    "remove_temp_files",
]

#: Suffix of the temporary files of :func:`atomic_path` (``.<final name>.<random>.part``).
TEMP_SUFFIX = ".part"


def inside(folder: str | os.PathLike, name: str) -> Path:
    """``folder / name``, refused unless it is a plain file name that stays inside ``folder``.

    Use it wherever a path is formed from a value that comes from outside the code (a header
    keyword, a configuration setting, a manifest entry).

    Parameters
    ----------
    folder : path-like
        The folder the file must stay in.
    name : str
        A file name: no path separator, no ``..``, not absolute, not empty, no NUL byte.

    Returns
    -------
    Path
        ``folder / name``.

    Raises
    ------
    ProductError
        One line naming the refused name and the folder.
    """
    base = Path(folder)
    text = str(name)
    bad = (
        not text
        or text in (".", "..")
        or "/" in text
        or "\\" in text
        or "\0" in text
        or Path(text).is_absolute()
    )
    path = base / text
    if bad or not path.resolve().is_relative_to(base.resolve()):
        raise ProductError(f"{base}: refused file name {text!r} (it must stay inside the folder)")
    return path


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
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TEMP_SUFFIX, dir=final.parent)
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


def is_temp_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named like a temporary file of :func:`atomic_path`."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def remove_temp_files(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Remove the temporary files a killed :func:`atomic_path` write left in ``folder``.

    Only call it while no other process writes into the folder (hold the run's lock).

    Parameters
    ----------
    folder : path-like
        Folder to clean (a missing folder is fine).
    recursive : bool
        Clean its subfolders too.

    Returns
    -------
    list of Path
        The removed files.
    """
    base = Path(folder)
    if not base.is_dir():
        return []
    pattern = f"**/.*{TEMP_SUFFIX}" if recursive else f".*{TEMP_SUFFIX}"
    removed = []
    for path in sorted(base.glob(pattern)):
        if path.is_file() and not path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> Path:
    """Write bytes atomically; return the final path."""
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, overwrite: bool = False) -> Path:
    """Write UTF-8 text atomically; return the final path."""
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite)

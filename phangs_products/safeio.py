"""Bounded file access for the readers: regular files only, sizes capped, text decoding located.

A FIFO named like a product blocks ``open()`` until something writes to it; a folder named
``x.reg`` raises ``IsADirectoryError``; a latin-1 byte in a region file raises
``UnicodeDecodeError`` with a byte offset.  The helpers here check what a path is before it is
opened and turn every such case into one :class:`~phangs_products.errors.ProductError` line
naming the file and the place.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from phangs_products.errors import ProductError, describe

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_TEXT_BYTES",
    "decode_text",
    "load_yaml",
    "open_regular",
    "read_bytes",
    "read_text",
    "regular_file",
]

log = logging.getLogger(__name__)

#: Largest text product (DS9 regions, README) read whole: 64 MiB.
MAX_TEXT_BYTES = 64 * 2**20
#: Largest commented header of an ECSV file, and largest ASDF manifest: 16 MiB.
MAX_HEADER_BYTES = 16 * 2**20

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def regular_file(path: str | Path) -> os.stat_result:
    """``os.stat`` of a path that must be a regular file (symbolic links are followed).

    Raises
    ------
    ProductError
        ``<path>: no such file``, or ``<name>: not a regular file (a FIFO)`` and the like, so
        that nothing ever blocks on opening a FIFO or a device.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ProductError(f"{path}: no such file") from None
    except OSError as exc:
        raise ProductError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a file")
        raise ProductError(f"{path.name}: not a regular file ({kind})")
    return info


@contextlib.contextmanager
def open_regular(path: str | Path) -> Iterator[BinaryIO]:
    """Open a regular file for binary reading; anything else is refused before it is opened.

    The file is opened with ``O_NONBLOCK`` and checked again on its descriptor, so a path
    swapped for a FIFO between the two checks cannot block either.
    """
    path = Path(path)
    regular_file(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ProductError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ProductError(f"{path.name}: not a regular file")
    with os.fdopen(fd, "rb") as fh:
        yield fh


def read_bytes(path: str | Path, limit: int, what: str = "file") -> bytes:
    """All bytes of a regular file of at most ``limit`` bytes.

    Raises
    ------
    ProductError
        If the path is not a regular file or is larger than ``limit``.
    """
    path = Path(path)
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise ProductError(
                f"{path.name}: {size} bytes; a {what} of phangs-products is at most {limit} bytes"
            )
        return fh.read(limit + 1)[:limit]


def decode_text(raw: bytes, file: str) -> str:
    """UTF-8 text of a file's bytes.

    Raises
    ------
    ProductError
        ``<file>: line N: not UTF-8 text (byte 0xe9 at column C)``.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ProductError(
            f"{file}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {column})"
        ) from None


def read_text(path: str | Path, limit: int = MAX_TEXT_BYTES, what: str = "text file") -> str:
    """UTF-8 text of a regular file of at most ``limit`` bytes (see :func:`decode_text`)."""
    path = Path(path)
    return decode_text(read_bytes(path, limit, what), path.name)


class _PlainLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases: no billion-laughs trees, no cycles."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed here", event.start_mark
            )
        return super().compose_node(parent, index)


def load_yaml(text: str, file: str, where: str) -> Any:
    """Parse a YAML document with the safe loader, refusing aliases.

    Raises
    ------
    ProductError
        ``<file>: <where>: not valid YAML (<problem> at line L, column C)``.
    """
    try:
        return yaml.load(text, Loader=_PlainLoader)  # a SafeLoader subclass
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise ProductError(f"{file}: {where}: not valid YAML ({describe(exc)})") from None

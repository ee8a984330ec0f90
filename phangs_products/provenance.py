"""Provenance trees stored as ASDF, embedded in FITS products as an ``ASDF`` extension.

The layout follows JWST data models: a one-row binary table HDU named ``ASDF`` whose single
column ``ASDF_METADATA`` holds the bytes of a complete ASDF file, so that
``asdf.open(io.BytesIO(bytes))`` reads it with the plain asdf library.  Catalogs (schema
versions 1.2.0 on) hold the same bytes as a one-dimensional 8-bit image extension named ``ASDF``
instead, so that their catalog is the file's only table (astropy's ``Table.read(path)`` then needs
no ``hdu=`` and warns nothing).  :func:`read_provenance` reads both.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import platform
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

import asdf
import numpy as np
from astropy.io import fits

__all__ = [
    "ASDF_EXTNAME",
    "asdf_hdu",
    "make_provenance",
    "new_run_id",
    "read_provenance",
    "software_versions",
]

ASDF_EXTNAME = "ASDF"
ASDF_COLUMN = "ASDF_METADATA"
_SOFTWARE = (
    "phangs-products",
    "astropy",
    "numpy",
    "photutils",
    "drizzlepac",
    "scikit-image",
    "regions",
    "asdf",
)


def software_versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape the products."""
    out = {"python": platform.python_version()}
    for name in _SOFTWARE:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def new_run_id() -> str:
    """A new run identifier: UTC time plus a short random suffix."""
    now = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{now}-{uuid.uuid4().hex[:8]}"


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_provenance(
    schema_id: str,
    *,
    run_id: str | None = None,
    stage: str | None = None,
    config: dict[str, Any] | None = None,
    inputs: list[str | Path] | None = None,
) -> dict[str, Any]:
    """Build the provenance tree of a product.

    Parameters
    ----------
    schema_id : str
        Schema the product follows.
    run_id : str, optional
        Pipeline run identifier.
    stage : str, optional
        Stage that made the product.
    config : dict, optional
        The stage configuration (plain values).
    inputs : list of path, optional
        Input files; each is recorded by file name and SHA-256 (no folders: published
        provenance carries no paths of the machine that made it).
    """
    tree: dict[str, Any] = {
        "schema": schema_id,
        "software": software_versions(),
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if run_id:
        tree["run_id"] = run_id
    if stage:
        tree["stage"] = stage
    if config:
        tree["config"] = config
    if inputs:
        tree["inputs"] = [
            {"name": Path(p).name, "sha256": file_digest(p)} for p in inputs if Path(p).exists()
        ]
    return tree


def asdf_hdu(tree: dict[str, Any], image: bool = False) -> fits.BinTableHDU | fits.ImageHDU:
    """Serialise a provenance tree into an ``ASDF`` HDU.

    Parameters
    ----------
    tree : dict
        The provenance tree.
    image : bool
        Write a one-dimensional 8-bit image extension (catalogs: their table stays the only
        table of the file) instead of JWST's one-row binary table.
    """
    buffer = io.BytesIO()
    asdf.AsdfFile(dict(tree)).write_to(buffer)
    raw = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
    if image:
        out = fits.ImageHDU(raw.copy(), name=ASDF_EXTNAME)
        out.header["COMMENT"] = "Provenance tree of this product as an embedded ASDF file (bytes)."
        return out
    col = fits.Column(name=ASDF_COLUMN, format=f"{raw.size}B", array=raw[np.newaxis, :])
    hdu = fits.BinTableHDU.from_columns([col], name=ASDF_EXTNAME)
    hdu.header["COMMENT"] = "Provenance tree of this product as an embedded ASDF file."
    return hdu


def read_provenance(source: str | Path | fits.HDUList) -> dict[str, Any] | None:
    """Read the embedded provenance tree of a FITS product (``None`` when there is none)."""
    close = False
    if not isinstance(source, fits.HDUList):
        source = fits.open(source, memmap=False)
        close = True
    try:
        if ASDF_EXTNAME not in source:
            return None
        hdu = source[ASDF_EXTNAME]
        stored = hdu.data if isinstance(hdu, fits.ImageHDU) else hdu.data[ASDF_COLUMN][0]
        raw = np.asarray(stored, dtype=np.uint8).tobytes()
        with asdf.open(io.BytesIO(raw), lazy_load=False, memmap=False) as af:
            return _plain(af.tree)
    finally:
        if close:
            source.close()


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _plain(v)
            for k, v in node.items()
            if not str(k).startswith("asdf_") and k != "history"
        }
    if isinstance(node, list | tuple):
        return [_plain(v) for v in node]
    return node

"""Helpers of the validator tests: rewrite the manifest and checksums after a defect."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import asdf
import numpy as np
from astropy.io import fits

from phangs_products.delivery import (
    build_manifest,
    find_manifest,
    manifest_name,
    write_checksums,
)
from phangs_products.errors import ProductError
from phangs_products.models import ManifestModel
from phangs_products.provenance import file_digest


def refresh(folder: Path) -> None:
    """Rewrite the manifest and SHA256SUMS after a test changed files.

    The manifest is rebuilt from the headers when every file reads; otherwise the existing
    records are patched (sha256/size; missing files dropped), so that a defect shows up only
    under its own rule.
    """
    old_path = find_manifest(folder)
    assert old_path is not None
    with asdf.open(old_path) as af:
        tree = {k: v for k, v in af.tree.items() if not k.startswith("asdf")}
    tree = _plain(tree)
    try:
        model = build_manifest(
            folder,
            tree["target"],
            tree["version"],
            tree["bands"],
            tree["scales"],
            tree["selections"],
            tree["subsets"],
        )
    except ProductError:
        files = []
        for rec in tree["files"]:
            path = folder / rec["name"]
            if path.exists():
                files.append({**rec, "sha256": file_digest(path), "size": path.stat().st_size})
        tree["files"] = files
        tree = {k: v for k, v in tree.items() if k not in ("ppschema", "ppschver")}
        model = ManifestModel.create("delivery-manifest", tree)
    old_path.unlink()
    model.save(folder / manifest_name(tree["target"], tree["version"]))
    write_checksums(folder)


def _plain(node):
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_plain(v) for v in node]
    return node


def set_image(path: Path, change: Callable[[np.ndarray], None]) -> None:
    """Change the pixels of a primary-HDU image in place; CHECKSUM/DATASUM are updated."""
    with fits.open(path, mode="update", checksum=True) as hdul:
        data = hdul[0].data.copy()
        change(data)
        hdul[0].data = data


def set_column(path: Path, column: str, change: Callable[[np.ndarray], None]) -> None:
    """Change a column of the catalog in HDU 1 in place; CHECKSUM/DATASUM are updated."""
    with fits.open(path, mode="update", checksum=True) as hdul:
        change(hdul[1].data[column])

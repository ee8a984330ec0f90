"""The delivery layout module: field folders, manifest, SHA256SUMS, completeness list."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import pytest

import phangs_products as pp
from phangs_products.delivery import (
    CHECKSUMS_NAME,
    build_manifest,
    field_dir,
    find_manifest,
    read_checksums,
    required_products,
    write_checksums,
)
from phangs_products.errors import ProductError
from phangs_products.testing import make_clean_delivery


def test_field_dir_uses_image_target(tmp_path: Path) -> None:
    assert field_dir(tmp_path, "NGC 0628c") == tmp_path / "ngc628c"


def test_manifest_lists_every_product(clean: Path) -> None:
    manifest = pp.open(find_manifest(clean), strict=True)
    tree = manifest.tree
    names = {r["name"] for r in tree["files"]}
    on_disk = {p.name for p in clean.iterdir()} - {CHECKSUMS_NAME, find_manifest(clean).name}
    assert names == on_disk
    rec = next(r for r in tree["files"] if r["name"].endswith("_f555w_v1_drc-sci.fits"))
    assert rec["product"] == "drc-sci" and rec["filter"] == "F555W"
    assert rec["sha256"] == hashlib.sha256((clean / rec["name"]).read_bytes()).hexdigest()
    mask = next(r for r in tree["files"] if r["name"].endswith("asc-nuv-32pc-msk.fits"))
    assert (mask["scale"], mask["selection"]) == (32, "nuv")
    assert len(required_products(tree)) == 5 * 3 + 1 + 5 + 8 + 8 + 1


def test_build_manifest_refuses_damaged_file(clean: Path) -> None:
    next(clean.glob("*_drc-err.fits")).write_bytes(b"junk")
    with pytest.raises(ProductError):
        build_manifest(clean, "ngc628c", "v1", ["F555W"])


def test_checksums_match_sha256sum(clean: Path) -> None:
    sums = read_checksums(clean / CHECKSUMS_NAME)
    assert CHECKSUMS_NAME not in sums and len(sums) == len(list(clean.iterdir())) - 1
    proc = subprocess.run(
        ["sha256sum", "--check", "--quiet", CHECKSUMS_NAME], cwd=clean, capture_output=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert write_checksums(clean) == clean / CHECKSUMS_NAME


def test_make_clean_delivery_is_fast_and_fresh(tmp_path: Path) -> None:
    make_clean_delivery(tmp_path / "warm")
    start = time.perf_counter()
    folder = make_clean_delivery(tmp_path / "x", version="v1")
    assert time.perf_counter() - start < 2.0
    assert folder.name == "ngc628c" and len(list(folder.iterdir())) == 53
    with pytest.raises(pp.PhangsProductsError):
        make_clean_delivery(tmp_path / "x")


def test_clean_products_open_strictly(clean: Path) -> None:
    for path in clean.glob("hlsp_*"):
        pp.open(path, strict=True)

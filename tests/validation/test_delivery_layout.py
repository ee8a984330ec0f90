"""The delivery layout module: field folders, manifest, checksum list, completeness list."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import pytest

import phangs_products as pp
from phangs_products.delivery import (
    LEGACY_CHECKSUMS_NAME,
    build_manifest,
    field_dir,
    find_checksums,
    find_manifest,
    read_checksums,
    required_products,
    write_checksums,
)
from phangs_products.errors import ProductError
from phangs_products.naming import check_name
from phangs_products.testing import make_clean_delivery
from phangs_products.validation import validate_delivery


def test_field_dir_uses_image_target(tmp_path: Path) -> None:
    assert field_dir(tmp_path, "NGC 0628c") == tmp_path / "ngc628c"


def test_manifest_lists_every_product(clean: Path) -> None:
    manifest = pp.open(find_manifest(clean), strict=True)
    tree = manifest.tree
    names = {r["name"] for r in tree["files"]}
    not_products = {find_checksums(clean).name, find_manifest(clean).name}
    on_disk = {p.name for p in clean.iterdir()} - not_products
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
    path = find_checksums(clean)
    assert path.name == "hlsp_phangs-hst_hst_multi_ngc628c_multi_v1_sha256sums.txt"
    assert check_name(path.name) == []
    sums = read_checksums(path)
    assert path.name not in sums and len(sums) == len(list(clean.iterdir())) - 1
    proc = subprocess.run(
        ["sha256sum", "--check", "--quiet", path.name], cwd=clean, capture_output=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert write_checksums(clean) == path


def test_older_sha256sums_is_read_and_replaced(clean: Path) -> None:
    path = find_checksums(clean)
    legacy = path.rename(clean / LEGACY_CHECKSUMS_NAME)
    assert find_checksums(clean) == legacy
    report = validate_delivery(clean)
    assert report.ok and report.rules("warning") == {"checksums.name"}, report.to_text()
    assert write_checksums(clean) == path and not legacy.exists()
    assert validate_delivery(clean).problems == []


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
        if path != find_checksums(clean):
            pp.open(path, strict=True)

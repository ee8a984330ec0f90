"""Cross-file checks of one field folder: manifest, completeness, checksums, shared grid.

They work on the per-file :class:`~.facts.FileResult` records, so no file is read twice
(the manifest and the checksum list are small and read here).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from phangs_products.delivery import (
    CHECKSUMS_NAME,
    LEGACY_CHECKSUMS_NAME,
    find_checksums,
    find_manifest,
    is_checksums_name,
    read_checksums,
    readme_name,
    required_products,
)
from phangs_products.errors import PhangsProductsError, Problem
from phangs_products.registry import get_schema

from .facts import FileFacts, FileResult, Grid
from .names import check_readme_name

__all__ = ["check_field"]

log = logging.getLogger(__name__)

#: Tolerances of the grid comparison: CD matrix (relative) and pixel offset of the mask grid.
CD_RTOL = 1e-6
PIXEL_TOL = 0.01
#: Catalog X/Y must agree with RA/DEC on the DRC grid to this many pixels.
XY_TOL = 1.0
_VARIANT_KEYS = {
    "filter": "FILTER",
    "scale": "ASCSCALE",
    "selection": "ASCSEL",
    "subset": "CLSUBSET",
}


def check_field(folder: Path, results: Sequence[FileResult], data: bool) -> list[Problem]:
    """Every cross-file check of one field folder.

    Parameters
    ----------
    folder : Path
        The field folder.
    results : sequence of FileResult
        Per-file results of every file in the folder.
    data : bool
        Whether SHA-256 values were computed (otherwise only sizes are compared).
    """
    by_name = {r.name: r for r in results}
    problems: list[Problem] = []
    tree = None
    manifest_path = find_manifest(folder)
    if manifest_path is None:
        problems.append(
            Problem(
                "manifest.missing",
                f"no delivery manifest (hlsp_*_manifest.asdf) in folder {folder.name!r}",
            )
        )
    else:
        tree, more = _read_manifest(manifest_path)
        problems += more
    if tree is not None:
        problems += _check_manifest_files(folder, manifest_path.name, tree, by_name, data)
        problems += _check_completeness(tree, by_name)
        version = str(tree.get("version", ""))
        readmes = [n for n in by_name if n.endswith(("_readme.md", "_readme.txt", "_readme"))]
        try:
            expected = readme_name(folder.name, version)
        except PhangsProductsError:
            expected = ""
        if expected:
            problems += check_readme_name(readmes, expected)
    problems += _check_checksums(folder, by_name, data)
    problems += _check_grid(results)
    problems += _check_mask_labels(results)
    return problems


# ----------------------------------------------------------------------------------- labels
def _check_mask_labels(results: Sequence[FileResult]) -> list[Problem]:
    """Every label of a mask is an id of its catalog (same product variants: scale, selection).

    The mask schema names the catalog product and id column (``labels_in``); the FITS
    catalogs of that product whose variant keywords (ASCSCALE, ASCSEL) equal the mask's are
    compared (their ``unique`` columns are the facts kept; the Parquet and ECSV exports carry
    the same rows, checked on their own by the column rules).
    """
    facts = [r.facts for r in results if r.facts is not None]
    problems = []
    for mask in facts:
        if mask.labels is None or mask.labels_in is None:
            continue
        product, column = mask.labels_in
        keys = [_VARIANT_KEYS[v] for v in get_schema(mask.schema_id).product.get("variants", {})]
        catalogs = [
            f
            for f in facts
            if f.product == product
            and column in f.ids
            and all(f.values.get(k) == mask.values.get(k) for k in keys)
        ]
        if not catalogs:
            if len(mask.labels):
                problems.append(
                    Problem(
                        "content.mask-labels",
                        f"{len(mask.labels)} labels but no {product} catalog with the same "
                        f"{'/'.join(keys)} to hold them",
                        mask.name,
                        mask.schema_id,
                        "HDU PRIMARY",
                    )
                )
            continue
        for cat in catalogs:
            missing = np.setdiff1d(mask.labels, cat.ids[column])
            if len(missing):
                shown = ", ".join(str(int(v)) for v in missing[:5])
                more = ", ..." if len(missing) > 5 else ""
                problems.append(
                    Problem(
                        "content.mask-labels",
                        f"{len(missing)} of {len(mask.labels)} labels are not {column} values of "
                        f"{cat.name} ({shown}{more})",
                        mask.name,
                        mask.schema_id,
                        "HDU PRIMARY",
                    )
                )
    return problems


# ----------------------------------------------------------------------------------- manifest
def _read_manifest(path: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    from phangs_products.models.text import read_tree

    try:
        tree = read_tree(path)
    except PhangsProductsError as exc:
        text = str(exc).removeprefix(f"{path.name}: ")
        return None, [
            Problem("manifest.unreadable", f"cannot read the manifest: {text}", path.name)
        ]
    if not isinstance(tree.get("files"), list):
        return None, [
            Problem("manifest.unreadable", "manifest has no 'files' list", path.name, where="files")
        ]
    return tree, []


def _product_files(folder: Path, names: Sequence[str], manifest: str) -> list[str]:
    return [n for n in names if n != manifest and not is_checksums_name(n)]


def _check_manifest_files(
    folder: Path,
    manifest: str,
    tree: Mapping[str, Any],
    by_name: Mapping[str, FileResult],
    data: bool,
) -> list[Problem]:
    problems = []
    sid = f"{tree.get('ppschema', 'delivery-manifest')}-{tree.get('ppschver', '')}"
    listed: dict[str, Mapping[str, Any]] = {}
    for index, rec in enumerate(tree["files"]):
        if not isinstance(rec, Mapping) or "name" not in rec:
            continue  # manifest.value reports it
        name = str(rec["name"])
        listed[name] = rec
        where = f"files/{index}"
        result = by_name.get(name)
        if result is None:
            problems.append(
                Problem(
                    "manifest.missing-file",
                    f"lists {name!r}, which is not in the folder",
                    manifest,
                    sid,
                    where,
                )
            )
            continue
        if rec.get("size") is not None and int(rec["size"]) != result.size:
            problems.append(
                Problem(
                    "manifest.size",
                    f"size {result.size} bytes, manifest says {rec['size']}",
                    name,
                    sid,
                    f"manifest {where}",
                )
            )
        if data and result.sha256 and rec.get("sha256") and rec["sha256"] != result.sha256:
            problems.append(
                Problem(
                    "manifest.sha256",
                    f"sha256 {result.sha256[:12]}... differs from the manifest's "
                    f"{str(rec['sha256'])[:12]}...",
                    name,
                    sid,
                    f"manifest {where}",
                )
            )
        facts = result.facts
        if facts is not None and facts.product and rec.get("product") not in (None, facts.product):
            problems.append(
                Problem(
                    "manifest.record",
                    f"manifest says product {rec['product']!r}, the file records {facts.product!r}",
                    name,
                    sid,
                    f"manifest {where}",
                )
            )
    for name in _product_files(folder, list(by_name), manifest):
        if name not in listed:
            problems.append(
                Problem("manifest.unlisted", "file is not listed in the manifest", name, sid)
            )
    return problems


def _slots_of(
    tree: Mapping[str, Any], by_name: Mapping[str, FileResult]
) -> list[tuple[str, dict[str, Any]]]:
    """``(product, variant values)`` of every file present, from its header or its record."""
    records = {str(r.get("name")): r for r in tree["files"] if isinstance(r, Mapping)}
    out = []
    for name, result in by_name.items():
        facts = result.facts
        if facts is not None and facts.product:
            values = {}
            for key, kw in _VARIANT_KEYS.items():
                value = facts.values.get(kw)
                if value is None:
                    continue
                if key == "scale":
                    try:
                        value = int(value)
                    except (TypeError, ValueError):
                        continue
                else:
                    value = str(value).strip()
                    value = value.upper() if key == "filter" else value.lower()
                values[key] = value
            out.append((facts.product, values))
        elif name in records:  # unreadable file: the manifest says what it was meant to be
            rec = records[name]
            values = {k: rec[k] for k in _VARIANT_KEYS if k in rec}
            out.append((str(rec.get("product", "")), values))
    return out


def _check_completeness(
    tree: Mapping[str, Any], by_name: Mapping[str, FileResult]
) -> list[Problem]:
    try:
        required = required_products(tree)
    except PhangsProductsError as exc:
        return [Problem("manifest.unreadable", f"cannot read required products: {exc}")]
    present = _slots_of(tree, by_name)
    sid = f"{tree.get('ppschema', 'delivery-manifest')}-{tree.get('ppschver', '')}"
    problems = []
    for product, variant in required:
        want = {k: (str(v).upper() if k == "filter" else v) for k, v in variant.items()}
        if not any(
            p == product and all(v.get(k) == w for k, w in want.items()) for p, v in present
        ):
            detail = ", ".join(f"{k} {v}" for k, v in want.items())
            problems.append(
                Problem(
                    "delivery.missing-product",
                    f"no {product} file{' for ' + detail if detail else ''} "
                    "(required by the manifest's content.required_products)",
                    "",
                    sid,
                )
            )
    return problems


# ---------------------------------------------------------------------------------- checksums
def _check_checksums(folder: Path, by_name: Mapping[str, FileResult], data: bool) -> list[Problem]:
    path = find_checksums(folder)
    if path is None:
        return [
            Problem("checksums.missing", f"no {CHECKSUMS_NAME} checksum list in {folder.name!r}")
        ]
    problems = []
    if path.name == LEGACY_CHECKSUMS_NAME:
        problems.append(
            Problem(
                "checksums.name",
                "the checksum list has no HLSP name; write it again (the pipeline's publish "
                "stage names it hlsp_..._sha256sums.txt)",
                path.name,
                severity="warning",
            )
        )
    try:
        sums = read_checksums(path)
    except (PhangsProductsError, UnicodeDecodeError) as exc:
        return [*problems, Problem("checksums.format", str(exc), path.name)]
    for name, digest in sums.items():
        result = by_name.get(name)
        if result is None:
            problems.append(
                Problem("checksums.sha256", f"lists {name!r}, not in the folder", path.name)
            )
        elif data and result.sha256 and result.sha256 != digest:
            problems.append(Problem("checksums.sha256", f"sha256 differs from {path.name}", name))
    for name in by_name:
        if name not in sums and not is_checksums_name(name):
            problems.append(Problem("checksums.unlisted", f"not listed in {path.name}", name))
    return problems


# --------------------------------------------------------------------------------------- grid
def reference_grid(facts: Sequence[FileFacts]) -> FileFacts | None:
    """The DRC science image that defines the field's grid (REFBAND filter, else the first)."""
    drcs = [f for f in facts if f.product == "drc-sci" and f.grid is not None]
    for f in drcs:
        ref = str(f.values.get("REFBAND", "")).strip().upper()
        if ref and str(f.values.get("FILTER", "")).strip().upper() == ref:
            return f
    return drcs[0] if drcs else None


def _check_grid(results: Sequence[FileResult]) -> list[Problem]:
    facts = [r.facts for r in results if r.facts is not None]
    needs = [
        f for f in facts if f.product == "assoc-mask" or f.positions or f.region_points is not None
    ]
    if not needs:
        return []
    ref = reference_grid(facts)
    if ref is None:
        return [
            Problem(
                "delivery.reference-grid",
                "no readable DRC science image: masks, catalog positions and regions "
                "were not checked against a footprint",
                severity="warning",
            )
        ]
    grid = ref.grid
    assert grid is not None
    problems = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in needs:
            if f.product == "assoc-mask" and f.grid is not None:
                problems += _compare_grid(f, grid, ref.name)
            if f.positions:
                problems += _check_positions(f, grid, ref.name)
            if f.region_points is not None and len(f.region_points):
                out = grid.outside(f.region_points[:, 0], f.region_points[:, 1])
                if out.any():
                    i = int(np.argmax(out))
                    ra, dec = f.region_points[i]
                    problems.append(
                        Problem(
                            "regions.footprint",
                            f"{int(out.sum())} of {len(out)} region points fall outside the "
                            f"footprint of {ref.name} (first at RA {ra:.6f}, Dec {dec:.6f})",
                            f.name,
                            f.schema_id,
                        )
                    )
    return problems


def _compare_grid(mask: FileFacts, grid: Grid, ref_name: str) -> list[Problem]:
    assert mask.grid is not None
    m = mask.grid
    where = "HDU 0"
    if m.shape != grid.shape:
        return [
            Problem(
                "mask.grid",
                f"shape {m.shape} differs from {ref_name} {grid.shape}",
                mask.name,
                mask.schema_id,
                where,
            )
        ]
    if not np.allclose(m.cd, grid.cd, rtol=CD_RTOL, atol=0):
        return [
            Problem(
                "mask.grid",
                f"CD matrix {m.cd} differs from {ref_name} {grid.cd}",
                mask.name,
                mask.schema_id,
                where,
            )
        ]
    # same CD: the grids coincide when the mask's reference point lands on the same pixel
    x, y = grid.to_pixel(np.array([m.crval[0]]), np.array([m.crval[1]]))
    dx, dy = float(x[0]) - (m.crpix[0] - 1), float(y[0]) - (m.crpix[1] - 1)
    if np.hypot(dx, dy) > PIXEL_TOL:
        return [
            Problem(
                "mask.grid",
                f"CRVAL/CRPIX put the mask {np.hypot(dx, dy):.3g} px off the grid of {ref_name} "
                f"(CRVAL {m.crval} vs {grid.crval}, tolerance {PIXEL_TOL} px)",
                mask.name,
                mask.schema_id,
                where,
            )
        ]
    return []


def _check_positions(cat: FileFacts, grid: Grid, ref_name: str) -> list[Problem]:
    pos = cat.positions or {}
    ra, dec = pos["ra"], pos["dec"]
    if not len(ra):
        return []
    problems = []
    out = grid.outside(ra, dec)
    if out.any():
        i = int(np.argmax(out))
        problems.append(
            Problem(
                "position.footprint",
                f"{int(out.sum())} of {len(ra)} sources fall outside the footprint of "
                f"{ref_name} (first: row {i + 1}, RA {ra[i]:.6f}, Dec {dec[i]:.6f})",
                cat.name,
                cat.schema_id,
                f"HDU 1 columns {'/'.join(cat.position_columns[:2]) or 'RA/DEC'}",
            )
        )
    if "x" in pos:
        x, y = grid.to_pixel(ra, dec)
        with np.errstate(invalid="ignore"):
            off = np.hypot(x - pos["x"], y - pos["y"]) > XY_TOL
        off &= ~out
        if off.any():
            i = int(np.argmax(off))
            problems.append(
                Problem(
                    "position.pixel",
                    f"{int(off.sum())} of {len(ra)} sources have X/Y more than {XY_TOL} px from "
                    f"their RA/DEC on {ref_name} (first: row {i + 1})",
                    cat.name,
                    cat.schema_id,
                    f"HDU 1 columns {'/'.join(cat.position_columns[2:]) or 'X/Y'}",
                    "warning",
                )
            )
    return problems

"""The delivery layout in code: run folders, field folders, the manifest and the checksum list.

A run writes into one folder (:class:`RunLayout`): ``delivery/`` holds what goes to MAST,
``work/`` the resumable state, logs and reports, ``docs/`` the HTML documentation.

A delivery is ``<root>/<field>/``: one folder per field (the image-collection target, e.g.
``ngc628c``) holding every file of that field (images and FLCs of ``phangs-hst``, catalogs,
masks and region files of ``phangs-cat``), plus

* the README ``hlsp_phangs-hst_hst_multi_<field>_multi_<ver>_readme.md``;
* the delivery manifest ``hlsp_phangs-hst_hst_multi_<field>_multi_<ver>_manifest.asdf``
  (schema ``delivery-manifest``): bands, scales, selections, subsets and one record per file
  (name, product, schema, sha256, size and the variant keys filter/scale/selection/subset);
* the checksum list ``hlsp_phangs-hst_hst_multi_<field>_multi_<ver>_sha256sums.txt``:
  ``sha256sum`` lines for every file of the folder but itself (older deliveries
  call it ``SHA256SUMS``; that name is still read).

Nothing else belongs in a delivery: every file has an HLSP name MAST's rules accept.

The pipeline's orchestrator calls :func:`write_manifest` and :func:`write_checksums` to finish
a delivery; the validator reads the same layout back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product as _cartesian
from pathlib import Path
from typing import Any

from phangs_products.atomic import atomic_write_text
from phangs_products.bands import band as band_facts
from phangs_products.errors import ProductError
from phangs_products.models import ManifestModel, read_meta
from phangs_products.naming import HlspName, build_name, image_target, parse_name
from phangs_products.provenance import file_digest
from phangs_products.registry import get_schema
from phangs_products.safeio import read_text
from phangs_products.spec import BandInfo

__all__ = [
    "ALL_SCALES",
    "ALL_SELECTIONS",
    "ALL_SUBSETS",
    "CHECKSUMS_NAME",
    "LEGACY_CHECKSUMS_NAME",
    "RunLayout",
    "build_manifest",
    "checksums_name",
    "field_dir",
    "file_record",
    "find_checksums",
    "find_manifest",
    "is_checksums_name",
    "manifest_name",
    "product_files",
    "read_checksums",
    "readme_name",
    "recorded_facts",
    "required_products",
    "write_checksums",
    "write_manifest",
]

log = logging.getLogger(__name__)

#: Product type and extension of a field's checksum list (an HLSP name, as MAST requires).
CHECKSUMS_PRODUCT_TYPE = "sha256sums"
CHECKSUMS_EXTENSION = "txt"
#: The checksum list's name before it had an HLSP name; read, never written.
LEGACY_CHECKSUMS_NAME = "SHA256SUMS"
#: What the validator's messages call the checksum list.
CHECKSUMS_NAME = "sha256sums"
MANIFEST_SCHEMA = "delivery-manifest"
ALL_SCALES: tuple[int, ...] = (8, 16, 32, 64)
ALL_SELECTIONS: tuple[str, ...] = ("nuv", "v")
ALL_SUBSETS: tuple[str, ...] = ("hum-c12", "hum-c3", "ml-c12", "ml-c3", "cand")

BandLike = BandInfo | str | Mapping[str, str]


@dataclass(frozen=True)
class RunLayout:
    """The folders of one run: ``delivery/``, ``work/`` and ``docs/`` under ``root``.

    Only ``delivery/`` goes to MAST; ``work/`` holds the resumable state (per field), logs and
    validation reports; ``docs/`` the HTML documentation, which links into ``delivery/``.
    """

    root: Path

    @property
    def delivery(self) -> Path:
        """Delivery root: one folder per field, products only."""
        return self.root / "delivery"

    @property
    def work(self) -> Path:
        """Work root: one folder per field."""
        return self.root / "work"

    @property
    def docs(self) -> Path:
        """HTML documentation of the delivery."""
        return self.root / "docs"

    @classmethod
    def of_delivery(cls, delivery_root: str | Path) -> RunLayout:
        """The layout a delivery root belongs to (its parent folder is the run folder)."""
        return cls(Path(delivery_root).resolve().parent)


def field_dir(root: str | Path, field: str) -> Path:
    """Folder of one field in a delivery root: ``<root>/<field>`` (image-collection target)."""
    return Path(root) / image_target(field)


def manifest_name(field: str, version: str) -> str:
    """File name of a field's delivery manifest."""
    return build_name(get_schema(MANIFEST_SCHEMA), target=field, version=version)


def readme_name(field: str, version: str) -> str:
    """File name of a field's README."""
    return build_name(get_schema("readme"), target=field, version=version)


def checksums_name(field: str, version: str) -> str:
    """File name of a field's checksum list (``..._multi_<ver>_sha256sums.txt``)."""
    return str(
        HlspName(
            proj_id="phangs-hst",
            observatory="hst",
            instrument="multi",
            target=image_target(field),
            opt_elem="multi",
            version=version,
            product_type=CHECKSUMS_PRODUCT_TYPE,
            extension=CHECKSUMS_EXTENSION,
        )
    )


def is_checksums_name(name: str) -> bool:
    """Whether ``name`` is a checksum list's name (the HLSP one, or ``SHA256SUMS``)."""
    return name == LEGACY_CHECKSUMS_NAME or (
        name.startswith("hlsp_")
        and name.endswith(f"_{CHECKSUMS_PRODUCT_TYPE}.{CHECKSUMS_EXTENSION}")
    )


def find_checksums(folder: str | Path) -> Path | None:
    """The checksum list of a field folder, if there is one (the HLSP-named one first)."""
    folder = Path(folder)
    found = sorted(folder.glob(f"hlsp_*_{CHECKSUMS_PRODUCT_TYPE}.{CHECKSUMS_EXTENSION}"))
    if found:
        return found[0]
    legacy = folder / LEGACY_CHECKSUMS_NAME
    return legacy if legacy.is_file() else None


def find_manifest(folder: str | Path) -> Path | None:
    """The delivery manifest of a field folder, if there is one."""
    found = sorted(Path(folder).glob("hlsp_*_manifest.asdf"))
    return found[0] if found else None


def product_files(folder: str | Path) -> list[Path]:
    """Every product file of a field folder: ``hlsp_*`` files but the manifest, sorted."""
    out = []
    for path in sorted(Path(folder).iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        if is_checksums_name(path.name) or path.name.endswith("_manifest.asdf"):
            continue
        out.append(path)
    return out


def _band_dict(item: BandLike) -> dict[str, str]:
    if isinstance(item, BandInfo):
        return {"filter": item.filter, "instrument": item.instrument}
    if isinstance(item, str):
        return {"filter": item.upper(), "instrument": band_facts(item).instrument}
    return {"filter": str(item["filter"]).upper(), "instrument": str(item["instrument"])}


def file_record(path: str | Path) -> dict[str, Any]:
    """Manifest record of one product file, from a header-only read.

    Parameters
    ----------
    path : path-like
        Product file (any format :func:`phangs_products.read_meta` reads).

    Raises
    ------
    ProductError
        If the file is not a readable product recording a known schema.
    """
    path = Path(path)
    meta = read_meta(path)
    schema = meta._schema
    rec: dict[str, Any] = {
        "name": path.name,
        "product": schema.name,
        "schema": schema.id,
        "sha256": file_digest(path),
        "size": path.stat().st_size,
    }
    if schema.product.get("filter_field") == "band" and meta.get("FILTER"):
        rec["filter"] = str(meta["FILTER"]).strip()
    if meta.get("ASCSCALE") is not None:
        rec["scale"] = int(meta["ASCSCALE"])
    if meta.get("ASCSEL"):
        rec["selection"] = str(meta["ASCSEL"]).strip().lower()
    if meta.get("CLSUBSET"):
        rec["subset"] = str(meta["CLSUBSET"]).strip()
    return rec


def build_manifest(
    field_dir: str | Path,
    target: str,
    version: str,
    bands: Sequence[BandLike],
    scales: Iterable[int] = ALL_SCALES,
    selections: Iterable[str] = ALL_SELECTIONS,
    subsets: Iterable[str] = ALL_SUBSETS,
    kind: str = "field",
    omitted: Sequence[Mapping[str, str]] = (),
) -> ManifestModel:
    """Scan a field folder (headers only) and build its delivery manifest.

    Parameters
    ----------
    field_dir : path-like
        The field folder.
    target : str
        Field name (image-collection target, e.g. ``ngc628c``).
    version : str
        Delivery version, e.g. ``v1``.
    bands : sequence
        Bands a complete delivery has: :class:`BandInfo`, filter names or
        ``{'filter', 'instrument'}`` mappings.
    scales, selections, subsets : iterable
        Association scales (pc), point-source selections and cluster-catalog subsets a
        complete delivery has.
    kind : {'field', 'mosaic'}
        A field (one pointing, every product) or the mosaics of a multi-pointing galaxy (DRC,
        ERR and EXP per band and the README; its catalogs are delivered per pointing).
    omitted : sequence of mapping
        Products left out on purpose: ``product``, optional ``subset``, ``reason``.

    Raises
    ------
    ProductError
        If a product file cannot be read (a delivery with a damaged file gets no manifest).
    """
    folder = Path(field_dir)
    if not folder.is_dir():
        raise ProductError(f"{folder}: no such delivery folder")
    files = [file_record(p) for p in product_files(folder)]
    if kind not in ("field", "mosaic"):
        raise ProductError(f"manifest kind {kind!r} is not 'field' or 'mosaic'")
    tree = {
        "target": image_target(target),
        "kind": kind,
        "version": version,
        "bands": [_band_dict(b) for b in bands],
        "scales": [int(s) for s in scales],
        "selections": [str(s).lower() for s in selections],
        "subsets": [str(s) for s in subsets],
        "files": files,
    }
    if omitted:
        tree["omitted"] = [dict(o) for o in omitted]
    log.debug("manifest of %s: %d files", folder, len(files))
    return ManifestModel.create(MANIFEST_SCHEMA, tree)


def write_manifest(
    field_dir: str | Path,
    target: str,
    version: str,
    bands: Sequence[BandLike],
    scales: Iterable[int] = ALL_SCALES,
    selections: Iterable[str] = ALL_SELECTIONS,
    subsets: Iterable[str] = ALL_SUBSETS,
    overwrite: bool = True,
    kind: str = "field",
    omitted: Sequence[Mapping[str, str]] = (),
) -> Path:
    """Build the delivery manifest (see :func:`build_manifest`) and write it atomically.

    Returns
    -------
    Path
        The manifest, ``<field_dir>/hlsp_phangs-hst_hst_multi_<field>_multi_<ver>_manifest.asdf``.
    """
    model = build_manifest(
        field_dir, target, version, bands, scales, selections, subsets, kind, omitted
    )
    path = Path(field_dir) / manifest_name(target, version)
    for stale in Path(field_dir).glob("hlsp_*_manifest.asdf"):
        if stale != path:
            log.warning("removing stale manifest %s", stale.name)
            stale.unlink()
    return model.save(path, overwrite=overwrite)


def write_checksums(field_dir: str | Path, overwrite: bool = True) -> Path:
    """Write the checksum list (``sha256sum`` format) of every file of the folder but itself.

    The list is named after the folder's delivery manifest (same target and version); a
    ``SHA256SUMS`` of an older delivery is replaced by it.

    Raises
    ------
    ProductError
        If the folder has no delivery manifest.
    """
    folder = Path(field_dir)
    manifest = find_manifest(folder)
    if manifest is None:
        raise ProductError(f"{folder}: no delivery manifest to name the checksum list after")
    fields = parse_name(manifest.name)
    target = folder / checksums_name(fields.target, fields.version)
    lines = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and not is_checksums_name(path.name) and not path.name.startswith("."):
            lines.append(f"{file_digest(path)}  {path.name}\n")
    written = atomic_write_text(target, "".join(lines), overwrite=overwrite)
    for stale in folder.iterdir():
        if is_checksums_name(stale.name) and stale != target and stale.is_file():
            log.warning("removing stale checksum list %s", stale.name)
            stale.unlink()
    return written


def recorded_facts(published: Sequence[Path]) -> dict[str, Any]:
    """PROPOSID, SIMULATD and the Milky Way foreground recorded in the products' headers.

    Returns
    -------
    dict
        ``proposal_ids`` (sorted), ``simulated`` and ``foreground`` (``ebv``, ``source``,
        ``method`` and per band ``filter``, ``instrument``, ``a_band``; None when no FITS
        product records ``EBVMW``), as :func:`phangs_products.docs.render_readme` takes them.
    """
    ids: set[int] = set()
    simulated = False
    foreground = None
    for path in published:
        if not path.name.endswith(".fits"):
            continue
        meta = read_meta(path)
        if meta.get("PROPOSID") is not None:
            ids.add(int(meta["PROPOSID"]))
        simulated |= bool(meta.get("SIMULATD", False))
        if foreground is None and meta.get("EBVMW") is not None:
            bands = []
            for i in range(1, 100):
                if meta.get(f"FILTER{i:02d}") is None:
                    break
                bands.append(
                    {
                        "filter": str(meta[f"FILTER{i:02d}"]),
                        "instrument": str(meta.get(f"INSTR{i:02d}", "")),
                        "a_band": float(meta[f"AMW{i:02d}"]),
                    }
                )
            foreground = {
                "ebv": float(meta["EBVMW"]),
                "source": str(meta.get("EBVMWSRC", "")),
                "method": str(meta.get("EXTMWLAW", "")),
                "bands": bands,
            }
    return {"proposal_ids": sorted(ids), "simulated": simulated, "foreground": foreground}


def read_checksums(path: str | Path) -> dict[str, str]:
    """``{file name: sha256}`` from a ``sha256sum``-format file (binary ``*`` marks allowed).

    Raises
    ------
    ProductError
        If a line is not ``<64 hex digits>  <name>``.
    """
    out: dict[str, str] = {}
    text = read_text(path, what="checksum file")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, name = line.partition(" ")
        name = name[1:] if name[:1] in (" ", "*") else name
        if not sep or len(digest) != 64 or not name:
            raise ProductError(f"{Path(path).name}: line {number} is not '<sha256>  <name>'")
        out[name] = digest.lower()
    return out


def required_products(tree: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """What a complete delivery holds: ``(product, variant)`` pairs.

    Read from the manifest schema's ``content.required_products``: each entry names a product
    and the manifest lists (``band``, ``scale``, ``selection``, ``subset``) it is required per.
    The variant holds the manifest record keys (``filter``, ``scale``, ``selection``,
    ``subset``) a file must have to fill that slot.  Entries with ``kinds`` apply only to
    manifests of those kinds (``kind``, default ``field``; manifest 1.1.0).  Products the
    manifest lists as ``omitted`` (left out on purpose, with the reason; manifest 1.2.0) are not
    required: a record with a ``subset`` omits that subset, one without omits every variant.
    """
    schema = get_schema(str(tree.get("ppschema", MANIFEST_SCHEMA)), tree.get("ppschver"))
    axes: dict[str, list[tuple[str, Any]]] = {
        "band": [("filter", str(b["filter"]).upper()) for b in tree.get("bands", [])],
        "scale": [("scale", int(s)) for s in tree.get("scales", [])],
        "selection": [("selection", str(s).lower()) for s in tree.get("selections", [])],
        "subset": [("subset", str(s)) for s in tree.get("subsets", [])],
    }
    out: list[tuple[str, dict[str, Any]]] = []
    kind = str(tree.get("kind", "field"))
    for entry in schema.document.get("content", {}).get("required_products", []):
        if kind not in entry.get("kinds", [kind]):
            continue
        per = list(entry.get("per", []))
        for combo in _cartesian(*(axes[a] for a in per)):
            variant = dict(combo)
            if not _omitted(tree, entry["product"], variant):
                out.append((entry["product"], variant))
    return out


def _omitted(tree: Mapping[str, Any], product: str, variant: Mapping[str, Any]) -> bool:
    """Whether the manifest's ``omitted`` records leave this product variant out on purpose."""
    for rec in tree.get("omitted", []) or []:
        if rec.get("product") != product:
            continue
        if "subset" not in rec or rec["subset"] == variant.get("subset"):
            return True
    return False

"""Upgrade a folder of historical products into a current delivery (``phangs-products upgrade``).

The historical files (PHANGS-HST v1 images, PHANGS-CAT DR4 catalogs) are read with
:func:`phangs_products.legacy.open_historical` and written again as today's products: today's
MAST names, schema headers, provenance naming every source file with its SHA-256, then the
README, the delivery manifest and the checksum list of each field folder
(:mod:`phangs_products.delivery`, :func:`phangs_products.docs.render_readme`).

What the historical files do not record is never invented: it comes from the file (exposure
start and end, AstroDrizzle's ``NDRIZIM``, ``PHOTFLAM``/``PHOTPLAM``, the WCS), from the band
table (Vega zero points), from the data (``HUMCLASS``), or from ``facts`` the caller gives
(``--set [TARGET:]KEYWORD=VALUE``, e.g. ``EBVMW``, ``MWCORR``, ``APCORR_V``, ``SEDMODEL``,
``REFBAND``, ``POINTING``).  A product that would still lack a keyword its schema requires is
not written: its source files are listed as not mapped, with the missing keywords.

The regular files of SRC are read (sub-folders and hidden files are listed, not searched);
they are opened read-only and never written.  A re-run writes nothing when the products
already in DEST were made from the same sources (same SHA-256) with the same facts; an existing
product made from other sources is replaced only with ``overwrite``.  Files that cannot be
mapped are listed (returned, logged, and written to ``DEST/upgrade-report.json``, outside
the field folders).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from phangs_products import delivery as dl
from phangs_products.atomic import atomic_write_text, inside
from phangs_products.bands import Galaxy, band, galaxy, zp_ab
from phangs_products.docs import render_readme
from phangs_products.errors import PhangsProductsError, ProductError
from phangs_products.hlsp import Delivery, HlspIdentity, common_meta
from phangs_products.legacy import open_historical
from phangs_products.models import CatalogModel, ImageModel, ReadmeModel
from phangs_products.models.base import Model, ProductValidationWarning
from phangs_products.naming import build_name, image_target
from phangs_products.pipeline.instrument import band_order
from phangs_products.pipeline.stellarpops.extinction import REFERENCE, foreground_extinction
from phangs_products.provenance import file_digest, make_provenance, read_provenance
from phangs_products.registry import get_schema
from phangs_products.spec import BandInfo, ProductSchema

__all__ = ["REPORT_NAME", "UpgradeResult", "parse_fact", "upgrade"]

log = logging.getLogger(__name__)

REPORT_NAME = "upgrade-report.json"
#: The README's account of how the products were made.
UPGRADE_STEP = (
    "Made by `phangs-products upgrade` from the historical PHANGS-HST and PHANGS-CAT files "
    "named, with their SHA-256, in each product's provenance (FITS extension `ASDF`); no pixel or "
    "catalog value was measured again. Keywords the historical files do not record were given "
    "on the command line and are listed in the provenance (`upgrade.facts`)."
)
STAGE = "upgrade"
#: Facts giving the time span of a field whose images do not record it.
_TIME_FACTS = ("MJD-BEG", "MJD-END")
#: Products a field's delivery would have that no historical layout holds.
_NOT_HISTORICAL = ("dolphot-catalog", "assoc-catalog", "assoc-mask")
#: Image products of the historical PHANGS-HST v1 release.
_IMAGES = ("drc-sci", "drc-err", "drc-exp")


@dataclass
class UpgradeResult:
    """What an upgrade did.

    Attributes
    ----------
    written : list of Path
        Products (and README, manifest, checksum files) written by this run.
    unchanged : list of Path
        Products already up to date (made from the same sources with the same facts).
    unmapped : dict
        Source file name -> why it was not upgraded.
    fields : list of Path
        Field folders of the delivery.
    report : Path
        The upgrade report (JSON) in DEST.
    """

    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    unmapped: dict[str, str] = field(default_factory=dict)
    fields: list[Path] = field(default_factory=list)
    report: Path | None = None


@dataclass
class _Planned:
    """One product to write: its model, file name, field and the source files it comes from."""

    model: Model
    name: str
    field: str
    sources: list[Path]
    layouts: list[str]


# ------------------------------------------------------------------------------------ facts
def parse_fact(text: str) -> tuple[str, str, str]:
    """``[TARGET:]KEYWORD=VALUE`` -> (target or '', KEYWORD, VALUE).

    Raises
    ------
    ProductError
        If the text is not of that form.
    """
    key, sep, value = text.partition("=")
    target, _, keyword = key.rpartition(":")
    if not sep or not keyword.strip() or not value.strip():
        raise ProductError(f"--set {text!r}: expected [TARGET:]KEYWORD=VALUE, e.g. EBVMW=0.02")
    return target.strip().lower(), keyword.strip().upper(), value.strip()


def _typed(schema: ProductSchema, keyword: str, value: Any) -> tuple[str, Any] | None:
    """(attribute name, value cast to the schema type) of a keyword, None if not the schema's."""
    spec = next((k for k in schema.keywords if k.fits_keyword == keyword), None)
    if spec is None or spec.per_band:
        return None
    kind = spec.rules.get("type")
    if not isinstance(value, str):
        return spec.name, value
    try:
        if kind == "number":
            return spec.name, float(value)
        if kind == "integer":
            return spec.name, int(value)
        if kind == "boolean":
            if value.lower() not in ("t", "true", "1", "yes", "f", "false", "0", "no"):
                raise ValueError(value)
            return spec.name, value.lower() in ("t", "true", "1", "yes")
    except ValueError:
        raise ProductError(f"--set {keyword}={value}: {keyword} is a {kind}") from None
    return spec.name, value


def _facts_for(
    facts: Mapping[str, Mapping[str, Any]], target: str, schema: ProductSchema
) -> dict[str, Any]:
    """The facts given for every target (``''``) and for this one, that the schema has."""
    out: dict[str, Any] = {}
    for scope in ("", target):
        for keyword, value in facts.get(scope, {}).items():
            typed = _typed(schema, keyword, value)
            if typed is not None:
                out[typed[0]] = typed[1]
    return out


# ---------------------------------------------------------------------------------- reading
def _open(path: Path, unmapped: dict[str, str]) -> Model | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ProductValidationWarning)
            model = open_historical(path, strict=True, masked=False)
    except (PhangsProductsError, ProductValidationWarning) as exc:
        unmapped[path.name] = str(exc)
        return None
    if model is None:
        unmapped[path.name] = "not a historical product name (or a file phangs-products wrote)"
        return None
    if model.meta.legacy.collection not in ("phangs-hst", "phangs-cat"):
        unmapped[path.name] = (
            f"a {model.meta.legacy.collection} product ({model.meta.legacy.schema}); today's "
            "schemas cover the phangs-hst and phangs-cat collections only"
        )
        return None
    return model


def _galaxy(target: str) -> Galaxy:
    """The galaxy of a target: ``ngc628c`` is a pointing of ``ngc628``."""
    try:
        return galaxy(target)
    except PhangsProductsError:
        if target[-1:].isalpha():
            return galaxy(target[:-1])
        raise


def _time_span(
    images: Sequence[Model], facts: Mapping[str, Any], target: str
) -> tuple[float, float]:
    starts = [float(m.meta["EXPSTART"]) for m in images if m.meta.get("EXPSTART") is not None]
    ends = [float(m.meta["EXPEND"]) for m in images if m.meta.get("EXPEND") is not None]
    given = {**facts.get("", {}), **facts.get(target, {})}
    if all(k in given for k in _TIME_FACTS):
        return float(given[_TIME_FACTS[0]]), float(given[_TIME_FACTS[1]])
    if starts and ends:
        return min(starts), max(ends)
    raise ProductError(
        f"{target}: no exposure start and end (no image with EXPSTART/EXPEND; "
        f"give --set {target}:MJD-BEG=... --set {target}:MJD-END=...)"
    )


# ---------------------------------------------------------------------------------- images
def _keyword(model: Model, key: str) -> Any:
    """A keyword of a historical file's primary header (ProductError naming it when absent)."""
    value = model.meta.header("PRIMARY").get(key)
    if value is None:
        raise ProductError(f"{model.file_name}: primary header has no {key}")
    return value


def _instrument(model: Model) -> str:
    """``WFC3/UVIS`` or ``ACS/WFC`` from INSTRUME and DETECTOR."""
    return f"{_keyword(model, 'INSTRUME')}/{_keyword(model, 'DETECTOR')}".strip().upper()


def _image(
    model: ImageModel, delivery: Delivery, facts: Mapping[str, Mapping[str, Any]]
) -> ImageModel:
    hdr = model.meta.header("PRIMARY")
    schema = get_schema(model.schema.name)
    filt = str(_keyword(model, "FILTER")).strip().upper()
    facts_band = band(filt, _instrument(model))
    photflam, photplam = float(_keyword(model, "PHOTFLAM")), float(_keyword(model, "PHOTPLAM"))
    scale = float(np.sqrt(abs(np.linalg.det(model.wcs.celestial.pixel_scale_matrix))) * 3600)
    meta = {
        **{k: v for k, v in model.meta.schema_items().items() if k not in ("ppschema", "ppschver")},
        **common_meta(
            delivery,
            "phangs-hst",
            instrument=str(model.meta["INSTRUME"]),
            xposure=float(hdr.get("EXPTIME", 0.0)),
        ),
        "zp_vega": facts_band.zp_vega,
        "zp_ab": zp_ab(photflam, photplam),
        "pixscale": round(scale, 6),
    }
    bunit = schema.keyword_by_name.get("bunit")
    if bunit is not None and bunit.rules.get("const"):
        # the unit today's product type has (AstroDrizzle copies the science BUNIT to weights)
        meta["bunit"] = bunit.rules["const"]
    if hdr.get("NDRIZIM") is not None:
        meta["ncombine"] = int(hdr["NDRIZIM"])
    meta.update(_facts_for(facts, delivery.field, schema))
    return ImageModel.create(schema, model.data, model.wcs.celestial, meta)


# -------------------------------------------------------------------------------- catalogs
def _merged_table(obs: CatalogModel, sed: CatalogModel | None) -> Table:
    """The obs table with the sed table's other columns, rows matched by INDEX."""
    table = Table(obs.table, copy=True)
    if sed is None:
        return table
    other = sed.table
    wanted, held = np.asarray(table["INDEX"]), np.asarray(other["INDEX"])
    rows = np.zeros(0, dtype=np.int64)
    if len(held) == len(wanted) and len(np.unique(held)) == len(held):
        order = np.argsort(held, kind="stable")
        found = np.searchsorted(held, wanted, sorter=order).clip(0, max(len(held) - 1, 0))
        rows = order[found]
    if len(rows) != len(wanted) or not np.array_equal(held[rows], wanted):
        raise ProductError(
            f"{obs.file_name}, {sed.file_name}: the obs and sed tables do not hold the same "
            f"INDEX values ({len(table)} and {len(other)} rows)"
        )
    for name in other.colnames:
        if name not in table.colnames:
            table[name] = other[name][rows]
    return table


def _catalog(
    obs: CatalogModel,
    sed: CatalogModel | None,
    delivery: Delivery,
    facts: Mapping[str, Mapping[str, Any]],
) -> CatalogModel:
    schema = get_schema(obs.schema.name)
    bands = obs.bands
    table = _merged_table(obs, sed)
    meta: dict[str, Any] = {
        k: v for k, v in obs.meta.schema_items().items() if k not in ("ppschema", "ppschver")
    }
    meta.update(common_meta(delivery, "phangs-cat", instrument=str(obs.meta["INSTRUME"])))
    human = next((c for c in schema.columns if c.name == "PHANGS_CLUSTER_CLASS_HUMAN"), None)
    if human is not None and human.name in table.colnames:
        meta["humclass"] = bool(np.any(np.asarray(table[human.name]) != human.sentinel))
    meta.update(_facts_for(facts, delivery.field, schema))
    if meta.get("ebvmw") is not None:
        meta.setdefault("extmwlaw", REFERENCE)
        a_band = foreground_extinction(float(meta["ebvmw"]), bands)
        meta["amw_nn"] = [round(float(a), 4) for a in a_band]
    return CatalogModel.create(schema, table, bands, meta)


# --------------------------------------------------------------------------------- planning
def _plan_field(
    target: str,
    version: str,
    models: Sequence[Model],
    identity: HlspIdentity,
    facts: Mapping[str, Mapping[str, Any]],
    unmapped: dict[str, str],
) -> list[_Planned]:
    """Today's products of one field from its historical files."""
    images = [m for m in models if isinstance(m, ImageModel)]
    catalogs = [m for m in models if isinstance(m, CatalogModel)]
    try:
        gal = _galaxy(target)
        mjd_beg, mjd_end = _time_span(images, facts, target)
    except PhangsProductsError as exc:
        for m in models:
            unmapped[m.file_name] = str(exc)
        return []
    delivery = Delivery(gal, target, version, mjd_beg, mjd_end, identity=identity)
    out: list[_Planned] = []
    for m in images:
        _try(out, unmapped, [m], lambda m=m: _image(m, delivery, facts), target)
    groups: dict[str, dict[str, CatalogModel]] = {}
    for m in catalogs:
        subset = str(m.meta["CLSUBSET"])
        layout = m.meta.legacy.layout
        if layout in groups.setdefault(subset, {}):
            unmapped[m.file_name] = f"a second {layout} table of subset {subset} for {target}"
            continue
        groups[subset][layout] = m
    for subset, tables in sorted(groups.items()):
        first = tables.get("obs") or tables.get("candidates")
        sed = tables.get("sed")
        if first is None:
            for m in tables.values():
                unmapped[m.file_name] = f"sed table of {subset} without its obs table"
            continue
        sources = [first] + ([sed] if sed is not None else [])
        _try(out, unmapped, sources, lambda f=first, s=sed: _catalog(f, s, delivery, facts), target)
    return out


def _try(
    out: list[_Planned],
    unmapped: dict[str, str],
    sources: Sequence[Model],
    build: Callable[[], Model],
    target: str,
) -> None:
    """Build one product; on a problem the sources are listed as not mapped."""
    names = ", ".join(s.file_name for s in sources)
    try:
        model = build()
        model.stamp()
        errors = [p for p in model.problems(data=True) if p.severity == "error"]
        if errors:
            missing = any(p.rule == "keyword.missing" for p in errors)
            hint = " (give what the historical files do not record with --set)" if missing else ""
            raise ProductError(
                f"not a valid {model.schema.id}: " + "; ".join(p.message for p in errors[:6]) + hint
            )
        name = _name(model, target)
    except PhangsProductsError as exc:
        for s in sources:
            unmapped[s.file_name] = str(exc)
        log.warning("not upgraded: %s: %s", names, exc)
        return
    layouts = [f"{s.meta.legacy.schema} {s.meta.legacy.layout}" for s in sources]
    out.append(
        _Planned(model, name, image_target(target), [Path(s.path) for s in sources], layouts)
    )


def _name(model: Model, target: str) -> str:
    schema = model.schema
    if isinstance(model, CatalogModel):
        instruments = sorted({b.instrument for b in model.bands})
        return build_name(
            schema,
            target=target,
            version=str(model.meta["HLSPVER"]),
            instruments=instruments,
            subset=str(model.meta["CLSUBSET"]),
        )
    return build_name(
        schema,
        target=target,
        version=str(model.meta["HLSPVER"]),
        instruments=_instrument(model),
        filter=str(model.meta["FILTER"]),
    )


# ---------------------------------------------------------------------------------- writing
def _provenance(plan: _Planned, facts: Mapping[str, Any]) -> dict[str, Any]:
    tree = make_provenance(plan.model.schema.id, stage=STAGE, inputs=plan.sources)
    tree["upgrade"] = {
        "facts": {k: v for k, v in sorted(facts.items())},
        "legacy": [
            {"name": p.name, "layout": layout}
            for p, layout in zip(plan.sources, plan.layouts, strict=True)
        ],
    }
    return tree


def _same_origin(path: Path, tree: Mapping[str, Any]) -> bool:
    """Whether an existing product was made by this upgrade from the same sources and facts."""
    try:
        old = read_provenance(path) or {}
    except (OSError, ValueError, TypeError, KeyError):
        return False
    keys = ("schema", "stage", "inputs", "upgrade")
    return all(old.get(k) == tree.get(k) for k in keys)


def _write_if_changed(path: Path, text: str, result: UpgradeResult) -> None:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    atomic_write_text(path, text, overwrite=True)
    result.written.append(path)


def _bands(planned: Sequence[_Planned]) -> list[dict[str, str]]:
    """Bands of a field: its images' (filter, instrument), else its catalogs' bands."""
    out: dict[str, str] = {}
    for p in planned:
        if isinstance(p.model, ImageModel):
            out.setdefault(str(p.model.meta["FILTER"]).upper(), _instrument(p.model))
    if not out:
        for p in planned:
            if isinstance(p.model, CatalogModel):
                for b in p.model.bands:
                    out.setdefault(b.filter, b.instrument)
    order = band_order([BandInfo(f, i) for f, i in out.items()])
    return [{"filter": b.filter, "instrument": b.instrument} for b in order]


def _finish_field(
    folder: Path,
    target: str,
    version: str,
    identity: HlspIdentity,
    planned: Sequence[_Planned],
    changed: bool,
    result: UpgradeResult,
) -> None:
    """README, manifest and checksums of a field folder (only when a product changed)."""
    readme = folder / dl.readme_name(target, version)
    manifest = folder / dl.manifest_name(target, version)
    sums = dl.find_checksums(folder)
    if not changed and readme.exists() and manifest.exists() and sums is not None:
        return
    products = [p for p in dl.product_files(folder) if p != readme]
    records = [dl.file_record(p) for p in products]
    subsets = sorted({r["subset"] for r in records if "subset" in r})
    recorded = dl.recorded_facts(products)
    kinds = sorted({get_schema(r["schema"]).title for r in records})
    human = None
    if any(s.startswith("hum") for s in subsets):
        human = {"given": True, "table": "the PHANGS-CAT DR4 catalogs", "format": None}
    text = render_readme(
        galaxy_=_galaxy(target),
        field=target,
        version=version,
        files=records,
        steps=[{"title": "Upgrade of historical products", "text": UPGRADE_STEP}],
        scales=(),
        selections=(),
        exports=False,
        identity=identity,
        proposal_ids=recorded["proposal_ids"],
        foreground=recorded["foreground"],
        human=human,
        holds=(
            "This delivery holds, for one field, the historical PHANGS-HST v1 and PHANGS-CAT DR4 "
            f"products written again as today's products: {', '.join(kinds)}."
        ),
        changes=(
            "upgraded from the historical files by `phangs-products upgrade`: current MAST "
            'names (see "File names"), today\'s headers and provenance; the values are those '
            "released (the error map is 1/sqrt of the released inverse-variance weight, the obs "
            "and sed tables of each cluster subset are one catalog)."
        ),
    )
    ReadmeModel.create(text).save(readme, overwrite=True)
    result.written.append(readme)
    omitted = [
        {"product": p, "reason": "no historical layout holds this product"} for p in _NOT_HISTORICAL
    ]
    present = {r["product"] for r in records}
    omitted += [
        {"product": p, "reason": "no historical file of this product for this field"}
        for p in _IMAGES
        if p not in present
    ]
    omitted += [
        {"product": "cluster-catalog", "subset": s, "reason": "not among the historical files"}
        for s in dl.ALL_SUBSETS
        if s not in subsets
    ]
    dl.write_manifest(
        folder,
        target,
        version,
        bands=_bands(planned),
        scales=(),
        selections=(),
        subsets=subsets,
        omitted=omitted,
    )
    result.written.append(manifest)
    result.written.append(dl.write_checksums(folder))


def upgrade(
    src: str | Path,
    dest: str | Path,
    *,
    identity: HlspIdentity,
    facts: Mapping[str, Mapping[str, Any]] | None = None,
    overwrite: bool = False,
) -> UpgradeResult:
    """Turn a folder of historical products into a current delivery.

    Parameters
    ----------
    src : path-like
        Folder of historical files (its regular files; never written).
    dest : path-like
        Folder of the upgrade, as of a run: the delivery in ``DEST/delivery/`` (one folder per
        field, products only) and ``DEST/upgrade-report.json`` beside it.
    identity : HlspIdentity
        HLSP name, lead, DOIs and citation of the delivery (e.g. ``hlsp.PRESETS['phangs-hst']``).
    facts : mapping, optional
        Keyword values the historical files do not record: ``{target: {KEYWORD: value}}``,
        target ``''`` for every target (e.g. ``{'': {'MWCORR': True}}``).
    overwrite : bool
        Replace products in DEST that were made from other sources or facts.

    Returns
    -------
    UpgradeResult

    Raises
    ------
    ProductError
        If SRC is not a folder, DEST lies inside SRC (or SRC inside DEST), or a product in
        DEST would be replaced without ``overwrite``.
    """
    src, root = Path(src), Path(dest)
    if not src.is_dir():
        raise ProductError(f"{src}: not a folder of historical products")
    s, d = src.resolve(), root.resolve()
    if d == s or s in d.parents or d in s.parents:
        raise ProductError(f"{root}: the output folder must be outside {src} (and not hold it)")
    dest = dl.RunLayout(root).delivery
    facts = {image_target(k) if k else "": dict(v) for k, v in (facts or {}).items()}
    result = UpgradeResult()
    by_field: dict[tuple[str, str], list[Model]] = {}
    sources = []
    for path in sorted(src.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            what = "hidden" if path.name.startswith(".") else "not a regular file"
            result.unmapped[path.name] = f"{what} (upgrade reads the regular files of SRC)"
        else:
            sources.append(path)
    for path in sources:
        model = _open(path, result.unmapped)
        if model is None:
            continue
        fields_ = model.meta.legacy.name_fields
        key = (image_target(fields_["target"]), fields_["version"])
        by_field.setdefault(key, []).append(model)
    plans: list[tuple[str, str, list[_Planned]]] = []
    for (target, version), models in sorted(by_field.items()):
        planned = _plan_field(target, version, models, identity, facts, result.unmapped)
        plans.append((target, version, planned))
    # every conflict is found before anything is written
    trees: dict[int, dict[str, Any]] = {}
    for _target, _version, planned in plans:
        for p in planned:
            given = {**facts.get("", {}), **facts.get(p.field, {})}
            used = {
                k: str(v)
                for k, v in given.items()
                if k in _TIME_FACTS or _typed(p.model.schema, k, v) is not None
            }
            trees[id(p)] = _provenance(p, used)
            path = inside(dest / p.field, p.name)
            if path.exists() and not overwrite and not _same_origin(path, trees[id(p)]):
                raise ProductError(
                    f"{path}: exists and was not made by this upgrade from these sources, facts "
                    "and schema version; pass --overwrite to replace it"
                )
    for target, version, planned in plans:
        if not planned:
            continue
        folder = dest / image_target(target)
        folder.mkdir(parents=True, exist_ok=True)
        changed = False
        for p in planned:
            path = inside(folder, p.name)
            tree = trees[id(p)]
            if path.exists() and _same_origin(path, tree):
                result.unchanged.append(path)
                continue
            p.model.save(path, overwrite=True, provenance=tree)
            result.written.append(path)
            changed = True
        _finish_field(folder, target, version, identity, planned, changed, result)
        result.fields.append(folder)
    dest.mkdir(parents=True, exist_ok=True)
    result.report = root / REPORT_NAME  # beside the delivery: nothing but products inside it
    report = {
        "source": str(src),
        "sources": {p.name: file_digest(p) for p in sources},
        "fields": [f.name for f in result.fields],
        "unmapped": dict(sorted(result.unmapped.items())),
    }
    _write_if_changed(result.report, json.dumps(report, indent=1) + "\n", result)
    for name, why in sorted(result.unmapped.items()):
        log.warning("not upgraded: %s: %s", name, why)
    return result

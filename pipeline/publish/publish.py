"""The publish stage: products into the delivery folder, README, manifest and checksums."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any

from phangs_products.atomic import atomic_path, inside
from phangs_products.bands import band
from phangs_products.delivery import (
    ALL_SELECTIONS,
    ALL_SUBSETS,
    recorded_facts,
    write_checksums,
    write_manifest,
)
from phangs_products.docs import render_readme, render_steps
from phangs_products.models import ReadmeModel, read_meta
from phangs_products.naming import build_name
from phangs_products.pipeline.clusters.human_classes import MATCH_RADIUS_ARCSEC, table_format
from phangs_products.pipeline.options import settings_rows
from phangs_products.pipeline.products import ProductKey
from phangs_products.pipeline.runner import Outputs, StageContext
from phangs_products.registry import get_schema

log = logging.getLogger(__name__)


def _settings(config: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    return dict(config or {})


def _copy_atomic(src: Path, dst: Path) -> Path:
    with atomic_path(dst, overwrite=True) as tmp:
        shutil.copyfile(src, tmp)
    return dst


def _record(path: Path) -> dict[str, Any]:
    meta = read_meta(path)
    schema = get_schema(str(meta["PPSCHEMA"]), str(meta["PPSCHVER"]))
    rec: dict[str, Any] = {
        "name": path.name,
        "product": schema.name,
        "schema": schema.id,
        "size": path.stat().st_size,
    }
    if schema.product.get("filter_field") == "band" and meta.get("FILTER"):
        rec["filter"] = str(meta["FILTER"])
    for key, field in (("ASCSCALE", "scale"), ("CLSUBSET", "subset")):
        if meta.get(key) is not None:
            rec[field] = meta[key]
    if meta.get("ASCSEL"):
        rec["selection"] = str(meta["ASCSEL"]).lower()
    return rec


def _drc_bands(published: list[Path]) -> list[dict[str, str]]:
    """Filter and instrument of each DRC science image published, in wavelength order."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for path in published:
        if not path.name.endswith(".fits") or "_drc-sci" not in path.name:
            continue
        meta = read_meta(path)
        if str(meta.get("PPSCHEMA", "")) != "drc-sci":
            continue
        info = {
            "filter": str(meta["FILTER"]),
            "instrument": f"{meta['INSTRUME']}/{meta['DETECTOR']}",
        }
        found[(info["instrument"], info["filter"])] = info
    return sorted(found.values(), key=lambda b: band(b["filter"], b["instrument"]).pivot)


def _human_classes(
    published: list[Path], records: list[dict[str, Any]], clusters_config: Any
) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    """Whether human classes were given, the table format, and the catalogs left out.

    Returns the README's ``human`` context (None for a delivery without cluster catalogs) and
    the delivery manifest's ``omitted`` records.
    """
    catalogs = [r for r in records if r["product"] == "cluster-catalog"]
    if not catalogs:
        return None, []
    settings = _settings(clusters_config)
    radius = float(settings.get("human_match_arcsec", MATCH_RADIUS_ARCSEC))
    table = str(settings.get("human_table", "") or "")
    given = any(str(r.get("subset", "")).startswith("hum") for r in catalogs)
    human = {"given": given, "table": Path(table).name, "format": table_format(radius)}
    if given:
        return human, []
    reason = (
        "no table of human (visual) classes was given to this run "
        "(setting stages.clusters.human_table)."
    )
    human["reason"] = reason
    omitted = [
        {"product": "cluster-catalog", "subset": s, "reason": reason}
        for s in ALL_SUBSETS
        if s.startswith("hum")
    ]
    return human, omitted


def publish_stage(ctx: StageContext) -> Outputs:
    """Copy every HLSP product of the earlier stages into the delivery, then README + manifest."""
    run = ctx.run
    field_dir = inside(run.output, run.field)
    field_dir.mkdir(parents=True, exist_ok=True)
    published: list[Path] = []
    for stage_outputs in ctx.inputs.values():
        for product, paths in stage_outputs.items():
            for path in paths:
                if path.name.startswith("hlsp_"):
                    published.append(_copy_atomic(path, inside(field_dir, path.name)))
                else:
                    log.debug("not a delivery product: %s (%s)", path.name, product)
    records = [_record(p) for p in published]
    configs = ctx.config.get("stage_configs", {}) if isinstance(ctx.config, dict) else {}
    facts = recorded_facts(published)
    human, omitted = _human_classes(published, records, configs.get("clusters"))
    # the bands the run processed, each with its instrument, as the DRCs record them
    bands = _drc_bands(published)
    text = render_readme(
        galaxy_=run.galaxy,
        field=run.field,
        version=run.version,
        files=records,
        steps=render_steps(
            {str(k): _settings(c) for k, c in configs.items()},
            rows={str(k): settings_rows(c) for k, c in configs.items()},
        ),
        run_id=ctx.run_id,
        simulated=run.simulated or facts["simulated"],
        skipped_inputs=ctx.upstream_skipped,
        identity=run.identity(),
        proposal_ids=facts["proposal_ids"],
        foreground=facts["foreground"],
        human=human,
        bands=bands,
    )
    readme = ReadmeModel.create(text)
    readme_path = readme.save(
        field_dir / build_name(get_schema("readme"), target=run.field, version=run.version),
        overwrite=True,
    )
    # a run with pointings publishes here only the mosaics (each pointing is a field of its own)
    mosaic = bool(run.pointings)
    extra: dict[str, Any] = {"kind": "mosaic", "scales": (), "selections": (), "subsets": ()}
    if not mosaic:
        left_out = {o["subset"] for o in omitted}
        extra = {"subsets": [s for s in ALL_SUBSETS if s not in left_out], "omitted": omitted}
        # the selections the association stage could make (NUV needs an F275W image)
        made = {r["selection"] for r in records if r["product"] == "assoc-catalog"}
        extra["selections"] = [s for s in ALL_SELECTIONS if s in made]
    manifest_path = write_manifest(
        field_dir, target=run.field, version=run.version, bands=bands, **extra
    )
    sums = write_checksums(field_dir)
    log.info("published %d products to %s", len(published) + 1, field_dir)
    # recorded with their hashes: a rerun redoes this stage if the delivery was changed
    return {ProductKey.DELIVERY: [*published, readme_path, Path(manifest_path), Path(sums)]}

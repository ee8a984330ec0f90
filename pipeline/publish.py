"""Publish, validate and document: the last stages of a galaxy's run.

``publish`` moves the finished, validated products into the delivery folder (``<output>/<field>``)
one file at a time with atomic renames, then renders the README, writes the delivery manifest
and the checksum file.  ``validate`` runs the validator on the delivery and keeps its reports.
``document`` writes the HTML site.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from phangs_products.atomic import atomic_path
from phangs_products.bands import band
from phangs_products.docs import build_site, render_readme
from phangs_products.models import ReadmeModel, read_meta
from phangs_products.naming import build_name
from phangs_products.registry import get_schema

from .runner import Outputs, StageContext

__all__ = ["document_stage", "publish_stage", "validate_stage"]

log = logging.getLogger(__name__)

#: Text of each pipeline step in the README, filled from the stage configurations.
STEP_TEXT = {
    "imaging": (
        "Alignment and drizzling",
        "drizzlepac TweakReg aligned every FLC to the reference astrometric catalog "
        "(Gaia DR2 for real data); AstroDrizzle combined each band onto one north-up "
        "grid defined by {reference_filter} at {pixscale} arcsec/pixel with sky method "
        "'{skymethod}', cosmic-ray rejection and output in e-/s. ERR maps follow from the "
        "EXP weights and the detector noise model.",
    ),
    "photometry": (
        "Detection and photometry",
        "Sources were found on the F555W DRC and measured in all bands in circular "
        "apertures (radius 4 px, local sky from an annulus), with concentration "
        "indices CI, MCI_in, MCI_out and NCI and aperture corrections.",
    ),
    "clusters": (
        "Star clusters",
        "Candidates were selected by S/N, band coverage and their position in the "
        "MCI plane calibrated with injected synthetic clusters, classified by a "
        "convolutional network (and human classes when given) and fitted with BC03 "
        "SSP models (solar metallicity, Chabrier IMF, Cardelli extinction).",
    ),
    "associations": (
        "Stellar associations",
        "NUV- and V-selected point sources were placed on the DRC grid, smoothed with "
        "Gaussian kernels of 8, 16, 32 and 64 pc, high-pass filtered (minus the map "
        "smoothed 4x wider) and segmented with a watershed from the peaks above 1.5 "
        "single-star peaks, down to the single-star level at half the kernel FWHM. "
        "Unlike the paper, a peak also has to hold more stars within one kernel FWHM "
        "than chance groupings of the local field reach (false_alarm expected chance "
        "peaks per map and scale). Each region was measured in all bands with a local "
        "ring background and fitted like the clusters.",
    ),
}


def _config_text(config: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    return dict(config or {})


def readme_steps(configs: dict[str, Any]) -> list[dict[str, str]]:
    """README step descriptions with the settings each stage used."""
    steps = []
    for stage, (title, text) in STEP_TEXT.items():
        if stage not in configs:
            continue
        values = _config_text(configs[stage])
        try:
            body = text.format(**values)
        except (KeyError, IndexError):
            body = text
        settings = ", ".join(f"{k} = {v}" for k, v in values.items())
        steps.append({"title": title, "text": f"{body} Settings: {settings}."})
    return steps


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


def publish_stage(ctx: StageContext) -> Outputs:
    """Copy every HLSP product of the earlier stages into the delivery, then README + manifest."""
    from phangs_products.delivery import write_checksums, write_manifest

    run = ctx.run
    field_dir = run.output / run.field
    field_dir.mkdir(parents=True, exist_ok=True)
    published: list[Path] = []
    for stage_outputs in ctx.inputs.values():
        for product, paths in stage_outputs.items():
            for path in paths:
                if path.name.startswith("hlsp_"):
                    published.append(_copy_atomic(path, field_dir / path.name))
                else:
                    log.debug("not a delivery product: %s (%s)", path.name, product)
    records = [_record(p) for p in published]
    configs = ctx.config.get("stage_configs", {}) if isinstance(ctx.config, dict) else {}
    text = render_readme(
        galaxy_=run.galaxy,
        field=run.field,
        version=run.version,
        files=records,
        steps=readme_steps(configs),
        run_id=ctx.run_id,
        simulated=run.simulated,
    )
    readme = ReadmeModel.create(text)
    readme_path = readme.save(
        field_dir / build_name(get_schema("readme"), target=run.field, version=run.version),
        overwrite=True,
    )
    bands = [{"filter": f, "instrument": band(f).instrument} for f in run.bands]
    # a run with pointings publishes here only the mosaics (each pointing is a field of its own)
    mosaic = bool(run.pointings)
    extra: dict[str, Any] = {"kind": "mosaic", "scales": (), "selections": (), "subsets": ()}
    manifest_path = write_manifest(
        field_dir, target=run.field, version=run.version, bands=bands, **(extra if mosaic else {})
    )
    sums = write_checksums(field_dir)
    log.info("published %d products to %s", len(published) + 1, field_dir)
    # recorded with their hashes: a rerun redoes this stage if the delivery was changed
    return {"delivery": [*published, readme_path, Path(manifest_path), Path(sums)]}


def validate_stage(ctx: StageContext) -> Outputs:
    """Validate the delivery; keep the JSON and JUnit reports; fail on errors."""
    from phangs_products.validation import validate_delivery

    field_dir = ctx.run.output / ctx.run.field
    report = validate_delivery(field_dir, data=True)
    json_path = ctx.folder / "validation.json"
    json_path.write_text(report.to_json())
    junit_path = ctx.folder / "validation.xml"
    junit_path.write_text(report.to_junit())
    log.info("validation: %s", report.summary())
    if not report.ok:
        raise RuntimeError(f"delivery {field_dir} does not validate: {report.summary()}")
    return {"report": [json_path, junit_path]}


def document_stage(ctx: StageContext) -> Outputs:
    """Write the HTML site of the delivery root, with the validation report page."""
    (json_path, _) = ctx.inputs["validate"]["report"]
    doc = json.loads(json_path.read_text())
    problems = doc.get("problems", [])
    index = build_site(ctx.run.output, problems, doc.get("summary", ""))
    marker = ctx.folder / "index.txt"
    marker.write_text(str(index))
    return {"site": [marker]}

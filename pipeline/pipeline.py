"""The stage graph of one galaxy field and the function that runs it.

A galaxy observed with several pointings (``RunConfig.pointings``) runs every pointing as a
field of its own, then the mosaic stages (:func:`build_mosaic_stages`) on the aligned FLCs the
pointings published.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from .associations_stage import AssociationStageConfig, associations_stage
from .clusters_stage import ClusterStageConfig, clusters_stage
from .config import RunConfig, stage_config
from .imaging import ImagingConfig
from .imaging_stage import imaging_stage, input_files
from .mosaic_stage import aligned_flcs, mosaic_stage
from .photometry_stage import PhotometryStageConfig, photometry_stage
from .publish import document_stage, publish_stage, validate_stage
from .runner import Stage, StageResult, run_stages

__all__ = ["build_mosaic_stages", "build_stages", "run_galaxy"]

log = logging.getLogger(__name__)


def _inputs(run: RunConfig):
    return [*input_files(run.input), run.reference_catalog]


def _human_table(run: RunConfig):
    path = (run.stages.get("clusters") or {}).get("human_table")
    return [Path(path)] if path else []


def build_stages(run: RunConfig) -> list[Stage]:
    """The stages of a run, with configurations from the paper defaults and the run's overrides."""
    imaging = stage_config(ImagingConfig, run.stages.get("imaging"), "imaging")
    photometry = stage_config(PhotometryStageConfig, run.stages.get("photometry"), "photometry")
    clusters = stage_config(ClusterStageConfig, run.stages.get("clusters"), "clusters")
    associations = stage_config(
        AssociationStageConfig, run.stages.get("associations"), "associations"
    )
    configs = {
        "imaging": imaging,
        "photometry": photometry,
        "clusters": clusters,
        "associations": associations,
    }
    stages = [
        Stage("imaging", imaging_stage, config=imaging, external_inputs=_inputs),
        Stage("photometry", photometry_stage, depends=("imaging",), config=photometry),
        Stage(
            "clusters",
            clusters_stage,
            depends=("imaging", "photometry"),
            config=clusters,
            external_inputs=_human_table,
        ),
        Stage(
            "associations",
            associations_stage,
            depends=("imaging", "photometry", "clusters"),
            config=associations,
        ),
    ]
    science = ["imaging", "photometry", "clusters", "associations"]
    stages += [
        Stage("publish", publish_stage, depends=tuple(science), config={"stage_configs": configs}),
        Stage("validate", validate_stage, depends=("publish",), config={}),
        Stage("docs", document_stage, depends=("validate",), config={}),
    ]
    return stages


def _aligned_inputs(run: RunConfig) -> list[Path]:
    return [p for pointing in run.pointings for p in aligned_flcs(pointing.input)]


def build_mosaic_stages(run: RunConfig) -> list[Stage]:
    """Stages of a mosaic run (:meth:`RunConfig.mosaic_run`): mosaic, publish, validate, docs.

    The mosaic stage uses the imaging stage's settings (``stages.imaging``); its key covers the
    aligned FLC products of every pointing, so it is redone when a pointing changes.
    """
    imaging = stage_config(ImagingConfig, run.stages.get("imaging"), "imaging")
    return [
        Stage("mosaic", mosaic_stage, config=imaging, external_inputs=_aligned_inputs),
        Stage(
            "publish",
            publish_stage,
            depends=("mosaic",),
            config={"stage_configs": {"imaging": imaging}},
        ),
        Stage("validate", validate_stage, depends=("publish",), config={}),
        Stage("docs", document_stage, depends=("validate",), config={}),
    ]


def _named(result: StageResult, field: str) -> StageResult:
    return dataclasses.replace(result, name=f"{field}/{result.name}")


def run_galaxy(
    run: RunConfig, report: Callable[[StageResult], None] | None = None
) -> list[StageResult]:
    """Run every stage of one galaxy field (skipping unchanged ones).

    With several pointings: every pointing's stages, then the mosaic's; stage names in the
    results are prefixed with their field (``ngc628e/imaging``, ``ngc628mosaic/mosaic``).
    """
    if not run.pointings:
        return run_stages(run, build_stages(run), report=report)
    results: list[StageResult] = []
    mosaic = run.mosaic_run()
    for sub, stages in [
        *((p, build_stages(p)) for p in run.pointing_runs()),
        (mosaic, build_mosaic_stages(mosaic)),
    ]:

        def show(result: StageResult, field: str = sub.field) -> None:
            if report is not None:
                report(_named(result, field))

        log.info("field %s of %s", sub.field, run.field)
        results += [_named(r, sub.field) for r in run_stages(sub, stages, report=show)]
    return results

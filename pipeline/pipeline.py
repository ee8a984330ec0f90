"""The stage graph of one galaxy field and the function that runs it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from .associations_stage import AssociationStageConfig, associations_stage
from .clusters_stage import ClusterStageConfig, clusters_stage
from .config import RunConfig, stage_config
from .imaging import ImagingConfig
from .imaging_stage import imaging_stage, input_files
from .photometry_stage import PhotometryStageConfig, photometry_stage
from .publish import document_stage, publish_stage, validate_stage
from .runner import Stage, StageResult, run_stages

__all__ = ["build_stages", "run_galaxy"]

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


def run_galaxy(
    run: RunConfig, report: Callable[[StageResult], None] | None = None
) -> list[StageResult]:
    """Run every stage of one galaxy field (skipping unchanged ones)."""
    return run_stages(run, build_stages(run), report=report)

"""The stage graph of one galaxy field and the function that runs it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from .config import RunConfig, stage_config
from .imaging import ImagingConfig
from .imaging_stage import imaging_stage, input_files
from .publish import document_stage, publish_stage, validate_stage
from .runner import Stage, StageResult, run_stages

__all__ = ["build_stages", "run_galaxy"]

log = logging.getLogger(__name__)


def _inputs(run: RunConfig):
    return [*input_files(run.input), run.reference_catalog]


def build_stages(run: RunConfig) -> list[Stage]:
    """The stages of a run, with configurations from the paper defaults and the run's overrides."""
    imaging = stage_config(ImagingConfig, run.stages.get("imaging"), "imaging")
    configs = {"imaging": imaging}
    stages = [Stage("imaging", imaging_stage, config=imaging, external_inputs=_inputs)]
    science = ["imaging"]
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

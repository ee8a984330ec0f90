"""The stage graph of one galaxy field and the function that runs it.

A galaxy observed with several pointings (``RunConfig.pointings``) runs every pointing as a
field of its own (side by side, :mod:`.fields`), then the mosaic stages
(:func:`build_mosaic_stages`) on the aligned FLCs the pointings published.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from phangs_products.pipeline.associations.stage import AssociationStageConfig, associations_stage
from phangs_products.pipeline.clusters.stage import ClusterStageConfig, clusters_stage
from phangs_products.pipeline.config import RunConfig, stage_config
from phangs_products.pipeline.fields import fields_at_once, run_fields
from phangs_products.pipeline.imaging.exposures import ImagingConfig
from phangs_products.pipeline.imaging.mosaic import aligned_flcs, mosaic_stage
from phangs_products.pipeline.imaging.stage import imaging_stage, input_files
from phangs_products.pipeline.photometry.stage import PhotometryStageConfig, photometry_stage
from phangs_products.pipeline.products import StageName
from phangs_products.pipeline.publish.document import document_stage
from phangs_products.pipeline.publish.publish import publish_stage
from phangs_products.pipeline.publish.validate import validate_stage
from phangs_products.pipeline.runner import LockOwner, Stage, StageResult, run_stages

log = logging.getLogger(__name__)


def _inputs(run: RunConfig):
    return [*input_files(run.input), run.reference_catalog]


def _human_table(run: RunConfig):
    path = (run.stages.get(StageName.CLUSTERS) or {}).get("human_table")
    return [Path(path)] if path else []


#: The frozen config dataclass of each configurable stage (``[stages.<name>]`` in the TOML).
STAGE_CONFIGS: dict[StageName, type] = {
    StageName.IMAGING: ImagingConfig,
    StageName.PHOTOMETRY: PhotometryStageConfig,
    StageName.CLUSTERS: ClusterStageConfig,
    StageName.ASSOCIATIONS: AssociationStageConfig,
}


def build_stages(run: RunConfig) -> list[Stage]:
    """The stages of a run, with configurations from the paper defaults and the run's overrides."""
    imaging, photometry, clusters, associations = (
        stage_config(cls, run.stages.get(name), name) for name, cls in STAGE_CONFIGS.items()
    )
    configs = {
        StageName.IMAGING: imaging,
        StageName.PHOTOMETRY: photometry,
        StageName.CLUSTERS: clusters,
        StageName.ASSOCIATIONS: associations,
    }
    stages = [
        Stage(StageName.IMAGING, imaging_stage, config=imaging, external_inputs=_inputs),
        Stage(
            StageName.PHOTOMETRY, photometry_stage, depends=(StageName.IMAGING,), config=photometry
        ),
        Stage(
            StageName.CLUSTERS,
            clusters_stage,
            depends=(StageName.IMAGING, StageName.PHOTOMETRY),
            config=clusters,
            external_inputs=_human_table,
        ),
        Stage(
            StageName.ASSOCIATIONS,
            associations_stage,
            depends=(StageName.IMAGING, StageName.PHOTOMETRY, StageName.CLUSTERS),
            config=associations,
        ),
    ]
    science = [StageName.IMAGING, StageName.PHOTOMETRY, StageName.CLUSTERS, StageName.ASSOCIATIONS]
    stages += [
        Stage(
            StageName.PUBLISH,
            publish_stage,
            depends=tuple(science),
            config={"stage_configs": configs},
        ),
        Stage(StageName.VALIDATE, validate_stage, depends=(StageName.PUBLISH,), config={}),
        Stage(StageName.DOCS, document_stage, depends=(StageName.VALIDATE,), config={}),
    ]
    return stages


def _aligned_inputs(run: RunConfig) -> list[Path]:
    return [p for pointing in run.pointings for p in aligned_flcs(pointing.input)]


def build_mosaic_stages(run: RunConfig) -> list[Stage]:
    """Stages of a mosaic run (:meth:`RunConfig.mosaic_run`): mosaic, publish, validate, docs.

    The mosaic stage uses the imaging stage's settings (``stages.imaging``); its key covers the
    aligned FLC products of every pointing, so it is redone when a pointing changes.
    """
    imaging = stage_config(ImagingConfig, run.stages.get(StageName.IMAGING), StageName.IMAGING)
    return [
        Stage(StageName.MOSAIC, mosaic_stage, config=imaging, external_inputs=_aligned_inputs),
        Stage(
            StageName.PUBLISH,
            publish_stage,
            depends=(StageName.MOSAIC,),
            config={"stage_configs": {StageName.IMAGING: imaging}},
        ),
        Stage(StageName.VALIDATE, validate_stage, depends=(StageName.PUBLISH,), config={}),
        Stage(StageName.DOCS, document_stage, depends=(StageName.VALIDATE,), config={}),
    ]


def _named(result: StageResult, field: str) -> StageResult:
    return dataclasses.replace(result, name=f"{field}/{result.name}")


def galaxy_plan(run: RunConfig) -> list[tuple[RunConfig, list[Stage]]]:
    """The runs of a galaxy with several pointings and their stages, in order.

    Every pointing's stages, then the mosaic's.  The HTML site covers the whole delivery, so
    only the last run (the mosaic) builds it: a docs stage per pointing rebuilt the same site,
    previews included, once per field.
    """
    mosaic = run.mosaic_run()
    pointings = [
        (p, [s for s in build_stages(p) if s.name != StageName.DOCS]) for p in run.pointing_runs()
    ]
    return [*pointings, (mosaic, build_mosaic_stages(mosaic))]


def run_galaxy(
    run: RunConfig,
    report: Callable[[StageResult], None] | None = None,
    lock_owner: LockOwner | None = None,
    pointings_at_once: int = 0,
) -> list[StageResult]:
    """Run every stage of one galaxy field (skipping unchanged ones).

    With several pointings: the pointings' stages, side by side in worker processes
    (:mod:`.fields`; ``pointings_at_once`` of them, 0 = one per core, 1 = one after another),
    then the mosaic's; stage names in the results are prefixed with their field
    (``ngc628e/imaging``, ``ngc628mosaic/mosaic``).  ``lock_owner`` is what the work folders'
    locks record of the run beyond pid and host (a Dask worker's address, see
    :class:`~phangs_products.pipeline.runner.LockOwner`).
    """
    if not run.pointings:
        return run_stages(run, build_stages(run), report=report, lock_owner=lock_owner)
    *pointings, mosaic = galaxy_plan(run)
    at_once = fields_at_once(pointings_at_once, len(pointings))
    if at_once > 1:
        log.info("%d pointings of %s, %d at once", len(pointings), run.field, at_once)

        def show_field(field: str, result: StageResult) -> None:
            if report is not None:
                report(_named(result, field))

        done = run_fields(pointings, at_once, report=show_field, lock_owner=lock_owner)
        pairs = zip(pointings, done, strict=True)
        results = [_named(r, sub.field) for (sub, _), field_results in pairs for r in field_results]
        plan = [mosaic]
    else:
        results = []
        plan = [*pointings, mosaic]
    for sub, stages in plan:
        results += run_field(sub, stages, report=report, lock_owner=lock_owner)
    return results


def run_field(
    sub: RunConfig,
    stages: list[Stage],
    report: Callable[[StageResult], None] | None = None,
    lock_owner: LockOwner | None = None,
) -> list[StageResult]:
    """Run one field of a :func:`galaxy_plan`; results (and reports) named by their field."""

    def show(result: StageResult) -> None:
        if report is not None:
            report(_named(result, sub.field))

    log.info("field %s", sub.field)
    return [
        _named(r, sub.field) for r in run_stages(sub, stages, report=show, lock_owner=lock_owner)
    ]

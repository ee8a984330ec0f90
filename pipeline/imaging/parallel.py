"""The bands of one field aligned and drizzled as concurrent tasks in worker processes.

The reference band (F555W) defines the output grid, so its drizzle comes first; every band is
aligned on its own against the reference catalog, so the other bands' alignments run beside
it, and their drizzles onto its grid follow as soon as it is written.  Each band works in its
own scratch subfolder (drizzlepac writes into the current folder and changes it), in a worker
forked from a ``forkserver`` (a clean process that imported drizzlepac once) with
single-threaded BLAS like the stage itself, so the arrays are those of the sequential run.
Log records of the workers are replayed in the calling process.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from threadpoolctl import threadpool_limits

from phangs_products.pipeline.cores import available_cores
from phangs_products.pipeline.imaging.align import AlignmentResult, align_exposures
from phangs_products.pipeline.imaging.drizzle import BandImages, drizzle_band
from phangs_products.pipeline.imaging.exposures import Exposure, ImagingConfig, ImagingError
from phangs_products.pipeline.logrelay import Collect, replay

log = logging.getLogger(__name__)

#: Modules the worker processes' fork server imports before forking them.
_PRELOAD = ("drizzlepac.astrodrizzle", "drizzlepac.tweakreg")


def worker_count(config: ImagingConfig, n_bands: int) -> int:
    """Worker processes for ``n_bands`` bands: ``config.workers``, 0 meaning every free core.

    Never more than the bands; 1 means the sequential loop in this process.  A daemonic
    process (a Dask or multiprocessing pool worker: one field per worker already keeps the
    cores busy) cannot start processes of its own and runs the bands in turn.
    """
    if multiprocessing.current_process().daemon:
        return 1
    wanted = config.workers or available_cores()
    return max(1, min(wanted, n_bands))


@dataclass
class BandTask:
    """What a worker returns for one band: aligned exposures, alignment and drizzle results.

    ``error`` is the failure message (the band is then skipped), ``records`` the worker's log
    records to replay.
    """

    filter: str
    exposures: list[Exposure]
    reports: list[AlignmentResult] = field(default_factory=list)
    images: BandImages | None = None
    error: str = ""
    records: list[logging.LogRecord] = field(default_factory=list)


def _band_task(
    task: BandTask,
    refcat: Path | None,
    config: ImagingConfig,
    folder: Path,
    refimage: Path | None,
    align: bool,
    drizzle: bool,
) -> BandTask:
    """Align and/or drizzle one band in ``folder`` (runs in a worker process)."""
    collect = Collect()
    logger = logging.getLogger("phangs_products")
    logger.addHandler(collect)
    level = logger.level
    if level == logging.NOTSET or level > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        with threadpool_limits(limits=1):
            if align and refcat is not None:
                task.reports = align_exposures(task.exposures, refcat, config, folder)
            if drizzle:
                task.images = drizzle_band(task.exposures, folder, config, refimage)
    except Exception as exc:  # reported to the caller, which decides whether to go on
        task.error = f"{type(exc).__name__}: {exc}"
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)
    task.records = collect.records
    return task


def _replay(task: BandTask) -> None:
    replay(task.records)
    task.records = []


def run_bands(
    bands: Sequence[tuple[str, list[Exposure]]],
    refcat: Path | None,
    config: ImagingConfig,
    scratch: Path,
    workers: int,
    align: bool = True,
) -> Iterator[BandTask]:
    """Align and drizzle every band with ``workers`` processes; the first band is the reference.

    Parameters
    ----------
    bands : sequence of (filter, exposures)
        Bands in output order, the reference band first; the exposures are copies in
        ``scratch/<filter>/``, edited in place.
    refcat : Path or None
        Reference catalog of the alignment (None without ``align``).
    config : ImagingConfig
        Alignment and drizzle settings.
    scratch : Path
        Scratch folder; band ``F`` works in ``scratch/<f>`` (lower case).
    workers : int
        Worker processes (>= 2).
    align : bool
        Align the exposures first (False: drizzle exposures aligned before, as the mosaic
        stage does).

    Yields
    ------
    BandTask
        One per band, in the order given, as soon as it is done (the caller makes a band's
        products while the workers go on); a band that failed has ``error`` set.  The
        reference band's failure stops the others (they need its grid).
    """
    context = multiprocessing.get_context("forkserver")
    # the fork server imports drizzlepac once; every worker forks from it (a spawned worker
    # took as long to import it as to drizzle a band of the small field)
    context.set_forkserver_preload([__name__, *_PRELOAD])
    folders = {filt: scratch / filt.lower() for filt, _ in bands}
    tasks = [BandTask(filt, list(exposures)) for filt, exposures in bands]
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        ref, *others = tasks
        first = pool.submit(_band_task, ref, refcat, config, folders[ref.filter], None, align, True)
        aligned: list[Future[BandTask]] = [
            pool.submit(_band_task, t, refcat, config, folders[t.filter], None, True, False)
            if align
            else _finished(t)
            for t in others
        ]
        ref = first.result()
        _replay(ref)
        if ref.error or ref.images is None:
            for future in aligned:
                future.cancel()
            yield ref
            yield from others
            return
        refimage = ref.images.sci
        drizzled: list[Future[BandTask]] = []
        for future in aligned:  # in band order: each drizzle queued once its band is aligned
            task = future.result()
            _replay(task)
            if task.error:
                drizzled.append(_finished(task))
                continue
            args = (refcat, config, folders[task.filter], refimage, False, True)
            drizzled.append(pool.submit(_band_task, task, *args))
            if len(drizzled) == 1:
                yield ref  # its products are made while the other bands are drizzled
        if not drizzled:
            yield ref
        for future in drizzled:
            task = future.result()
            _replay(task)
            yield task


def usable_bands(
    tasks: Iterator[BandTask],
    total: int,
    reference: str,
    progress: Callable[[str, int, int], None],
    done_text: str,
    label: str = "band",
) -> Iterator[BandTask]:
    """The tasks of :func:`run_bands` whose band succeeded, reporting each as it finishes.

    A failed band is logged and skipped; a failed ``reference`` band (its grid is every other
    band's) raises :class:`ImagingError`.  ``progress(step, done, total)`` is told
    ``"<filter> <done_text>"`` for every band.
    """
    for done, task in enumerate(tasks, start=1):
        progress(f"{task.filter} {done_text}", done, total)
        if task.error or task.images is None:
            if task.filter == reference:
                raise ImagingError(f"{label} {task.filter}: {task.error}")
            log.error("%s %s failed and is skipped: %s", label, task.filter, task.error)
            continue
        yield task


def _finished(task: BandTask) -> Future[BandTask]:
    future: Future[BandTask] = Future()
    future.set_result(task)
    return future

"""Several fields of one galaxy side by side: one worker process per field.

The pointings of a galaxy are independent until the mosaic (each is aligned, drizzled,
measured and published on its own grid), so they run at the same time.  Each runs its stage
list with :func:`~phangs_products.pipeline.runner.run_stages` in a worker process of its own
(drizzlepac changes its process's working folder, and every field has its own work folder and
lock) with an equal share of the cores for its bands (:mod:`.cores`): on two cores, two
pointings keep both busy through their one-core stages too (catalogs, associations, publish,
validation), where one pointing at a time left a core idle.  Stage results (running,
progress, done) and the workers' log records come back through a queue and are reported as
they happen.  The products are those of the sequential run (test).
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, wait
from typing import Any

from phangs_products.errors import PhangsProductsError
from phangs_products.pipeline.config import RunConfig
from phangs_products.pipeline.cores import available_cores, share_cores
from phangs_products.pipeline.logrelay import Relay, replay
from phangs_products.pipeline.runner import LockOwner, Stage, StageError, StageResult, run_stages

__all__ = ["fields_at_once", "run_fields"]

log = logging.getLogger(__name__)

#: The worker's handler that sends its log records, and the queue its stage results go to
#: (set when the worker starts).
_RELAY: Relay | None = None


def fields_at_once(wanted: int, n_fields: int) -> int:
    """How many of ``n_fields`` fields to run side by side (1: one after another).

    ``wanted`` 0 means one per core.  A daemonic process (a Dask or pool worker, which runs
    one galaxy per core already) cannot start processes and runs them in turn.
    """
    if n_fields < 2 or multiprocessing.current_process().daemon:
        return 1
    return max(1, min(wanted or available_cores(), n_fields))


def run_fields(
    plans: Sequence[tuple[RunConfig, list[Stage]]],
    at_once: int,
    report: Callable[[str, StageResult], None] | None = None,
    lock_owner: LockOwner | None = None,
) -> list[list[StageResult]]:
    """Run the stage lists of several fields in ``at_once`` worker processes.

    Parameters
    ----------
    plans : sequence of (RunConfig, list of Stage)
        The fields and their stages (picklable: module-level stage functions).
    at_once : int
        Worker processes; each gets ``1 / at_once`` of the cores for its bands.
    report : callable, optional
        Called with the field name and each :class:`StageResult` as it happens.
    lock_owner : LockOwner, optional
        Passed to :func:`run_stages`.

    Returns
    -------
    list of list of StageResult
        Per field, in the order of ``plans``.

    Raises
    ------
    StageError
        The first failure of a field, once every field has ended (the others' products are
        kept, and a new run resumes the failed field).
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    pump = threading.Thread(target=_pump, args=(queue, report), name="field-reports")
    pump.start()
    try:
        with ProcessPoolExecutor(
            max_workers=at_once,
            mp_context=context,
            initializer=_start_worker,
            initargs=(queue, at_once),
        ) as pool:
            futures = [pool.submit(_run_field, run, stages, lock_owner) for run, stages in plans]
            wait(futures)
    finally:
        queue.put(None)  # after every worker has exited and flushed its queue
        pump.join()
    for (run, _), future in zip(plans, futures, strict=True):
        exc = future.exception()
        if isinstance(exc, PhangsProductsError):
            raise exc
        if exc is not None:  # the worker process died (killed, out of memory) or a bug
            raise StageError(
                f"field {run.field}: its worker process failed ({type(exc).__name__}: {exc}); "
                "run again to resume it"
            ) from exc
    return [future.result() for future in futures]


def _start_worker(queue: Any, fields: int) -> None:
    """Worker set-up: its share of the cores; its package log records sent to the caller."""
    global _RELAY
    _RELAY = Relay(queue)
    share_cores(fields)
    logger = logging.getLogger("phangs_products")
    logger.addHandler(_RELAY)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)


def _run_field(
    run: RunConfig, stages: list[Stage], lock_owner: LockOwner | None
) -> list[StageResult]:
    """One field's stages (in a worker), each result sent to the caller as it comes."""
    relay = _RELAY
    assert relay is not None, "runs in a worker set up by _start_worker"

    def report(result: StageResult) -> None:
        relay.queue.put(("result", run.field, result))

    relay.prefix = f"{run.field}: "  # the caller's console shows which field said it
    log.info("field %s", run.field)
    return run_stages(run, stages, report=report, lock_owner=lock_owner)


def _pump(queue: Any, report: Callable[[str, StageResult], None] | None) -> None:
    """Caller side: report the workers' results and replay their log records until None."""
    while (item := queue.get()) is not None:
        if item[0] == "log":
            replay([item[1]])
        elif report is not None:
            try:
                report(item[1], item[2])
            except Exception:  # a failing display must not stop the run
                log.exception("reporting %s of %s failed", item[2].name, item[1])

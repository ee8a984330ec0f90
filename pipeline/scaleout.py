"""Many galaxies at once: one Dask task per galaxy field, or per pointing and mosaic.

One galaxy runs in-process (``run_galaxy``).  Several (or one sent to a cluster) run as tasks
on Dask distributed (a galaxy with several pointings as one task per pointing and a mosaic
task that depends on them, so its pointings run on different workers at once): a
LocalCluster of process workers by default (one thread each, since drizzlepac changes the
current folder), an existing scheduler given by address (``tcp://host:8786``), or the batch
jobs of a SLURM/PBS preset (:mod:`.hpc`).

On a cluster the fields' folders must be on storage every worker sees at the same paths: before
any field is sent, every connected worker reads a token file the client wrote into each field's
work and delivery folders, and the run stops with one line naming the worker and the folder it
cannot see.  A worker that dies while it runs a field (its process killed, its node lost) makes
the scheduler run the field again on another worker (up to ``distributed.scheduler.allowed-
failures`` times, 3 by default); that run takes over the work folder's lock
(:func:`dask_lock_owner`) and resumes from the stages the dead one finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phangs_products.atomic import TEMP_SUFFIX
from phangs_products.errors import PhangsProductsError
from phangs_products.pipeline.config import RunConfig
from phangs_products.pipeline.graph import galaxy_plan, run_field, run_galaxy
from phangs_products.pipeline.hpc import ClusterSpec, make_cluster
from phangs_products.pipeline.runner import LockOwner

__all__ = ["GalaxyOutcome", "SharedStorageError", "dask_lock_owner", "run_many"]

log = logging.getLogger(__name__)

#: One field at a time in a worker process, whatever its thread count: drizzlepac changes the
#: process's working folder.
_FIELD_LOCK = threading.Lock()
#: The handler that sends the package's warnings to a Dask worker's log (Dask's line format).
_WORKER_HANDLER: logging.Handler | None = None
WORKER_LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


class SharedStorageError(PhangsProductsError):
    """A Dask worker does not see a run's folders."""


@dataclass(frozen=True)
class GalaxyOutcome:
    """Result of one galaxy's run (picklable, returned by the Dask task).

    ``worker`` is the address of the Dask worker that ran it ('' in this process); for a
    galaxy of several pointings, the addresses of the workers its tasks ran on, comma-separated.
    """

    field: str
    ok: bool
    stages: tuple[tuple[str, str, float], ...]
    error: str = ""
    worker: str = ""


def _this_worker() -> Any:
    """The Dask worker running this code, or None."""
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def dask_lock_owner() -> LockOwner | None:
    """On a Dask worker: the lock owner that records the worker and its scheduler (else None).

    A lock naming another worker of the same scheduler that the scheduler no longer lists is
    stale: that worker died (its node may be gone, so the pid cannot be checked), and the
    scheduler gave its field to this one.  A lock of another scheduler's worker (a second run
    of the same field elsewhere) is judged by pid and host only.
    """
    worker = _this_worker()
    if worker is None:
        return None
    address, scheduler = worker.address, worker.scheduler.address

    def gone(holder: dict[str, Any]) -> bool:
        other = holder.get("dask_worker")
        if holder.get("dask_scheduler") != scheduler or not isinstance(other, str):
            return False
        if other == address:
            return False
        from distributed import get_client

        return other not in get_client().scheduler_info(n_workers=-1)["workers"]

    return LockOwner({"dask_worker": address, "dask_scheduler": scheduler}, gone)


def _log_to_worker_stderr() -> None:
    """On a Dask worker: the package's warnings go to the worker's log (stderr), once.

    The package logger has only a NullHandler, and a worker configures Dask's loggers only, so
    a stale lock taken over or an input left out would otherwise be seen nowhere but the stage
    logs.
    """
    global _WORKER_HANDLER
    if _WORKER_HANDLER is not None or logging.getLogger().handlers:
        return
    _WORKER_HANDLER = logging.StreamHandler(sys.stderr)
    _WORKER_HANDLER.setLevel(logging.WARNING)
    _WORKER_HANDLER.setFormatter(logging.Formatter(WORKER_LOG_FORMAT))
    logging.getLogger("phangs_products").addHandler(_WORKER_HANDLER)


def _in_worker(field: str, call: Callable[[], list[Any]]) -> GalaxyOutcome:
    """Run ``call`` (a field's stages) as a task: one field at a time per process."""
    worker = _this_worker()
    where = worker.address if worker is not None else ""
    if worker is not None:
        _log_to_worker_stderr()
    with _FIELD_LOCK:
        try:
            results = call()
        except Exception as exc:  # reported per galaxy, the others go on
            error = f"{type(exc).__name__}: {exc}"
            return GalaxyOutcome(field, False, (), error, where)
    stages = tuple((r.name, r.status, round(r.seconds, 2)) for r in results)
    return GalaxyOutcome(field, True, stages, worker=where)


def _run_one(config: RunConfig) -> GalaxyOutcome:
    """A whole galaxy (its pointings and mosaic too) as one task."""
    return _in_worker(config.field, lambda: run_galaxy(config, lock_owner=dask_lock_owner()))


def _run_part(config: RunConfig, index: int) -> GalaxyOutcome:
    """Field ``index`` of the galaxy's :func:`galaxy_plan` (a pointing) as a task of its own."""
    sub, stages = galaxy_plan(config)[index]
    return _in_worker(sub.field, lambda: run_field(sub, stages, lock_owner=dask_lock_owner()))


def _run_mosaic(config: RunConfig, *pointings: GalaxyOutcome) -> GalaxyOutcome:
    """The galaxy's mosaic once its pointing tasks ended (Dask passes their outcomes)."""
    done = tuple(stage for p in pointings for stage in p.stages)
    failed = next((p for p in pointings if not p.ok), None)
    if failed is not None:
        error = f"pointing {failed.field}: {failed.error}"
        return GalaxyOutcome(config.field, False, done, error, failed.worker)
    outcome = _run_part(config, len(pointings))
    workers = ", ".join(dict.fromkeys(o.worker for o in (*pointings, outcome) if o.worker))
    return dataclasses.replace(
        outcome, field=config.field, stages=done + outcome.stages, worker=workers
    )


def _missing(tokens: dict[str, str], folders: list[str]) -> list[str]:
    """On a worker: the token files it cannot read as written, and the folders it cannot see."""
    missing = [f for f in folders if not os.path.isdir(f)]
    for path, content in tokens.items():
        try:
            if Path(path).read_text() != content:
                missing.append(str(Path(path).parent))
        except OSError:
            missing.append(str(Path(path).parent))
    return missing


def check_shared_storage(client: Any, configs: Sequence[RunConfig]) -> None:
    """Every connected worker sees each field's input, work and delivery folders.

    Raises
    ------
    SharedStorageError
        One line naming the first worker and folder that failed.
    """
    tokens: dict[str, str] = {}
    folders = sorted(
        {str(c.input) for c in configs}
        | {str(p.input) for c in configs for p in c.pointings}
        | {str(c.reference_catalog.parent) for c in configs}
    )
    try:
        for folder in sorted({p for c in configs for p in (c.work, c.output)}):
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=".shared-check.", suffix=TEMP_SUFFIX, dir=folder)
            content = uuid.uuid4().hex
            with os.fdopen(fd, "w") as fh:
                fh.write(content)
            tokens[name] = content
        answers = client.run(_missing, tokens, folders)
    finally:
        for name in tokens:
            Path(name).unlink(missing_ok=True)
    if not answers:
        log.info("no Dask worker connected yet: the fields' folders are checked when they run")
    for address, missing in sorted(answers.items()):
        if missing:
            raise SharedStorageError(
                f"Dask worker {address} does not see {missing[0]}: the run's input, output "
                "and work folders must be on storage every worker sees at the same path"
            )


def _check_threads(client: Any) -> None:
    for address, info in client.scheduler_info(n_workers=-1)["workers"].items():
        if info.get("nthreads", 1) > 1:
            log.warning(
                "Dask worker %s has %d threads but runs one field at a time (drizzlepac "
                "changes its process's folder): start workers with --nthreads 1",
                address,
                info["nthreads"],
            )


@contextlib.contextmanager
def _client(
    scheduler: str, n_workers: int, cluster: ClusterSpec | None, n_fields: int
) -> Iterator[Any]:
    """A Dask client of a LocalCluster, a scheduler address or a SLURM/PBS preset."""
    from dask.distributed import Client, LocalCluster

    if cluster is not None:
        jobs = make_cluster(cluster)
        log.info("%s job script:\n%s", cluster.kind, jobs.job_script())
        jobs.scale(jobs=cluster.jobs_for(n_fields))
        owned: Any = jobs
    elif scheduler == "local":
        owned = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    else:
        owned = None
    client = Client(owned if owned is not None else scheduler)
    try:
        yield client
    finally:
        client.close()
        if owned is not None:
            owned.close()


def _submit(client: Any, config: RunConfig, run_key: str) -> Any:
    """The task of a galaxy: one, or one per pointing and the mosaic after them."""
    key = f"galaxy-{config.field}-{run_key}"  # another run's fields on the same scheduler differ
    if not config.pointings:
        return client.submit(_run_one, config, key=key, pure=False)
    parts = [
        client.submit(_run_part, config, i, key=f"pointing-{sub.field}-{run_key}", pure=False)
        for i, (sub, _) in enumerate(galaxy_plan(config)[:-1])
    ]
    return client.submit(_run_mosaic, config, *parts, key=key, pure=False)


def _failure(config: RunConfig, exc: Exception) -> GalaxyOutcome:
    from distributed import KilledWorker

    error = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, KilledWorker):
        error += (
            " (the workers running it died each time: see their logs, e.g. memory; rerun to "
            "resume from its work folder)"
        )
    return GalaxyOutcome(config.field, False, (), error)


def run_many(
    configs: Sequence[RunConfig],
    scheduler: str = "local",
    n_workers: int = 2,
    progress: Callable[[GalaxyOutcome], None] | None = None,
    cluster: ClusterSpec | None = None,
) -> list[GalaxyOutcome]:
    """Run galaxy fields as Dask tasks; return their outcomes in input order.

    Parameters
    ----------
    configs : sequence of RunConfig
        One configuration per field.
    scheduler : str
        ``local`` (a LocalCluster of ``n_workers`` processes), ``sync`` (in this process, one
        after the other) or the address of a running scheduler (``tcp://host:8786``).
    n_workers : int
        Workers of the LocalCluster.
    progress : callable, optional
        Called with each outcome as it completes.
    cluster : ClusterSpec, optional
        A SLURM/PBS preset: its batch jobs are the workers (``scheduler`` is then not used).

    Raises
    ------
    SharedStorageError
        When a connected worker does not see a field's folders (nothing was run).
    """
    if (scheduler == "sync" and cluster is None) or len(configs) == 0:
        outcomes = []
        for config in configs:
            outcomes.append(_run_one(config))
            if progress:
                progress(outcomes[-1])
        return outcomes
    from dask.distributed import as_completed

    with _client(scheduler, n_workers, cluster, len(configs)) as client:
        check_shared_storage(client, configs)
        _check_threads(client)
        run_key = uuid.uuid4().hex[:8]
        futures = [_submit(client, c, run_key) for c in configs]
        by_key = {}
        config_of = {f.key: c for f, c in zip(futures, configs, strict=True)}
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except Exception as exc:  # KilledWorker, a lost scheduler: this field failed
                outcome = _failure(config_of[future.key], exc)
            by_key[future.key] = outcome
            if progress:
                progress(outcome)
        return [by_key[f.key] for f in futures]

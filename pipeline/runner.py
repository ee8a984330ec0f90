"""The orchestrator: runs a galaxy's stages as a graph, skips unchanged ones, resumes killed runs.

Each stage is a function ``stage(ctx) -> outputs`` that writes its products (atomically) into its
own scratch folder ``<work>/<stage>/`` and returns them by product name.  The runner owns the
rest:

* a stage's *key* is the SHA-256 of its name, its configuration and the content hashes of its
  inputs (the outputs of the stages it depends on, or the input files for the first stage);
* the run manifest (``<work>/run-manifest.asdf``, schema run-manifest) records, per stage, the
  key, the status and the hashes of its outputs; a stage whose key and outputs are unchanged is
  skipped;
* a stage that did not finish (killed, failed) is redone from an empty folder, so nothing
  half-written survives; products reach the delivery only in the ``publish`` stage, file by file
  with atomic renames;
* each stage logs to ``<work>/logs/<stage>.log``; the console shows one line per stage and a
  summary table;
* stages run with single-threaded BLAS/OpenMP, so their products are identical whether they
  run in this process or on a Dask worker (parallelism comes from processes, one field each);
* one run at a time uses a work folder: the run holds ``<work>/run.lock`` (pid and host, and
  the Dask worker's address on a worker), so a second run into the same folder stops at once
  (:class:`RunLock`); a lock whose process is gone (or whose Dask worker the scheduler lost) is
  stale and taken over.  Holding it, the run first removes the temporary files a killed atomic
  write left in the work and delivery folders.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from phangs_products.atomic import TEMP_SUFFIX, inside, remove_temp_files
from phangs_products.errors import PhangsProductsError
from phangs_products.models import ManifestModel
from phangs_products.models import open as open_product
from phangs_products.pipeline.code import code_digest, tree_digest
from phangs_products.pipeline.config import RunConfig
from phangs_products.pipeline.memory import PeakMemory
from phangs_products.provenance import file_digest, make_provenance, new_run_id, software_versions

__all__ = [
    "LockOwner",
    "RunLock",
    "RunLockedError",
    "Stage",
    "StageContext",
    "StageResult",
    "run_stages",
]

log = logging.getLogger(__name__)
MANIFEST_NAME = "run-manifest.asdf"
LOCK_NAME = "run.lock"
#: Errors of ``os.link`` on a file system that has no hard links.
NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}
#: Loggers whose records go to the stage log file (third-party tools are chatty).
CAPTURED_LOGGERS = ("phangs_products", "drizzlepac", "stsci", "stwcs", "tweakwcs", "astropy")

Outputs = dict[str, list[Path]]


class StageError(PhangsProductsError):
    """A stage failed; earlier stages' products are kept and the run can be resumed."""


class RunLockedError(PhangsProductsError):
    """Another run is using the work folder."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user
        return True
    return True


@dataclass(frozen=True)
class LockOwner:
    """What a run records in its lock beside pid and host, and how it tells a holder is gone.

    A run on a Dask worker records the worker's address; a lock whose worker the scheduler no
    longer knows is stale, on whatever host it was (a worker lost with its node: the scheduler
    then runs the field again on another worker, which must be able to take the folder over).

    Attributes
    ----------
    facts : dict
        Written into the lock (JSON values).
    gone : callable
        ``gone(holder) -> bool``: whether the run that wrote the lock ``holder`` (its JSON
        document) is gone.
    """

    facts: dict[str, Any]
    gone: Callable[[dict[str, Any]], bool]


class RunLock:
    """The lock of a work folder: ``run.lock`` holding the pid and host of the run using it.

    The lock is written whole to a temporary file, then hard-linked to ``run.lock`` (atomic, and
    refused when the name exists, on local and network file systems), so of two runs starting
    together exactly one gets it, and a run killed while taking it never leaves a lock without
    its holder.  A lock left by a process that no longer runs on this host is stale and taken
    over, and so is one whose holder ``owner`` says is gone (:class:`LockOwner`); any other lock
    of another host is never taken over (its process cannot be checked from here).

    Parameters
    ----------
    folder : Path
        The work folder.
    owner : LockOwner, optional
        More facts about this run for its lock, and the test that a holder is gone.
    """

    def __init__(self, folder: Path, owner: LockOwner | None = None):
        self.path = folder / LOCK_NAME
        self.owner = owner
        self.held = False

    def _holder(self) -> dict[str, Any] | None:
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    def _stale(self, holder: dict[str, Any] | None) -> bool:
        if holder is None:
            return False
        if self.owner is not None and self.owner.gone(holder):
            return True
        if holder.get("host") != socket.gethostname():
            return False
        pid = holder.get("pid")
        return isinstance(pid, int) and pid > 0 and not _pid_alive(pid)

    def _link(self) -> None:
        """Create the lock with its content in one step (``FileExistsError`` when taken)."""
        document = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            **(self.owner.facts if self.owner is not None else {}),
        }
        text = json.dumps(document)
        fd, name = tempfile.mkstemp(
            prefix=f".{LOCK_NAME}.", suffix=TEMP_SUFFIX, dir=self.path.parent
        )
        try:
            os.fchmod(fd, 0o644)  # other users may read who holds the folder
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(name, self.path)
            except FileExistsError:
                raise
            except OSError as exc:  # a file system without hard links
                if exc.errno not in NO_HARD_LINKS:
                    raise
                self._create(text)
        finally:
            os.unlink(name)

    def _create(self, text: str) -> None:
        """Create the lock with ``O_CREAT | O_EXCL``, then write it (no hard links here)."""
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    def acquire(self) -> None:
        """Take the lock.

        Raises
        ------
        RunLockedError
            One line naming the process and host that hold it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(2):
            try:
                self._link()
            except FileExistsError:
                holder = self._holder()
                if attempt == 0 and self._stale(holder):
                    assert holder is not None
                    log.warning(
                        "%s: taking over a stale lock (pid %s on %s%s is gone)",
                        self.path.parent,
                        holder.get("pid"),
                        holder.get("host"),
                        f", Dask worker {holder['dask_worker']}" if "dask_worker" in holder else "",
                    )
                    self.path.unlink(missing_ok=True)
                    continue
                who = (
                    f"pid {holder.get('pid')} on {holder.get('host')}, started "
                    f"{holder.get('started')}"
                    if holder
                    else "unreadable lock"
                )
                raise RunLockedError(
                    f"{self.path.parent}: another run is using this folder ({who}); wait for it "
                    f"to finish, or remove {self.path} if that run is gone"
                ) from None
            self.held = True
            return

    def release(self) -> None:
        """Remove the lock if this process holds it."""
        if self.held:
            holder = self._holder()
            if holder and holder.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass
class StageContext:
    """What a stage function receives.

    Attributes
    ----------
    run : RunConfig
        The run configuration.
    name : str
        Stage name.
    folder : Path
        Empty scratch folder for this stage's outputs.
    inputs : dict
        Outputs of the stages this one depends on, by stage then product name.
    config : Any
        The stage's frozen configuration.
    run_id : str
        Identifier of the run (recorded in product provenance).
    skipped_inputs : list of str
        Input files this stage left out, one line each (``<file>: <why>``), as recorded by
        :meth:`skip_input`.
    upstream_skipped : list of str
        Input files the stages this one depends on (directly or not) left out.
    """

    run: RunConfig
    name: str
    folder: Path
    inputs: dict[str, Outputs]
    config: Any
    run_id: str
    skipped_inputs: list[str] = field(default_factory=list)
    upstream_skipped: list[str] = field(default_factory=list)
    report: Callable[[StageResult], None] | None = None
    _started: float = field(default_factory=time.perf_counter)

    def progress(self, step: str, done: int, total: int) -> None:
        """Tell the console how far the stage is: ``step`` (e.g. ``F336W``) is done ``done/total``.

        Long stages call it per band, pointing or scale; the console shows a progress bar (when
        it is a terminal) and the stage log gets a line.
        """
        log.info("stage %s: %s done (%d/%d)", self.name, step, done, total)
        if self.report is not None:
            seconds = time.perf_counter() - self._started
            self.report(
                StageResult(self.name, "progress", seconds, step=step, done=done, total=total)
            )

    def skip_input(self, line: str) -> None:
        """Record an input file the stage leaves out (``<file>: <why>``).

        The runner writes the lines into the run manifest and the stage result (the console
        shows them); later stages see them in :attr:`upstream_skipped` (the README lists them).
        """
        log.warning("input left out: %s", line)
        self.skipped_inputs.append(line)

    def provenance(self, inputs: Iterable[Path] = ()) -> dict[str, Any]:
        """Provenance tree for a product made by this stage."""
        return make_provenance(
            "",
            run_id=self.run_id,
            stage=self.name,
            config=_plain(self.config),
            inputs=list(inputs),
        )


@dataclass(frozen=True)
class Stage:
    """A node of the stage graph."""

    name: str
    func: Callable[[StageContext], Outputs]
    depends: tuple[str, ...] = ()
    config: Any = None
    #: Input files outside the work folder that the stage reads (hashed into its key).
    external_inputs: Callable[[RunConfig], list[Path]] | None = None

    def __post_init__(self) -> None:
        # plain strings in the manifest and logs, whatever str subclass (StageName) was given
        object.__setattr__(self, "name", str(self.name))
        object.__setattr__(self, "depends", tuple(str(d) for d in self.depends))


@dataclass
class StageResult:
    """Outcome of one stage in this run."""

    name: str
    status: str  # running | progress | done | skipped | failed
    seconds: float
    outputs: Outputs = field(default_factory=dict)
    error: str = ""
    #: Input files the stage left out (``<file>: <why>``).
    skipped_inputs: list[str] = field(default_factory=list)
    #: For ``progress``: what was just finished (a band, a pointing, a scale) and how far.
    step: str = ""
    done: int = 0
    total: int = 0
    #: Peak resident memory of the run's processes while the stage ran, MB (0: not measured).
    peak_mb: float = 0.0
    #: CPU seconds of the run's processes while the stage ran (0: not measured).
    cpu_seconds: float = 0.0

    @property
    def cores(self) -> float:
        """Cores the stage kept busy on average: CPU seconds per wall second (0: unknown)."""
        return self.cpu_seconds / self.seconds if self.seconds > 0 else 0.0


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)


def _keyed(value: Any) -> Any:
    """:func:`_plain` without the options that change how a stage runs, not what it makes.

    Such a dataclass field has ``metadata={"in_key": False}`` (e.g. a worker count): changing
    it does not redo the stage.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _keyed(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.metadata.get("in_key", True)
        }
    if isinstance(value, dict):
        return {str(k): _keyed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_keyed(v) for v in value]
    return _plain(value)


def _digest_outputs(outputs: Outputs) -> dict[str, dict[str, str]]:
    return {
        product: {p.name: file_digest(p) for p in sorted(paths)}
        for product, paths in sorted(outputs.items())
    }


def _relative(path: Path, work: Path) -> str:
    """Path relative to the work folder, or absolute for products outside it (the delivery)."""
    try:
        return path.resolve().relative_to(work.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def stage_key(
    stage: Stage,
    run: RunConfig,
    inputs: dict[str, Outputs],
    code: str | None = None,
    upstream_skipped: Iterable[str] = (),
) -> str:
    """SHA-256 of a stage's name, configuration, inputs and code (:func:`code_digest`).

    Options marked ``in_key: False`` (how a stage runs, not what it makes) are left out.

    Input files that earlier stages left out (``upstream_skipped``) are part of the key too:
    the README lists them.
    """
    digest = hashlib.sha256()
    digest.update(stage.name.encode())
    digest.update((code if code is not None else code_digest(stage.func)).encode())
    digest.update(json.dumps(_keyed(stage.config), sort_keys=True).encode())
    run_fields = {k: v for k, v in run.to_dict().items() if k not in ("stages", "overwrite")}
    digest.update(json.dumps(_plain(run_fields), sort_keys=True, default=str).encode())
    for name in sorted(inputs):
        digest.update(json.dumps(_digest_outputs(inputs[name]), sort_keys=True).encode())
    if stage.external_inputs is not None:
        digest.update(tree_digest(stage.external_inputs(run)).encode())
    skipped = sorted(upstream_skipped)
    if skipped:  # absent when nothing was left out: the keys of complete runs stay as they were
        digest.update(json.dumps(skipped).encode())
    return digest.hexdigest()


class RunManifest:
    """The ASDF run manifest: stage keys, status and output hashes (schema run-manifest)."""

    def __init__(self, path: Path, run: RunConfig, run_id: str):
        self.path = path
        if path.exists():
            model = open_product(path, strict=True)
            assert isinstance(model, ManifestModel)
            self.tree = dict(model.tree)
            self.tree["run_id"] = run_id
        else:
            self.tree = {"run_id": run_id, "target": run.field, "stages": {}}
        self.tree["software"] = software_versions()

    def stage(self, name: str) -> dict[str, Any]:
        """The record of one stage (empty when never run)."""
        return self.tree["stages"].get(name, {})

    def record(self, name: str, reset: bool = False, **values: Any) -> None:
        """Update a stage record (or start it afresh) and write the manifest atomically."""
        entry = {} if reset else dict(self.tree["stages"].get(name, {}))
        entry.update(values)
        self.tree["stages"][name] = entry
        model = ManifestModel.create("run-manifest", self.tree)
        model.save(self.path, overwrite=True)

    def outputs(self, name: str, work: Path) -> Outputs | None:
        """Outputs of a finished stage if every file is still there unchanged, else None."""
        entry = self.stage(name)
        recorded = entry.get("outputs")
        if entry.get("status") != "done" or recorded is None:
            return None
        out: Outputs = {}
        for product, files in recorded.items():
            paths = []
            for rel, digest in files.items():
                path = work / rel
                if not path.exists() or file_digest(path) != digest:
                    return None
                paths.append(path)
            out[product] = paths
        return out


class _StageLog:
    """Send the captured loggers to the stage's log file while the stage runs."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handler = logging.FileHandler(path, mode="a")
        self.handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        self.handler.setLevel(logging.DEBUG)
        self.saved: list[tuple[logging.Logger, int, bool]] = []

    def __enter__(self) -> _StageLog:
        for name in CAPTURED_LOGGERS:
            logger = logging.getLogger(name)
            self.saved.append((logger, logger.level, logger.propagate))
            logger.addHandler(self.handler)
            if logger.level == logging.NOTSET or logger.level > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.propagate = False  # the console shows one line per stage
        return self

    def __exit__(self, *exc: object) -> None:
        for logger, level, propagate in self.saved:
            logger.removeHandler(self.handler)
            logger.setLevel(level)
            logger.propagate = propagate
        self.handler.close()


def run_stages(
    run: RunConfig,
    stages: list[Stage],
    *,
    run_id: str | None = None,
    report: Callable[[StageResult], None] | None = None,
    lock_owner: LockOwner | None = None,
) -> list[StageResult]:
    """Run the stage graph of one galaxy field.

    Parameters
    ----------
    run : RunConfig
        The run configuration (``run.work`` holds the resumable state).
    stages : list of Stage
        Stages in an order compatible with their dependencies.
    run_id : str, optional
        Run identifier (new one by default).
    report : callable, optional
        Called with each :class:`StageResult` as soon as the stage ends.
    lock_owner : LockOwner, optional
        Who takes the work folder's lock, beyond pid and host (a Dask worker).

    Returns
    -------
    list of StageResult

    Raises
    ------
    StageError
        When a stage fails; the manifest records the failure and earlier outputs stay.
    RunLockedError
        When another run is using the work folder.
    """
    run_id = run_id or new_run_id()
    with RunLock(run.work, lock_owner):
        _remove_leftovers(run)
        return _run_locked(run, stages, run_id, report)


def _remove_leftovers(run: RunConfig) -> None:
    """Remove the temporary files of atomic writes a killed run left (work and delivery)."""
    removed = remove_temp_files(run.work, recursive=True)
    removed += remove_temp_files(inside(run.output, run.field))
    if removed:
        log.warning(
            "removed %d temporary file(s) a killed run left: %s",
            len(removed),
            ", ".join(str(p) for p in removed),
        )


def _run_locked(
    run: RunConfig,
    stages: list[Stage],
    run_id: str,
    report: Callable[[StageResult], None] | None,
) -> list[StageResult]:
    manifest = RunManifest(run.work / MANIFEST_NAME, run, run_id)
    done: dict[str, Outputs] = {}
    #: input files left out by each stage and the stages it depends on
    left_out: dict[str, list[str]] = {}
    results: list[StageResult] = []
    for stage in stages:
        missing = [d for d in stage.depends if d not in done]
        if missing:
            raise StageError(f"stage {stage.name}: depends on {missing}, which did not run")
        inputs = {d: done[d] for d in stage.depends}
        upstream = list(dict.fromkeys(line for d in stage.depends for line in left_out[d]))
        key = stage_key(stage, run, inputs, upstream_skipped=upstream)
        folder = run.work / stage.name
        previous = manifest.stage(stage.name)
        if previous.get("key") == key:
            outputs = manifest.outputs(stage.name, run.work)
            if outputs is not None:
                done[stage.name] = outputs
                own = list(previous.get("skipped_inputs", []))
                left_out[stage.name] = list(dict.fromkeys([*upstream, *own]))
                result = StageResult(stage.name, "skipped", 0.0, outputs, skipped_inputs=own)
                results.append(result)
                log.info("stage %s unchanged: skipped", stage.name)
                if report:
                    report(result)
                continue
        if folder.exists():
            shutil.rmtree(folder)  # leftovers of an unfinished or outdated attempt
        folder.mkdir(parents=True)
        started = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        manifest.record(
            stage.name, reset=True, status="running", key=key, started=started, outputs={}
        )
        ctx = StageContext(
            run,
            stage.name,
            folder,
            inputs,
            stage.config,
            run_id,
            upstream_skipped=upstream,
            report=report,
        )
        if report:
            report(StageResult(stage.name, "running", 0.0))
        t0 = time.perf_counter()
        memory = PeakMemory()
        try:
            with (
                _StageLog(run.work / "logs" / f"{stage.name}.log"),
                threadpool_limits(limits=1),
                memory,
            ):
                log.info("stage %s started (run %s)", stage.name, run_id)
                outputs = stage.func(ctx)
                log.info("stage %s finished", stage.name)
        except Exception as exc:
            seconds = time.perf_counter() - t0
            message = f"{type(exc).__name__}: {exc}"
            manifest.record(
                stage.name,
                status="failed",
                seconds=seconds,
                peak_rss_mb=round(memory.mb, 1),
                error=message[:2000],
            )
            result = StageResult(
                stage.name,
                "failed",
                seconds,
                error=message,
                peak_mb=memory.mb,
                cpu_seconds=memory.cpu_seconds,
            )
            results.append(result)
            if report:
                report(result)
            log.debug("stage %s failed", stage.name, exc_info=True)
            raise StageError(
                f"stage {stage.name} failed: {message} (log: {run.work / 'logs'}/"
                f"{stage.name}.log; earlier stages are kept, rerun to resume)"
            ) from exc
        seconds = time.perf_counter() - t0
        recorded = {
            str(product): {_relative(p, run.work): file_digest(p) for p in paths}
            for product, paths in outputs.items()
        }
        manifest.record(
            stage.name,
            status="done",
            seconds=seconds,
            peak_rss_mb=round(memory.mb, 1),
            finished=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            outputs=recorded,
            **({"skipped_inputs": ctx.skipped_inputs} if ctx.skipped_inputs else {}),
        )
        done[stage.name] = outputs
        left_out[stage.name] = list(dict.fromkeys([*upstream, *ctx.skipped_inputs]))
        result = StageResult(
            stage.name,
            "done",
            seconds,
            outputs,
            skipped_inputs=ctx.skipped_inputs,
            peak_mb=memory.mb,
            cpu_seconds=memory.cpu_seconds,
        )
        results.append(result)
        if report:
            report(result)
    return results

"""Python API of the validator: :func:`validate_delivery`.

Files are checked in parallel (each by :func:`~.filecheck.check_file`), then the cross-file
checks of each field folder run on the collected facts (:func:`~.consistency.check_field`).
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from phangs_products.atomic import is_temp_file
from phangs_products.delivery import find_checksums, find_manifest, is_checksums_name
from phangs_products.errors import Problem, ProductError

from .consistency import check_field
from .facts import FileResult
from .filecheck import check_file
from .report import Report

__all__ = ["field_folders", "validate_delivery", "validate_files"]

log = logging.getLogger(__name__)

#: Entries of a stray folder counted for its message (a huge tree is not walked to the end).
STRAY_COUNT_LIMIT = 10_000
#: Below this many files a thread pool is used (no process start-up cost).
PROCESS_THRESHOLD = 150


def field_folders(path: str | Path) -> list[Path]:
    """Field folders under ``path``: the path itself when it holds products, else its subfolders.

    A folder counts as a field folder when it holds an ``hlsp_*`` file or a checksum list.
    """
    path = Path(path)
    if _is_field(path):
        return [path]
    return sorted(d for d in path.iterdir() if d.is_dir() and _is_field(d))


def _is_field(folder: Path) -> bool:
    return find_manifest(folder) is not None or any(
        f.name.startswith("hlsp_") or is_checksums_name(f.name) for f in folder.iterdir()
    )


def _stray(entry: Path) -> Problem:
    """``delivery.stray-file`` for an entry that is not a product (a folder: with its size)."""
    if is_temp_file(entry):
        what = "temporary file of an interrupted write"
    elif entry.is_symlink():
        what = "symbolic link"
    elif entry.is_dir():
        n = sum(1 for _ in itertools.islice(entry.rglob("*"), STRAY_COUNT_LIMIT))
        more = "+" if n == STRAY_COUNT_LIMIT else ""
        what = f"folder ({n}{more} entries inside)"
    elif entry.is_file():
        what = "file" if entry.name.startswith(".") else "file beside the field folders"
    else:
        what = "not a regular file (FIFO, socket or device)"
    if entry.name.startswith(".") and not is_temp_file(entry):
        what = f"hidden {what}"
    return Problem("delivery.stray-file", f"{what}, not a product; remove it", entry.name)


def root_strays(root: Path, folders: Sequence[Path]) -> list[Problem]:
    """Entries of a delivery root that are not field folders (scratch, a site, loose files)."""
    if list(folders) == [root]:
        return []
    return [_stray(e) for e in sorted(root.iterdir()) if e not in folders]


def _files(folder: Path) -> tuple[list[Path], list[Problem]]:
    """The entries of a field folder to check, and the entries that cannot be products.

    Regular files are checked, and so is anything named like a product (``hlsp_*``) that is
    not a regular file: a FIFO, socket, device or folder posing as a product gets
    ``file.not-regular`` and is never opened.  Hidden files (temporary files of an
    interrupted write among them), other folders, FIFOs and the like each give a
    ``delivery.stray-file`` problem; they are not opened either.  The checksum list is checked
    by the cross-file checks.
    """
    out: list[Path] = []
    stray: list[Problem] = []
    checksums = find_checksums(folder)
    for f in sorted(folder.iterdir()):
        if checksums is not None and f == checksums:
            continue
        if not f.name.startswith(".") and (f.is_file() or f.name.startswith("hlsp_")):
            out.append(f)
        else:
            stray.append(_stray(f))
    return out, stray


def _task(args: tuple[str, str, bool]) -> FileResult:
    return check_file(*args)


def _executor(n_tasks: int, workers: int, kind: str) -> Executor | None:
    if workers <= 1 or n_tasks <= 1:
        return None
    if kind == "auto":
        kind = "process" if n_tasks >= PROCESS_THRESHOLD else "thread"
    if kind == "process":
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    return ThreadPoolExecutor(max_workers=workers)


def validate_files(
    tasks: Sequence[tuple[str, str, bool]], workers: int | None = None, executor: str = "auto"
) -> list[FileResult]:
    """Run :func:`check_file` over ``(path, field, data)`` tasks, in parallel when worthwhile."""
    workers = workers or os.cpu_count() or 1
    pool = _executor(len(tasks), workers, executor)
    if pool is None:
        return [_task(t) for t in tasks]
    chunk = max(1, len(tasks) // (workers * 8))
    try:
        with pool:
            return list(pool.map(_task, tasks, chunksize=chunk))
    except Exception as exc:  # a broken process pool: fall back to a serial run
        log.warning("parallel validation failed (%s); checking files serially", exc)
        return [_task(t) for t in tasks]


def _prefixed(problems: Iterable[Problem], prefix: str) -> list[Problem]:
    if not prefix:
        return list(problems)
    return [replace(p, file=f"{prefix}/{p.file}" if p.file else prefix) for p in problems]


def validate_delivery(
    path: str | Path,
    strict: bool = False,
    data: bool = True,
    workers: int | None = None,
    executor: str = "auto",
) -> Report:
    """Validate a delivery against the MAST HLSP rules and the product schemas.

    Parameters
    ----------
    path : path-like
        Delivery root (one folder per field) or one field folder.
    strict : bool
        Turn warnings into errors.
    data : bool
        Read data where a check needs it (CHECKSUM/DATASUM, SHA-256 of the manifest and
        the checksum list, NaN/sentinel and range checks, catalog positions).  Without it only
        headers are read and the manifest is compared by size.
    workers : int, optional
        Parallel workers (default: the number of CPUs).
    executor : {'auto', 'thread', 'process'}
        How files are checked in parallel; ``auto`` uses processes for large deliveries.

    Returns
    -------
    Report
        Every problem found; ``report.ok`` is true when there is no error.

    Raises
    ------
    ProductError
        If ``path`` is not a folder.
    """
    start = time.perf_counter()
    root = Path(path)
    if not root.is_dir():
        raise ProductError(f"{root}: not a delivery folder")
    folders = field_folders(root)
    report = Report(path=str(root), strict=strict)
    if not folders:
        report.problems.append(
            Problem("delivery.empty", f"{root}: no field folder with hlsp_* products")
        )
    single = folders == [root]
    report.problems += root_strays(root, folders)
    tasks = []
    strays: dict[Path, list[Problem]] = {}
    for folder in folders:
        files, strays[folder] = _files(folder)
        tasks += [(str(f), folder.name, data) for f in files]
    results = validate_files(tasks, workers, executor)
    by_folder: dict[str, list[FileResult]] = {}
    for result in results:
        by_folder.setdefault(str(Path(result.path).parent), []).append(result)
    for folder in folders:
        prefix = "" if single else folder.name
        folder_results = by_folder.get(str(folder), [])
        for r in folder_results:
            report.files[f"{prefix}/{r.name}" if prefix else r.name] = r.checks
            report.problems += _prefixed(r.problems, prefix)
        checksums = find_checksums(folder)
        if checksums is not None:
            key = f"{prefix}/{checksums.name}" if prefix else checksums.name
            report.files[key] = ("delivery",)
        report.problems += _prefixed(strays[folder], prefix)
        report.problems += _prefixed(check_field(folder, folder_results, data), prefix)
    if strict:
        report.problems = [
            replace(p, severity="error") if p.severity != "error" else p for p in report.problems
        ]
    report.seconds = time.perf_counter() - start
    log.info("%s", report.summary())
    return report

"""Peak memory and CPU time of a stage: the run's process and its children, sampled.

``getrusage``'s ``ru_maxrss`` is the peak of the whole process lifetime and counts no worker
process; a stage's own peak needs sampling.  :class:`PeakMemory` runs a daemon thread that sums
the resident set sizes (RSS) of this process and every child process (imaging and photometry
workers) every ``interval`` seconds while a stage runs.  Pages shared between a parent and a
forked child are counted in both, so the figure is an upper bound of the memory the stage needs.

The same samples give the CPU seconds the tree spent during the stage (user + system time of
each process since the stage began or the process started), hence how many cores it kept busy.
``RUSAGE_CHILDREN`` cannot: it counts a worker only once its parent has waited for it, and the
imaging workers are children of a fork server that lives as long as the run.  A process that
ends between two samples loses at most its last ``interval`` of CPU time.
"""

from __future__ import annotations

import threading
from types import TracebackType

import psutil

#: Sampling interval, s.
INTERVAL = 0.2


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of ``process`` and all its children (processes that end are skipped)."""
    return sum(rss for rss, _ in _tree_usage(process).values())


def _tree_usage(process: psutil.Process) -> dict[int, tuple[int, float]]:
    """(resident bytes, CPU seconds) of ``process`` and each child, by pid."""
    usage = {}
    for proc in (process, *process.children(recursive=True)):
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                usage[proc.pid] = (proc.memory_info().rss, times.user + times.system)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return usage


class PeakMemory:
    """Context manager that records the peak resident memory of this process tree.

    Examples
    --------
    >>> with PeakMemory() as peak:
    ...     data = b"x" * 50_000_000
    >>> peak.mb >= 50
    True
    """

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.peak = 0
        self._process = psutil.Process()
        self._cpu_start: dict[int, float] | None = None  # CPU seconds of each pid at the start
        self._cpu_last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)

    @property
    def mb(self) -> float:
        """Peak resident memory in MB (10^6 bytes)."""
        return self.peak / 1e6

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds the process tree spent while the context ran."""
        start = self._cpu_start or {}
        return sum(cpu - start.get(pid, 0.0) for pid, cpu in self._cpu_last.items())

    def _measure(self) -> None:
        usage = _tree_usage(self._process)
        self.peak = max(self.peak, sum(rss for rss, _ in usage.values()))
        if self._cpu_start is None:
            self._cpu_start = {pid: cpu for pid, (_, cpu) in usage.items()}
        for pid, (_, cpu) in usage.items():
            self._cpu_last[pid] = cpu

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._measure()

    def __enter__(self) -> PeakMemory:
        self._measure()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._measure()

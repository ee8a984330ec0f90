"""Peak memory of a stage: resident memory of the run's process and its children, sampled.

``getrusage``'s ``ru_maxrss`` is the peak of the whole process lifetime and counts no worker
process; a stage's own peak needs sampling.  :class:`PeakMemory` runs a daemon thread that sums
the resident set sizes (RSS) of this process and every child process (imaging and photometry
workers) every ``interval`` seconds while a stage runs.  Pages shared between a parent and a
forked child are counted in both, so the figure is an upper bound of the memory the stage needs.
"""

from __future__ import annotations

import threading
from types import TracebackType

import psutil

#: Sampling interval, s.
INTERVAL = 0.2


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of ``process`` and all its children (processes that end are skipped)."""
    total = 0
    for proc in (process, *process.children(recursive=True)):
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return total


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
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)

    @property
    def mb(self) -> float:
        """Peak resident memory in MB (10^6 bytes)."""
        return self.peak / 1e6

    def _measure(self) -> None:
        self.peak = max(self.peak, tree_rss(self._process))

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

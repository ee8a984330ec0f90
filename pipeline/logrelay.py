"""Log records of a worker process, sent to the process that started it and replayed there.

A worker's records go to the caller's handlers (console, run log) as if logged there: the
worker keeps them (:class:`Collect`) or sends them through a queue (:class:`Relay`) once made
picklable (:func:`portable`), and the caller hands them to :func:`replay`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

__all__ = ["Collect", "Relay", "portable", "replay"]


def portable(record: logging.LogRecord) -> logging.LogRecord:
    """The record with its message formatted and nothing unpicklable left (in place)."""
    record.msg = record.getMessage()
    record.args = None
    record.exc_info = None
    record.exc_text = None
    return record


class Collect(logging.Handler):
    """Keep the log records of a task (made picklable) to send back with its result."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record."""
        self.records.append(portable(record))


class Relay(logging.Handler):
    """Send every log record (made picklable) through a queue as ``("log", record)``.

    ``prefix`` starts every message (``"ngc628e: "``: which of the fields side by side said it).
    """

    def __init__(self, queue: Any, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.queue = queue
        self.prefix = ""

    def emit(self, record: logging.LogRecord) -> None:
        """Send the record."""
        record = portable(record)
        record.msg = f"{self.prefix}{record.msg}"
        self.queue.put(("log", record))


def replay(records: Iterable[logging.LogRecord]) -> None:
    """Hand a worker's records to this process's loggers of the same names.

    A record goes on only if the logger here takes its level, as if it had been logged here
    (``Logger.handle`` itself does not look at the level).
    """
    for record in records:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)

"""The CPU cores one field's work may use: the process's cores, shared with fields beside it.

Stages that measure or drizzle bands in worker processes ask :func:`available_cores` how many
to start.  A field run beside others (the pointings of a galaxy, :mod:`.fields`) gets an equal
share, so two pointings on two cores run one band at a time each instead of four processes
fighting for two cores.
"""

from __future__ import annotations

import os

__all__ = ["available_cores", "share_cores"]

_share = 1


def available_cores() -> int:
    """CPU cores this process may run on, divided among the fields that share them."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // _share)


def share_cores(fields: int) -> None:
    """Declare that this process runs one of ``fields`` fields side by side (1: alone)."""
    global _share
    _share = max(1, fields)

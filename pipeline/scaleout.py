"""Many galaxies at once: one Dask task per galaxy field.

One galaxy runs in-process (``run_galaxy``).  Several run as tasks on Dask distributed: a
LocalCluster of process workers by default (one thread each, since drizzlepac changes the current
folder), or an existing scheduler given by address (``tcp://host:8786``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from phangs_products.pipeline.config import RunConfig
from phangs_products.pipeline.graph import run_galaxy

__all__ = ["GalaxyOutcome", "run_many"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GalaxyOutcome:
    """Result of one galaxy's run (picklable, returned by the Dask task)."""

    field: str
    ok: bool
    stages: tuple[tuple[str, str, float], ...]
    error: str = ""


def _run_one(config: RunConfig) -> GalaxyOutcome:
    try:
        results = run_galaxy(config)
    except Exception as exc:  # reported per galaxy, the others go on
        return GalaxyOutcome(config.field, False, (), f"{type(exc).__name__}: {exc}")
    return GalaxyOutcome(
        config.field, True, tuple((r.name, r.status, round(r.seconds, 2)) for r in results)
    )


def run_many(
    configs: Sequence[RunConfig],
    scheduler: str = "local",
    n_workers: int = 2,
    progress: Callable[[GalaxyOutcome], None] | None = None,
) -> list[GalaxyOutcome]:
    """Run several galaxy fields as Dask tasks; return their outcomes in input order.

    Parameters
    ----------
    configs : sequence of RunConfig
        One configuration per field.
    scheduler : str
        ``local`` (a LocalCluster of ``n_workers`` processes), ``sync`` (in this process, one
        after the other) or the address of a running scheduler.
    n_workers : int
        Workers of the LocalCluster.
    progress : callable, optional
        Called with each outcome as it completes.
    """
    if scheduler == "sync" or len(configs) == 0:
        outcomes = []
        for config in configs:
            outcomes.append(_run_one(config))
            if progress:
                progress(outcomes[-1])
        return outcomes
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = [client.submit(_run_one, c, key=f"galaxy-{c.field}", pure=False) for c in configs]
        by_key = {}
        for future in as_completed(futures):
            outcome = future.result()
            by_key[future.key] = outcome
            if progress:
                progress(outcome)
        return [by_key[f.key] for f in futures]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

"""One measurement per band, in this process or in one worker process per band.

The bands of a field are measured independently at the same positions, so they can run side by
side.  A worker gets the paths of the band's DRC science and ERR products (memory-mapped there,
never pickled) and the task's other arguments; the task is the same function either way, so
the results are those of the sequential loop (tested for the aperture and PSF photometry).
Workers are ``spawn``-ed: a clean interpreter per worker, whatever the threads of the caller.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from phangs_products.models import ImageModel
from phangs_products.models.reader import open as open_product
from phangs_products.pipeline.cores import available_cores

log = logging.getLogger(__name__)

#: A band task: (DRC science model, DRC ERR model, *arguments) -> result.
type BandJob[T] = Callable[..., T]


def band_processes(
    images: Mapping[str, ImageModel],
    errors: Mapping[str, ImageModel],
    workers: int,
    n_sources: int,
    min_sources: int,
) -> int:
    """Worker processes for the bands of ``images`` (1: measure them in this process).

    Parameters
    ----------
    images, errors : mapping
        DRC science and ERR models per filter.  Workers need both to be files.
    workers : int
        Wanted processes: 0 = one per available core, 1 = none.
    n_sources : int
        Sources to measure per band.
    min_sources : int
        Fewest sources for which ``workers = 0`` starts processes (below, starting them costs
        more than it saves).

    Returns
    -------
    int
        At most one per band; 1 inside a daemon process (a Dask or pool worker cannot start
        processes, and its field already keeps a core busy).
    """
    if workers == 1 or len(images) < 2 or multiprocessing.current_process().daemon:
        return 1
    if any(m.path is None for m in (*images.values(), *(errors[f] for f in images))):
        return 1
    if workers == 0 and n_sources < min_sources:
        return 1
    return max(1, min(workers or available_cores(), len(images)))


def _on_files[T](task: BandJob[T], sci: Path, err: Path, args: tuple[Any, ...]) -> T:
    """Run ``task`` on the products at ``sci`` and ``err`` (worker side), one BLAS thread."""
    with threadpool_limits(limits=1), open_product(sci) as sci_m, open_product(err) as err_m:
        return task(sci_m, err_m, *args)


def map_bands[T](
    task: BandJob[T],
    images: Mapping[str, ImageModel],
    errors: Mapping[str, ImageModel],
    args: tuple[Any, ...],
    processes: int,
    what: str,
) -> dict[str, T]:
    """``task(images[f], errors[f], *args)`` of every filter ``f``, in order of ``images``.

    Parameters
    ----------
    task : callable
        A module-level function (workers import it by name).
    images, errors : mapping
        DRC science and ERR models per filter.
    args : tuple
        The task's other arguments, the same for every band (pickled to each worker).
    processes : int
        Worker processes (:func:`band_processes`); 1 runs the bands here, one after another.
    what : str
        What the task does, for the log ("measured 300 sources in F555W").

    Returns
    -------
    dict
        The task's result per filter.
    """
    out: dict[str, T] = {}
    if processes == 1:
        for filt, model in images.items():
            out[filt] = task(model, errors[filt], *args)
            log.info("%s in %s", what, filt)
        return out
    log.info("%s: %d bands in %d processes", what, len(images), processes)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = {
            filt: pool.submit(_on_files, task, model.path, errors[filt].path, args)
            for filt, model in images.items()
        }
        for filt, future in futures.items():
            out[filt] = future.result()
            log.info("%s in %s", what, filt)
    return out

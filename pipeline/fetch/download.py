"""Resumable download of FLC exposures with ``astroquery.mast.Observations.download_file``.

A file already in the folder is kept when it is complete: the size MAST states, a FITS
structure that holds every byte its headers announce (:func:`phangs_products.fitsscan.scan_file`)
and, where its HDUs carry them, matching CHECKSUM/DATASUM.  Anything else is fetched again into
a temporary name beside it and renamed into place only once it passes the same checks, so an
interrupted transfer never leaves a partial file under the final name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from phangs_products.atomic import atomic_path, inside, remove_temp_files
from phangs_products.errors import ProductError
from phangs_products.fitsscan import scan_file
from phangs_products.fitssum import CHECKSUM_MISSING, checksum_problems, stream_sums
from phangs_products.pipeline.fetch.query import FetchError, Product, mast_errors

__all__ = ["Outcome", "check_complete", "download_products", "is_complete"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What happened to one product: ``kept`` (already complete) or ``downloaded``."""

    product: Product
    path: Path
    status: str


def check_complete(path: Path, size: int | None) -> None:
    """Raise unless ``path`` is a complete copy of a product of ``size`` bytes.

    Raises
    ------
    ProductError
        One line: the size, the FITS structure or a checksum that does not match.
    """
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise ProductError(f"{path.name}: {actual} bytes, MAST states {size}")
    layout = scan_file(path)
    problems = checksum_problems(layout, stream_sums(path, layout), file=path.name)
    bad = [p for p in problems if p.message != CHECKSUM_MISSING]
    if bad:
        raise ProductError(str(bad[0]))


def is_complete(path: Path, size: int | None) -> bool:
    """Whether ``path`` exists and passes :func:`check_complete` (a reason is logged if not)."""
    if not path.is_file():
        return False
    try:
        check_complete(path, size)
    except ProductError as exc:
        log.info("%s: fetched again (%s)", path.name, exc)
        return False
    return True


def _fetch_one(product: Product, dest: Path, base_url: str | None) -> None:
    """Download one product to a temporary name, check it, rename it to ``dest``."""
    from astroquery.mast import Observations

    with atomic_path(dest, overwrite=True) as tmp:
        with mast_errors(f"download of {product.filename}"):
            status, msg, url = Observations.download_file(
                product.uri, local_path=str(tmp), base_url=base_url, cache=False, verbose=False
            )
        if status != "COMPLETE" or not tmp.is_file():
            raise FetchError(f"{product.filename}: download failed ({msg or status}; {url})")
        try:
            check_complete(tmp, product.size)
        except ProductError as exc:
            raise FetchError(
                f"{product.filename}: incomplete download: {str(exc).split(': ', 1)[-1]}"
            ) from None


def download_products(
    products: Sequence[Product],
    folder: Path,
    *,
    base_url: str | None = None,
    checked: Collection[str] = (),
    advance: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Fetch the products into ``folder``, keeping complete files already there.

    Parameters
    ----------
    products : sequence of Product
        Checked FLC products (:func:`~phangs_products.pipeline.fetch.query.flc_products`).
    folder : Path
        Download folder (created if missing).
    base_url : str, optional
        MAST download endpoint (default astroquery's, ``Observations.download_file``).
    checked : collection of str
        File names already found complete in ``folder`` (not read again).
    advance : callable, optional
        Called with each product's outcome (progress display).

    Raises
    ------
    FetchError
        A transfer failed or delivered an incomplete file (files fetched before it are kept).
    """
    folder.mkdir(parents=True, exist_ok=True)
    for stale in remove_temp_files(folder):  # a transfer killed before it could clean up
        log.info("%s: removed an interrupted download", stale.name)
    outcomes = []
    for product in products:
        dest = inside(folder, product.filename)
        if product.filename in checked or is_complete(dest, product.size):
            status = "kept"
        else:
            _fetch_one(product, dest, base_url)
            status = "downloaded"
        outcome = Outcome(product, dest, status)
        log.info("%s: %s", product.filename, status)
        outcomes.append(outcome)
        if advance is not None:
            advance(outcome)
    return outcomes

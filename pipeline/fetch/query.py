"""Which FLC exposures of a galaxy MAST holds: the search, and the product list checked.

The search is ``astroquery.mast.Observations.query_criteria`` (MAST service
``Mast.Caom.Filtered.Position``): HST science images of the galaxy's instruments and filters
(:func:`phangs_products.bands.galaxy_bands`) within a cone around its centre.  The products
(``Mast.Caom.Products``) are narrowed to the calibrated, CTE-corrected exposures
(``productSubGroupDescription`` FLC) of the galaxy's bands.  Every name MAST returns is checked
before it becomes a path: a name that would leave the download folder is refused, and only
``<rootname>_flc.fits`` files (an HST rootname, as the imaging stage reads it) are fetched.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from phangs_products.atomic import inside
from phangs_products.bands import Band, Galaxy, field_of_view
from phangs_products.errors import PhangsProductsError, ProductError, describe
from phangs_products.pipeline.imaging.exposures import ROOTNAME_RE

__all__ = [
    "FLC_SUBGROUP",
    "FetchError",
    "Product",
    "SearchCone",
    "flc_products",
    "mast_errors",
    "observation_criteria",
    "query_observations",
    "query_products",
    "search_cone",
]

log = logging.getLogger(__name__)

#: MAST product subgroup of calibrated, CTE-corrected exposures.
FLC_SUBGROUP = "FLC"
#: File name of an FLC exposure: ``<rootname>_flc.fits``.
FLC_NAME_RE = re.compile(r"^(?P<rootname>[a-z0-9]{9})_flc\.fits$")


class FetchError(PhangsProductsError):
    """Data cannot be fetched: a bad answer from an archive, or a transfer that failed."""


@dataclass(frozen=True)
class SearchCone:
    """Where to search: centre (ICRS degrees) and radius (arcmin)."""

    ra: float
    dec: float
    radius_arcmin: float


@dataclass(frozen=True)
class Product:
    """One FLC exposure to fetch.

    Attributes
    ----------
    filename : str
        Checked file name (``<rootname>_flc.fits``).
    uri : str
        MAST data URI (``mast:HST/product/<filename>``).
    size : int or None
        Size in bytes MAST states (None: not stated).
    obs_id, instrument, filter : str
        The observation it belongs to and its band.
    proposal_id : str
        HST program ('' when MAST gives none).
    ra, dec : float
        Centre of the observation (deg; NaN when MAST gives none).
    """

    filename: str
    uri: str
    size: int | None
    obs_id: str
    instrument: str
    filter: str
    ra: float = math.nan
    dec: float = math.nan
    proposal_id: str = ""


def search_cone(gal: Galaxy, bands: Sequence[Band], radius_arcmin: float | None) -> SearchCone:
    """The search cone: the galaxy's centre and the given radius or a default.

    The default, for a galaxy observed with one pointing, is half the diagonal of the largest
    field of view among the bands' instruments (:func:`phangs_products.bands.field_of_view`):
    every pointing that covers the centre lies within it.  A mosaic galaxy (several pointings,
    ``hst_mosaic`` in the survey table) needs the radius given.

    Raises
    ------
    FetchError
        A mosaic galaxy without a radius, or a radius that is not positive.
    """
    if radius_arcmin is None:
        if gal.mosaic:
            raise FetchError(
                f"{gal.name}: observed with several pointings (galaxies.ecsv column hst_mosaic); "
                "give --radius in arcmin covering all of them"
            )
        side = max(field_of_view(b.instrument) for b in bands)
        radius_arcmin = side * math.sqrt(2.0) / 2.0 / 60.0
    if not radius_arcmin > 0:
        raise FetchError(f"--radius: expected a positive number of arcmin, got {radius_arcmin}")
    return SearchCone(gal.ra, gal.dec, float(radius_arcmin))


def observation_criteria(
    cone: SearchCone, bands: Sequence[Band], proposal_ids: Sequence[int] = ()
) -> dict[str, Any]:
    """Keyword arguments of ``Observations.query_criteria`` for the galaxy's exposures.

    The filter and instrument lists are searched as a cross product;
    :func:`flc_products` keeps the pairs that are bands of the galaxy.  ``proposal_ids``
    restricts the search to those HST programs (default: every program).
    """
    criteria = {
        "coordinates": SkyCoord(cone.ra, cone.dec, unit="deg"),
        "radius": cone.radius_arcmin * u.arcmin,
        "obs_collection": "HST",
        "dataproduct_type": "image",
        "intentType": "science",
        "instrument_name": sorted({b.instrument for b in bands}),
        "filters": sorted({b.filter for b in bands}),
    }
    if proposal_ids:
        criteria["proposal_id"] = [str(int(p)) for p in proposal_ids]
    return criteria


def query_observations(
    cone: SearchCone, bands: Sequence[Band], proposal_ids: Sequence[int] = ()
) -> Table:
    """The galaxy's HST observations in its bands (``Mast.Caom.Filtered.Position``)."""
    from astroquery.mast import Observations

    with mast_errors("Mast.Caom.Filtered.Position"):
        table = Observations.query_criteria(**observation_criteria(cone, bands, proposal_ids))
    wanted = {(b.instrument, b.filter) for b in bands}
    if len(table) == 0:
        return table
    keep = np.array(
        [(_text(r["instrument_name"]), filter_of(r["filters"])) in wanted for r in table],
        dtype=bool,
    )
    log.info("MAST: %d observation(s), %d in the galaxy's bands", len(table), keep.sum())
    return table[keep]


def query_products(observations: Table) -> Table:
    """The data products of the observations (``Mast.Caom.Products``)."""
    from astroquery.mast import Observations

    if len(observations) == 0:
        return Table()
    with mast_errors("Mast.Caom.Products"):
        return Observations.get_product_list(observations)


@contextlib.contextmanager
def mast_errors(service: str) -> Iterator[None]:
    """Turn a failed MAST request (network, HTTP status, service error) into one line."""
    import requests
    from astroquery.exceptions import RemoteServiceError

    try:
        yield
    except (requests.RequestException, RemoteServiceError, TimeoutError, OSError) as exc:
        raise FetchError(f"MAST {service}: request failed ({describe(exc)})") from None


def _text(value: Any) -> str:
    return "" if np.ma.is_masked(value) or value is None else str(value)


def filter_of(value: Any) -> str:
    """The filter of a MAST ``filters`` value (``F814W;CLEAR2L`` and ``F814W`` give ``F814W``)."""
    parts = [p.strip() for p in _text(value).split(";")]
    named = [p for p in parts if p and not p.upper().startswith("CLEAR")]
    return named[0] if len(named) == 1 else _text(value)


def _size(value: Any) -> int | None:
    text = _text(value)
    try:
        size = int(float(text))
    except ValueError:
        return None
    return size if size >= 0 else None


def flc_products(products: Table, observations: Table, folder: Path) -> list[Product]:
    """The FLC exposures of the product list, names checked, each once, in name order.

    Parameters
    ----------
    products : Table
        ``Observations.get_product_list`` rows.
    observations : Table
        The observations they belong to (for band and centre, matched on ``obsid``).
    folder : Path
        The folder the files go to: every name must stay inside it.

    Raises
    ------
    ProductError
        One line naming a product file name that would leave ``folder``.
    """
    by_obsid = {_text(r["obsid"]): r for r in observations} if len(observations) else {}
    out: dict[str, Product] = {}
    skipped = 0
    for row in products:
        if _text(row["productSubGroupDescription"]).upper() != FLC_SUBGROUP:
            continue
        name = _text(row["productFilename"])
        obs_id = _text(row["obs_id"])
        try:
            inside(folder, name)
        except ProductError:
            raise ProductError(
                f"MAST Mast.Caom.Products: productFilename {name[:80]!r} of obs_id "
                f"{obs_id[:40]!r} would leave {folder}; refused"
            ) from None
        match = FLC_NAME_RE.match(name)
        if match is None or not ROOTNAME_RE.match(match["rootname"]):
            skipped += 1
            log.info("%s: not a <rootname>_flc.fits exposure; left out", name)
            continue
        uri = _text(row["dataURI"])
        if not uri.startswith("mast:") or uri.rsplit("/", 1)[-1] != name:
            raise ProductError(
                f"MAST Mast.Caom.Products: dataURI {uri[:120]!r} of {name} is not "
                f"mast:.../{name}; refused"
            )
        obs = by_obsid.get(_text(row["obsID"])) if "obsID" in row.colnames else None
        out.setdefault(
            name,
            Product(
                filename=name,
                uri=uri,
                size=_size(row["size"]) if "size" in row.colnames else None,
                obs_id=obs_id,
                instrument=_text(obs["instrument_name"]) if obs is not None else "",
                filter=filter_of(obs["filters"]) if obs is not None else "",
                ra=float(obs["s_ra"]) if obs is not None else math.nan,
                dec=float(obs["s_dec"]) if obs is not None else math.nan,
                proposal_id=_text(row["proposal_id"]) if "proposal_id" in row.colnames else "",
            ),
        )
    if skipped:
        log.info("%d FLC product(s) not named <rootname>_flc.fits left out", skipped)
    return [out[k] for k in sorted(out)]

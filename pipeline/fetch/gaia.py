"""The Gaia DR3 reference catalog of a footprint, with ``astroquery.gaia``.

The imaging stage aligns the exposures to a plain-text catalog (:mod:`pipeline.imaging.align`
reads columns 1 and 2 as RA and Dec in degrees, ``#`` lines are comments).  The stars come from
``gaiadr3.gaia_source`` in a cone covering the exposures, as an asynchronous TAP job (the
synchronous service stops at 2000 rows).  Positions are Gaia's, at its reference epoch
(J2016.0).  PHANGS-HST aligned to Gaia DR2 (Lee et al. 2022 Sect. 4.1); DR3 is the release
that replaced it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from phangs_products.atomic import atomic_write_text
from phangs_products.bands import Band, field_of_view
from phangs_products.errors import describe
from phangs_products.pipeline.fetch.query import FetchError, Product, SearchCone

__all__ = ["GAIA_TABLE", "footprint_cone", "gaia_adql", "query_gaia", "write_reference_catalog"]

log = logging.getLogger(__name__)

#: The Gaia table the stars come from.
GAIA_TABLE = "gaiadr3.gaia_source"
#: Columns fetched, in the order of the catalog file (source_id last).
GAIA_COLUMNS = ("ra", "dec", "phot_g_mean_mag", "source_id")


def footprint_cone(
    products: Sequence[Product], bands: Sequence[Band], cone: SearchCone
) -> SearchCone:
    """A cone holding every exposure.

    Around the exposures' mean centre, out to the farthest one plus half the diagonal of the
    largest field of view of the bands' instruments.  Falls back to the search cone when MAST
    gave no observation centres.
    """
    ra = np.array([p.ra for p in products], float)
    dec = np.array([p.dec for p in products], float)
    good = np.isfinite(ra) & np.isfinite(dec)
    if not good.any():
        return cone
    centres = SkyCoord(ra[good], dec[good], unit="deg")
    mean = SkyCoord(
        centres.cartesian.mean(), representation_type="cartesian", frame="icrs"
    ).spherical
    centre = SkyCoord(mean.lon, mean.lat, frame="icrs")
    reach = float(centre.separation(centres).arcmin.max())
    half_diagonal = max(field_of_view(b.instrument) for b in bands) * math.sqrt(2.0) / 2.0 / 60.0
    return SearchCone(float(centre.ra.deg), float(centre.dec.deg), reach + half_diagonal)


def gaia_adql(cone: SearchCone) -> str:
    """ADQL of the stars (with a position) inside the cone."""
    return (
        f"SELECT {', '.join(GAIA_COLUMNS)} FROM {GAIA_TABLE} "
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
        f"CIRCLE('ICRS', {cone.ra:.7f}, {cone.dec:.7f}, {cone.radius_arcmin / 60.0:.7f})) "
        "AND ra IS NOT NULL AND dec IS NOT NULL"
    )


def query_gaia(cone: SearchCone) -> Table:
    """Run the query as an asynchronous job of the Gaia archive; the rows as a Table.

    Raises
    ------
    FetchError
        The archive answered with an error or without the columns asked for.
    """
    from astroquery import log as astroquery_log
    from astroquery.gaia import Gaia  # its import asks the archive for status messages

    level = astroquery_log.level
    astroquery_log.setLevel("WARNING")  # its INFO lines ("Query finished.") go to stdout
    try:
        job = Gaia.launch_job_async(gaia_adql(cone), output_format="votable_plain")
        table = job.get_results()
    except Exception as exc:  # astroquery raises HTTPError, SystemError, ValueError, ...
        raise FetchError(f"Gaia archive ({GAIA_TABLE}): query failed ({describe(exc)})") from None
    finally:
        astroquery_log.setLevel(level)
    missing = [c for c in GAIA_COLUMNS if c not in table.colnames]
    if missing:
        raise FetchError(f"Gaia archive ({GAIA_TABLE}): answer lacks column(s) {missing}")
    log.info("Gaia DR3: %d star(s) within %.2f arcmin", len(table), cone.radius_arcmin)
    return table


def write_reference_catalog(table: Table, path: Path, cone: SearchCone) -> Path:
    """Write the stars as the imaging stage's reference catalog (RA Dec G source_id per line).

    Raises
    ------
    FetchError
        No star in the footprint (TweakReg needs some).
    """
    ra = np.asarray(table["ra"], float)
    dec = np.asarray(table["dec"], float)
    gmag = np.ma.filled(np.ma.asarray(table["phot_g_mean_mag"], float), np.nan)
    good = np.isfinite(ra) & np.isfinite(dec)
    if not good.any():
        raise FetchError(f"Gaia archive ({GAIA_TABLE}): no star within the footprint")
    lines = [
        f"# Gaia DR3 reference catalog ({GAIA_TABLE}, astroquery.gaia): stars within "
        f"{cone.radius_arcmin:.3f} arcmin of RA {cone.ra:.6f} Dec {cone.dec:.6f} deg",
        "# positions at the Gaia DR3 epoch J2016.0. Columns: 1 RA (deg, ICRS), 2 Dec (deg, ICRS), "
        "3 G (mag), 4 Gaia DR3 source_id",
    ]
    ids = np.asarray(table["source_id"])
    lines += [
        f"{r:.9f} {d:.9f} {g:.4f} {s}"
        for r, d, g, s in zip(ra[good], dec[good], gmag[good], ids[good], strict=True)
    ]
    return atomic_write_text(path, "\n".join(lines) + "\n", overwrite=True)

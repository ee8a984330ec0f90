"""Collection-level facts of the PHANGS HLSP and the common keyword block of every product."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from astropy.time import Time

from phangs_products.bands import Galaxy
from phangs_products.naming import catalog_target, image_target

__all__ = ["COLLECTIONS", "PRESETS", "SURVEY", "Delivery", "HlspIdentity", "common_meta"]

log = logging.getLogger(__name__)

#: Per collection: DOI (Lee et al. 2022 Sect. 5; MAST PHANGS-CAT page) and title.
COLLECTIONS: dict[str, dict[str, str]] = {
    "phangs-hst": {
        "doi": "10.17909/t9-r08f-dq31",
        "title": "PHANGS-HST: Physics at High Angular resolution in Nearby GalaxieS with HST",
    },
    "phangs-cat": {
        "doi": "10.17909/jray-9798",
        "title": "PHANGS-HST star cluster and stellar association catalogs",
    },
}
LEAD = "Janice C. Lee"
REFERENCE = "10.3847/1538-4365/ac1fe5"
PROPOSAL_ID = 15654
LICENSE = "CC BY 4.0"
LICENSE_URL = "https://creativecommons.org/licenses/by/4.0/"


@dataclass(frozen=True)
class HlspIdentity:
    """Who publishes a delivery and how it is cited: HLSPNAME, HLSPLEAD, DOI, REFERENC.

    Attributes
    ----------
    names : mapping
        Long title (HLSPNAME) per collection (``phangs-hst``, ``phangs-cat``); a collection
        without its own title uses the first one given.
    lead : str
        Full name of the HLSP lead (HLSPLEAD).
    dois : mapping
        Collection DOI per collection (may be empty: products then carry no DOI).
    citation : str
        DOI or bibcode of the paper describing the products (REFERENC); may be empty.
    proposal_ids : tuple of int
        HST programs the delivery is made from, for the README (PROPOSID of each product comes
        from its input exposures).
    preset : str
        Name of the preset the values come from (``phangs-hst``), empty when given one by one.
    """

    names: Mapping[str, str]
    lead: str
    dois: Mapping[str, str] = field(default_factory=dict)
    citation: str = ""
    proposal_ids: tuple[int, ...] = ()
    preset: str = ""

    def name_for(self, collection: str) -> str:
        """HLSPNAME of a collection."""
        if collection in self.names:
            return self.names[collection]
        return next(iter(self.names.values()))

    def without_survey_dois(self) -> HlspIdentity:
        """The identity without the PHANGS-HST collection DOIs (for simulated data)."""
        survey = set(SURVEY.dois.values())
        dropped = {k: v for k, v in self.dois.items() if v not in survey}
        return self if dropped == dict(self.dois) else replace(self, dois=dropped)


#: The PHANGS-HST survey's identity (Lee et al. 2022; MAST collection pages): the explicit
#: preset ``phangs-hst`` of a run configuration, never applied without being asked for.
SURVEY = HlspIdentity(
    names={k: v["title"] for k, v in COLLECTIONS.items()},
    lead=LEAD,
    dois={k: v["doi"] for k, v in COLLECTIONS.items()},
    citation=REFERENCE,
    proposal_ids=(PROPOSAL_ID,),
    preset="phangs-hst",
)

#: Identity presets a run configuration can name.
PRESETS: dict[str, HlspIdentity] = {"phangs-hst": SURVEY}


@dataclass(frozen=True)
class Delivery:
    """What every product of one galaxy's delivery shares.

    Attributes
    ----------
    galaxy : Galaxy
        The galaxy (Lee et al. 2022 Table 1).
    field : str
        Field (pointing) name used as the HLSP target, e.g. ``ngc628c``.
    version : str
        Delivery version (``v1``).
    mjd_beg, mjd_end : float
        Start of the first and end of the last input exposure.
    simulated : bool
        True for the simulated demo galaxy.
    ra, dec : float, optional
        Target position of the field (RA_TARG/DEC_TARG): the pointing, which for multi-pointing
        galaxies need not contain the galaxy centre.
    identity : HlspIdentity
        HLSP name, lead, DOIs and citation (the run configuration's; the survey's by default
        for products made outside a run, e.g. test products).
    proposid : int, optional
        HST program of the input exposures (PROPOSID); omitted from headers when None.
    """

    galaxy: Galaxy
    field: str
    version: str
    mjd_beg: float
    mjd_end: float
    simulated: bool = False
    #: Target position of the field (its pointing); the galaxy centre when not given.
    ra: float | None = None
    dec: float | None = None
    identity: HlspIdentity = SURVEY
    proposid: int | None = None

    def target_for(self, collection: str) -> str:
        """HLSP target of the field in a collection (catalogs zero-pad NGC/IC numbers)."""
        return (
            catalog_target(self.field) if collection == "phangs-cat" else image_target(self.field)
        )


def _iso(mjd: float) -> str:
    return Time(mjd, format="mjd", scale="utc").isot.split(".")[0]


def common_meta(
    delivery: Delivery, collection: str, *, instrument: str = "WFC3", xposure: float = 0.0
) -> dict[str, Any]:
    """The HLSP common, target and provenance keyword values of a product.

    Parameters
    ----------
    delivery : Delivery
        Galaxy, field, version and time span.
    collection : str
        ``phangs-hst`` (images) or ``phangs-cat`` (catalogs).
    instrument : str
        ``WFC3``, ``ACS`` or ``MULTI``.
    xposure : float
        Effective exposure time in s.
    """
    identity = delivery.identity
    if delivery.simulated:
        identity = identity.without_survey_dois()
    meta: dict[str, Any] = {
        "telescop": "HST",
        "observat": "HST",
        "instrume": instrument,
        "hlspid": collection,
        "hlspname": identity.name_for(collection),
        "hlsplead": identity.lead,
        "hlspver": delivery.version,
        "hlsptarg": delivery.target_for(collection),
        "license": LICENSE,
        "licenurl": LICENSE_URL,
        "timesys": "UTC",
        "date_beg": _iso(delivery.mjd_beg),
        "date_end": _iso(delivery.mjd_end),
        "mjd_beg": delivery.mjd_beg,
        "mjd_end": delivery.mjd_end,
        "mjd_mid": 0.5 * (delivery.mjd_beg + delivery.mjd_end),
        "xposure": float(xposure),
        "telapse": (delivery.mjd_end - delivery.mjd_beg) * 86400.0,
        "targname": delivery.galaxy.name,
        "ra_targ": delivery.galaxy.ra if delivery.ra is None else delivery.ra,
        "dec_targ": delivery.galaxy.dec if delivery.dec is None else delivery.dec,
        "dist_mpc": delivery.galaxy.distance_mpc,
        "origin": "phangs-products",
    }
    if identity.dois.get(collection):
        meta["doi"] = identity.dois[collection]
    if identity.citation:
        meta["referenc"] = identity.citation
    if delivery.proposid is not None:
        meta["proposid"] = int(delivery.proposid)
    if delivery.simulated:
        meta["simulatd"] = True
    return meta

"""``phangs-products fetch``: a galaxy's FLC exposures, its Gaia catalog and a run configuration.

Layout of the output folder::

    OUT/flc/<rootname>_flc.fits   calibrated exposures from MAST
    OUT/gaia_dr3.txt              reference catalog of the footprint
    OUT/<target>.toml             run configuration (``phangs-products run OUT/<target>.toml``)

The run then writes ``OUT/delivery/``, ``OUT/docs/`` and ``OUT/work/`` beside them.

Every step is resumable: complete files are kept, a configuration already there is never
replaced (it may hold the user's edits).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from phangs_products.atomic import atomic_write_text
from phangs_products.bands import Band, galaxy, galaxy_bands
from phangs_products.errors import PhangsProductsError
from phangs_products.hlsp import PRESETS
from phangs_products.pipeline.config import EBV_MISSING
from phangs_products.pipeline.fetch.download import Outcome, download_products, is_complete
from phangs_products.pipeline.fetch.gaia import (
    footprint_cone,
    query_gaia,
    write_reference_catalog,
)
from phangs_products.pipeline.fetch.query import (
    FetchError,
    Product,
    SearchCone,
    flc_products,
    query_observations,
    query_products,
    search_cone,
)

__all__ = [
    "FLC_FOLDER",
    "GAIA_FILE",
    "FetchPlan",
    "FetchRequest",
    "FetchResult",
    "fetch",
    "plan",
    "run_config",
]

log = logging.getLogger(__name__)

#: Folder of the exposures inside the output folder.
FLC_FOLDER = "flc"
#: The reference catalog's file name inside the output folder.
GAIA_FILE = "gaia_dr3.txt"


@dataclass(frozen=True)
class FetchRequest:
    """What the user asked for.

    Attributes
    ----------
    target : str
        Survey galaxy (target or name).
    out : Path
        Output folder.
    filters : tuple of str
        Filters to fetch (empty: every band of the galaxy).
    radius_arcmin : float or None
        Search radius (None: the default of :func:`~.query.search_cone`).
    proposal_ids : tuple of int
        HST programs to fetch from (empty: every program).
    gaia : bool
        Write the Gaia DR3 reference catalog.
    ebv_mw : float or None
        Milky Way foreground E(B-V) (mag) for the configuration; None leaves it for the user.
    ebv_mw_source : str
        Where ``ebv_mw`` comes from.
    hlsp_preset : str
        ``[run.hlsp] preset`` of the configuration.
    base_url : str or None
        MAST download endpoint (None: astroquery's).
    """

    target: str
    out: Path
    filters: tuple[str, ...] = ()
    radius_arcmin: float | None = None
    proposal_ids: tuple[int, ...] = ()
    gaia: bool = True
    ebv_mw: float | None = None
    ebv_mw_source: str = ""
    hlsp_preset: str = "phangs-hst"
    base_url: str | None = None


@dataclass(frozen=True)
class FetchPlan:
    """The exposures MAST holds for a request, and where everything goes."""

    request: FetchRequest
    bands: tuple[Band, ...]
    cone: SearchCone
    products: tuple[Product, ...]
    present: frozenset[str] = field(default_factory=frozenset)

    @property
    def flc_dir(self) -> Path:
        """Folder of the exposures."""
        return self.request.out / FLC_FOLDER

    @property
    def config_path(self) -> Path:
        """The run configuration."""
        return self.request.out / f"{galaxy(self.request.target).target}.toml"

    @property
    def gaia_path(self) -> Path:
        """The reference catalog."""
        return self.request.out / GAIA_FILE

    @property
    def missing(self) -> list[Product]:
        """Products not yet complete in the folder."""
        return [p for p in self.products if p.filename not in self.present]


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch` did.

    Attributes
    ----------
    outcomes : list of Outcome
        Per exposure: ``kept`` or ``downloaded``.
    gaia : Path or None
        The reference catalog (None with ``--no-gaia``).
    gaia_status, config_status : str
        ``written``, ``kept`` (already there) or ``skipped``.
    config : Path
        The run configuration.
    """

    outcomes: list[Outcome]
    gaia: Path | None
    gaia_status: str
    config: Path
    config_status: str


def _bands(target: str, filters: Sequence[str]) -> tuple[Band, ...]:
    bands = galaxy_bands(target)
    if not filters:
        return bands
    wanted = {f.strip().upper() for f in filters if f.strip()}
    known = {b.filter for b in bands}
    unknown = sorted(wanted - known)
    if unknown:
        raise PhangsProductsError(
            f"--bands: {', '.join(unknown)} not imaged for {galaxy(target).name} "
            f"(its bands: {', '.join(sorted(known))})"
        )
    return tuple(b for b in bands if b.filter in wanted)


def _check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise PhangsProductsError(
            f"--hlsp-preset: unknown preset {preset!r} (known: {', '.join(sorted(PRESETS))})"
        )


def plan(request: FetchRequest) -> FetchPlan:
    """Ask MAST which exposures exist and which are already complete in the folder."""
    _check_preset(request.hlsp_preset)
    gal = galaxy(request.target)
    bands = _bands(request.target, request.filters)
    cone = search_cone(gal, bands, request.radius_arcmin)
    observations = query_observations(cone, bands, request.proposal_ids)
    if len(observations) == 0:
        raise FetchError(
            f"MAST: no HST image of {gal.name} in {', '.join(b.filter for b in bands)} "
            f"within {cone.radius_arcmin:.2f} arcmin of RA {cone.ra:.5f} Dec {cone.dec:.5f}"
        )
    flc_dir = request.out / FLC_FOLDER
    products = flc_products(query_products(observations), observations, flc_dir)
    if not products:
        raise FetchError(f"MAST: no FLC exposure among the products of {gal.name}'s images")
    present = frozenset(p.filename for p in products if is_complete(flc_dir / p.filename, p.size))
    return FetchPlan(request, bands, cone, tuple(products), present)


def run_config(fplan: FetchPlan) -> str:
    """The TOML run configuration of the fetched data (relative paths; ``ebv_mw`` as given).

    Without ``ebv_mw`` the setting is left out, with a comment saying what to write: ``run``
    then stops with one line asking for it, never with a made-up value.
    """
    request = fplan.request
    gal = galaxy(request.target)
    _check_preset(request.hlsp_preset)
    filters = list(dict.fromkeys(b.filter for b in fplan.bands))
    run: dict[str, object] = {
        "target": gal.target,
        "field": gal.target,
        "input": FLC_FOLDER,
        "reference_catalog": GAIA_FILE,
        "output": ".",  # OUT/delivery, OUT/docs and OUT/work beside flc/
        "version": "v1",
        "bands": filters,
    }
    if request.ebv_mw is not None:
        run["ebv_mw"] = float(request.ebv_mw)
        run["ebv_mw_source"] = request.ebv_mw_source or "phangs-products fetch --ebv-mw"
    doc = {"run": {**run, "hlsp": {"preset": request.hlsp_preset}}}
    head = [
        f"# phangs-products run configuration for {gal.name}, written by phangs-products fetch",
        f"# run it with: phangs-products run {fplan.config_path.name}",
    ]
    if request.ebv_mw is None:
        head += [
            "#",
            "# REQUIRED before running: the Milky Way foreground E(B-V) of the galaxy.",
            f"# {EBV_MISSING}.",
            "# Add to [run], with the value and its source, e.g. from the IRSA DUST service:",
            "#   ebv_mw = <E(B-V) in mag>",
            '#   ebv_mw_source = "<where the value comes from>"',
        ]
    if gal.mosaic:
        head += [
            "#",
            f"# {gal.name} was observed with several pointings: this configuration runs all",
            f"# exposures in {FLC_FOLDER}/ as one field.  For per-pointing products and mosaics,",
            "# move each pointing's exposures to a folder of its own and list them as",
            "# [[run.pointings]] (field, input) instead of field and input (see the README).",
        ]
    return "\n".join(head) + "\n\n" + tomli_w.dumps(doc)


def fetch(
    request: FetchRequest,
    fplan: FetchPlan | None = None,
    advance: Callable[[Outcome], None] | None = None,
) -> FetchResult:
    """Download what is missing, write the Gaia catalog and the run configuration."""
    fplan = fplan or plan(request)
    outcomes = download_products(
        fplan.products,
        fplan.flc_dir,
        base_url=request.base_url,
        checked=fplan.present,
        advance=advance,
    )
    gaia_status = "skipped"
    if request.gaia:
        if fplan.gaia_path.is_file() and fplan.gaia_path.stat().st_size > 0:
            gaia_status = "kept"
        else:
            cone = footprint_cone(fplan.products, fplan.bands, fplan.cone)
            write_reference_catalog(query_gaia(cone), fplan.gaia_path, cone)
            gaia_status = "written"
    config_status = "kept"
    if not fplan.config_path.exists():
        atomic_write_text(fplan.config_path, run_config(fplan))
        config_status = "written"
    return FetchResult(
        outcomes=outcomes,
        gaia=fplan.gaia_path if request.gaia else None,
        gaia_status=gaia_status,
        config=fplan.config_path,
        config_status=config_status,
    )

"""What a delivery recovers of the simulator's truth (tests, benchmarks and scripts).

Associations: an injected association (centre and Gaussian FWHM in pc from the simulator's
``truth_associations.ecsv``) counts as recovered when a region of the catalog at its nearest
kernel scale (nearest in log FWHM) has its centre within one kernel FWHM of the true centre.

Clusters: a true cluster is found when a candidate lies within ``MATCH_ARCSEC`` of it; a
candidate is a single star when its nearest true object within ``STAR_MATCH_ARCSEC`` is a star
and the other true objects within 0.2" (5 px, the CI aperture) add less than 20% of its V flux
(groups of blended association stars are the compact associations the list must keep).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from phangs_products.bands import pc_per_pixel
from phangs_products.models import open as open_product
from phangs_products.registry import get_schema

SCALES = tuple(int(s) for s in get_schema("assoc-catalog").variants("scale"))

#: Candidate-to-cluster matching radius, arcsec.
MATCH_ARCSEC = 0.1
#: Candidate-to-star matching radius, arcsec (1.5 px).
STAR_MATCH_ARCSEC = 0.06
#: Blending radius and flux share of the single-star test.
BLEND_ARCSEC, BLEND_SHARE = 0.2, 0.2


_NAME = re.compile(r"_asc-(?P<sel>[a-z]+)-(?P<scale>\d+)pc\.fits$")


def nearest_scales(fwhm_pc: np.ndarray, scales: Sequence[int] = SCALES) -> np.ndarray:
    """Kernel scale nearest (in log FWHM) to each FWHM."""
    grid = np.asarray(scales, float)
    fwhm = np.asarray(fwhm_pc, float)
    return grid[np.argmin(np.abs(np.log(fwhm[:, None] / grid[None, :])), axis=1)].astype(int)


def on_image(truth: Table, image) -> np.ndarray:
    """Whether each true centre falls on a pixel with data of ``image`` (an ImageModel)."""
    data = np.asarray(image.data)
    x, y = image.wcs.world_to_pixel_values(np.asarray(truth["ra"]), np.asarray(truth["dec"]))
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    inside = (ix >= 0) & (iy >= 0) & (ix < data.shape[1]) & (iy < data.shape[0])
    good = np.zeros(len(truth), bool)
    values = data[iy[inside], ix[inside]]
    good[inside] = np.isfinite(values) & (values != 0)
    return good


def catalogs_in(folder: Path) -> dict[tuple[str, int], Table]:
    """Association catalogs (FITS) of a delivery folder by (selection, scale in pc)."""
    out = {}
    for path in sorted(Path(folder).glob("*_asc-*pc.fits")):
        match = _NAME.search(path.name)
        if match:
            out[match["sel"], int(match["scale"])] = open_product(path, masked=False).table
    return out


def recovery(
    truth: Table,
    catalogs: Mapping[tuple[str, int], Table],
    distance_mpc: float,
    scales: Sequence[int] = SCALES,
) -> dict[str, np.ndarray]:
    """Recovered flag of every true association, per selection of the catalogs.

    Parameters
    ----------
    truth : Table
        ``ra``, ``dec`` (deg) and ``fwhm_pc`` of the injected associations.
    catalogs : mapping
        Association catalogs (``ASC_RA``, ``ASC_DEC``) by (selection, scale).
    distance_mpc : float
        Galaxy distance (kernel FWHM in arcsec).
    scales : sequence of int
        Kernel scales, pc.
    """
    nearest = nearest_scales(np.asarray(truth["fwhm_pc"], float), scales)
    true = SkyCoord(truth["ra"], truth["dec"], unit="deg")
    arcsec_per_pc = 0.04 / pc_per_pixel(distance_mpc, 0.04)
    out = {}
    for selection in sorted({sel for sel, _ in catalogs}):
        hit = np.zeros(len(truth), bool)
        for scale in np.unique(nearest):
            table = catalogs.get((selection, int(scale)))
            rows = np.flatnonzero(nearest == scale)
            if table is None or len(table) == 0 or rows.size == 0:
                continue
            found = SkyCoord(table["ASC_RA"], table["ASC_DEC"], unit="deg")
            _, sep, _ = true[rows].match_to_catalog_sky(found)
            hit[rows] = sep <= scale * arcsec_per_pc * u.arcsec
        out[selection] = hit
    return out


def recovery_lines(
    truth: Table, hits: Mapping[str, np.ndarray], scales: Sequence[int] = SCALES
) -> list[str]:
    """One line per selection: recovered / injected, overall and per nearest scale."""
    nearest = nearest_scales(np.asarray(truth["fwhm_pc"], float), scales)
    lines = []
    for selection, hit in hits.items():
        per = ", ".join(
            f"{s} pc {int(hit[nearest == s].sum())}/{int((nearest == s).sum())}" for s in scales
        )
        share = f"{hit.mean():.0%}" if hit.size else "-"
        lines.append(
            f"{selection.upper()}-selected: recovered {int(hit.sum())}/{hit.size} ({share}); {per}"
        )
    return lines


def bright_clusters(
    truth: Table,
    image,
    distance_modulus: float,
    mv_max: float = -8.0,
    r_eff_min_pc: float = 1.0,
    margin_px: int = 20,
) -> np.ndarray:
    """True clusters with M_V < ``mv_max`` and r_eff >= ``r_eff_min_pc`` well inside ``image``.

    A cluster is inside when it lies ``margin_px`` or more from the edge of the V image (an
    ImageModel) on a pixel with data.
    """
    x, y = image.wcs.world_to_pixel_values(np.asarray(truth["ra"]), np.asarray(truth["dec"]))
    ny, nx = np.shape(image.data)
    inside = (x > margin_px) & (x < nx - margin_px) & (y > margin_px) & (y < ny - margin_px)
    mv = np.asarray(truth["F555W_vega"], float) - distance_modulus
    return (
        inside
        & on_image(truth, image)
        & (np.asarray(truth["kind"]) == "cluster")
        & (mv < mv_max)
        & (np.asarray(truth["r_eff_pc"], float) >= r_eff_min_pc)
    )


def matched(truth: Table, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every true object: the index of the nearest catalog row and whether it is a match.

    A match lies within ``MATCH_ARCSEC``.
    """
    if len(ra) == 0:
        return np.zeros(len(truth), int), np.zeros(len(truth), bool)
    true = SkyCoord(truth["ra"], truth["dec"], unit="deg")
    idx, sep, _ = true.match_to_catalog_sky(SkyCoord(ra, dec, unit="deg"))
    return idx, sep.arcsec < MATCH_ARCSEC


def single_stars(truth: Table, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Whether each catalog position is a single, unblended true star (module docstring)."""
    if len(ra) == 0:
        return np.zeros(0, bool)
    true = SkyCoord(truth["ra"], truth["dec"], unit="deg")
    cat = SkyCoord(ra, dec, unit="deg")
    j, sep, _ = cat.match_to_catalog_sky(true)
    kind = np.where(sep.arcsec < STAR_MATCH_ARCSEC, np.asarray(truth["kind"])[j], "none")
    rate = np.asarray(truth["F555W_rate"], float)
    ci, ti, _, _ = true.search_around_sky(cat, BLEND_ARCSEC * u.arcsec)
    near = np.bincount(ci, weights=rate[ti], minlength=len(cat)) - rate[j]
    return np.isin(kind, ("star", "assoc_star")) & (near < BLEND_SHARE * rate[j])


def share(hit: np.ndarray, of: np.ndarray | None = None) -> str:
    """``found/total (percent)`` of boolean ``hit`` within the mask ``of``."""
    hit = np.asarray(hit, bool) if of is None else np.asarray(hit, bool)[of]
    return f"{int(hit.sum())}/{hit.size} ({hit.mean():.0%})" if hit.size else "0/0 (-)"


#: Bins of the cluster report: M_V (mag), r_eff (pc), age (Myr).
MV_BINS = (-np.inf, -10.0, -9.0, -8.0)
REFF_BINS = (1.0, 2.0, 5.0, np.inf)
AGE_BINS = (0.0, 10.0, 100.0, np.inf)


def _robust_std(values: np.ndarray) -> float:
    values = np.asarray(values, float)
    return float(1.4826 * np.median(np.abs(values - np.median(values)))) if values.size else np.nan


def cluster_recovery(truth: Table, candidates: Table, image) -> dict:
    """Figures of a candidate catalog against the simulator's truth.

    Parameters
    ----------
    truth : Table
        The simulator's ``truth.ecsv`` (every star and cluster).
    candidates : Table
        The ``cl-cand`` catalog (cluster-catalog columns, unmasked).
    image : ImageModel
        The V DRC (which clusters lie on the image).

    Returns
    -------
    dict
        ``target`` (bright clusters on the image: :func:`bright_clusters`), ``found`` (per true
        object), ``single`` (per candidate), and the figures of :func:`cluster_lines`.
    """
    dm = float(np.asarray(candidates["PHANGS_DM"])[0]) if len(candidates) else np.nan
    target = bright_clusters(truth, image, dm)
    ra, dec = np.asarray(candidates["PHANGS_RA"]), np.asarray(candidates["PHANGS_DEC"])
    idx, found = matched(truth, ra, dec)
    single = single_stars(truth, ra, dec)
    cand_mv = np.asarray(candidates["PHANGS_F555W_VEGA"], float) - dm
    ml = np.asarray(candidates["PHANGS_CLUSTER_CLASS_ML"])
    is_cluster_cand = np.zeros(len(candidates), bool)
    hit = found & (np.asarray(truth["kind"]) == "cluster")
    is_cluster_cand[idx[hit]] = True
    good = target & found
    rows = idx[good]
    true_age = np.log10(np.asarray(truth["age_myr"], float)[good] * 1e6)
    fit_age = np.log10(
        np.clip(np.asarray(candidates["PHANGS_AGE_MINCHISQ"], float)[rows], 1, None) * 1e6
    )
    true_mass = np.log10(np.asarray(truth["mass"], float)[good])
    fit_mass = np.log10(
        np.clip(np.asarray(candidates["PHANGS_MASS_MINCHISQ"], float)[rows], 1, None)
    )
    offset = (
        SkyCoord(ra[rows], dec[rows], unit="deg")
        .separation(SkyCoord(truth["ra"][good], truth["dec"][good], unit="deg"))
        .arcsec
    )
    dv = (
        np.asarray(candidates["PHANGS_F555W_VEGA"], float)[rows]
        - np.asarray(truth["F555W_vega"], float)[good]
    )
    ml12 = np.isin(ml, (1, 2))
    return {
        "target": target,
        "found": found,
        "single": single,
        "completeness": float(found[target].mean()) if target.any() else np.nan,
        "single_share": float(single.mean()) if single.size else np.nan,
        "single_share_bright": float(single[cand_mv < -8].mean())
        if (cand_mv < -8).any()
        else np.nan,
        "ml12_clusters": float(is_cluster_cand[ml12].mean()) if ml12.any() else np.nan,
        "ml12_single": float(single[ml12].mean()) if ml12.any() else np.nan,
        "clusters_ml12": float(ml12[is_cluster_cand].mean()) if is_cluster_cand.any() else np.nan,
        "age_within_03dex": float(np.mean(np.abs(fit_age - true_age) <= 0.3))
        if rows.size
        else np.nan,
        "mass_within_03dex": float(np.mean(np.abs(fit_mass - true_mass) <= 0.3))
        if rows.size
        else np.nan,
        "offset_mas_median": float(np.median(offset) * 1e3) if rows.size else np.nan,
        "dv_median": float(np.median(dv)) if rows.size else np.nan,
        "dv_scatter": _robust_std(dv),
        "n_candidates": len(candidates),
        "n_single": int(single.sum()),
    }


def _binned(values: np.ndarray, hit: np.ndarray, edges: Sequence[float], unit: str) -> str:
    parts = []
    for lo, hi in itertools.pairwise(edges):
        inside = (values >= lo) & (values < hi)
        label = (
            f"< {hi:g}"
            if not np.isfinite(lo)
            else f">= {lo:g}"
            if not np.isfinite(hi)
            else f"{lo:g} to {hi:g}"
        )
        parts.append(f"{label} {unit}: {share(hit, inside)}")
    return "; ".join(parts)


def cluster_lines(truth: Table, figures: dict, distance_modulus: float) -> list[str]:
    """Human-readable lines of :func:`cluster_recovery`'s figures."""
    target, found = figures["target"], figures["found"]
    t = truth[target]
    hit = found[target]
    mv = np.asarray(t["F555W_vega"], float) - distance_modulus
    pct = lambda v: "-" if not np.isfinite(v) else f"{v:.0%}"  # noqa: E731
    return [
        f"candidate completeness, M_V < -8, r_eff >= 1 pc: {share(hit)}",
        f"  by M_V: {_binned(mv, hit, MV_BINS, 'mag')}",
        f"  by r_eff: {_binned(np.asarray(t['r_eff_pc'], float), hit, REFF_BINS, 'pc')}",
        f"  by age: {_binned(np.asarray(t['age_myr'], float), hit, AGE_BINS, 'Myr')}",
        f"single-star contamination: {figures['n_single']}/{figures['n_candidates']} candidates "
        f"({pct(figures['single_share'])}); of candidates with M_V < -8: "
        f"{pct(figures['single_share_bright'])}",
        f"ML class 1-2: {pct(figures['ml12_clusters'])} are true clusters, "
        f"{pct(figures['ml12_single'])} single stars; true clusters among candidates put in "
        f"class 1-2: {pct(figures['clusters_ml12'])}",
        "SED fits of the found bright clusters: age within 0.3 dex "
        f"{pct(figures['age_within_03dex'])}, "
        f"mass within 0.3 dex {pct(figures['mass_within_03dex'])}",
        f"positions: median offset {figures['offset_mas_median']:.1f} mas; total V - truth: median "
        f"{figures['dv_median']:+.3f} mag, robust scatter {figures['dv_scatter']:.3f} mag",
    ]

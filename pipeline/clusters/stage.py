"""The cluster stage: MCI calibration, candidates, classes, SED fits, catalogs and DS9 circles."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table
from regions import CircleSkyRegion, Regions

from phangs_products.bands import band, instrume_of
from phangs_products.hlsp import common_meta
from phangs_products.models import CatalogModel
from phangs_products.models import open as open_product
from phangs_products.naming import build_name
from phangs_products.pipeline.clusters.classify import ClassifierConfig, classify_candidates
from phangs_products.pipeline.clusters.human_classes import (
    MATCH_RADIUS_ARCSEC,
    import_human_classes,
)
from phangs_products.pipeline.clusters.selection import (
    ClusterSelectionConfig,
    apply_apcorr,
    calibrate_mci,
    select_candidates,
)
from phangs_products.pipeline.instrument import band_of
from phangs_products.pipeline.photometry.aperture import aperture_correction_v, calibrator_isolation
from phangs_products.pipeline.photometry.config import PhotometryConfig
from phangs_products.pipeline.products import (
    ProductKey,
    StageName,
    delivery_from,
    dolphot_fits,
    foreground,
    load_drcs,
    read_sources,
    regions_model,
)
from phangs_products.pipeline.psf import measure_psf
from phangs_products.pipeline.runner import Outputs, StageContext
from phangs_products.pipeline.stellarpops.sed import SEDConfig, fit_sed
from phangs_products.registry import get_schema
from phangs_products.spec import BandInfo

log = logging.getLogger(__name__)


#: Missing-value marker of the catalog columns (from the schema).
SENTINEL = get_schema("cluster-catalog").sentinel


SUBSETS = {
    "cand": None,
    "hum-c12": ("PHANGS_CLUSTER_CLASS_HUMAN", (1, 2)),
    "hum-c3": ("PHANGS_CLUSTER_CLASS_HUMAN", (3,)),
    "ml-c12": ("PHANGS_CLUSTER_CLASS_ML", (1, 2)),
    "ml-c3": ("PHANGS_CLUSTER_CLASS_ML", (3,)),
}


CLASS_COLORS = {1: "blue", 2: "green", 3: "orange"}


@dataclass(frozen=True)
class ClusterStageConfig:
    """Cluster-stage settings: selection, classifier, SED fit, and an optional human table.

    Attributes
    ----------
    selection : ClusterSelectionConfig
        Candidate selection and its synthetic-cluster calibration.
    classifier : ClassifierConfig
        Machine-learning classifier.
    sed : SEDConfig
        SED fits.
    photometry : PhotometryConfig
        Aperture photometry of the candidates (as the photometry stage's).
    human_table : str
        Visual classifications to cross-match (ECSV/FITS/CSV with RA, DEC in deg and a class
        per row; format in the README); empty: no human-class catalogs are published.
    human_match_arcsec : float
        Matching radius of the human table in arcsec.
    region_radius_arcsec : float
        Circle radius of each cluster in the DS9 region files, in arcsec.
    """

    selection: ClusterSelectionConfig = field(default_factory=ClusterSelectionConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    sed: SEDConfig = field(default_factory=SEDConfig)
    photometry: PhotometryConfig = field(default_factory=PhotometryConfig)
    human_table: str = field(default="", metadata={"input_file": True})
    human_match_arcsec: float = field(default=MATCH_RADIUS_ARCSEC, metadata={"gt": 0})
    region_radius_arcsec: float = field(default=0.2, metadata={"gt": 0})


def _value(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, float)
    return np.where(np.isfinite(arr), arr, SENTINEL)


def build_candidate_table(
    sources: Table, idx: np.ndarray, reason: np.ndarray, filters: list[str], galaxy, field_name: str
) -> Table:
    """Candidate rows in cluster-catalog column names (sorted by Y, ids from 1)."""
    cand = sources[idx]
    order = np.argsort(np.asarray(cand["y"]), kind="stable")
    cand, reason = cand[order], reason[order]
    n = len(cand)
    t = Table()
    t["INDEX"] = np.arange(1, n + 1)
    t["ID_PHANGS_CLUSTER"] = np.full(n, SENTINEL)
    t["ID_PHANGS_CANDIDATE"] = np.arange(1, n + 1)
    t["ID_PHANGS_ALLSOURCES"] = np.asarray(idx[order] + 1)
    t["PHANGS_X"], t["PHANGS_Y"] = cand["x"], cand["y"]
    t["PHANGS_RA"], t["PHANGS_DEC"] = cand["ra"], cand["dec"]
    t["PHANGS_GALAXY"] = [field_name] * n
    t["PHANGS_DMPC"] = np.full(n, galaxy.distance_mpc)
    t["PHANGS_DM"] = np.full(n, galaxy.distance_modulus)
    nondet = np.zeros(n, int)
    nocov = np.zeros(n, int)
    for f in filters:
        covered = np.asarray(cand[f"{f}_covered"], bool)
        nocov += ~covered
        nondet += covered & ~(np.asarray(cand[f"{f}_snr"], float) >= 1.0)
        for col, src in (
            ("VEGA", "mag"),
            ("VEGA_ERR", "mag_err"),
            ("mJy", "mjy"),
            ("mJy_ERR", "mjy_err"),
        ):
            t[f"PHANGS_{f}_{col}"] = _value(cand[f"{f}_{src}"])
    t["PHANGS_NON_DETECTION_FLAG"] = nondet
    t["PHANGS_NO_COVERAGE_FLAG"] = nocov
    for col in ("CI", "MCI_IN", "MCI_OUT", "NCI"):
        t[f"PHANGS_{col}"] = _value(cand[col])
    t["PHANGS_SELECTION"] = reason
    return t


def correct_foreground(table: Table, filters: list[str], a_band: np.ndarray) -> None:
    """Correct the catalog's magnitudes and fluxes for the Milky Way foreground, in place.

    ``PHANGS_<F>_VEGA`` becomes m - A_band and ``PHANGS_<F>_mJy`` (and its error) is multiplied
    by 10^(0.4 A_band); magnitude errors are unchanged; sentinels stay.

    Parameters
    ----------
    table : Table
        Candidate table in cluster-catalog column names.
    filters : list of str
        Its bands.
    a_band : ndarray
        A_band per filter, mag.
    """
    for f, a in zip(filters, np.asarray(a_band, float), strict=True):
        mag = np.asarray(table[f"PHANGS_{f}_VEGA"], float)
        table[f"PHANGS_{f}_VEGA"] = np.where(mag != SENTINEL, mag - a, mag)
        for name in (f"PHANGS_{f}_mJy", f"PHANGS_{f}_mJy_ERR"):
            flux = np.asarray(table[name], float)
            table[name] = np.where(flux != SENTINEL, flux * 10.0 ** (0.4 * a), flux)


def clusters_stage(ctx: StageContext) -> Outputs:
    """Select, classify and fit cluster candidates; write the five catalog subsets."""
    config: ClusterStageConfig = ctx.config
    images, errors = load_drcs(ctx.inputs[StageName.IMAGING])
    filters = list(images)
    # each band's identity (instrument and filter) from its DRC: the SED curves, A_band,
    # aperture-correction offsets and INSTRnn keywords follow it
    bands = [band_of(images[f]) for f in filters]
    ref = config.photometry.reference_filter
    sources = read_sources(ctx.inputs[StageName.PHOTOMETRY])
    dolphot = open_product(dolphot_fits(ctx.inputs[StageName.PHOTOMETRY]), masked=False).table
    galaxy = ctx.run.galaxy
    # point sources of the field for the stellar MCI region: bright DOLPHOT type-1 matches
    stars = _bright_stars(sources, dolphot, config.selection.star_min_snr)
    # the PSF of the data: the synthetic clusters and the fiducial CI are seen through it
    psf = measure_psf(np.asarray(images[ref].data, float), ref, float(images[ref].meta.pixscale))
    region = calibrate_mci(
        images[ref],
        errors[ref],
        stars,
        galaxy.distance_mpc,
        config.selection,
        config.photometry,
        psf=psf,
    )
    calib_path = ctx.folder / "mci_calibration.ecsv"
    region.injected.write(calib_path, format="ascii.ecsv", overwrite=True)
    ctx.progress(f"MCI calibration ({len(region.injected)} synthetic clusters)", 1, 4)
    idx, reason = select_candidates(
        sources, filters, region, galaxy.distance_modulus, config.selection, ref
    )
    # V aperture correction from bright isolated candidates (compact clusters), paper Sect. 4.3
    x, y = np.asarray(sources["x"], float), np.asarray(sources["y"], float)
    candidate = np.zeros(len(sources), bool)
    candidate[idx] = True
    isolated = candidate & calibrator_isolation(
        x, y, np.asarray(sources[f"{ref}_flux"], float), candidate, config.photometry
    )
    v_err = np.asarray(sources[f"{ref}_mag_err"], float)
    apc_v = aperture_correction_v(
        images[ref].data,
        errors[ref].data,
        x,
        y,
        v_err,
        isolated,
        config.photometry,
        flux4=np.asarray(sources[f"{ref}_flux"], float),  # the catalog's 4 px fluxes
        psf_fwhm=psf.fwhm_px,
    )
    old = sources.meta.get("apcorr", {})
    if apc_v is not None and old:
        new = {b.filter: apc_v - band(b.filter, b.instrument).apcorr_offset for b in bands}
        apply_apcorr(sources, filters, old, new)
        log.info(
            "cluster aperture correction V = %.3f mag (from %d isolated candidates)",
            apc_v,
            int(isolated.sum()),
        )
    table = build_candidate_table(sources, idx, reason, filters, galaxy, ctx.run.field)
    ctx.progress(f"selection ({len(table)} candidates)", 2, 4)
    # Milky Way foreground: the catalog's magnitudes and fluxes are corrected (as PHANGS-CAT)
    a_band, fg_meta = foreground(ctx, bands, corrected=True)
    correct_foreground(table, filters, a_band)
    # classes
    if config.human_table:
        table["PHANGS_CLUSTER_CLASS_HUMAN"] = import_human_classes(
            table, config.human_table, config.human_match_arcsec
        )
    else:
        table["PHANGS_CLUSTER_CLASS_HUMAN"] = np.full(len(table), SENTINEL, np.int16)
    arrays = {f: np.asarray(images[f].data, float) for f in filters}
    ml, quality = classify_candidates(table, arrays, config.classifier)
    table["PHANGS_CLUSTER_CLASS_ML"] = ml
    table["PHANGS_CLUSTER_CLASS_ML_QUAL"] = quality
    ctx.progress("classification", 3, 4)
    # cluster ids for class 1-3 objects (human class when inspected, else machine)
    best = np.where(
        table["PHANGS_CLUSTER_CLASS_HUMAN"] > 0,
        table["PHANGS_CLUSTER_CLASS_HUMAN"],
        table["PHANGS_CLUSTER_CLASS_ML"],
    )
    is_cl = np.isin(best, (1, 2, 3))
    table["ID_PHANGS_CLUSTER"][is_cl] = np.arange(1, is_cl.sum() + 1)
    # SED fits
    mags = np.column_stack([np.asarray(table[f"PHANGS_{f}_VEGA"], float) for f in filters])
    errs = np.column_stack([np.asarray(table[f"PHANGS_{f}_VEGA_ERR"], float) for f in filters])
    sed = fit_sed(mags, errs, bands, galaxy.distance_mpc, config.sed, sentinel=SENTINEL)
    half = lambda lo, hi: np.where((lo > 0) & (hi > 0), (hi - lo) / 2, SENTINEL)  # noqa: E731
    for prefix, best_v, lo, hi in (
        ("AGE", sed.age_myr, sed.age_lo, sed.age_hi),
        ("MASS", sed.mass, sed.mass_lo, sed.mass_hi),
        ("EBV", sed.ebv, sed.ebv_lo, sed.ebv_hi),
    ):
        table[f"PHANGS_{prefix}_MINCHISQ"] = best_v
        table[f"PHANGS_{prefix}_MINCHISQ_ERR"] = half(lo, hi)
        table[f"PHANGS_{prefix}_LIMLO"] = lo
        table[f"PHANGS_{prefix}_LIMHI"] = hi
    table["PHANGS_REDUCEDCHISQ_MINCHISQ"] = sed.reduced_chi2
    ctx.progress("SED fits", 4, 4)
    fg_meta["humclass"] = bool(config.human_table)
    return _write_products(ctx, table, images[ref], bands, apc_v, config, calib_path, fg_meta)


def _bright_stars(sources: Table, dolphot: Table, min_snr: float) -> Table:
    """Sources matching bright DOLPHOT point sources (object type 1)."""
    good = (np.asarray(dolphot["OBJTYPE"]) == 1) & (np.asarray(dolphot["SNR"], float) >= min_snr)
    if not good.any() or len(sources) == 0:
        return sources[:0]
    d = SkyCoord(dolphot["RA"][good], dolphot["DEC"][good], unit="deg")
    s = SkyCoord(sources["ra"], sources["dec"], unit="deg")
    idx, sep, _ = d.match_to_catalog_sky(s)
    return sources[np.unique(idx[sep.arcsec < 0.04])]


def _write_products(
    ctx: StageContext,
    table: Table,
    ref_image,
    bands: list[BandInfo],
    apc_v: float | None,
    config: ClusterStageConfig,
    calib: Path,
    extra_meta: dict,
) -> Outputs:
    delivery = delivery_from(ref_image, ctx)
    instruments = [b.instrument for b in bands]
    base = {
        **common_meta(
            delivery,
            "phangs-cat",
            instrument=instrume_of(instruments),
            xposure=float(ref_image.meta.xposure),
        ),
        "apcorr_v": float(apc_v if apc_v is not None else -0.75),
        "sedmodel": "BC03 solar, Chabrier IMF, Cardelli RV=3.1",
        **extra_meta,
    }
    outputs: Outputs = {
        ProductKey.CLUSTER_CATALOG: [],
        ProductKey.DS9_REGIONS: [],
        ProductKey.MCI_CALIBRATION: [calib],
    }
    for subset, rule in SUBSETS.items():
        if subset.startswith("hum") and not config.human_table:
            continue  # no human classes: no human-class catalogs (the README says why)
        rows = table if rule is None else table[np.isin(table[rule[0]], rule[1])]
        model = CatalogModel.create("cluster-catalog", rows, bands, {**base, "clsubset": subset})
        for ext in ("fits", "parquet", "ecsv"):
            name = build_name(
                get_schema("cluster-catalog"),
                target=ctx.run.field,
                version=ctx.run.version,
                instruments=instruments,
                extension=ext,
                subset=subset,
            )
            path = ctx.folder / name
            if ext == "fits":
                model.save(path, overwrite=True, provenance=ctx.provenance())
            else:
                model.save(path, overwrite=True)
            outputs[ProductKey.CLUSTER_CATALOG].append(path)
        klass = rows[
            "PHANGS_CLUSTER_CLASS_HUMAN" if subset.startswith("hum") else "PHANGS_CLUSTER_CLASS_ML"
        ]
        regs = Regions(
            [
                CircleSkyRegion(
                    SkyCoord(r["PHANGS_RA"] * u.deg, r["PHANGS_DEC"] * u.deg),
                    config.region_radius_arcsec * u.arcsec,
                    meta={"text": str(int(r["ID_PHANGS_CANDIDATE"]))},
                    visual={"color": CLASS_COLORS.get(int(k), "red")},
                )
                for r, k in zip(rows, klass, strict=True)
            ]
        )
        reg = regions_model(regs, delivery, outputs[ProductKey.CLUSTER_CATALOG][-3].name)
        reg_path = ctx.folder / build_name(
            get_schema("ds9-regions"),
            target=ctx.run.field,
            version=ctx.run.version,
            instruments=instruments,
            base=f"cl-{subset}",
        )
        reg.save(reg_path, overwrite=True)
        outputs[ProductKey.DS9_REGIONS].append(reg_path)
    log.info(
        "cluster catalogs: %d candidates, %d human class 1-2, %d ML class 1-2",
        len(table),
        int(np.isin(table["PHANGS_CLUSTER_CLASS_HUMAN"], (1, 2)).sum()),
        int(np.isin(table["PHANGS_CLUSTER_CLASS_ML"], (1, 2)).sum()),
    )
    return outputs

"""Simulate a galaxy field: FLC files, reference catalog and truth tables (package docstring)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.wcs import WCS

from phangs_products.atomic import atomic_write_text
from phangs_products.bands import galaxy, pc_per_pixel
from phangs_products.errors import PhangsProductsError, ProductError
from phangs_products.hlsp import Delivery, common_meta
from phangs_products.models import FlcModel
from phangs_products.pipeline.instrument import FLC_SCALE, flc_scale
from phangs_products.pipeline.sim.config import DITHERS, GAP_S, MARGIN_PX, SimConfig
from phangs_products.pipeline.sim.exposure import (
    ExposureSpec,
    chip_defects,
    chip_wcs,
    exposure_hdulist,
    render_chip,
)
from phangs_products.pipeline.sim.scene import build_scene, field_center

log = logging.getLogger(__name__)


@dataclass
class SimResult:
    """Paths written by :func:`simulate`."""

    out_dir: Path
    flc_dir: Path
    flc_files: list[Path] = field(default_factory=list)
    reference_catalog: Path | None = None
    truth: Path | None = None
    truth_associations: Path | None = None
    truth_exposures: Path | None = None
    #: FLC folder of each pointing, by field name (one pointing: ``{field: flc_dir}``).
    pointings: dict[str, Path] = field(default_factory=dict)


def _result(out: Path, config: SimConfig) -> SimResult:
    flc = out / "flc"
    fields = config.pointing_fields
    return SimResult(
        out,
        flc,
        reference_catalog=out / "reference_catalog.txt",
        truth=out / "truth.ecsv",
        truth_associations=out / "truth_associations.ecsv",
        truth_exposures=out / "truth_exposures.ecsv",
        pointings={fields[0]: flc} if len(fields) == 1 else {f: flc / f for f in fields},
    )


def simulate(config: SimConfig, out_dir: str | Path, overwrite: bool = False) -> SimResult:
    """Simulate a field: FLC files, reference catalog and truth tables (module doc).

    Parameters
    ----------
    config : SimConfig
        What to simulate.
    out_dir : path-like
        Output folder (created).
    overwrite : bool
        Replace an existing simulation made with another configuration.

    Returns
    -------
    SimResult
        Paths of the FLC files, the reference catalog and the truth tables.

    Raises
    ------
    ProductError
        If ``out_dir`` holds another simulation (or a partial one) and ``overwrite`` is false.
    """
    out = Path(out_dir)
    result = _result(out, config)
    stamp = out / "simulation.txt"
    description = repr(config)
    if stamp.exists() and stamp.read_text() == description and not overwrite:
        result.flc_files = _flc_files(result)
        log.info("reusing the simulation in %s", out)
        return result
    existing = stamp.exists() or any(result.flc_dir.rglob("*_flc.fits"))
    if existing and not overwrite:
        raise ProductError(
            f"{out}: holds another or an unfinished simulation; pass overwrite=True to replace it"
        )
    stamp.unlink(missing_ok=True)
    result.flc_dir.mkdir(parents=True, exist_ok=True)
    for old in result.flc_dir.rglob("*_flc.fits"):
        old.unlink()
    for folder in result.pointings.values():
        folder.mkdir(parents=True, exist_ok=True)

    gal = galaxy(config.target)
    ra0, dec0 = field_center(gal)
    nx = config.shape[2]
    cosd = math.cos(math.radians(dec0))
    step_deg = config.pointing_step_px * FLC_SCALE / 3600.0  # on the sky, east
    n_point = config.pointings
    # the scene covers the largest detector of the bands (ACS/WFC is wider than WFC3/UVIS)
    footprints = [_footprint(config, i) for i in dict.fromkeys(config.instruments)]
    size_deg = (
        max(w for w, _ in footprints) + (n_point - 1) * step_deg,
        max(h for _, h in footprints),
    )
    centres = [(ra0 + k * step_deg / cosd, dec0) for k in range(n_point)]
    if n_point == 1:
        truth, associations, disk = build_scene(config, size_deg)
        scene_centre = (ra0, dec0)
    else:  # one scene under all pointings, same density of objects
        scene_centre = (ra0 + 0.5 * (n_point - 1) * step_deg / cosd, dec0)
        widen = (nx + (n_point - 1) * config.pointing_step_px) / nx
        truth, associations, disk = build_scene(
            config, size_deg, center=scene_centre, area=config.area_factor * widen
        )
    log.info(
        "scene: %d stars, %d association members in %d associations, %d clusters",
        int((truth["kind"] == "star").sum()),
        int((truth["kind"] == "assoc_star").sum()),
        len(associations),
        int((truth["kind"] == "cluster").sum()),
    )
    pc_px = {i: pc_per_pixel(gal.distance_mpc, flc_scale(i)) for i in config.instruments}
    defects = {i: _defects(config, i) for i in config.instruments}
    rows: list[dict[str, Any]] = []
    t = config.mjd_start
    names = config.pointing_fields
    for (p_index, (pra, pdec)), (field_name, folder) in zip(
        enumerate(centres), result.pointings.items(), strict=True
    ):
        # the first pointing's random streams are those of a one-pointing simulation
        extra = () if p_index == 0 else (p_index,)
        for b_index, filt in enumerate(config.bands):
            t = _simulate_visit(
                config,
                truth,
                disk,
                defects,
                pc_px,
                gal,
                field_name,
                folder,
                (pra, pdec),
                b_index,
                filt,
                extra,
                t,
                result,
                rows,
                n_fields=len(names),
            )

    _write_reference_catalog(truth, result.reference_catalog, true_field=(*scene_centre, size_deg))
    truth.write(result.truth, format="ascii.ecsv", overwrite=True)
    associations.write(result.truth_associations, format="ascii.ecsv", overwrite=True)
    Table(rows=rows).write(result.truth_exposures, format="ascii.ecsv", overwrite=True)
    atomic_write_text(stamp, description, overwrite=True)
    log.info("simulation of %s written to %s", ", ".join(names), out)
    return result


def _footprint(config: SimConfig, instrument: str) -> tuple[float, float]:
    """Width and height (deg) of an instrument's detector plus the object margin."""
    chips, ny, nx = config.detector_shape(instrument)
    scale = flc_scale(instrument) / 3600.0
    return (nx + 2 * MARGIN_PX) * scale, (chips * ny + 2 * MARGIN_PX) * scale


def _defects(config: SimConfig, instrument: str) -> list[Any]:
    """Fixed defects of each chip of an instrument's detector (None: noiseless)."""
    chips, ny, nx = config.detector_shape(instrument)
    # WFC3/UVIS keeps the random streams it always had; ACS/WFC chips get their own
    salt = 0 if instrument == "WFC3/UVIS" else 100
    return [
        None if config.noiseless else chip_defects((ny, nx), config.seed, salt + c)
        for c in range(chips)
    ]


def _simulate_visit(
    config: SimConfig,
    truth: Table,
    disk: Any,
    defects: dict[str, list[Any]],
    pc_px: dict[str, float],
    gal: Any,
    field_name: str,
    folder: Path,
    pointing: tuple[float, float],
    b_index: int,
    filt: str,
    extra: tuple[int, ...],
    t: float,
    result: SimResult,
    rows: list[dict[str, Any]],
    n_fields: int = 1,
) -> float:
    """Write the dithered FLCs of one band at one pointing; return the time after them (MJD).

    ``extra`` is appended to the random-stream keys (empty for the first pointing, so that a
    one-pointing simulation draws exactly what it always drew).
    """
    ra0, dec0 = pointing
    instrument = config.instrument(filt)
    chips, ny, nx = config.detector_shape(instrument)
    scale = flc_scale(instrument)
    cosd = math.cos(math.radians(dec0))
    exptime = config.exptime(filt)
    photflam, photplam = config.photometry(filt)
    visit = np.random.default_rng([config.seed, 2, b_index, *extra])
    if config.noiseless:
        shift, rot = np.zeros(2), 0.0
    else:
        shift = visit.normal(0.0, config.pointing_error_arcsec, 2)
        rot = float(visit.normal(0.0, config.pointing_error_deg))
    bad_ra = ra0 + shift[0] / 3600.0 / cosd
    bad_dec = dec0 + shift[1] / 3600.0
    p_index = extra[0] if extra else 0
    for dither, (dx, dy) in enumerate(DITHERS):
        rng = np.random.default_rng([config.seed, 1, b_index, dither, *extra])
        spec = ExposureSpec(
            config.rootname(b_index, dither, p_index),
            filt,
            exptime,
            t,
            dither,
            instrument,
            photflam,
            photplam,
        )
        # the dither pattern is in arcsec on the sky: WFC3/UVIS pixels
        ddx, ddy = dx * FLC_SCALE / scale, dy * FLC_SCALE / scale
        true_w = [
            chip_wcs(ra0, dec0, c, chips, ny, nx, ddx, ddy, pixscale=scale)
            for c in range(1, chips + 1)
        ]
        hdr_w = [
            chip_wcs(bad_ra, bad_dec, c, chips, ny, nx, ddx, ddy, rot, scale)
            for c in range(1, chips + 1)
        ]
        arrays = [
            render_chip(
                truth,
                disk if config.diffuse else None,
                filt,
                exptime,
                w,
                (ny, nx),
                pc_px[instrument],
                rng,
                config.noiseless,
                d,
                config.psf_scale,
                instrument,
            )
            for w, d in zip(true_w, defects[instrument], strict=True)
        ]
        hdul = exposure_hdulist(spec, arrays, hdr_w, gal.name, gal.ra, gal.dec, len(DITHERS))
        delivery = Delivery(
            gal,
            field_name,
            "v1",
            t,
            t + exptime / 86400.0,
            simulated=True,
            ra=ra0,
            dec=dec0,
            proposid=config.proposid,
        )
        model = FlcModel.from_hdulist(
            hdul,
            meta=common_meta(
                delivery, "phangs-hst", instrument=instrument.split("/")[0], xposure=exptime
            ),
        )
        path = folder / f"{spec.rootname}_flc.fits"
        model.save(path, overwrite=True, provenance={"simulation": config.as_dict()})
        result.flc_files.append(path)
        new_rows = _exposure_rows(spec, true_w, hdr_w, shift, rot)
        rows += new_rows if n_fields == 1 else [{"field": field_name, **r} for r in new_rows]
        log.info(
            "simulated %s %s %s dither %d (%.1f s)",
            field_name,
            spec.rootname,
            filt,
            dither + 1,
            exptime,
        )
        t += (exptime + GAP_S) / 86400.0
    return t


def _flc_files(result: SimResult) -> list[Path]:
    """FLC files of all pointings, pointing by pointing."""
    return [p for folder in result.pointings.values() for p in sorted(folder.glob("*_flc.fits"))]


def _exposure_rows(
    spec: ExposureSpec, true_w: list[WCS], hdr_w: list[WCS], shift: np.ndarray, rot: float
) -> list[dict[str, Any]]:
    rows = []
    for extver, (tw, hw) in enumerate(zip(true_w, hdr_w, strict=True), start=1):
        row: dict[str, Any] = {
            "rootname": spec.rootname,
            "filter": spec.filter,
            "instrument": spec.instrument,
            "dither": spec.dither,
            "extver": extver,
            "exptime": spec.exptime,
            "expstart": spec.expstart,
            "err_east_arcsec": float(shift[0]),
            "err_north_arcsec": float(shift[1]),
            "err_rot_deg": rot,
        }
        for prefix, w in (("true", tw), ("hdr", hw)):
            row[f"{prefix}_crval1"], row[f"{prefix}_crval2"] = map(float, w.wcs.crval)
            row[f"{prefix}_crpix1"], row[f"{prefix}_crpix2"] = map(float, w.wcs.crpix)
            cd = w.wcs.cd
            for i in range(2):
                for j in range(2):
                    row[f"{prefix}_cd{i + 1}_{j + 1}"] = float(cd[i, j])
        rows.append(row)
    return rows


def _wcs_from_row(row: Any, prefix: str) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [row[f"{prefix}_crval1"], row[f"{prefix}_crval2"]]
    w.wcs.crpix = [row[f"{prefix}_crpix1"], row[f"{prefix}_crpix2"]]
    w.wcs.cd = [
        [row[f"{prefix}_cd1_1"], row[f"{prefix}_cd1_2"]],
        [row[f"{prefix}_cd2_1"], row[f"{prefix}_cd2_2"]],
    ]
    return w


def true_wcs(exposures: Table, rootname: str, extver: int = 1) -> WCS:
    """The true (error-free) WCS of one chip of a simulated exposure, from ``truth_exposures``."""
    sel = exposures[(exposures["rootname"] == rootname) & (exposures["extver"] == extver)]
    if len(sel) != 1:
        raise PhangsProductsError(f"truth_exposures: no row for {rootname} chip {extver}")
    return _wcs_from_row(sel[0], "true")


def true_to_header_radec(
    exposures: Table, rootname: str, ra: np.ndarray, dec: np.ndarray, extver: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Where true positions appear in the (erroneous) header WCS of an exposure.

    Parameters
    ----------
    exposures : Table
        ``truth_exposures.ecsv``.
    rootname : str
        Exposure.
    ra, dec : ndarray
        True positions, deg.
    extver : int
        Chip.

    Returns
    -------
    ra, dec : ndarray
        Positions (deg) the unaligned header WCS assigns to those sources.
    """
    x, y = true_wcs(exposures, rootname, extver).all_world2pix(ra, dec, 0)
    sel = exposures[(exposures["rootname"] == rootname) & (exposures["extver"] == extver)]
    return _wcs_from_row(sel[0], "hdr").all_pix2world(x, y, 0)


def _write_reference_catalog(
    truth: Table, path: Path | None, true_field: tuple[float, float, tuple[float, float]]
) -> None:
    """Bright (V < 25.5) stars without a neighbour within 0.5", inside the field."""
    assert path is not None
    ra0, dec0, (width, height) = true_field
    coords = SkyCoord(truth["ra"], truth["dec"], unit="deg")
    _, sep, _ = coords.match_to_catalog_sky(coords, nthneighbor=2)
    inside = (np.abs((truth["ra"] - ra0) * math.cos(math.radians(dec0))) < width / 2) & (
        np.abs(truth["dec"] - dec0) < height / 2
    )
    bright = truth["F555W_vega"] < 25.5 if "F555W_vega" in truth.colnames else True
    keep = truth[(truth["kind"] == "star") & bright & (sep.arcsec > 0.5) & inside]
    lines = [
        "# reference astrometric catalog (stand-in for Gaia DR2): true positions of simulated",
        "# bright isolated stars. Columns: 1 RA (deg, ICRS), 2 Dec (deg, ICRS), 3 V (Vega mag)",
    ]
    vcol = keep["F555W_vega"] if "F555W_vega" in keep.colnames else np.full(len(keep), np.nan)
    lines += [
        f"{r:.9f} {d:.9f} {v:.3f}" for r, d, v in zip(keep["ra"], keep["dec"], vcol, strict=True)
    ]
    atomic_write_text(path, "\n".join(lines) + "\n", overwrite=True)

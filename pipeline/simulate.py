"""A simulated galaxy field observed like PHANGS-HST, with its truth.

``simulate(SimConfig(), out_dir)`` writes, for the default NGC 628 field (``ngc628c``):

* ``flc/<rootname>_flc.fits``: WFC3/UVIS FLC exposures, 3 dithers per band with the paper's
  total exposure times (F275W 2200, F336W 1100, F438W 1100, F555W 670, F814W 830 s; Lee et al.
  2022 Sect. 3.1), SCI/ERR/DQ per chip in electrons, headers modelled on a real FLC
  (:mod:`phangs_products.pipeline.sim_exposure`), written through the FLC schema (HLSP keywords,
  ``SIMULATD = T``);
* ``reference_catalog.txt``: true RA/Dec of bright isolated stars, the stand-in for Gaia DR2
  (whitespace text with ``#`` comment lines, the form TweakReg reads; columns RA, Dec, V);
* ``truth.ecsv`` (every object: kind, RA/Dec, per-band rate and Vega magnitude, r_eff, EFF
  slope, age, mass, E(B-V), association id), ``truth_associations.ecsv`` (centre, FWHM in pc,
  members) and ``truth_exposures.ecsv`` (per exposure and chip: the true WCS, the header WCS and
  the pointing error);
* ``simulation.txt``: the configuration; a later call with the same configuration reuses the
  files.

The scene is described in :mod:`phangs_products.pipeline.sim_scene`, the detector in
:mod:`phangs_products.pipeline.sim_exposure`, the PSF in :mod:`phangs_products.pipeline.sim_psf`.

Pointing errors: each band's visit gets one random error, Gaussian with ``pointing_error_arcsec``
(default 0.25") per axis and ``pointing_error_deg`` (0.01 deg) in rotation, shared by its three
dithers; the headers carry the erroneous pointing, ``truth_exposures.ecsv`` the real one.
Dithers: a 3-point line of 0, (2.5, 1.5) and (5, 3) px (about 0.1" steps; a choice).

Several pointings (``pointings=2`` or more): one scene covers all of them; pointing ``k`` is
centred ``k * (1 - overlap)`` detector widths east of the default field centre, so neighbouring
pointings share ``overlap`` of the detector width (default 0.3).  Each pointing is a visit of its
own per band (own pointing error, noise and exposure times after the previous pointing's) and its
FLCs go to ``flc/<field>/`` with the pointing as RA_TARG/DEC_TARG and rootnames whose 8th
character is the pointing's letter (``a``, ``b``, ...).  Field names: ``field`` for the first,
then ``<target>e``, ``<target>e2``, ... (pointings east of it, as PHANGS named ``ngc628c`` and
``ngc628e``) unless ``fields`` names them.  ``truth_exposures.ecsv`` then has a ``field`` column.
With one pointing (the default) every file is what it was before pointings existed.

Everything is a deterministic function of the configuration: the scene, each exposure's noise
and each chip's defects draw from their own ``numpy.random.default_rng([seed, ...])`` streams.
Only the file-write dates (``DATE``, checksum comments) and hence CHECKSUM differ between runs.
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.wcs import WCS

from phangs_products.atomic import atomic_write_text
from phangs_products.bands import band, galaxy, pc_per_pixel
from phangs_products.errors import PhangsProductsError, ProductError
from phangs_products.hlsp import Delivery, common_meta
from phangs_products.models import FlcModel
from phangs_products.naming import sanitize_target

from .sim_exposure import ExposureSpec, chip_defects, chip_wcs, exposure_hdulist, render_chip
from .sim_scene import FLC_SCALE, build_scene, field_center

__all__ = [
    "BANDS",
    "DITHERS",
    "FLC_SCALE",
    "SIZES",
    "SimConfig",
    "SimResult",
    "add_arguments",
    "run_from_args",
    "simulate",
    "true_to_header_radec",
]

log = logging.getLogger(__name__)

#: Detector layouts: (number of chips, rows, columns) per size preset.
SIZES: dict[str, tuple[int, int, int]] = {
    "small": (1, 512, 512),
    "medium": (2, 1024, 1024),
    "full": (2, 2051, 4096),
}
#: Dither offsets (x, y) of the 3 exposures of a visit, FLC pixels.
DITHERS: tuple[tuple[float, float], ...] = ((0.0, 0.0), (2.5, 1.5), (5.0, 3.0))
BANDS: tuple[str, ...] = ("F275W", "F336W", "F438W", "F555W", "F814W")
MARGIN_PX = 20  # objects are placed this far beyond the detector edges too
GAP_S = 120.0  # s between exposures (overheads)


@dataclass(frozen=True)
class SimConfig:
    """What to simulate.

    Attributes
    ----------
    target, field : str
        Galaxy (survey table, e.g. ``ngc628``) and field name (``ngc628c``).
    seed : int
        Random seed: same seed, same scene and noise; another seed, another scene.
    size : str
        ``small`` (1 chip 512x512), ``medium`` (2 chips 1024x1024) or ``full`` (2 chips
        4096x2051, the real UVIS format).
    bands : tuple of str
        WFC3/UVIS filters (default the five PHANGS bands).
    n_stars, n_clusters, n_associations : int
        Objects per 512x512 FLC pixels (scaled with the detector area).
    noiseless : bool
        Expected counts only: no noise, cosmic rays, detector defects, saturation or pointing
        errors (for flux tests).
    spiral_arms : bool
        Add spiral arms to the disk and put young objects on them.
    diffuse : bool
        Render the diffuse disk light (off: sources on sky only, e.g. for flux tests).
    pointing_error_arcsec, pointing_error_deg : float
        1-sigma pointing error per visit: shift per axis (arcsec) and rotation (deg).
    mjd_start : float
        Start of the first exposure, MJD (UTC).
    exptime_scale : float
        Factor on the paper's exposure times.
    pointings : int
        Number of overlapping pointings (1-5) laid out from west to east (module doc).
    overlap : float
        Fraction of the detector width shared by neighbouring pointings (0.05-0.95).
    fields : tuple of str
        Field names of the pointings (default: ``field``, then ``<target>e``, ``<target>e2``...).
    """

    target: str = "ngc628"
    field: str = "ngc628c"
    seed: int = 1
    size: str = "small"
    bands: tuple[str, ...] = BANDS
    n_stars: int = 700
    n_clusters: int = 60
    n_associations: int = 6
    noiseless: bool = False
    spiral_arms: bool = True
    diffuse: bool = True
    pointing_error_arcsec: float = 0.25
    pointing_error_deg: float = 0.01
    mjd_start: float = 58800.2
    exptime_scale: float = 1.0
    pointings: int = 1
    overlap: float = 0.3
    fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise PhangsProductsError(
                f"SimConfig: size {self.size!r} is not one of {', '.join(SIZES)}"
            )
        if isinstance(self.bands, str) or not self.bands:
            raise PhangsProductsError("SimConfig: bands must be a non-empty tuple of filters")
        object.__setattr__(self, "bands", tuple(str(b).upper() for b in self.bands))
        for filt in self.bands:
            band(filt)  # raises for a filter that is not a WFC3/UVIS PHANGS band
        if len(set(self.bands)) != len(self.bands):
            raise PhangsProductsError(f"SimConfig: repeated band in {self.bands}")
        if len(self.bands) > 10:
            raise PhangsProductsError("SimConfig: at most 10 bands (one rootname digit)")
        galaxy(self.target)  # raises for an unknown galaxy
        if not isinstance(self.seed, int | np.integer) or self.seed < 0:
            raise PhangsProductsError(f"SimConfig: seed must be an integer >= 0, got {self.seed!r}")
        for name in ("n_stars", "n_clusters", "n_associations"):
            if getattr(self, name) < 0:
                raise PhangsProductsError(f"SimConfig: {name} must be >= 0")
        if not self.exptime_scale > 0:
            raise PhangsProductsError("SimConfig: exptime_scale must be > 0")
        if self.pointing_error_arcsec < 0 or self.pointing_error_deg < 0:
            raise PhangsProductsError("SimConfig: pointing errors must be >= 0")
        if not 40000.0 < self.mjd_start < 80000.0:
            raise PhangsProductsError(f"SimConfig: mjd_start {self.mjd_start} is not an HST date")
        if not isinstance(self.pointings, int | np.integer) or not 1 <= self.pointings <= 5:
            raise PhangsProductsError(
                f"SimConfig: pointings must be an integer 1-5, got {self.pointings!r}"
            )
        if not 0.05 <= self.overlap <= 0.95:
            raise PhangsProductsError(
                f"SimConfig: overlap must be a fraction 0.05-0.95, got {self.overlap!r}"
            )
        if isinstance(self.fields, str):
            raise PhangsProductsError("SimConfig: fields must be a tuple of field names")
        object.__setattr__(self, "fields", tuple(self.fields))
        if self.fields and len(self.fields) != self.pointings:
            raise PhangsProductsError(
                f"SimConfig: {len(self.fields)} field name(s) for {self.pointings} pointing(s)"
            )
        names = self.pointing_fields
        if len(set(names)) != len(names):
            raise PhangsProductsError(f"SimConfig: repeated field name in {names}")
        for name in names:
            sanitize_target(name)  # raises for a name MAST does not allow

    @property
    def shape(self) -> tuple[int, int, int]:
        """(chips, rows, columns) of the detector."""
        return SIZES[self.size]

    @property
    def pointing_fields(self) -> tuple[str, ...]:
        """Field name of each pointing (module doc)."""
        if self.fields:
            return self.fields
        extra = [f"{self.target}e" + (str(k) if k > 1 else "") for k in range(1, self.pointings)]
        return (self.field, *extra)

    @property
    def pointing_step_px(self) -> float:
        """East-west distance between neighbouring pointings, FLC pixels."""
        return SIZES[self.size][2] * (1.0 - self.overlap)

    @property
    def area_factor(self) -> float:
        """Detector area relative to 512x512."""
        chips, ny, nx = SIZES[self.size]
        return chips * ny * nx / 512.0**2

    def exptime(self, filt: str) -> float:
        """Exposure time of one of the three dithers in a band, s."""
        return round(band(filt).exptime / len(DITHERS) * self.exptime_scale, 1)

    def rootname(self, band_index: int, dither: int, pointing: int = 0) -> str:
        """9-character rootname (``isim<seed%10><band><dither><pointing letter>q``)."""
        return f"isim{self.seed % 10}{band_index}{dither}{chr(ord('a') + pointing)}q"

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary of the configuration (for provenance).

        The pointing settings appear only for several pointings (a one-pointing simulation
        records what it recorded before they existed).
        """
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        if self.pointings == 1:
            for key in ("pointings", "overlap", "fields"):
                out.pop(key)
        return out

    def __repr__(self) -> str:
        """Constructor-like text; the pointing settings only for several pointings."""
        names = [f.name for f in fields(self)]
        if self.pointings == 1:
            names = [n for n in names if n not in ("pointings", "overlap", "fields")]
        items = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"SimConfig({items})"


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
    chips, ny, nx = config.shape
    cosd = math.cos(math.radians(dec0))
    step_deg = config.pointing_step_px * FLC_SCALE / 3600.0  # on the sky, east
    n_point = config.pointings
    size_deg = (
        (nx + 2 * MARGIN_PX) * FLC_SCALE / 3600.0 + (n_point - 1) * step_deg,
        (chips * ny + 2 * MARGIN_PX) * FLC_SCALE / 3600.0,
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
    pc_px = pc_per_pixel(gal.distance_mpc, FLC_SCALE)
    defects = [
        None if config.noiseless else chip_defects((ny, nx), config.seed, c) for c in range(chips)
    ]
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


def _simulate_visit(
    config: SimConfig,
    truth: Table,
    disk: Any,
    defects: list[Any],
    pc_px: float,
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
    chips, ny, nx = config.shape
    cosd = math.cos(math.radians(dec0))
    exptime = config.exptime(filt)
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
        spec = ExposureSpec(config.rootname(b_index, dither, p_index), filt, exptime, t, dither)
        true_w = [chip_wcs(ra0, dec0, c, chips, ny, nx, dx, dy) for c in range(1, chips + 1)]
        hdr_w = [
            chip_wcs(bad_ra, bad_dec, c, chips, ny, nx, dx, dy, rot) for c in range(1, chips + 1)
        ]
        arrays = [
            render_chip(
                truth,
                disk if config.diffuse else None,
                filt,
                exptime,
                w,
                (ny, nx),
                pc_px,
                rng,
                config.noiseless,
                d,
            )
            for w, d in zip(true_w, defects, strict=True)
        ]
        hdul = exposure_hdulist(spec, arrays, hdr_w, gal.name, gal.ra, gal.dec, len(DITHERS))
        delivery = Delivery(
            gal, field_name, "v1", t, t + exptime / 86400.0, simulated=True, ra=ra0, dec=dec0
        )
        model = FlcModel.from_hdulist(
            hdul, meta=common_meta(delivery, "phangs-hst", instrument="WFC3", xposure=exptime)
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


# ------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``phangs-products simulate``."""
    parser.add_argument("--out", type=Path, default=Path("simulation"), help="output folder")
    parser.add_argument("--target", default="ngc628", help="galaxy of the survey table")
    parser.add_argument("--field", default=None, help="field name (default <target>c)")
    parser.add_argument("--size", default="small", choices=tuple(SIZES))
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--bands", default=",".join(BANDS), help="comma-separated filters")
    parser.add_argument("--noiseless", action="store_true", help="expected counts only")
    parser.add_argument("--no-arms", action="store_true", help="smooth disk without arms")
    parser.add_argument("--pointings", type=int, default=1, help="overlapping pointings (1-5)")
    parser.add_argument(
        "--overlap", type=float, default=0.3, help="detector-width fraction pointings share"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing simulation")


def run_from_args(args: argparse.Namespace) -> SimResult:
    """Run :func:`simulate` from parsed ``add_arguments`` options."""
    config = SimConfig(
        target=args.target,
        field=args.field or f"{args.target}c",
        seed=args.seed,
        size=args.size,
        bands=tuple(b.strip() for b in args.bands.split(",") if b.strip()),
        noiseless=args.noiseless,
        spiral_arms=not args.no_arms,
        pointings=args.pointings,
        overlap=args.overlap,
    )
    return simulate(config, Path(args.out), overwrite=args.overwrite)

"""A simulated galaxy field observed like PHANGS-HST, with its truth.

``simulate(SimConfig(), out_dir)`` writes, for the default NGC 628 field:

* ``flc/<rootname>_flc.fits``: WFC3/UVIS FLC exposures (3 dithers x 5 bands), SCI/ERR/DQ per
  chip, headers modelled on a real FLC (the keywords drizzlepac needs are all there, and only
  keywords real files have are relied upon), written through the FLC schema;
* ``reference_catalog.txt``: true RA/Dec of bright isolated stars, the stand-in for Gaia DR2
  (whitespace text with ``#`` comments, the form TweakReg reads);
* ``truth.ecsv`` (every object: kind, RA/Dec, per-band rate and Vega magnitude, size, age, mass,
  E(B-V), association id) and ``truth_associations.ecsv``.

Scene: an exponential disk of diffuse light; field stars from two populations (a blue upper main
sequence and red supergiants/giants, apparent V 22-27.5 following a power-law luminosity function);
star clusters as Moffat/EFF profiles with r_eff 0.5-10 pc whose five-band magnitudes come from the
shared BC03 SSP grid (:func:`phangs_products.pipeline.ssp.cluster_magnitudes`); stellar
associations as Gaussian groups (10-100 pc FWHM) of young blue stars.  Exposures have sky plus
post-flash background (12 e-), Poisson and read noise (3.1 e-), cosmic rays, hot pixels flagged in
DQ, and a random pointing error per band visit (~0.3", ~0.01 deg) in the header WCS only.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time
from astropy.wcs import WCS

from phangs_products.atomic import atomic_write_text, refuse_overwrite
from phangs_products.bands import band, galaxy, pc_per_pixel
from phangs_products.hlsp import Delivery, common_meta
from phangs_products.models import FlcModel

from .sim_psf import psf_for, render_sources

__all__ = ["SIZES", "SimConfig", "SimResult", "simulate"]

log = logging.getLogger(__name__)

#: Detector layouts: (number of chips, rows, columns) per size preset.
SIZES = {"small": (1, 512, 512), "medium": (2, 1024, 1024), "full": (2, 2051, 4096)}
FLC_SCALE = 0.0396  # arcsec per FLC pixel (IDCSCALE of the real header)
GAIN = 1.56  # e-/ADU, ATODGNA of the real header
READ_NOISE = 3.1  # e-
BACKGROUND = 12.0  # e- per pixel after post-flash (Lee et al. 2022 Sect. 3.1)
#: Sky count rates (e-/s/px) in a disk field, below the post-flash floor in the UV.
SKY_RATE = {"F275W": 0.0005, "F336W": 0.001, "F438W": 0.004, "F555W": 0.02, "F814W": 0.03}
#: Dither offsets of the 3 exposures of a visit, pixels.
DITHERS = ((0.0, 0.0), (2.5, 1.5), (5.0, 3.0))
BANDS = ("F275W", "F336W", "F438W", "F555W", "F814W")


@dataclass(frozen=True)
class SimConfig:
    """What to simulate.

    Attributes
    ----------
    target, field : str
        Galaxy (survey table) and field name.
    seed : int
        Random seed: same seed, same scene and noise.
    size : str
        ``small`` (1 chip 512x512), ``medium`` (2 chips 1024x1024) or ``full`` (2 x 4096x2051).
    bands : tuple of str
        WFC3/UVIS filters.
    n_stars, n_clusters, n_associations : int
        Objects per 512x512 pixels (scaled with the detector area).
    noiseless : bool
        No noise, cosmic rays, bad pixels or pointing errors (for flux tests).
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
    mjd_start: float = 58800.2
    exptime_scale: float = 1.0

    @property
    def area_factor(self) -> float:
        """Detector area relative to 512x512."""
        chips, ny, nx = SIZES[self.size]
        return chips * ny * nx / 512.0**2


@dataclass
class SimResult:
    """Paths written by :func:`simulate`."""

    out_dir: Path
    flc_dir: Path
    flc_files: list[Path] = field(default_factory=list)
    reference_catalog: Path | None = None
    truth: Path | None = None
    truth_associations: Path | None = None


def _vega_rate(mag: np.ndarray, filt: str) -> np.ndarray:
    """Count rate (e-/s) of a Vega magnitude."""
    return 10.0 ** (-0.4 * (np.asarray(mag) - band(filt).zp_vega))


def _star_colours(rng: np.random.Generator, n: int, young: np.ndarray) -> dict[str, np.ndarray]:
    """Magnitude offsets m_band - m_V: blue main sequence (young) or red giants/supergiants."""
    # representative colours of OB stars and red supergiants (documented choice, with scatter)
    blue = {"F275W": -1.3, "F336W": -1.1, "F438W": -0.2, "F555W": 0.0, "F814W": 0.25}
    red = {"F275W": 4.0, "F336W": 2.6, "F438W": 1.4, "F555W": 0.0, "F814W": -1.6}
    out = {}
    for filt in BANDS:
        base = np.where(young, blue[filt], red[filt])
        out[filt] = base + rng.normal(0.0, 0.15 if filt != "F555W" else 0.0, n)
    return out


def build_scene(config: SimConfig, center: SkyCoord) -> tuple[Table, Table]:
    """Truth tables of the scene: every object, and the associations."""
    rng = np.random.default_rng(config.seed)
    gal = galaxy(config.target)
    chips, ny, nx = SIZES[config.size]
    width = nx * FLC_SCALE / 3600.0  # deg, field extent
    height = chips * ny * FLC_SCALE / 3600.0
    pc_px = pc_per_pixel(gal.distance_mpc, FLC_SCALE)
    dec0 = center.dec.deg
    cosd = math.cos(math.radians(dec0))

    def positions(n: int) -> tuple[np.ndarray, np.ndarray]:
        return (
            center.ra.deg + (rng.uniform(-0.5, 0.5, n) * width * 0.96) / cosd,
            dec0 + rng.uniform(-0.5, 0.5, n) * height * 0.96,
        )

    rows: dict[str, list] = {
        k: [] for k in ("kind", "ra", "dec", "r_eff_pc", "age_myr", "mass", "ebv", "assoc_id")
    }
    mags: dict[str, list] = {f: [] for f in BANDS}

    # field stars: V from a power-law luminosity function between 22 and 27.5
    n_stars = int(config.n_stars * config.area_factor)
    u = rng.uniform(0, 1, n_stars)
    vmag = 22.0 + 5.5 * u ** (1 / 2.2)
    young = rng.uniform(0, 1, n_stars) < 0.6
    colours = _star_colours(rng, n_stars, young)
    ra, dec = positions(n_stars)
    _append(rows, mags, "star", ra, dec, vmag, colours, n_stars)

    # associations: Gaussian groups of young stars, FWHM 10-100 pc
    n_assoc = max(1, round(config.n_associations * config.area_factor))
    assoc = Table()
    assoc["assoc_id"] = np.arange(1, n_assoc + 1)
    size_pc = 10 ** rng.uniform(1.0, 2.0, n_assoc)
    a_ra, a_dec = positions(n_assoc)
    assoc["ra"], assoc["dec"], assoc["fwhm_pc"] = a_ra, a_dec, size_pc
    members = rng.integers(15, 45, n_assoc)
    assoc["n_members"] = members
    for i in range(n_assoc):
        n = int(members[i])
        sigma_deg = size_pc[i] / 2.3548 / pc_px * FLC_SCALE / 3600.0
        m_ra = a_ra[i] + rng.normal(0, sigma_deg, n) / cosd
        m_dec = a_dec[i] + rng.normal(0, sigma_deg, n)
        vm = 23.0 + 3.5 * rng.uniform(0, 1, n) ** 0.7
        col = _star_colours(rng, n, np.ones(n, bool))
        _append(rows, mags, "assoc_star", m_ra, m_dec, vm, col, n, assoc_id=i + 1)

    # star clusters from the BC03 SSP grid
    n_cl = int(config.n_clusters * config.area_factor)
    age = 10 ** rng.uniform(0.0, 3.5, n_cl)  # 1 Myr - 3 Gyr
    mass = 10 ** rng.uniform(3.3, 5.3, n_cl)
    ebv = rng.uniform(0.0, 0.5, n_cl)
    r_eff = 10 ** rng.uniform(np.log10(0.5), 1.0, n_cl)
    from .ssp import cluster_magnitudes

    cl_mags = cluster_magnitudes(age, mass, ebv, gal.distance_mpc, list(BANDS))
    c_ra, c_dec = positions(n_cl)
    start = len(rows["kind"])
    _append(
        rows,
        mags,
        "cluster",
        c_ra,
        c_dec,
        cl_mags[:, BANDS.index("F555W")],
        {f: cl_mags[:, j] - cl_mags[:, BANDS.index("F555W")] for j, f in enumerate(BANDS)},
        n_cl,
    )
    rows["r_eff_pc"][start:] = list(r_eff)
    rows["age_myr"][start:] = list(age)
    rows["mass"][start:] = list(mass)
    rows["ebv"][start:] = list(ebv)

    truth = Table()
    truth["id"] = np.arange(1, len(rows["kind"]) + 1)
    for key, values in rows.items():
        truth[key] = np.asarray(values)
    for filt in BANDS:
        truth[f"{filt}_vega"] = np.asarray(mags[filt])
        truth[f"{filt}_rate"] = _vega_rate(truth[f"{filt}_vega"], filt)
    truth["ra"].unit = truth["dec"].unit = "deg"
    truth.meta.update(
        target=config.target, field=config.field, seed=config.seed, distance_mpc=gal.distance_mpc
    )
    return truth, assoc


def _append(rows, mags, kind, ra, dec, vmag, colours, n, assoc_id=0):
    rows["kind"] += [kind] * n
    rows["ra"] += list(ra)
    rows["dec"] += list(dec)
    rows["r_eff_pc"] += [0.0] * n
    rows["age_myr"] += [-1.0] * n
    rows["mass"] += [-1.0] * n
    rows["ebv"] += [-1.0] * n
    rows["assoc_id"] += [assoc_id] * n
    for filt in BANDS:
        mags[filt] += list(np.asarray(vmag) + np.asarray(colours[filt]))


def chip_wcs(
    center: SkyCoord, chip: int, chips: int, ny: int, nx: int, dx: float, dy: float, rot_deg: float
) -> WCS:
    """TAN WCS (CD matrix) of one chip; chips are stacked in y, north up rotated by rot_deg."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [center.ra.deg, center.dec.deg]
    # chip 1 is the upper one: its reference pixel sits below it
    offset_y = (chip - 1) * ny - (chips * ny) / 2.0
    w.wcs.crpix = [nx / 2.0 + 0.5 - dx, -offset_y + 0.5 - dy]
    scale = FLC_SCALE / 3600.0
    t = math.radians(rot_deg)
    w.wcs.cd = [
        [-scale * math.cos(t), scale * math.sin(t)],
        [scale * math.sin(t), scale * math.cos(t)],
    ]
    return w


def _header_wcs(header: fits.Header, w: WCS) -> None:
    hdr = w.to_header()
    header["WCSAXES"] = 2
    for key in ("CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CTYPE1", "CTYPE2"):
        header[key] = hdr[key]
    header["CUNIT1"], header["CUNIT2"] = "deg", "deg"
    cd = w.wcs.cd
    header["CD1_1"], header["CD1_2"] = float(cd[0, 0]), float(cd[0, 1])
    header["CD2_1"], header["CD2_2"] = float(cd[1, 0]), float(cd[1, 1])
    header["RADESYS"] = "ICRS"
    header["ORIENTAT"] = (
        math.degrees(math.atan2(cd[0, 1], cd[1, 1])),
        "position angle of image y axis (deg. e of n)",
    )
    header["IDCSCALE"] = (FLC_SCALE, "pixel scale from the IDCTAB reference file")
    header["WCSNAME"] = "IDC_sim"


def render_exposure(
    truth: Table,
    filt: str,
    exptime: float,
    wcs_true: list[WCS],
    ny: int,
    nx: int,
    rng: np.random.Generator,
    noiseless: bool,
    pc_px: float,
) -> list[dict[str, np.ndarray]]:
    """SCI/ERR/DQ arrays (electrons) of each chip of one exposure."""
    psf = psf_for(filt)
    rate = np.asarray(truth[f"{filt}_rate"])
    extended = np.asarray(truth["r_eff_pc"]) > 0
    extra = np.where(extended, np.asarray(truth["r_eff_pc"]) / pc_px / 0.737, 0.0)
    out = []
    for w in wcs_true:
        x, y = w.all_world2pix(truth["ra"], truth["dec"], 0)
        image = np.zeros((ny, nx))
        render_sources(image, x, y, rate * exptime, psf, extra)
        yy, xx = np.mgrid[0:ny, 0:nx]
        # smooth disk light: exponential in radius from a centre off the field
        cx, cy = w.all_world2pix(
            [truth.meta.get("disk_ra", truth["ra"].mean())],
            [truth.meta.get("disk_dec", truth["dec"].mean())],
            0,
        )
        rr = np.hypot(xx - cx[0] + 300, yy - cy[0] + 300)
        disk_rate = 0.01 * band(filt).vega_flux_jy / 3726.7 * np.exp(-rr / 900.0)
        image += disk_rate * exptime
        background = max(BACKGROUND, SKY_RATE.get(filt, 0.01) * exptime)
        dq = np.zeros((ny, nx), np.int16)
        if noiseless:
            sci = image
            err = np.sqrt(np.clip(image, 0, None) + READ_NOISE**2)
        else:
            expected = image + background
            sci = rng.poisson(np.clip(expected, 0, None)).astype(float)
            sci += rng.normal(0.0, READ_NOISE, sci.shape)
            err = np.sqrt(np.clip(expected, 0, None) + READ_NOISE**2)
            _cosmic_rays(sci, rng, exptime)
            hot = rng.choice(ny * nx, size=max(1, ny * nx // 20000), replace=False)
            sci.flat[hot] += rng.uniform(200, 2000, hot.size)
            dq.flat[hot] = 16  # hot pixel
            # the FLC keeps the sky (AstroDrizzle measures and removes it)
        out.append({"sci": sci.astype(np.float32), "err": err.astype(np.float32), "dq": dq})
    return out


def _cosmic_rays(sci: np.ndarray, rng: np.random.Generator, exptime: float) -> None:
    """Add cosmic-ray hits and short streaks (about 40 per 512x512 chip per 700 s)."""
    ny, nx = sci.shape
    n = rng.poisson(40 * exptime / 700.0 * ny * nx / 512.0**2)
    for _ in range(n):
        length = rng.integers(1, 6)
        angle = rng.uniform(0, np.pi)
        x0, y0 = rng.uniform(0, nx), rng.uniform(0, ny)
        t = np.arange(length)
        xs = np.clip((x0 + t * np.cos(angle)).astype(int), 0, nx - 1)
        ys = np.clip((y0 + t * np.sin(angle)).astype(int), 0, ny - 1)
        sci[ys, xs] += rng.uniform(300, 3000)


def _rootname(config: SimConfig, band_index: int, exposure: int) -> str:
    return f"isim{config.seed % 10}{band_index}{exposure}aq"


def exposure_hdulist(
    config: SimConfig,
    filt: str,
    band_index: int,
    exposure: int,
    arrays: list[dict[str, np.ndarray]],
    wcs_hdr: list[WCS],
    exptime: float,
    expstart: float,
    center: SkyCoord,
) -> fits.HDUList:
    """An FLC HDU list with headers modelled on a real WFC3/UVIS FLC."""
    gal = galaxy(config.target)
    facts = band(filt)
    rootname = _rootname(config, band_index, exposure)
    expend = expstart + exptime / 86400.0
    primary = fits.PrimaryHDU()
    h = primary.header
    start = Time(expstart, format="mjd", scale="utc").isot.split(".")[0]
    h["NEXTEND"] = (3 * len(arrays), "Number of standard extensions")
    h["FILENAME"] = f"{rootname}_flc.fits"
    h["FILETYPE"] = "SCI"
    h["TELESCOP"] = ("HST", "telescope used to acquire data")
    h["INSTRUME"] = ("WFC3", "identifier for instrument used to acquire data")
    h["ROOTNAME"] = (rootname, "rootname of the observation set")
    h["PRIMESI"] = ("WFC3", "instrument designated as prime")
    h["TARGNAME"] = (gal.name.replace(" ", ""), "proposer's target name")
    h["RA_TARG"] = (center.ra.deg, "right ascension of the target (deg) (J2000)")
    h["DEC_TARG"] = (center.dec.deg, "declination of the target (deg) (J2000)")
    h["PROPOSID"] = (15654, "PEP proposal identifier")
    h["DATE-OBS"] = (start[:10], "UT date of start of observation (yyyy-mm-dd)")
    h["TIME-OBS"] = (start[11:19], "UT time of start of observation (hh:mm:ss)")
    h["EXPSTART"] = (expstart, "exposure start time (Modified Julian Date)")
    h["EXPEND"] = (expend, "exposure end time (Modified Julian Date)")
    h["EXPTIME"] = (exptime, "exposure duration (seconds)--calculated")
    h["DETECTOR"] = ("UVIS", "detector in use: UVIS or IR")
    h["FILTER"] = (filt, "element selected from filter wheel")
    h["APERTURE"] = ("UVIS", "aperture name")
    h["CCDGAIN"] = (1.5, "commanded gain of CCD")
    for amp in "ABCD":
        h[f"ATODGN{amp}"] = (GAIN, f"calibrated gain for amplifier {amp}")
        h[f"READNSE{amp}"] = (READ_NOISE, f"calibrated read noise for amplifier {amp}")
    h["SIMULATD"] = (True, "simulated by phangs-products")
    hdus: list[fits.hdu.base._BaseHDU] = [primary]
    for chip, (arr, w) in enumerate(zip(arrays, wcs_hdr, strict=True), start=1):
        for ext in ("SCI", "ERR", "DQ"):
            hdu = fits.ImageHDU(arr[ext.lower()], name=ext, ver=chip)
            eh = hdu.header
            eh["ROOTNAME"] = rootname
            eh["EXPNAME"] = (rootname, "exposure identifier")
            eh["BUNIT"] = ("ELECTRONS" if ext != "DQ" else "UNITLESS", "brightness units")
            if ext == "SCI":
                eh["CCDCHIP"] = (2 if chip == 1 else 1, "CCD chip (1 or 2)")
            eh["LTV1"], eh["LTV2"] = 0.0, 0.0
            eh["LTM1_1"], eh["LTM2_2"] = 1.0, 1.0
            _header_wcs(eh, w)
            if ext == "SCI":
                eh["PHOTMODE"] = f"WFC3 UVIS{3 - chip if len(arrays) > 1 else 2} {filt}"
                eh["PHOTFLAM"] = (facts.photflam_typical, "Inverse sensitivity, ergs/cm2/A/e-")
                eh["PHOTFNU"] = (
                    facts.photflam_typical * facts.photplam_typical**2 / 2.99792458e18 * 1e23,
                    "Inverse sensitivity, Jy*sec/e-",
                )
                eh["PHOTZPT"] = (-21.1, "ST magnitude zero point")
                eh["PHOTPLAM"] = (facts.photplam_typical, "Pivot wavelength (Angstroms)")
                eh["NGOODPIX"] = (int((arr["dq"] == 0).sum()), "number of good pixels")
                eh["MEANDARK"] = (0.5, "average of the dark values subtracted")
            hdus.append(hdu)
    return fits.HDUList(hdus)


def simulate(config: SimConfig, out_dir: str | Path, overwrite: bool = False) -> SimResult:
    """Simulate the field: FLC files, reference catalog and truth tables (see module doc).

    An existing simulation with the same configuration is reused (the run is resumable).
    """
    out = Path(out_dir)
    flc_dir = out / "flc"
    result = SimResult(
        out,
        flc_dir,
        reference_catalog=out / "reference_catalog.txt",
        truth=out / "truth.ecsv",
        truth_associations=out / "truth_associations.ecsv",
    )
    stamp = out / "simulation.txt"
    description = repr(config)
    if stamp.exists() and stamp.read_text() == description and not overwrite:
        result.flc_files = sorted(flc_dir.glob("*_flc.fits"))
        log.info("reusing the simulation in %s", out)
        return result
    if stamp.exists():
        refuse_overwrite(stamp, overwrite)
    flc_dir.mkdir(parents=True, exist_ok=True)
    gal = galaxy(config.target)
    # the field sits 60" north-east of the galaxy centre, on the disk
    center = SkyCoord(
        gal.ra + 60 / 3600 / math.cos(math.radians(gal.dec)), gal.dec + 60 / 3600, unit="deg"
    )
    truth, assoc = build_scene(config, center)
    truth.meta["disk_ra"], truth.meta["disk_dec"] = gal.ra, gal.dec
    chips, ny, nx = SIZES[config.size]
    pc_px = pc_per_pixel(gal.distance_mpc, FLC_SCALE)
    rng = np.random.default_rng(config.seed + 1000)
    t = config.mjd_start
    delivery_span = []
    for b_index, filt in enumerate(config.bands):
        total = band(filt).exptime
        exptime = round(total / len(DITHERS) * config.exptime_scale, 1)
        # the band's visit pointing error (header only)
        err_shift = (0.0, 0.0) if config.noiseless else rng.normal(0, 0.25, 2)
        err_rot = 0.0 if config.noiseless else float(rng.normal(0, 0.01))
        for e_index, (dx, dy) in enumerate(DITHERS):
            true_w = [chip_wcs(center, c, chips, ny, nx, dx, dy, 0.0) for c in range(1, chips + 1)]
            bad_center = SkyCoord(
                center.ra.deg + err_shift[0] / 3600 / math.cos(center.dec.rad),
                center.dec.deg + err_shift[1] / 3600,
                unit="deg",
            )
            hdr_w = [
                chip_wcs(bad_center, c, chips, ny, nx, dx, dy, err_rot) for c in range(1, chips + 1)
            ]
            arrays = render_exposure(
                truth, filt, exptime, true_w, ny, nx, rng, config.noiseless, pc_px
            )
            hdul = exposure_hdulist(
                config, filt, b_index, e_index, arrays, hdr_w, exptime, t, center
            )
            delivery_span.append((t, t + exptime / 86400.0))
            delivery = Delivery(gal, config.field, "v1", t, t + exptime / 86400.0, simulated=True)
            model = FlcModel.from_hdulist(
                hdul, meta=common_meta(delivery, "phangs-hst", instrument="WFC3", xposure=exptime)
            )
            path = flc_dir / f"{_rootname(config, b_index, e_index)}_flc.fits"
            model.save(path, overwrite=True, provenance={"simulation": _plain_config(config)})
            result.flc_files.append(path)
            t += (exptime + 120.0) / 86400.0
            log.info("simulated %s exposure %d (%s s)", filt, e_index + 1, exptime)
    _write_reference_catalog(truth, result.reference_catalog)
    truth.write(result.truth, format="ascii.ecsv", overwrite=True)
    assoc.write(result.truth_associations, format="ascii.ecsv", overwrite=True)
    atomic_write_text(stamp, description, overwrite=True)
    return result


def _plain_config(config: SimConfig) -> dict:
    from dataclasses import asdict

    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def _write_reference_catalog(truth: Table, path: Path) -> None:
    """Bright, isolated stars (V < 25.5, no neighbour within 0.3") with their true positions."""
    stars = truth[(truth["kind"] == "star") & (truth["F555W_vega"] < 25.5)]
    coords = SkyCoord(truth["ra"], truth["dec"], unit="deg")
    star_coords = SkyCoord(stars["ra"], stars["dec"], unit="deg")
    _, sep, _ = star_coords.match_to_catalog_sky(coords, nthneighbor=2)
    keep = stars[sep.arcsec > 0.3]
    lines = [
        "# reference astrometric catalog (stand-in for Gaia DR2): true positions",
        "# columns: RA (deg, ICRS)  Dec (deg, ICRS)  F555W Vega mag",
    ]
    lines += [f"{r['ra']:.9f} {r['dec']:.9f} {r['F555W_vega']:.3f}" for r in keep]
    atomic_write_text(path, "\n".join(lines) + "\n", overwrite=True)

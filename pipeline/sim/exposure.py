"""Simulated WFC3/UVIS and ACS/WFC exposures: pixels (sources, disk, noise, defects), FLC headers.

ACS/WFC exposures (bands of a pointing that reuses archival ACS imaging, ``SimConfig.layout``)
differ where the instrument does: 0.05"/px (IDCSCALE of the real ACS/WFC header excerpt), two
4096x2048 chips at full size (``sim.config.ACS_SIZES``), FILTER1/FILTER2 filter wheels, no
post-flash, the read-out values ``ACS_GAIN``/``ACS_READ_NOISE`` and the pointing's own
PHOTFLAM/PHOTPLAM; the PSF is the instrument model's Moffat at the same angular FWHM.  The rest
(sky per band label, dark, cosmic rays, defects) is as for WFC3/UVIS below.

Detector model (numbers from the real FLC header in ``reference/wfc3_uvis_flc_header.txt`` and
Lee et al. 2022 Sect. 3.1, otherwise documented choices):

* pixel scale 0.0396"/px (IDCSCALE), linear TAN WCS with a CD matrix (no SIP/lookup distortion);
  north up in truth; the header carries the visit's pointing error (shift and rotation).
* PSF: :mod:`phangs_products.pipeline.instrument` (Moffat fitted to the STScI encircled-energy
  curves).  Stars are rendered by :func:`~phangs_products.pipeline.sim.psf.render_sources`;
  clusters by :func:`render_clusters`, which convolves the truncated EFF profile with the PSF on a
  3x sub-sampled grid by FFT (sub-pixel centring by a Fourier phase shift) and bins to pixels.
* background: sky ``SKY_RATE`` (e-/s/px; zodiacal-light order of magnitude, a choice) plus a
  post-flash that brings the background to 12 e- (Lee et al. 2022), clipped to the paper's
  5-10 e- per exposure; dark current ``DARK_RATE``.  As CALWF3 does, the FLC has the dark and the
  flash subtracted (MEANDARK, MEANFLSH record them) but keeps their Poisson noise.
* read noise 3.03-3.18 e- per amplifier (READNSEA-D of the real header; the simulation uses their
  mean 3.1 e-), gain 1.56 e-/ADU (ATODGNA-D).  Full well 63,000 e- (DQ 256 above it).
* cosmic rays: 2% of pixels per 1000 s in events of ~4-6 pixels with a median of ~1000 e- per
  event (the HST instrument handbooks quote 1.5-3% per 1000 s, "comparable" for WFC3/UVIS).
* detector defects (fixed per chip and seed): hot pixels (0.05%, DQ 16), one bad column segment
  per chip (DQ 4).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time
from astropy.wcs import WCS
from scipy import fft as sfft
from scipy.ndimage import map_coordinates

from phangs_products.bands import band
from phangs_products.pipeline.instrument import FLC_SCALE, PSF, flc_scale, psf_for
from phangs_products.pipeline.sim.psf import render_sources
from phangs_products.pipeline.sim.scene import DiskModel, eff_shape

GAIN = 1.56  # e-/ADU, ATODGNA-D of the real header


READ_NOISES = (3.03, 3.13, 3.08, 3.18)  # e-, READNSEA-D of the real header


READ_NOISE = 3.1  # e-, mean of the four amplifiers


BACKGROUND = 12.0  # e- per pixel with the post-flash (Lee et al. 2022 Sect. 3.1)


FLASH_RANGE = (5.0, 10.0)  # e-, post-flash per exposure (Lee et al. 2022 Sect. 3.1)


SKY_RATE = {"F275W": 0.0005, "F336W": 0.001, "F438W": 0.004, "F555W": 0.02, "F814W": 0.03}


#: ACS/WFC gain (e-/ADU) and read noise (e-): ATODGNC and READNSEC of the real ACS FLC header in
#: ``reference/real/hst`` (j8bt06nyq, an HRC exposure: the only ACS read-out values in the
#: reference; used for all four WFC amplifiers).  ACS archival data are not post-flashed.
ACS_GAIN, ACS_READ_NOISE = 2.216, 4.71


def sky_rate(filt: str, instrument: str = "WFC3/UVIS") -> float:
    """Sky count rate (e-/s/px) of a band.

    ``SKY_RATE`` of the WFC3/UVIS filter with the same PHANGS label (NUV, U, B, V, I), scaled
    to the instrument's pixel area.
    """
    facts = band(filt, instrument)
    twin = next(f for f in SKY_RATE if band(f).label == facts.label)
    return SKY_RATE[twin] * (flc_scale(instrument) / FLC_SCALE) ** 2


DARK_RATE = 0.002  # e-/s/px (choice, order of the UVIS dark current)


FULL_WELL = 63000.0  # e-


CR_FRACTION = 0.02  # fraction of pixels hit per 1000 s


CR_PIXELS = 5.0  # mean pixels per event


HOT_FRACTION = 5e-4


SDQFLAGS = 31743  # serious DQ flags (real header)


DQ_BAD, DQ_HOT, DQ_SATURATED = 4, 16, 256


PSF_HALF = 12  # px, half-size of PSF stamps (as sim_psf.render_sources)


SUB = 3  # sub-sampling of the cluster renderer


_HALVES = (16, 24, 32, 48, 64, 96, 128)


@dataclass(frozen=True)
class ExposureSpec:
    """What identifies one simulated exposure.

    Attributes
    ----------
    rootname, filter : str
        9-character rootname and filter.
    exptime : float
        Exposure time, s.
    expstart : float
        Start, MJD (UTC).
    dither : int
        Position in the 3-point dither pattern (0-based).
    instrument : str
        ``WFC3/UVIS`` or ``ACS/WFC``.
    photflam, photplam : float
        PHOTFLAM (erg/s/cm2/A per e-/s) and PHOTPLAM (Angstrom) written in the SCI headers
        (0: the band's median PHANGS values).
    """

    rootname: str
    filter: str
    exptime: float
    expstart: float
    dither: int
    instrument: str = "WFC3/UVIS"
    photflam: float = 0.0
    photplam: float = 0.0


def chip_wcs(
    ra: float,
    dec: float,
    chip: int,
    chips: int,
    ny: int,
    nx: int,
    dx: float = 0.0,
    dy: float = 0.0,
    rot_deg: float = 0.0,
    pixscale: float = FLC_SCALE,
) -> WCS:
    """TAN WCS with a CD matrix of one chip.

    The chips are stacked in y around the pointing (``ra``, ``dec``); SCI,1 (UVIS2 or WFC2) is
    the lower one.  ``dx``, ``dy`` (px) move the pointing (dithers); ``rot_deg`` rotates the
    detector; ``pixscale`` is the detector's pixel (arcsec).
    """
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    offset_y = (chip - 1) * ny - (chips * ny) / 2.0
    w.wcs.crpix = [nx / 2.0 + 0.5 - dx, -offset_y + 0.5 - dy]
    scale = pixscale / 3600.0
    t = math.radians(rot_deg)
    w.wcs.cd = [
        [-scale * math.cos(t), scale * math.sin(t)],
        [scale * math.sin(t), scale * math.cos(t)],
    ]
    w.wcs.radesys = "ICRS"
    return w


# ------------------------------------------------------------------------------- rendering
def _psf_values(r2: np.ndarray, psf: PSF) -> np.ndarray:
    """PSF surface density (per px^2) at squared radius r2 (px^2)."""
    out = np.zeros_like(r2)
    for frac, fwhm, beta in (
        (psf.core_fraction, psf.core_fwhm, psf.core_beta),
        (1.0 - psf.core_fraction, psf.halo_fwhm, psf.halo_beta),
    ):
        if frac > 0:
            alpha = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
            out += frac * (beta - 1.0) / (math.pi * alpha**2) * (1.0 + r2 / alpha**2) ** (-beta)
    return out


def _fine_offsets(half: int) -> np.ndarray:
    """Centres (px, relative to the central pixel's centre) of the sub-pixels of a stamp."""
    n = SUB * (2 * half + 1)
    return (np.arange(n) - n // 2) / SUB


def render_clusters(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    counts: np.ndarray,
    a_px: np.ndarray,
    gamma: np.ndarray,
    rt_px: np.ndarray,
    psf: PSF,
) -> None:
    """Add PSF-convolved, truncated EFF profiles to ``image`` in place.

    Parameters
    ----------
    image : ndarray
        2-D image, counts.
    x, y : ndarray
        0-based pixel centres of the clusters.
    counts : ndarray
        Total counts of each cluster (the PSF wings beyond ``PSF_HALF`` px are lost, as for
        stars rendered by :func:`~phangs_products.pipeline.sim.psf.render_sources`).
    a_px, gamma, rt_px : ndarray
        EFF core radius (px), power-law slope and truncation radius (px).
    psf : PSF
        PSF of the band.
    """
    x, y, counts = (np.asarray(v, float) for v in (x, y, counts))
    a_px, gamma, rt_px = (np.asarray(v, float) for v in (a_px, gamma, rt_px))
    ny, nx = image.shape
    need = np.ceil(rt_px).astype(int) + PSF_HALF + 1
    halves = np.array(_HALVES)
    half_of = halves[np.minimum(np.searchsorted(halves, need), halves.size - 1)]
    inside = (
        (x > -half_of) & (x < nx + half_of) & (y > -half_of) & (y < ny + half_of) & (counts > 0)
    )
    fk = _fine_offsets(PSF_HALF)
    kernel = _psf_values(fk[None, :] ** 2 + fk[:, None] ** 2, psf)
    kernel *= float(psf.ee(PSF_HALF + 0.5)) / kernel.sum()
    nk = kernel.shape[0]
    for half in np.unique(half_of[inside]):
        sel = np.flatnonzero(inside & (half_of == half))
        off = _fine_offsets(int(half))
        nf = off.size
        r2 = off[None, :] ** 2 + off[:, None] ** 2
        size = sfft.next_fast_len(nf + nk - 1, real=True)
        fkern = sfft.rfft2(kernel, s=(size, size))
        fy = sfft.fftfreq(size)[:, None]
        fx = sfft.rfftfreq(size)[None, :]
        chunk = max(1, int(64e6 // (size * size * 16)))
        for start in range(0, sel.size, chunk):
            idx = sel[start : start + chunk]
            ix, iy = np.round(x[idx]).astype(int), np.round(y[idx]).astype(int)
            a = a_px[idx][:, None, None]
            prof = (1.0 + r2[None] / a**2) ** (-gamma[idx][:, None, None] / 2.0)
            prof[r2[None] > rt_px[idx][:, None, None] ** 2] = 0.0
            prof /= prof.sum(axis=(1, 2), keepdims=True)
            sx = ((x[idx] - ix) * SUB)[:, None, None]
            sy = ((y[idx] - iy) * SUB)[:, None, None]
            spec = sfft.rfft2(prof, s=(size, size)) * fkern[None]
            spec *= np.exp(-2j * np.pi * (fx[None] * sx + fy[None] * sy))
            conv = sfft.irfft2(spec, s=(size, size))
            c0 = nk // 2
            conv = conv[:, c0 : c0 + nf, c0 : c0 + nf]
            m = 2 * int(half) + 1
            stamp = conv.reshape(idx.size, m, SUB, m, SUB).sum(axis=(2, 4))
            stamp *= counts[idx][:, None, None]
            offs = np.arange(-half, half + 1)
            yy = iy[:, None, None] + offs[None, :, None]
            xx = ix[:, None, None] + offs[None, None, :]
            yy, xx = np.broadcast_arrays(yy, xx)
            ok = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
            np.add.at(image, (yy[ok], xx[ok]), stamp[ok])


def _disk_image(
    disk: DiskModel, w: WCS, ny: int, nx: int, filt: str, instrument: str, step: int = 16
) -> np.ndarray:
    """Disk count rate per pixel (e-/s), evaluated on a coarse grid and interpolated."""
    gy = np.arange(0, ny + step, step, dtype=float)
    gx = np.arange(0, nx + step, step, dtype=float)
    gxx, gyy = np.meshgrid(gx, gy)
    ra, dec = w.all_pix2world(gxx, gyy, 0)
    coarse = disk.rate(ra, dec, filt, instrument)
    yy, xx = np.mgrid[0:ny, 0:nx]
    return map_coordinates(coarse, [yy / step, xx / step], order=1, mode="nearest")


def _cosmic_rays(shape: tuple[int, int], rng: np.random.Generator, exptime: float) -> np.ndarray:
    """Charge (e-) of cosmic-ray events: short tracks plus charge diffusion to neighbours."""
    ny, nx = shape
    n = rng.poisson(CR_FRACTION * exptime / 1000.0 * ny * nx / CR_PIXELS)
    out = np.zeros(shape)
    if n == 0:
        return out
    energy = 500.0 + rng.lognormal(math.log(500.0), 0.8, n)  # e-, floor 500, median ~1000
    length = rng.integers(1, 4, n)  # track pixels
    angle = rng.uniform(0, np.pi, n)
    x0, y0 = rng.uniform(0, nx, n), rng.uniform(0, ny, n)
    steps = np.arange(3)
    use = steps[None, :] < length[:, None]
    tx = (x0[:, None] + steps[None, :] * np.cos(angle)[:, None]).astype(int)
    ty = (y0[:, None] + steps[None, :] * np.sin(angle)[:, None]).astype(int)
    share = 0.8 * energy[:, None] / length[:, None] * use
    ok = use & (tx < nx) & (ty < ny)
    np.add.at(out, (ty[ok], tx[ok]), share[ok])
    # 20% diffuses into the 4 neighbours of the first track pixel
    for ddx, ddy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        nxp, nyp = tx[:, 0] + ddx, ty[:, 0] + ddy
        good = (nxp >= 0) & (nxp < nx) & (nyp >= 0) & (nyp < ny)
        np.add.at(out, (nyp[good], nxp[good]), 0.05 * energy[good])
    return out


def chip_defects(shape: tuple[int, int], seed: int, chip: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed detector defects of a chip: DQ flags and residual signal (e-)."""
    rng = np.random.default_rng([seed, 3, chip])
    ny, nx = shape
    dq = np.zeros(shape, np.int16)
    extra = np.zeros(shape)
    hot = rng.choice(ny * nx, size=max(1, int(HOT_FRACTION * ny * nx)), replace=False)
    dq.flat[hot] |= DQ_HOT
    extra.flat[hot] = rng.uniform(50.0, 2000.0, hot.size)
    col = int(rng.integers(0, nx))
    y0 = int(rng.integers(0, ny // 2))
    dq[y0 : y0 + ny // 3, col] |= DQ_BAD
    extra[y0 : y0 + ny // 3, col] += 150.0
    return dq, extra


def render_chip(
    truth: Table,
    disk: DiskModel | None,
    filt: str,
    exptime: float,
    w_true: WCS,
    shape: tuple[int, int],
    pc_per_px: float,
    rng: np.random.Generator,
    noiseless: bool,
    defects: tuple[np.ndarray, np.ndarray] | None,
    psf_scale: float = 1.0,
    instrument: str = "WFC3/UVIS",
) -> dict[str, np.ndarray | float]:
    """SCI, ERR (e-) and DQ arrays of one chip of one exposure.

    Parameters
    ----------
    truth : Table
        The scene (:func:`~phangs_products.pipeline.sim.scene.build_scene`).
    disk : DiskModel or None
        Diffuse light (None: none).
    filt : str
        Filter.
    exptime : float
        Exposure time, s.
    w_true : WCS
        True WCS of the chip (no pointing error).
    shape : (int, int)
        Chip shape (ny, nx).
    pc_per_px : float
        Parsec per FLC pixel at the galaxy.
    rng : numpy.random.Generator
        Noise and cosmic-ray stream of this exposure.
    noiseless : bool
        Expected counts only (sky included; no noise, cosmic rays, defects or saturation).
    defects : (ndarray, ndarray) or None
        Fixed DQ flags and residual signal of the chip.
    psf_scale : float
        Factor on the instrument PSF's core FWHM (1: the instrument model).
    instrument : str
        ``WFC3/UVIS`` (post-flashed) or ``ACS/WFC`` (no post-flash, its read noise).

    Returns
    -------
    dict
        ``sci``, ``err`` (float32, e-), ``dq`` (int16), ``meanflsh``, ``meandark`` (e-).
    """
    ny, nx = shape
    model = psf_for(filt, instrument)
    psf = dataclasses.replace(model, core_fwhm=model.core_fwhm * psf_scale)
    x, y = w_true.all_world2pix(np.asarray(truth["ra"]), np.asarray(truth["dec"]), 0)
    counts = np.asarray(truth[f"{filt}_rate"]) * exptime
    image = np.zeros(shape)
    cluster = np.asarray(truth["kind"]) == "cluster"
    render_sources(image, x[~cluster], y[~cluster], counts[~cluster], psf)
    if cluster.any():
        a, rt = eff_shape(
            np.asarray(truth["r_eff_pc"])[cluster] / pc_per_px, truth["eff_gamma"][cluster]
        )
        render_clusters(
            image, x[cluster], y[cluster], counts[cluster], a, truth["eff_gamma"][cluster], rt, psf
        )
    if disk is not None:
        image += _disk_image(disk, w_true, ny, nx, filt, instrument) * exptime
    acs = instrument == "ACS/WFC"
    sky = sky_rate(filt, instrument) * exptime
    flash = 0.0 if acs else float(np.clip(BACKGROUND - sky, *FLASH_RANGE))
    dark = DARK_RATE * exptime
    read_noise = ACS_READ_NOISE if acs else READ_NOISE
    expected = image + sky
    err = np.sqrt(np.clip(expected, 0, None) + flash + dark + read_noise**2)
    dq = np.zeros(shape, np.int16)
    if noiseless:
        sci = expected
    else:
        raw = rng.poisson(np.clip(expected + flash + dark, 0, None)).astype(float)
        raw += rng.normal(0.0, read_noise, shape)
        raw += _cosmic_rays(shape, rng, exptime)
        if defects is not None:
            dq |= defects[0]
            raw += defects[1]
        saturated = raw > FULL_WELL
        raw[saturated] = FULL_WELL
        dq[saturated] |= DQ_SATURATED
        sci = raw - flash - dark  # CALWF3 subtracts the dark and post-flash references
    return {
        "sci": sci.astype(np.float32),
        "err": err.astype(np.float32),
        "dq": dq,
        "meanflsh": flash,
        "meandark": dark,
    }


# -------------------------------------------------------------------------------- headers
def _fit_comments(header: fits.Header) -> None:
    """Shorten every comment so that each card fits in 80 characters."""
    for key in list(header.keys()):
        if key in ("COMMENT", "HISTORY", ""):
            continue
        _set(header, key, header[key], header.comments[key])


def _set(header: fits.Header, key: str, value: object, comment: str) -> None:
    """Set a card, shortening the comment (as HST headers do) so the card fits 80 characters."""
    width = len(fits.Card(key, value).image.rstrip())
    room = 80 - width - 3
    header[key] = (value, comment[: max(room, 0)]) if room > 0 else value


def _primary_cards(
    spec: ExposureSpec,
    target: str,
    ra_targ: float,
    dec_targ: float,
    n_chips: int,
    flash: float,
    exposures_in_visit: int,
) -> list[tuple[str, object, str]]:
    start = Time(spec.expstart, format="mjd", scale="utc").isot
    expend = spec.expstart + spec.exptime / 86400.0
    flash_dur = round(flash / 10.0, 1)  # s, at ~10 e-/s of the LOW current (choice)
    cards: list[tuple[str, object, str]] = [
        ("LONGSTRN", "OGIP 1.0", "The OGIP long string convention may be used"),
        ("NEXTEND", 3 * n_chips, "Number of standard extensions"),
        ("FILENAME", f"{spec.rootname}_flc.fits", "name of file"),
        ("FILETYPE", "SCI", "type of data found in data file"),
        ("TELESCOP", "HST", "telescope used to acquire data"),
        ("INSTRUME", "WFC3", "identifier for instrument used to acquire data"),
        ("EQUINOX", 2000.0, "equinox of celestial coord. system"),
        ("ROOTNAME", spec.rootname, "rootname of the observation set"),
        ("IMAGETYP", "EXT", "type of exposure identifier"),
        ("PRIMESI", "WFC3", "instrument designated as prime"),
        ("TARGNAME", target, "proposer's target name"),
        ("RA_TARG", ra_targ, "right ascension of the target (deg) (J2000)"),
        ("DEC_TARG", dec_targ, "declination of the target (deg) (J2000)"),
        ("PROPOSID", 15654, "PEP proposal identifier"),
        ("LINENUM", f"01.{spec.dither + 1:03d}", "proposal logsheet line number"),
        ("PR_INV_L", "Lee", "last name of principal investigator"),
        ("PR_INV_F", "Janice", "first name of principal investigator"),
        ("PR_INV_M", "C.", "middle name / initial of principal investigator"),
        ("DATE-OBS", start[:10], "UT date of start of observation (yyyy-mm-dd)"),
        ("TIME-OBS", start[11:19], "UT time of start of observation (hh:mm:ss)"),
        ("EXPSTART", spec.expstart, "exposure start time (Modified Julian Date)"),
        ("EXPEND", expend, "exposure end time (Modified Julian Date)"),
        ("EXPTIME", spec.exptime, "exposure duration (seconds)--calculated"),
        ("EXPFLAG", "NORMAL", "Exposure interruption indicator"),
        ("DARKTIME", spec.exptime + flash_dur + 3.0, "fiducial pixel dark time (secs)"),
        ("PA_V3", 225.0, "position angle of V3-axis of HST (deg)"),
        ("POSTARG1", 0.0, "POSTARG in axis 1 direction"),
        ("POSTARG2", 0.0, "POSTARG in axis 2 direction"),
        ("OBSTYPE", "IMAGING", "observation type - imaging or spectroscopic"),
        ("OBSMODE", "ACCUM", "operating mode"),
        ("SCLAMP", "NONE", "lamp status, NONE or name of lamp which is on"),
        ("NRPTEXP", 1, "number of repeat exposures in set: default 1"),
        ("SUBARRAY", False, "data from a subarray (T) or full frame (F)"),
        ("DETECTOR", "UVIS", "detector in use: UVIS or IR"),
        ("FILTER", spec.filter, "element selected from filter wheel"),
        ("APERTURE", "UVIS", "aperture name"),
        ("CRSPLIT", 1, "number of cosmic ray split exposures"),
        ("DQICORR", "COMPLETE", "data quality initialization"),
        ("BLEVCORR", "COMPLETE", "subtract bias level computed from overscan"),
        ("BIASCORR", "COMPLETE", "Subtract bias image"),
        ("FLSHCORR", "COMPLETE", "post flash correction"),
        ("CRCORR", "OMIT", "combine observations to reject cosmic rays"),
        ("DARKCORR", "COMPLETE", "Subtract dark image"),
        ("FLATCORR", "COMPLETE", "flat field data"),
        ("PCTECORR", "COMPLETE", "cte correction"),
        ("PHOTCORR", "COMPLETE", "populate photometric header keywords"),
        ("DRIZCORR", "PERFORM", "drizzle processing"),
        ("FLASHDUR", flash_dur, "Exposure time in seconds: 0.1 to 409.5"),
        ("FLASHCUR", "LOW", "Post flash current (zero, low, medium, high)"),
        ("FLASHLVL", round(flash), "Post flash requested flash level"),
        ("FLASHSTA", "SUCCESSFUL", "Status: SUCCESSFUL, ABORTED, NOT PERFORMED"),
        ("SHUTRPOS", "A", "Shutter position: A or B"),
        ("CCDAMP", "ABCD", "CCD Amplifier Readout Configuration"),
        ("CCDGAIN", 1.5, "commanded gain of CCD"),
    ]
    gains, noises = (GAIN,) * 4, READ_NOISES
    if spec.instrument == "ACS/WFC":
        cards = _acs_cards(cards, spec)
        gains, noises = (ACS_GAIN,) * 4, (ACS_READ_NOISE,) * 4
    for amp, gain in zip("ABCD", gains, strict=True):
        cards.append((f"ATODGN{amp}", gain, f"calibrated gain for amplifier {amp}"))
    for amp, rn in zip("ABCD", noises, strict=True):
        cards.append((f"READNSE{amp}", rn, f"calibrated read noise for amplifier {amp}"))
    cards += [
        ("ASN_ID", f"{spec.rootname[:6].upper()}0{exposures_in_visit}0", "unique identifier"),
        ("ASN_MTYP", "EXP-DTH", "Role of the Member in the Association"),
    ]
    return cards


#: ACS filter wheel of each simulated ACS/WFC filter (FILTER1 or FILTER2) and the CLEAR
#: position of the other wheel, as ACS primary headers write them (j8bt06nyq: FILTER1 = F606W,
#: FILTER2 = CLEAR2S).
ACS_WHEEL = {"F435W": 2, "F555W": 1, "F606W": 1, "F814W": 2}


def _acs_cards(
    cards: list[tuple[str, object, str]], spec: ExposureSpec
) -> list[tuple[str, object, str]]:
    """The WFC3/UVIS primary cards turned into an ACS/WFC exposure's (real ACS FLC layout).

    ACS has two filter wheels (FILTER1, FILTER2), a WFC detector and aperture, and no
    post-flash.  Real ACS FLCs have no FILTER keyword; the simulated ones keep it because they
    are written as this project's flc product, whose schema requires it (the imaging stage
    reads FILTER1/FILTER2 when FILTER is absent).
    """
    wheel = ACS_WHEEL.get(spec.filter, 1)
    filters = {
        "FILTER1": spec.filter if wheel == 1 else "CLEAR1L",
        "FILTER2": spec.filter if wheel == 2 else "CLEAR2L",
    }
    replace = {
        "INSTRUME": "ACS",
        "PRIMESI": "ACS",
        "DETECTOR": "WFC",
        "APERTURE": "WFC",
        "FLSHCORR": "OMIT",
        "PCTECORR": "OMIT",
        "FLASHCUR": "OFF",
        "FLASHSTA": "NOT PERFORMED",
        "CCDGAIN": 2.0,
    }
    drop = {"FLASHDUR", "FLASHLVL"}
    out: list[tuple[str, object, str]] = []
    for key, value, comment in cards:
        if key in drop:
            continue
        out.append((key, replace.get(key, value), comment))
        if key == "FILTER":  # kept: the simulated files are flc products, which need it
            out += [(k, v, f"element selected from wheel {k[-1]}") for k, v in filters.items()]
    return out


def _wcs_cards(w: WCS) -> list[tuple[str, object, str]]:
    cd = w.wcs.cd
    return [
        ("WCSAXES", 2, "number of World Coordinate System axes"),
        ("CRPIX1", float(w.wcs.crpix[0]), "x-coordinate of reference pixel"),
        ("CRPIX2", float(w.wcs.crpix[1]), "y-coordinate of reference pixel"),
        ("CRVAL1", float(w.wcs.crval[0]), "first axis value at reference pixel"),
        ("CRVAL2", float(w.wcs.crval[1]), "second axis value at reference pixel"),
        ("CTYPE1", "RA---TAN", "the coordinate type for the first axis"),
        ("CTYPE2", "DEC--TAN", "the coordinate type for the second axis"),
        ("CD1_1", float(cd[0, 0]), "partial of first axis coordinate w.r.t. x"),
        ("CD1_2", float(cd[0, 1]), "partial of first axis coordinate w.r.t. y"),
        ("CD2_1", float(cd[1, 0]), "partial of second axis coordinate w.r.t. x"),
        ("CD2_2", float(cd[1, 1]), "partial of second axis coordinate w.r.t. y"),
        ("CUNIT1", "deg", "Units of coordinate increment and value"),
        ("CUNIT2", "deg", "Units of coordinate increment and value"),
        ("RADESYS", "ICRS", "Equatorial coordinate system"),
        ("WCSNAME", "OPUS", "Coordinate system title"),
    ]


def exposure_hdulist(
    spec: ExposureSpec,
    chips: Sequence[dict[str, np.ndarray | float]],
    wcs_header: Sequence[WCS],
    target: str,
    ra_targ: float,
    dec_targ: float,
    exposures_in_visit: int = 3,
) -> fits.HDUList:
    """FLC HDU list (PRIMARY, then SCI/ERR/DQ per chip) with headers modelled on a real FLC.

    Parameters
    ----------
    spec : ExposureSpec
        Rootname, filter, exposure time, start, dither position.
    chips : sequence of dict
        Output of :func:`render_chip` per chip (EXTVER order).
    wcs_header : sequence of WCS
        The WCS written to each chip's headers (with the pointing error).
    target : str
        TARGNAME.
    ra_targ, dec_targ : float
        Target position, deg.
    exposures_in_visit : int
        Exposures per filter in the association.
    """
    facts = band(spec.filter, spec.instrument)
    acs = spec.instrument == "ACS/WFC"
    primary = fits.PrimaryHDU()
    flash = float(chips[0]["meanflsh"])
    for key, value, comment in _primary_cards(
        spec, target, ra_targ, dec_targ, len(chips), flash, exposures_in_visit
    ):
        _set(primary.header, key, value, comment)
    photflam = spec.photflam or facts.photflam_typical
    photplam = spec.photplam or facts.photplam_typical
    photfnu = photflam * photplam**2 / 2.99792458e18 * 1e23
    hdus: list[fits.PrimaryHDU | fits.ImageHDU] = [primary]
    for extver, (arrays, w) in enumerate(zip(chips, wcs_header, strict=True), start=1):
        ccdchip = 2 if extver == 1 else 1  # SCI,1 is UVIS2 (WFC2) as in real FLCs
        dq = np.asarray(arrays["dq"])
        good = dq == 0
        sci = np.asarray(arrays["sci"])
        err = np.asarray(arrays["err"])
        ny, nx = sci.shape
        cd = w.wcs.cd
        orientat = math.degrees(math.atan2(cd[0, 1], cd[1, 1]))
        for ext, data in (("SCI", sci), ("ERR", err), ("DQ", dq)):
            hdu = fits.ImageHDU(data, name=ext, ver=extver)
            h = hdu.header
            h["INHERIT"] = (True, "inherit the primary header")
            h["ROOTNAME"] = (spec.rootname, "rootname of the observation set")
            h["EXPNAME"] = (spec.rootname, "exposure identifier")
            h["BUNIT"] = ("ELECTRONS" if ext != "DQ" else "UNITLESS", "brightness units")
            if ext == "SCI":
                h["CCDCHIP"] = (ccdchip, "CCD chip (1 or 2)")
            h["LTV1"] = (0.0, "offset in X to subsection start")
            h["LTV2"] = (0.0, "offset in Y to subsection start")
            h["LTM1_1"] = (1.0, "reciprocal of sampling rate in X")
            h["LTM2_2"] = (1.0, "reciprocal of sampling rate in Y")
            h["PA_APER"] = (orientat, "Position Angle of reference aperture center (deg)")
            h["VAFACTOR"] = (1.0, "velocity aberration plate scale factor")
            for key, value, comment in _wcs_cards(w):
                _set(h, key, value, comment)
            if ext == "SCI":
                h["ORIENTAT"] = (orientat, "position angle of image y axis (deg. e of n)")
                h["RA_APER"] = (float(w.wcs.crval[0]), "RA of aperture reference position")
                h["DEC_APER"] = (
                    float(w.wcs.crval[1]),
                    "Declination of aperture reference position",
                )
                h["NCOMBINE"] = (1, "number of image sets combined during CR rejection")
                detector = f"WFC{ccdchip}" if acs else f"UVIS{ccdchip}"
                h["PHOTMODE"] = (
                    f"{spec.instrument.split('/')[0]} {detector} {spec.filter} "
                    f"MJD#{spec.expstart:.4f}",
                    "observation configuration for photometric calib",
                )
                h["PHOTFLAM"] = (photflam, "Inverse sensitivity, ergs/cm2/A/e-")
                if not acs:  # ACS headers have neither the per-chip values nor PHOTFNU
                    h["PHTFLAM1"] = (photflam, "Ch1 Inv Sens, use PHOTFLAM for UV filters")
                    h["PHTFLAM2"] = (photflam, "Ch2 Inv Sens, use PHOTFLAM if FLUXCORR=COMPLETE")
                    h["PHTRATIO"] = (1.0, "PHTFLAM2/PHTFLAM1 ratio")
                    h["PHOTFNU"] = (photfnu, "Inverse sensitivity, Jy*sec/e-")
                h["PHOTZPT"] = (-21.1, "ST magnitude zero point")
                h["PHOTPLAM"] = (photplam, "Pivot wavelength (Angstroms)")
                h["CENTERA1"] = (nx // 2 + 1, "subarray axis1 center pt in unbinned dect. pix")
                h["CENTERA2"] = (
                    ny // 2 + 1 + (extver - 1) * ny,
                    "subarray axis2 center pt in unbinned dect. pix",
                )
                h["SIZAXIS1"] = (nx, "subarray axis1 size in unbinned detector pixels")
                h["SIZAXIS2"] = (ny, "subarray axis2 size in unbinned detector pixels")
                h["BINAXIS1"] = (1, "axis1 data bin size in unbinned detector pixels")
                h["BINAXIS2"] = (1, "axis2 data bin size in unbinned detector pixels")
            if ext in ("SCI", "ERR"):
                vals = data[good] if good.any() else data.ravel()
                h["NGOODPIX"] = (int(good.sum()), "number of good pixels")
                h["SDQFLAGS"] = (SDQFLAGS, "serious data quality flags")
                h["GOODMIN"] = (float(vals.min()), "minimum value of good pixels")
                h["GOODMAX"] = (float(vals.max()), "maximum value of good pixels")
                h["GOODMEAN"] = (float(vals.mean()), "mean value of good pixels")
            if ext == "SCI":
                h["SOFTERRS"] = (0, "number of soft error pixels (DQF=1)")
                h["MEANDARK"] = (float(arrays["meandark"]), "average of the dark values subtracted")
                h["MEANFLSH"] = (
                    float(arrays["meanflsh"]),
                    "Mean number of counts in post flash exposure",
                )
                h["IDCSCALE"] = (
                    flc_scale(spec.instrument),
                    "pixel scale from the IDCTAB reference file",
                )
            _fit_comments(h)
            hdus.append(hdu)
    return fits.HDUList(hdus)

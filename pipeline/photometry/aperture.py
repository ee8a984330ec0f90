"""Aperture photometry, concentration indices and aperture corrections (paper Sect. 4.2-4.4)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence

import numpy as np
from astropy.table import Table
from photutils.aperture import CircularAperture, aperture_photometry
from scipy.spatial import cKDTree

from phangs_products.bands import band
from phangs_products.errors import PhangsProductsError
from phangs_products.models import ImageModel
from phangs_products.pipeline.instrument import band_of, moffat_alpha
from phangs_products.pipeline.photometry.bandpool import band_processes, map_bands
from phangs_products.pipeline.photometry.config import PhotometryConfig
from phangs_products.pipeline.photometry.detect import _clean
from phangs_products.pipeline.psf import measure_psf

log = logging.getLogger(__name__)


APCORR_MAX_ERR = 0.05  # 4 px magnitude error of aperture-correction calibrators


_SKY_BLOCK = 4096  # sources per block of the annulus statistics


def aperture_fluxes(
    data: np.ndarray,
    err: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    radii: Sequence[float],
    annulus: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sky-subtracted fluxes and errors in each radius, plus the sky per pixel and its error.

    One batched photutils call for all radii; the annulus median is sigma-clipped per source
    (vectorised over the annulus pixels of all sources).
    """
    pos = np.c_[x, y]
    apertures = [CircularAperture(pos, r=r) for r in radii]
    phot = aperture_photometry(data, apertures, error=err)
    sums = np.column_stack([np.asarray(phot[f"aperture_sum_{i}"]) for i in range(len(radii))])
    sum_err = np.column_stack(
        [np.asarray(phot[f"aperture_sum_err_{i}"]) for i in range(len(radii))]
    )
    sky, sky_std, n_sky = annulus_sky(data, x, y, annulus)
    areas = np.pi * np.asarray(radii) ** 2
    flux = sums - sky[:, None] * areas[None, :]
    sky_err = sky_std / np.sqrt(np.maximum(n_sky, 1))
    flux_err = np.sqrt(sum_err**2 + (areas[None, :] * sky_err[:, None]) ** 2)
    return flux, flux_err, sky, sky_std


def annulus_sky(
    data: np.ndarray, x: np.ndarray, y: np.ndarray, annulus: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sigma-clipped (3 sigma, 3 passes) median, std and count of each source's annulus pixels.

    Pixels whose centres lie between the two radii around the nearest pixel of the source; the
    values are gathered in image order (sources sorted by their flat pixel index, so the reads
    walk memory forwards) and pixels off the image count as missing.
    """
    r_in, r_out = annulus
    half = int(np.ceil(r_out))
    offs = np.arange(-half, half + 1)
    dy, dx = np.meshgrid(offs, offs, indexing="ij")
    dist = np.hypot(dx, dy)
    ring = (dist >= r_in) & (dist <= r_out)
    dx, dy = dx[ring], dy[ring]
    ny, nx = data.shape
    ix, iy = np.rint(x).astype(np.intp), np.rint(y).astype(np.intp)
    order = np.argsort(iy * nx + ix, kind="stable")
    flat = np.ascontiguousarray(data, dtype=float).reshape(-1)
    step = dy * nx + dx
    med, std, n = (np.empty(x.size), np.empty(x.size), np.empty(x.size, np.intp))
    # blocks keep the (sources x annulus pixels) temporaries in cache
    for start in range(0, x.size, _SKY_BLOCK):
        rows = order[start : start + _SKY_BLOCK]
        bx, by = ix[rows], iy[rows]
        inner = (bx >= half) & (bx < nx - half) & (by >= half) & (by < ny - half)
        if inner.all():
            vals = flat[(by * nx + bx)[:, None] + step[None, :]]
        else:
            ex, ey = bx[:, None] + dx[None, :], by[:, None] + dy[None, :]
            on = (ex >= 0) & (ex < nx) & (ey >= 0) & (ey < ny)
            pix = np.clip(ey, 0, ny - 1) * nx + np.clip(ex, 0, nx - 1)
            vals = np.where(on, flat[pix], np.nan)
        med[rows], std[rows], n[rows] = clipped_stats_rows(vals)
    return med, std, n


def clipped_stats_rows(
    vals: np.ndarray, sigma: float = 3.0, passes: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sigma-clipped median, std and count of every row of ``vals`` (NaN = no value).

    The same result as astropy's ``sigma_clipped_stats(row, sigma=sigma, maxiters=passes)``
    for every row, without a Python loop over rows: each row is sorted once, so the kept values
    are always a contiguous slice ``[lo, hi)`` of the sorted row (median from its middle, mean
    and variance from sums over the slice).  Only rows whose slice changed in a pass are
    clipped again: after the first pass that is a small fraction.
    """
    srt = np.sort(vals, axis=1)  # NaN last
    n_rows = srt.shape[0]
    lo = np.zeros(n_rows, np.intp)
    hi = np.count_nonzero(np.isfinite(srt), axis=1)
    med, std = _slice_stats(srt, lo, hi)
    active = np.arange(n_rows)
    for _ in range(passes):
        rows = srt[active]
        m, s = med[active], std[active]
        with np.errstate(invalid="ignore"):
            new_lo = np.count_nonzero(rows < (m - sigma * s)[:, None], axis=1)
            new_hi = np.count_nonzero(rows <= (m + sigma * s)[:, None], axis=1)
        changed = (new_lo != lo[active]) | (new_hi != hi[active])
        active = active[changed]
        if active.size == 0:
            break
        lo[active], hi[active] = new_lo[changed], new_hi[changed]
        med[active], std[active] = _slice_stats(srt[active], lo[active], hi[active])
    return med, std, hi - lo


def _slice_stats(srt: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and (population) std of the slices ``srt[i, lo[i]:hi[i]]`` of sorted rows."""
    n = hi - lo
    idx = np.arange(srt.shape[1])
    keep = (idx[None, :] >= lo[:, None]) & (idx[None, :] < hi[:, None])
    safe = np.maximum(n, 1)
    vals = np.where(keep, srt, 0.0)
    mean = vals.sum(axis=1) / safe
    var = np.where(keep, (srt - mean[:, None]) ** 2, 0.0).sum(axis=1) / safe
    rows = np.arange(srt.shape[0])
    a = np.clip(lo + (n - 1) // 2, 0, srt.shape[1] - 1)
    b = np.clip(lo + n // 2, 0, srt.shape[1] - 1)
    med = np.where(n > 0, 0.5 * (srt[rows, a] + srt[rows, b]), np.nan)
    return med, np.where(n > 0, np.sqrt(var), np.nan)


@functools.cache
def fiducial_ci(psf_fwhm: float, radii: tuple[float, ...]) -> np.ndarray:
    """Magnitudes m(r) of the fiducial Moffat (FWHM 2 px, slope 3) seen through the band's PSF.

    The PSF's FWHM ``psf_fwhm`` (px; measured on the image,
    :func:`~phangs_products.pipeline.psf.measure_psf`) adds in quadrature to the fiducial's;
    the profile is measured with the same aperture code (noiseless, no sky).
    """
    size = 61
    c = size // 2
    yy, xx = np.mgrid[0:size, 0:size] - c
    sub = 5
    f = (np.arange(sub) + 0.5) / sub - 0.5
    r2 = (xx[..., None, None] + f[None, None, None, :]) ** 2 + (
        yy[..., None, None] + f[None, None, :, None]
    ) ** 2
    alpha = float(moffat_alpha(np.hypot(2.0, psf_fwhm), 3.0))
    img = ((1 + r2 / alpha**2) ** -3.0).mean(axis=(2, 3))
    phot = aperture_photometry(img, [CircularAperture((c, c), r=r) for r in radii])
    sums = np.array([float(phot[f"aperture_sum_{i}"][0]) for i in range(len(radii))])
    return -2.5 * np.log10(sums)


def concentration(
    mags_r: np.ndarray, radii: Sequence[float], psf_fwhm: float
) -> dict[str, np.ndarray]:
    """CI, NCI_13, MCI_in, MCI_out from magnitudes in each radius (N, n_radii).

    ``psf_fwhm`` is the band's PSF FWHM in px (the fiducial profile is seen through it).
    """
    radii = tuple(float(r) for r in radii)
    fid = fiducial_ci(float(psf_fwhm), radii)
    idx = {r: i for i, r in enumerate(radii)}

    def ci(a: float, b: float) -> np.ndarray:
        return mags_r[:, idx[a]] - mags_r[:, idx[b]]

    def nci(a: float, b: float) -> np.ndarray:
        return 1.0 - ci(a, b) / (fid[idx[a]] - fid[idx[b]])

    mci_in = (nci(1.0, 1.5) + nci(1.5, 2.0) + nci(2.0, 2.5)) / 3.0
    mci_out = (nci(2.5, 3.0) + nci(3.0, 4.0) + nci(4.0, 5.0)) / 3.0
    return {"CI": ci(1.0, 3.0), "NCI": nci(1.0, 3.0), "MCI_IN": mci_in, "MCI_OUT": mci_out}


def to_mags(flux: np.ndarray, err: np.ndarray, zp: float) -> tuple[np.ndarray, np.ndarray]:
    """Vega magnitudes and errors of count rates (NaN where flux <= 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(flux > 0, -2.5 * np.log10(flux) + zp, np.nan)
        mag_err = np.where(flux > 0, 2.5 / np.log(10) * err / flux, np.nan)
    return mag, mag_err


def aperture_correction_v(
    data: np.ndarray,
    err: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    mag_err: np.ndarray,
    isolated: np.ndarray,
    config: PhotometryConfig,
    flux4: np.ndarray | None = None,
    ci: np.ndarray | None = None,
    *,
    psf_fwhm: float,
) -> float | None:
    """V-band correction m_total - m(4 px) of bright isolated compact sources.

    The total flux of each source is measured in ``apcorr_radius`` (10 px) with the sky from
    the ``apcorr_annulus`` (12-15 px); the light beyond ``apcorr_radius`` comes from the
    fiducial profile (0.4 per cent for 10 px).  It is compared with ``flux4``, the catalog's
    own 4 px flux (sky from the 7-9 px annulus, which holds some of the source's wings): the
    correction is then right for the magnitudes it is added to.  Measuring the 4 px flux with
    the 12-15 px sky instead left point sources 0.03 mag too faint on the simulated field.  Up to
    ``apcorr_max_sources`` sources with sigma_m < 0.05 are used, the best first, and their
    values combined by :func:`_clipped_mean`; returns None when fewer than 5 qualify.

    Parameters
    ----------
    data, err : ndarray
        V-band science and error images.
    x, y : ndarray
        Source positions (0-based px).
    mag_err : ndarray
        4 px magnitude errors of the sources (ranks them).
    isolated : ndarray of bool
        Sources without a neighbour inside the large aperture and its annulus.
    config : PhotometryConfig
        Radii and limits.
    flux4 : ndarray, optional
        The catalog's ``phot_radius`` fluxes of all sources (None: measured here with the
        ``apcorr_annulus`` sky).
    ci : ndarray, optional
        Concentration index m(1 px) - m(3 px) of all sources: only the more compact half of
        the bright isolated sources is used.
    psf_fwhm : float
        FWHM of the V PSF in px (the fiducial profile's light beyond ``apcorr_radius``).
    """
    ok = isolated & np.isfinite(mag_err) & (mag_err < APCORR_MAX_ERR)
    if ci is not None and ok.sum() >= 10:
        ok &= np.isfinite(ci) & (ci <= np.nanmedian(np.where(ok, ci, np.nan)))
    if ok.sum() < 5:
        return None
    pick = np.flatnonzero(ok)[np.argsort(mag_err[ok])[: config.apcorr_max_sources]]
    data, _ = _clean(data)
    err, _ = _clean(err)
    radii = (config.phot_radius, config.apcorr_radius)
    flux, flux_err, _, _ = aperture_fluxes(
        data, err, x[pick], y[pick], radii, config.apcorr_annulus
    )
    small = flux[:, 0] if flux4 is None else np.asarray(flux4, float)[pick]
    good = (small > 0) & (flux[:, 1] > 0)
    if good.sum() < 5:
        return None
    fid = fiducial_ci(float(psf_fwhm), (config.apcorr_radius, 40.0))
    tail = 10 ** (-0.4 * (fid[1] - fid[0]))  # flux(40 px) / flux(apcorr_radius) of the fiducial
    corr = -2.5 * np.log10(flux[good, 1] * tail / small[good])
    # the 10 px flux of a faint star is noisy (sky over 314 px): weight by the errors
    sigma = 2.5 / np.log(10) * np.hypot(flux_err[good, 1] / flux[good, 1], 0.01)
    return _clipped_mean(corr, sigma)


def _clipped_mean(values: np.ndarray, sigma: np.ndarray, clip: float = 3.0) -> float:
    """Inverse-variance weighted mean, iteratively dropping values beyond ``clip`` sigma."""
    keep = np.ones(values.size, bool)
    mean = float(np.median(values))
    for _ in range(10):
        weight = 1.0 / sigma[keep] ** 2
        mean = float(np.sum(weight * values[keep]) / np.sum(weight))
        new = np.abs(values - mean) <= clip * sigma
        if not new.any() or np.array_equal(new, keep):
            break
        keep = new
    return mean


def measure_bands(
    sources: Table,
    images: Mapping[str, ImageModel],
    errors: Mapping[str, ImageModel],
    config: PhotometryConfig,
    apcorr_fallback_v: float = -0.75,
    psf_fwhm: float | None = None,
) -> tuple[Table, dict[str, float]]:
    """Aperture photometry of the sources in every band (one output row per source).

    Returns the table (per band: flux/error at 4 px in e-/s, aperture-corrected Vega mag and
    error, mJy and error, S/N; CI columns from the reference band) and the aperture corrections
    used per filter.  ``psf_fwhm`` is the reference band's PSF FWHM in px (default: measured
    on the reference image, :func:`~phangs_products.pipeline.psf.measure_psf`).
    """
    if len(sources) == 0:
        raise PhangsProductsError("no sources to measure")
    x, y = np.asarray(sources["x"], float), np.asarray(sources["y"], float)
    out = Table()
    out["x"], out["y"] = x, y
    radii = tuple(config.radii)
    i4 = radii.index(config.phot_radius)
    per_band = _all_band_fluxes(images, errors, x, y, config)
    ref = config.reference_filter
    if psf_fwhm is None:
        psf_fwhm = measure_psf(
            np.asarray(images[ref].data, float), ref, float(images[ref].meta.pixscale)
        ).fwhm_px
    zp = {f: float(images[f].meta.zp_vega) for f in images}
    v_flux, v_err, _ = per_band[ref]
    v_mags_r, _ = to_mags(v_flux, v_err, zp[ref])
    _, v_mag_err = to_mags(v_flux[:, i4], v_err[:, i4], zp[ref])
    isolated = calibrator_isolation(x, y, v_flux[:, i4], v_mag_err < APCORR_MAX_ERR, config)
    ci = v_mags_r[:, radii.index(1.0)] - v_mags_r[:, radii.index(3.0)]
    apc_v = aperture_correction_v(
        images[ref].data,
        errors[ref].data,
        x,
        y,
        v_mag_err,
        isolated,
        config,
        v_flux[:, i4],
        ci,
        psf_fwhm=psf_fwhm,
    )
    if apc_v is None:
        log.warning(
            "too few bright isolated sources: V aperture correction from the table (%.2f mag)",
            apcorr_fallback_v,
        )
        apc_v = apcorr_fallback_v
    apcorr = {}
    for filt, (flux, flux_err, covered) in per_band.items():
        info = band_of(images[filt])
        facts = band(info.filter, info.instrument)
        apc = apc_v - (facts.apcorr_offset if np.isfinite(facts.apcorr_offset) else 0.0)
        apcorr[filt] = apc
        mag, mag_err = to_mags(flux[:, i4], flux_err[:, i4], zp[filt])
        mag = mag + apc
        with np.errstate(divide="ignore", invalid="ignore"):
            mjy = facts.vega_flux_jy * 1e3 * 10 ** (-0.4 * mag)
            mjy_err = mjy * np.log(10) / 2.5 * mag_err
            snr = flux[:, i4] / flux_err[:, i4]
        out[f"{filt}_flux"] = flux[:, i4]
        out[f"{filt}_flux_err"] = flux_err[:, i4]
        out[f"{filt}_mag"] = np.where(covered, mag, np.nan)
        out[f"{filt}_mag_err"] = np.where(covered, mag_err, np.nan)
        out[f"{filt}_mjy"] = np.where(covered, mjy, np.nan)
        out[f"{filt}_mjy_err"] = np.where(covered, mjy_err, np.nan)
        out[f"{filt}_snr"] = np.where(covered, snr, np.nan)
        out[f"{filt}_covered"] = covered
    conc = concentration(v_mags_r, radii, psf_fwhm)
    for key, values in conc.items():
        out[key] = values
    for i, r in enumerate(radii):
        out[f"flux_r{r:g}"] = v_flux[:, i]
    return out, apcorr


BandFluxes = tuple[np.ndarray, np.ndarray, np.ndarray]


def band_fluxes(
    data: np.ndarray, err: np.ndarray, x: np.ndarray, y: np.ndarray, config: PhotometryConfig
) -> BandFluxes:
    """Sky-subtracted fluxes and errors in every CI radius of one band, and its coverage.

    Returns ``(flux, flux_err, covered)``: (N, n_radii) count rates and errors, and whether the
    photometric aperture avoids missing data (non-finite science or error, or error <= 0).
    Missing pixels are not filled: they make the fluxes of the apertures that touch them NaN
    and drop out of the annulus statistics.  No copy of the images is made.
    """
    data = np.asarray(data, float)
    err = np.asarray(err, float)
    bad = ~np.isfinite(data)
    with np.errstate(invalid="ignore"):
        bad |= ~(err > 0)
    flux, flux_err, _, _ = aperture_fluxes(data, err, x, y, tuple(config.radii), config.annulus)
    covered = _coverage(bad, x, y, config.phot_radius)
    return flux, flux_err, covered


def _band_fluxes_of(
    sci: ImageModel, err: ImageModel, x: np.ndarray, y: np.ndarray, config: PhotometryConfig
) -> BandFluxes:
    """:func:`band_fluxes` of a DRC science and ERR model (a :func:`map_bands` task)."""
    return band_fluxes(sci.data, err.data, x, y, config)


def _all_band_fluxes(
    images: Mapping[str, ImageModel],
    errors: Mapping[str, ImageModel],
    x: np.ndarray,
    y: np.ndarray,
    config: PhotometryConfig,
) -> dict[str, BandFluxes]:
    """:func:`band_fluxes` of every band, in parallel processes when that pays."""
    processes = band_processes(images, errors, config.workers, x.size, config.parallel_min_sources)
    what = f"measured {x.size} sources"
    return map_bands(_band_fluxes_of, images, errors, (x, y, config), processes, what)


def _coverage(bad: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    """Whether no missing-data pixel has its centre inside the aperture of ``radius``.

    A coarse map of blocks holding any bad pixel clears every source whose bounding box
    touches no such block; only the others (near the footprint edge or a hole) are tested
    pixel by pixel.
    """
    covered = np.ones(x.size, bool)
    if not bad.any():
        return covered
    half = int(np.ceil(radius)) + 1
    block = 2 * half + 1  # a box spans at most two blocks per axis: its corners find them all
    ny, nx = bad.shape
    py, px = -ny % block, -nx % block
    padded = np.pad(bad, ((0, py), (0, px))) if py or px else bad
    coarse = padded.reshape(padded.shape[0] // block, block, -1, block).any(axis=(1, 3))
    ix, iy = np.floor(x).astype(np.intp), np.floor(y).astype(np.intp)
    bx0, bx1 = np.clip(ix - half, 0, nx - 1) // block, np.clip(ix + half, 0, nx - 1) // block
    by0, by1 = np.clip(iy - half, 0, ny - 1) // block, np.clip(iy + half, 0, ny - 1) // block
    near = coarse[by0, bx0] | coarse[by0, bx1] | coarse[by1, bx0] | coarse[by1, bx1]
    if near.any():
        offs = np.arange(-half, half + 1)
        px_ = ix[near, None, None] + offs[None, None, :]
        py_ = iy[near, None, None] + offs[None, :, None]
        inside = np.hypot(px_ - x[near, None, None], py_ - y[near, None, None]) <= radius
        on = (px_ >= 0) & (px_ < nx) & (py_ >= 0) & (py_ < ny)
        hit = bad[np.clip(py_, 0, ny - 1), np.clip(px_, 0, nx - 1)] & on & inside
        covered[near] = ~hit.any(axis=(1, 2))
    return covered


def isolated_sources(
    x: np.ndarray,
    y: np.ndarray,
    radius: float,
    flux: np.ndarray | None = None,
    max_ratio: float = 0.0,
    among: np.ndarray | None = None,
) -> np.ndarray:
    """Whether each source has no other source within ``radius`` px that matters.

    Without ``flux`` any neighbour counts.  With ``flux``, neighbours of at most ``max_ratio``
    times the source's flux are allowed: one at 1 per cent adds at most 0.011 mag to the
    source's large-aperture flux, while in a crowded field (0.03 sources/px^2, a 500k-source
    4k x 4k pointing) a 15 px radius holds about 21 neighbours and almost no source is alone.
    Sources with non-finite flux count as bright neighbours.  ``among`` (bool mask) limits the
    test to those sources (the others are reported not isolated): a few hundred bright
    calibrator candidates among 500k sources take milliseconds.
    """
    xy = np.c_[x, y]
    if len(xy) < 2:
        return np.ones(len(xy), bool)
    tree = cKDTree(xy)
    if flux is None:
        dist, _ = tree.query(xy, k=2)
        return dist[:, 1] > radius
    f = np.asarray(flux, float)
    f = np.where(np.isfinite(f), f, np.inf)
    centres = np.arange(len(xy)) if among is None else np.flatnonzero(among)
    found = tree.query_ball_point(xy[centres], radius, workers=1)
    counts = np.fromiter((len(n) for n in found), np.int64, len(found))
    owner = np.repeat(centres, counts)
    other = np.fromiter((k for n in found for k in n), np.int64, int(counts.sum()))
    bright = (other != owner) & (f[other] > max_ratio * f[owner])
    out = np.zeros(len(xy), bool)
    out[centres] = True
    out[owner[bright]] = False
    return out


def calibrator_isolation(
    x: np.ndarray, y: np.ndarray, flux: np.ndarray, bright: np.ndarray, config: PhotometryConfig
) -> np.ndarray:
    """Isolation of aperture-correction calibrators: strict, or flux-aware in crowded fields.

    A source is isolated when no other source lies within the outer radius of the
    aperture-correction annulus.  When fewer than ``config.apcorr_min_isolated`` of the
    ``bright`` sources are (a crowded field), neighbours of at most
    ``config.apcorr_neighbour_ratio`` times the source's 4 px ``flux`` are allowed instead.
    """
    radius = config.apcorr_annulus[1]
    strict = isolated_sources(x, y, radius)
    if np.count_nonzero(strict & bright) >= config.apcorr_min_isolated:
        return strict
    relaxed = isolated_sources(x, y, radius, flux, config.apcorr_neighbour_ratio, among=bright)
    log.info(
        "%d bright sources without neighbours within %.0f px: allowing neighbours below %.0f%% "
        "of their flux (%d calibrators)",
        int(np.count_nonzero(strict & bright)),
        radius,
        100 * config.apcorr_neighbour_ratio,
        int(np.count_nonzero(relaxed)),
    )
    return relaxed

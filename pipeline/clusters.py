"""Star-cluster candidates: synthetic-cluster calibration of the MCI plane and selection.

Paper Sect. 4.4.  Synthetic clusters: Moffat/EFF profiles I(r) ~ (1 + r^2/a^2)^(-gamma/2) with
intrinsic FWHM 0.5-7 px (12 values) and halo slopes gamma 0.75-4 (18 values): 216 profiles,
each convolved with the band's PSF (FFT), injected into the real V-band DRC a few hundred at a
time on a jittered grid so they never overlap, at V magnitudes drawn from BC03 SSPs (mass
10^3-10^5 M_sun, age 1-1000 Myr, A_V 0-0.5 mag, at the galaxy's distance) and measured with the
same aperture code as real sources.  The selection region is the set of MCI_in/MCI_out bins of
0.04 mag holding injected clusters with V S/N >= 10 (the paper's outer contour); the stellar
region is where bright point sources of the field concentrate; MCI_out must exceed the
distance-dependent limit (-1.7 / -1.1 / -0.7 for d <= 8, 8-14, >= 14 Mpc).

Selection: V S/N >= 10 in the 4 px aperture, at least two more bands with sigma_mag <= 0.3,
MCI inside the region and outside the stellar region and above the MCI_out limit (route 1); or
total M_V < -10 with -0.55 <= MCI_in <= 0.45 (route 2, the bright rescue).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from scipy import ndimage
from scipy.signal import fftconvolve

from phangs_products.models import ImageModel

from .photometry import PhotometryConfig, aperture_fluxes, concentration, to_mags
from .sim_psf import moffat_alpha, psf_for
from .ssp import cluster_magnitudes

__all__ = ["ClusterSelectionConfig", "MCIRegion", "calibrate_mci", "select_candidates"]

log = logging.getLogger(__name__)
BIN = 0.04


@dataclass(frozen=True)
class ClusterSelectionConfig:
    """Candidate selection settings (paper Sect. 4.4).

    Attributes
    ----------
    fwhms, slopes : tuple of float
        Synthetic profile grid (216 profiles).
    per_profile : int
        Injections per profile (paper: ~4e6 in total; the demo uses fewer).
    batch : int
        Clusters injected at once (paper: 200).
    min_snr_v, max_err_other, min_other_bands : float, float, int
        S/N and band-coverage cuts.
    bright_mv : float
        Bright-rescue absolute magnitude limit.
    bright_mci_in : tuple of float
        MCI_in window of the bright rescue.
    seed : int
        Random seed of the injections.
    """

    fwhms: tuple[float, ...] = tuple(np.round(np.geomspace(0.5, 7.0, 12), 3).tolist())
    slopes: tuple[float, ...] = tuple(np.round(np.linspace(0.75, 4.0, 18), 3).tolist())
    per_profile: int = 12
    batch: int = 200
    min_snr_v: float = 10.0
    max_err_other: float = 0.3
    min_other_bands: int = 2
    bright_mv: float = -10.0
    bright_mci_in: tuple[float, float] = (-0.55, 0.45)
    seed: int = 7
    star_min_snr: float = 20.0
    star_min_count: int = 4


def mci_out_limit(distance_mpc: float) -> float:
    """Lower MCI_out limit of the selection polygon (paper Sect. 4.4)."""
    if distance_mpc <= 8:
        return -1.7
    if distance_mpc < 14:
        return -1.1
    return -0.7


@dataclass
class MCIRegion:
    """Occupied MCI bins of synthetic clusters and of point sources."""

    cluster_bins: set[tuple[int, int]]
    star_bins: set[tuple[int, int]]
    mci_out_min: float
    injected: Table

    @staticmethod
    def bins(mci_in: np.ndarray, mci_out: np.ndarray) -> np.ndarray:
        """Bin indices (N, 2) of MCI pairs (non-finite values go to a far-away bin)."""
        pairs = np.column_stack([np.asarray(mci_in, float), np.asarray(mci_out, float)])
        pairs = np.where(np.isfinite(pairs), pairs, 1e6)
        return np.floor(pairs / BIN).astype(int)

    def inside(self, mci_in: np.ndarray, mci_out: np.ndarray) -> np.ndarray:
        """In the cluster region, outside the stellar region, above the MCI_out limit."""
        b = self.bins(mci_in, mci_out)
        in_cl = np.array([tuple(v) in self.cluster_bins for v in b], bool)
        in_st = np.array([tuple(v) in self.star_bins for v in b], bool)
        finite = np.isfinite(mci_in) & np.isfinite(mci_out)
        return finite & in_cl & ~in_st & (np.asarray(mci_out) >= self.mci_out_min)


def profile_stamp(fwhm: float, slope: float, filter_name: str, half: int = 15) -> np.ndarray:
    """Unit-flux stamp of an EFF profile of intrinsic FWHM/slope convolved with the PSF."""
    beta = slope / 2.0
    sub = 3
    f = (np.arange(sub) + 0.5) / sub - 0.5
    offs = np.arange(-half, half + 1)
    gx = (offs[:, None] + f[None, :]).ravel()
    r2 = gx[None, :] ** 2 + gx[:, None] ** 2
    # core width from the FWHM for this slope
    alpha = float(moffat_alpha(fwhm, max(beta, 0.2))) if beta > 0 else fwhm
    prof = (1.0 + r2 / alpha**2) ** (-beta)
    n = offs.size
    intrinsic = prof.reshape(n, sub, n, sub).mean(axis=(1, 3))
    psf = psf_for(filter_name)
    pr2 = offs[None, :] ** 2 + offs[:, None] ** 2
    palpha = float(moffat_alpha(psf.core_fwhm * 0.0396 / 0.04, psf.core_beta))
    kernel = (1.0 + pr2 / palpha**2) ** (-psf.core_beta)
    stamp = fftconvolve(intrinsic, kernel / kernel.sum(), mode="same")
    return stamp / stamp.sum()


def calibrate_mci(
    image: ImageModel,
    error: ImageModel,
    stars: Table,
    distance_mpc: float,
    config: ClusterSelectionConfig,
    phot: PhotometryConfig,
) -> MCIRegion:
    """Inject synthetic clusters into the V DRC, measure them, and build the MCI regions.

    Parameters
    ----------
    image, error : ImageModel
        V-band DRC and its ERR map.
    stars : Table
        Point sources of the field with ``MCI_IN``/``MCI_OUT`` (bright, DOLPHOT type 1).
    """
    rng = np.random.default_rng(config.seed)
    data = np.nan_to_num(np.asarray(image.data, float))
    err = np.nan_to_num(np.asarray(error.data, float))
    filt = image.meta.filter
    zp = float(image.meta.zp_vega)
    ny, nx = data.shape
    half = 15
    profiles = [(f, s) for f in config.fwhms for s in config.slopes]
    stamps = {p: profile_stamp(p[0], p[1], filt, half) for p in profiles}
    n_total = len(profiles) * config.per_profile
    which = np.repeat(np.arange(len(profiles)), config.per_profile)
    rng.shuffle(which)
    age = 10 ** rng.uniform(0, 3, n_total)
    mass = 10 ** rng.uniform(3, 5, n_total)
    ebv = rng.uniform(0, 0.5, n_total) / 3.1
    vmag = cluster_magnitudes(age, mass, ebv, distance_mpc, [filt])[:, 0]
    rows = []
    spacing = 2 * half + 2
    gx, gy = np.meshgrid(
        np.arange(half + 2, nx - half - 2, spacing), np.arange(half + 2, ny - half - 2, spacing)
    )
    slots = np.column_stack([gx.ravel(), gy.ravel()])
    batch = min(config.batch, len(slots))
    if batch == 0:
        raise ValueError(f"{image.file_name}: image too small for synthetic clusters")
    radii = tuple(phot.radii)
    i4 = radii.index(phot.phot_radius)
    for start in range(0, n_total, batch):
        idx = np.arange(start, min(start + batch, n_total))
        pick = rng.choice(len(slots), size=idx.size, replace=False)
        cx = slots[pick, 0] + rng.integers(-2, 3, idx.size)
        cy = slots[pick, 1] + rng.integers(-2, 3, idx.size)
        injected = data.copy()
        rate = 10 ** (-0.4 * (vmag[idx] - zp))
        for k, (x0, y0) in enumerate(zip(cx, cy, strict=True)):
            stamp = stamps[profiles[which[idx[k]]]]
            injected[y0 - half : y0 + half + 1, x0 - half : x0 + half + 1] += rate[k] * stamp
        flux, flux_err, _, _ = aperture_fluxes(
            injected, err, cx.astype(float), cy.astype(float), radii, phot.annulus
        )
        mags_r, _ = to_mags(flux, flux_err, zp)
        conc = concentration(mags_r, radii, filt)
        snr = flux[:, i4] / flux_err[:, i4]
        for k in range(idx.size):
            f, s = profiles[which[idx[k]]]
            rows.append(
                (f, s, vmag[idx[k]], snr[k], conc["MCI_IN"][k], conc["MCI_OUT"][k], conc["CI"][k])
            )
    inj = Table(rows=rows, names=("fwhm", "slope", "vmag", "snr", "MCI_IN", "MCI_OUT", "CI"))
    good = inj[
        (inj["snr"] >= config.min_snr_v) & np.isfinite(inj["MCI_IN"]) & np.isfinite(inj["MCI_OUT"])
    ]
    cluster_bins = _occupied(good["MCI_IN"], good["MCI_OUT"], min_count=2)
    star_bins = (
        _occupied(stars["MCI_IN"], stars["MCI_OUT"], min_count=config.star_min_count, smooth=3)
        if len(stars)
        else set()
    )
    log.info(
        "MCI calibration: %d injections, %d with S/N >= %g; %d cluster bins, %d stellar bins",
        len(inj),
        len(good),
        config.min_snr_v,
        len(cluster_bins),
        len(star_bins),
    )
    return MCIRegion(cluster_bins, star_bins, mci_out_limit(distance_mpc), inj)


def _occupied(
    mci_in: np.ndarray, mci_out: np.ndarray, min_count: int, smooth: int = 1
) -> set[tuple[int, int]]:
    """Bins of the MCI plane holding at least ``min_count`` objects, with holes filled.

    Counts are box-summed over ``smooth`` x ``smooth`` bins first.
    """
    mci_in, mci_out = np.asarray(mci_in, float), np.asarray(mci_out, float)
    ok = np.isfinite(mci_in) & np.isfinite(mci_out)
    b = MCIRegion.bins(mci_in[ok], mci_out[ok])
    if b.size == 0:
        return set()
    lo = b.min(axis=0) - smooth
    hist = np.zeros(b.max(axis=0) - lo + 1 + smooth, float)
    np.add.at(hist, (b[:, 0] - lo[0], b[:, 1] - lo[1]), 1)
    if smooth > 1:
        hist = ndimage.uniform_filter(hist, size=smooth, mode="constant") * smooth**2
    filled = ndimage.binary_fill_holes(ndimage.binary_closing(hist >= min_count))
    ii, jj = np.nonzero(filled)
    return {(int(i + lo[0]), int(j + lo[1])) for i, j in zip(ii, jj, strict=True)}


def select_candidates(
    sources: Table,
    filters: list[str],
    region: MCIRegion,
    distance_modulus: float,
    config: ClusterSelectionConfig,
    reference_filter: str = "F555W",
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of candidates in ``sources`` and the selection route (1, 2 or 3) of each."""
    ref = reference_filter
    snr = np.asarray(sources[f"{ref}_snr"], float)
    others = [f for f in filters if f != ref]
    good_other = np.sum(
        [np.asarray(sources[f"{f}_mag_err"], float) <= config.max_err_other for f in others], axis=0
    )
    mci_in = np.asarray(sources["MCI_IN"], float)
    mci_out = np.asarray(sources["MCI_OUT"], float)
    route1 = (
        (snr >= config.min_snr_v)
        & (good_other >= config.min_other_bands)
        & region.inside(mci_in, mci_out)
    )
    mv = np.asarray(sources[f"{ref}_mag"], float) - distance_modulus
    lo, hi = config.bright_mci_in
    route2 = (mv < config.bright_mv) & (mci_in >= lo) & (mci_in <= hi)
    reason = route1.astype(int) + 2 * route2.astype(int)
    idx = np.flatnonzero(reason > 0)
    log.info(
        "candidates: %d (%d by MCI region, %d bright rescue)", idx.size, route1.sum(), route2.sum()
    )
    return idx, reason[idx]


def apply_apcorr(
    sources: Table, filters: list[str], old: Mapping[str, float], new: Mapping[str, float]
) -> None:
    """Replace the aperture corrections of the magnitude columns in place."""
    for filt in filters:
        delta = new[filt] - old[filt]
        for col in (f"{filt}_mag",):
            sources[col] = np.asarray(sources[col], float) + delta
        sources[f"{filt}_mjy"] = np.asarray(sources[f"{filt}_mjy"], float) * 10 ** (-0.4 * delta)
        sources[f"{filt}_mjy_err"] = np.asarray(sources[f"{filt}_mjy_err"], float) * 10 ** (
            -0.4 * delta
        )

"""Star-cluster candidates: synthetic-cluster calibration of the MCI plane and selection.

Paper Sect. 4.4.  Synthetic clusters: Moffat/EFF profiles I(r) ~ (1 + r^2/a^2)^(-gamma/2) with
intrinsic FWHM 0.5-7 px (12 values) and halo slopes gamma 0.75-4 (18 values): 216 profiles,
each convolved with the band's PSF (FFT), added to cutouts of the real V-band DRC at random
valid positions (real sky and neighbours included, injections never overlapping), at V
magnitudes drawn from BC03 SSPs (mass 10^3-10^5 M_sun, age 1-1000 Myr, A_V 0-0.5 mag, at the
galaxy's distance) and measured with the same aperture code as real sources.  The model region
is the set of MCI_in/MCI_out bins of 0.04 mag holding injected clusters with V S/N >= 10 (the
paper's outer contour, which gives the candidate list); the stellar region is the core of the
locus of the field's bright point sources: the MCI bins where their smoothed density is at least
a fraction of its peak.  A fixed count per bin would make the region grow with the number of
point sources, i.e. with the field's size, and since compact clusters pass as point sources at
these distances, it spread over the compact-cluster part of the model region.  The
semi-empirical polygon's distance-dependent MCI_out limit (-1.7 / -1.1 / -0.7 for d <= 8,
8-14, >= 14 Mpc) marks the subset the paper inspected by eye
(:meth:`MCIRegion.in_polygon`); it does not remove candidates.

Selection: V S/N >= 10 in the 4 px aperture, at least two more bands with sigma_mag <= 0.3,
MCI inside the model region and outside the stellar region (route 1); or total M_V < -10 with
-0.55 <= MCI_in <= 0.45 (route 2, the bright rescue).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from astropy.table import Table
from scipy import ndimage
from scipy.signal import fftconvolve

from phangs_products.errors import PhangsProductsError
from phangs_products.models import ImageModel
from phangs_products.pipeline.instrument import moffat_alpha
from phangs_products.pipeline.photometry.aperture import aperture_fluxes, concentration, to_mags
from phangs_products.pipeline.photometry.config import PhotometryConfig
from phangs_products.pipeline.psf import MeasuredPSF, measure_psf
from phangs_products.pipeline.stellarpops.ssp import cluster_magnitudes

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
        Injections per profile (paper: ~4000 magnitudes per profile, ~4e6 in total; default
        100, 21,600 injections, which fill the 0.04-mag bins of the outer contour).
    batch : int
        Injections measured per photometry call (each in its own cutout, so they never
        overlap whatever the number; the paper injected 200 at a time into the full image).
    min_snr_v, max_err_other, min_other_bands : float, float, int
        S/N and band-coverage cuts.
    bright_mv : float
        Bright-rescue absolute magnitude limit.
    bright_mci_in : tuple of float
        MCI_in window of the bright rescue.
    seed : int
        Random seed of the injections.
    star_min_snr : float
        Fewest V-band S/N of the bright DOLPHOT point sources (object type 1) that trace the
        stellar locus in the MCI plane.
    star_level : float
        The stellar region (removed from the model region) is where the smoothed density of
        those point sources is at least this fraction of its peak.  Measured on the simulated
        medium field: 0.2 keeps 99% of the bright clusters (a fixed count of 3 per bin: 64%).
    star_smooth : float
        Gaussian sigma, in MCI bins, of the point-source density.
    """

    fwhms: tuple[float, ...] = field(
        default=tuple(np.round(np.geomspace(0.5, 7.0, 12), 3).tolist()), metadata={"gt": 0}
    )
    slopes: tuple[float, ...] = field(
        default=tuple(np.round(np.linspace(0.75, 4.0, 18), 3).tolist()), metadata={"gt": 0}
    )
    per_profile: int = field(default=100, metadata={"ge": 1})
    batch: int = field(default=2000, metadata={"ge": 1})
    min_snr_v: float = field(default=10.0, metadata={"ge": 0})
    max_err_other: float = field(default=0.3, metadata={"gt": 0})
    min_other_bands: int = field(default=2, metadata={"ge": 0})
    bright_mv: float = -10.0
    bright_mci_in: tuple[float, float] = (-0.55, 0.45)
    seed: int = 7
    star_min_snr: float = field(default=10.0, metadata={"ge": 0})
    star_level: float = field(default=0.2, metadata={"gt": 0, "le": 1})
    star_smooth: float = field(default=1.0, metadata={"ge": 0})


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
        """In the synthetic-cluster (model) region and outside the stellar region."""
        b = self.bins(mci_in, mci_out)
        in_cl = _member(b, self.cluster_bins)
        in_st = _member(b, self.star_bins)
        finite = np.isfinite(mci_in) & np.isfinite(mci_out)
        return finite & in_cl & ~in_st

    def in_polygon(self, mci_in: np.ndarray, mci_out: np.ndarray) -> np.ndarray:
        """:meth:`inside` and above the distance-dependent MCI_out limit of the polygon.

        The semi-empirical polygon (paper Sect. 4.4 item 2) bounds the subset the paper
        inspected by eye; the model region alone gives the candidate list.
        """
        return self.inside(mci_in, mci_out) & (np.asarray(mci_out, float) >= self.mci_out_min)


def profile_stamp(fwhm: float, slope: float, kernel: np.ndarray, half: int = 15) -> np.ndarray:
    """Unit-flux stamp of an EFF profile of intrinsic FWHM/slope convolved with the PSF.

    ``kernel`` is the band's PSF on the image grid, measured on the image
    (:meth:`~phangs_products.pipeline.psf.MeasuredPSF.kernel`).
    """
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
    stamp = fftconvolve(intrinsic, kernel, mode="same")
    return stamp / stamp.sum()


def calibrate_mci(
    image: ImageModel,
    error: ImageModel,
    stars: Table,
    distance_mpc: float,
    config: ClusterSelectionConfig,
    phot: PhotometryConfig,
    psf: MeasuredPSF | None = None,
) -> MCIRegion:
    """Inject synthetic clusters into the V DRC, measure them, and build the MCI regions.

    Every injection gets its own cutout of the real image (random valid position, real
    neighbours and sky included) with one profile added; the cutouts are laid side by side
    in one strip image and measured with a single aperture-photometry call, so injections
    never overlap each other and no copy of the full image is made per batch.

    Parameters
    ----------
    image, error : ImageModel
        V-band DRC and its ERR map.
    stars : Table
        Point sources of the field with ``MCI_IN``/``MCI_OUT`` (bright, DOLPHOT type 1).
    distance_mpc : float
        Galaxy distance (magnitudes of the injections, MCI_out limit of the polygon).
    config, phot : ClusterSelectionConfig, PhotometryConfig
        Profile grid and injection numbers; aperture settings (the same as for real sources).
    psf : MeasuredPSF, optional
        The band's PSF (default: measured on ``image``,
        :func:`~phangs_products.pipeline.psf.measure_psf`): the synthetic clusters are
        convolved with it and their CI normalised with its FWHM, as the data's sources are.
    """
    rng = np.random.default_rng(config.seed)
    data = np.asarray(image.data, float)
    err = np.asarray(error.data, float)
    filt = image.meta.filter
    zp = float(image.meta.zp_vega)
    half = 15
    if psf is None:
        psf = measure_psf(data, filt, float(image.meta.pixscale))
    kernel = psf.kernel()
    profiles = [(f, s) for f in config.fwhms for s in config.slopes]
    stamps = np.stack([profile_stamp(f, s, kernel, half) for f, s in profiles])
    n_total = len(profiles) * config.per_profile
    which = np.repeat(np.arange(len(profiles)), config.per_profile)
    rng.shuffle(which)
    age = 10 ** rng.uniform(0, 3, n_total)
    mass = 10 ** rng.uniform(3, 5, n_total)
    ebv = rng.uniform(0, 0.5, n_total) / 3.1
    vmag = cluster_magnitudes(age, mass, ebv, distance_mpc, [filt])[:, 0]
    cx, cy = _injection_sites(data, err, half + 1, n_total, rng, image.file_name)
    radii = tuple(phot.radii)
    i4 = radii.index(phot.phot_radius)
    rate = 10 ** (-0.4 * (vmag - zp))
    size = 2 * half + 1
    offs = np.arange(-half, half + 1)
    nx = data.shape[1]
    cols = []
    for start in range(0, n_total, config.batch):
        sl = slice(start, min(start + config.batch, n_total))
        pix = (cy[sl, None, None] + offs[None, :, None]) * nx + cx[sl, None, None] + offs
        tiles = data.reshape(-1)[pix] + rate[sl, None, None] * stamps[which[sl]]
        # (n, size, size) tiles -> one (size, n * size) strip, tile k centred at k*size + half
        strip = tiles.transpose(1, 0, 2).reshape(size, -1)
        err_strip = err.reshape(-1)[pix].transpose(1, 0, 2).reshape(size, -1)
        xs = np.arange(tiles.shape[0]) * size + float(half)
        flux, flux_err, _, _ = aperture_fluxes(
            strip, err_strip, xs, np.full(xs.size, float(half)), radii, phot.annulus
        )
        mags_r, _ = to_mags(flux, flux_err, zp)
        conc = concentration(mags_r, radii, psf.fwhm_px)
        cols.append((flux[:, i4] / flux_err[:, i4], conc["MCI_IN"], conc["MCI_OUT"], conc["CI"]))
    snr, mci_in, mci_out, ci = (np.concatenate(c) for c in zip(*cols, strict=True))
    grid = np.asarray(profiles)[which]
    inj = Table(
        {
            "fwhm": grid[:, 0],
            "slope": grid[:, 1],
            "x": cx,
            "y": cy,
            "vmag": vmag,
            "snr": snr,
            "MCI_IN": mci_in,
            "MCI_OUT": mci_out,
            "CI": ci,
        }
    )
    good = (snr >= config.min_snr_v) & np.isfinite(mci_in) & np.isfinite(mci_out)
    cluster_bins = _occupied(mci_in[good], mci_out[good], min_count=2)
    star_bins = _locus_core(
        stars["MCI_IN"], stars["MCI_OUT"], config.star_level, config.star_smooth
    )
    log.info(
        "MCI calibration: %d injections, %d with S/N >= %g; %d cluster bins, %d stellar bins",
        n_total,
        int(good.sum()),
        config.min_snr_v,
        len(cluster_bins),
        len(star_bins),
    )
    return MCIRegion(cluster_bins, star_bins, mci_out_limit(distance_mpc), inj)


def _injection_sites(
    data: np.ndarray,
    err: np.ndarray,
    margin: int,
    n: int,
    rng: np.random.Generator,
    name: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Random pixel positions whose whole cutout (``margin`` px around) holds valid data."""
    valid = np.isfinite(data) & np.isfinite(err) & (err > 0)
    # a cutout is valid when no invalid pixel lies within it: erode the valid map (a
    # separable minimum filter; outside the image counts as invalid)
    inner = ndimage.minimum_filter(valid.view(np.uint8), size=2 * margin + 1, mode="constant")
    ys, xs = np.nonzero(inner)
    if ys.size == 0:
        raise PhangsProductsError(
            f"{name or 'V DRC'}: no {2 * margin + 1} px cutout of valid data for synthetic clusters"
        )
    pick = rng.integers(0, ys.size, n)
    return xs[pick].astype(np.intp), ys[pick].astype(np.intp)


def _member(bins: np.ndarray, occupied: set[tuple[int, int]]) -> np.ndarray:
    """Whether each (N, 2) bin index pair is in ``occupied`` (vectorised via packed keys)."""
    if not occupied or bins.size == 0:
        return np.zeros(len(bins), bool)
    keys = np.array(sorted(occupied), np.int64)
    pack = (keys[:, 0] << 32) + (keys[:, 1] & 0xFFFFFFFF)
    query = (bins[:, 0].astype(np.int64) << 32) + (bins[:, 1].astype(np.int64) & 0xFFFFFFFF)
    return np.isin(query, pack)


def _occupied(mci_in: np.ndarray, mci_out: np.ndarray, min_count: int) -> set[tuple[int, int]]:
    """Bins of the MCI plane holding at least ``min_count`` objects, with holes filled."""
    mci_in, mci_out = np.asarray(mci_in, float), np.asarray(mci_out, float)
    ok = np.isfinite(mci_in) & np.isfinite(mci_out)
    b = MCIRegion.bins(mci_in[ok], mci_out[ok])
    if b.size == 0:
        return set()
    lo = b.min(axis=0) - 1
    hist = np.zeros(b.max(axis=0) - lo + 2, float)
    np.add.at(hist, (b[:, 0] - lo[0], b[:, 1] - lo[1]), 1)
    filled = ndimage.binary_fill_holes(ndimage.binary_closing(hist >= min_count))
    ii, jj = np.nonzero(filled)
    return {(int(i + lo[0]), int(j + lo[1])) for i, j in zip(ii, jj, strict=True)}


def _locus_core(
    mci_in: np.ndarray, mci_out: np.ndarray, level: float, sigma: float
) -> set[tuple[int, int]]:
    """Bins where the smoothed density of MCI pairs is at least ``level`` times its peak.

    The density is the 2-D histogram in ``BIN`` bins smoothed by a Gaussian of ``sigma`` bins;
    the region is the connected part holding the peak, with holes filled.  Its shape does not
    depend on the number of objects, only on how they are distributed.
    """
    mci_in, mci_out = np.asarray(mci_in, float), np.asarray(mci_out, float)
    ok = np.isfinite(mci_in) & np.isfinite(mci_out)
    if not ok.any():
        return set()
    b = MCIRegion.bins(mci_in[ok], mci_out[ok])
    pad = int(np.ceil(3 * sigma)) + 1
    lo = b.min(axis=0) - pad
    hist = np.zeros(b.max(axis=0) - lo + 1 + pad, float)
    np.add.at(hist, (b[:, 0] - lo[0], b[:, 1] - lo[1]), 1)
    if sigma > 0:
        hist = ndimage.gaussian_filter(hist, sigma, mode="constant")
    labels, _ = ndimage.label(hist >= level * hist.max())
    core = ndimage.binary_fill_holes(
        labels == labels[np.unravel_index(np.argmax(hist), hist.shape)]
    )
    ii, jj = np.nonzero(core)
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
    polygon = route1 & region.in_polygon(mci_in, mci_out)
    log.info(
        "candidates: %d (%d by the model MCI region, %d of them inside the polygon's MCI_out "
        "limit %.1f; %d bright rescue)",
        idx.size,
        route1.sum(),
        polygon.sum(),
        region.mci_out_min,
        route2.sum(),
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

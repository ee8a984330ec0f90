"""Simulated five-band postage stamps of cluster candidates, and the stamp normalisation.

This module depends on numpy only, so the training script (which runs in a separate Python 3.11
venv with CPU torch) can load it by file path; :mod:`phangs_products.pipeline.classify` uses the
same :func:`normalise_stamps` at inference time.

Generative model (all choices documented here; deterministic for a given seed)
------------------------------------------------------------------------------
Units and noise
    Stamps are ``(N, 5, size, size)`` float32 in e-/s on the 0.04"/px drizzled grid, bands
    F275W, F336W, F438W, F555W, F814W, with the PHANGS Vega zero points (``ZP_VEGA``).  The noise
    per pixel is the drizzled background noise of a standard 3-orbit visit (3 exposures,
    post-flash 12 e-, sky rate of a disk field, read noise 3.1 e-; ``SIGMA_SKY``) scaled by a random
    depth factor 0.8-1.6, plus Poisson noise of all light (sources and disk).  The noise is
    mildly correlated (a 3x3 binomial kernel, rescaled to the same per-pixel variance) like
    drizzled images.
Point-spread function
    Elliptical Moffat profiles evaluated at pixel centres.  PSF FWHM 2.0 px (2.2 px in F275W and
    F814W, as in ``sim_psf``); intrinsic sizes add in quadrature, and 0.46 px^2 is added to every
    FWHM^2 for the pixel-box integration (the variance of a 1-px box, 1/12 px^2, in FWHM^2 units).
Candidate brightness
    Total V magnitude uniform in ``v_mag_range`` (default 19.5-24.8, i.e. M_V -10.5 to -5.2 at
    9.84 Mpc; the faint end gives V S/N ~ 10-15 in a 4-px aperture, the paper's cut).
Colours
    Young-to-old cluster colour track (linear mix of a young blue and an old red Vega colour
    vector, m_band - m_V), plus dust with E(B-V) exponential (mean 0.2, max 1) and CCM89 R_V=3.1
    coefficients; stars are blue OB stars (60%) or red supergiants (40%); background galaxies are
    red and UV-faint; 0.15-0.3 mag scatter per band everywhere.
Classes (PHANGS/LEGUS scheme, Lee et al. 2022 Sect. 4.5)
    1. round cluster: EFF/Moffat (beta 1.3-2.5) with r_eff log-normal around 2.5 pc (sigma 0.7
       in ln), clipped to 0.5-10 pc, axis ratio 0.8-1.
    2. asymmetric/elongated cluster: (a) resolved (r_eff 2-10 pc) with axis ratio 0.3-0.65, or
       (b) a cluster with an off-centre secondary (star or small cluster) 1.5-4 px away holding
       15-60% of the primary's flux, or (c) both.
    3. compact association: 4-10 point-like peaks (minimum separation 1.8 px) within 5 px of the
       centre, each at least 15% of the brightest, plus diffuse light (FWHM 5-12 px, 20-60% of
       the flux); blue colours.
    4. not a cluster: (a) single star (40%), (b) star pair 1.5-5 px apart (25%), (c) background
       galaxy, extended (FWHM 3-10 px), axis ratio 0.3-1, optional bulge, red (20%),
       (d) artefact (15%): cosmic-ray-like sharp streak (2-10 px, not PSF-convolved) or 1-3 hot
       pixels, in F555W (the detection band) and with probability 0.3 in one other band.
Environment
    Smooth disk light (V 19.5-23.5 mag/arcsec^2 with disk colours and a +/-20% gradient);
    neighbours (Poisson mean 0-4 per stamp, at most 8; 15% of them clusters) at 5-22 px from the
    centre (7-22 px for class 3) with 3-150% of the candidate's flux; faint crowding stars
    (V 25.5-27.5, Poisson mean 0-10) at >= 4 px.  The candidate centre is the stamp's pixel
    ``size // 2`` plus a uniform sub-pixel offset of +/-0.5 px.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phangs_products.bands import band, survey_filters
from phangs_products.pipeline.instrument import CORE_FWHM
from phangs_products.pipeline.sim.exposure import BACKGROUND, READ_NOISE
from phangs_products.pipeline.sim.exposure import SKY_RATE as _SKY

#: Bands of the stamps, in order (the survey's five filters, from the band table).
BANDS = survey_filters()
#: Index of the V band.
V_INDEX = [band(f).label for f in BANDS].index("V")
#: The classes simulated (Lee et al. 2022 Sect. 4.5 scheme), the order of the model's outputs.
CLASS_CODES = (1, 2, 3, 4)


#: PHANGS Vega zero points (mag of 1 e-/s), from the band table.
ZP_VEGA = np.array([band(f).zp_vega for f in BANDS])
#: s, a standard 3-orbit visit (band table).
EXPTIME = np.array([band(f).exptime for f in BANDS])
#: e-/s/px, the simulator's sky.
SKY_RATE = np.array([_SKY[f] for f in BANDS])
N_EXP = band(BANDS[V_INDEX]).n_exp
POSTFLASH = BACKGROUND


#: Drizzled background noise per pixel, e-/s.
SIGMA_SKY = np.sqrt(N_EXP * (POSTFLASH + SKY_RATE * EXPTIME / N_EXP + READ_NOISE**2)) / EXPTIME


PSF_FWHM = np.array([CORE_FWHM[f] for f in BANDS])


PSF_BETA = 2.15


PIXEL_FWHM2 = 8.0 * np.log(2.0) / 12.0  # FWHM^2 of a 1-px box, px^2


#: Extinction A_band / E(B-V), CCM89 R_V = 3.1 at the pivots.
EXT_COEFF = np.array([6.05, 5.02, 4.12, 3.10, 1.83])


COLOUR_YOUNG = np.array([-1.3, -1.1, -0.2, 0.0, 0.25])


COLOUR_OLD = np.array([2.8, 1.2, 0.85, 0.0, -1.0])


COLOUR_RSG = np.array([4.0, 2.6, 1.4, 0.0, -1.6])


COLOUR_GALAXY = np.array([4.0, 2.5, 1.2, 0.0, -1.3])


COLOUR_DISK = np.array([2.0, 1.0, 0.6, 0.0, -0.9])


_NOT_V = np.arange(len(BANDS)) != V_INDEX


SUBTYPES = (
    "1-round",
    "2-elongated",
    "2-secondary",
    "2-both",
    "3-association",
    "4-star",
    "4-pair",
    "4-galaxy",
    "4-artefact",
)


@dataclass(frozen=True)
class StampSimConfig:
    """Parameters of the stamp simulator.

    Attributes
    ----------
    size : int
        Stamp side, px.
    distance_mpc : float
        Galaxy distance (sets the px -> pc scale; 1 px = 0.04").
    v_mag_range : tuple of float
        Range of the candidates' total V (F555W) Vega magnitude.
    class_fractions : tuple of float
        Fractions of classes 1-4.
    max_neighbours : float
        Upper end of the per-stamp Poisson mean of bright neighbours.
    max_faint : float
        Upper end of the per-stamp Poisson mean of faint crowding stars.
    """

    size: int = 32
    distance_mpc: float = 9.84
    v_mag_range: tuple[float, float] = (19.5, 24.8)
    class_fractions: tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)
    max_neighbours: float = 4.0
    max_faint: float = 10.0

    @property
    def pc_per_px(self) -> float:
        """Parsecs per 0.04" pixel."""
        return 0.04 / 206264.806 * self.distance_mpc * 1e6


class _Components:
    """Per-stamp list of up to ``k`` PSF-convolved elliptical Moffat components."""

    def __init__(self, n: int, k: int):
        self.x = np.zeros((n, k))
        self.y = np.zeros((n, k))
        self.flux = np.zeros((n, k, len(BANDS)))
        self.fwhm = np.zeros((n, k))  # intrinsic major-axis FWHM, px
        self.q = np.ones((n, k))
        self.theta = np.zeros((n, k))
        self.beta = np.full((n, k), PSF_BETA)
        self.used = np.zeros(n, int)

    def add(self, rows, x, y, flux, fwhm=0.0, q=1.0, theta=0.0, beta=PSF_BETA) -> None:
        """Append one component to each stamp in ``rows`` (silently dropped when full)."""
        rows = np.asarray(rows)
        if rows.size == 0:
            return
        slot = self.used[rows]
        ok = slot < self.x.shape[1]
        r, s = rows[ok], slot[ok]

        def sel(v):
            v = np.asarray(v, float)
            return np.broadcast_to(v, (rows.size, *v.shape[1:]) if v.ndim else rows.shape)[ok]

        self.x[r, s] = sel(x)
        self.y[r, s] = sel(y)
        self.flux[r, s] = sel(flux)
        self.fwhm[r, s] = sel(fwhm)
        self.q[r, s] = sel(q)
        self.theta[r, s] = sel(theta)
        self.beta[r, s] = sel(beta)
        self.used[r] += 1

    def render(self, size: int, chunk: int = 256) -> np.ndarray:
        """Images ``(n, 5, size, size)`` of all components."""
        n = self.x.shape[0]
        out = np.zeros((n, len(BANDS), size, size), np.float32)
        grid = np.arange(size, dtype=np.float32)
        for start in range(0, n, chunk):
            sl = slice(start, start + chunk)
            k = max(1, int(self.used[sl].max(initial=0)))
            dx = grid[None, None, None, :] - self.x[sl, :k, None, None].astype(np.float32)
            dy = grid[None, None, :, None] - self.y[sl, :k, None, None].astype(np.float32)
            ct = np.cos(self.theta[sl, :k])[..., None, None].astype(np.float32)
            st = np.sin(self.theta[sl, :k])[..., None, None].astype(np.float32)
            u = dx * ct + dy * st
            v = -dx * st + dy * ct
            beta = self.beta[sl, :k]
            c2 = 4.0 * (2.0 ** (1.0 / beta) - 1.0)  # alpha^2 = FWHM^2 / c2
            for psf in np.unique(PSF_FWHM):
                bands = np.flatnonzero(psf == PSF_FWHM)
                fmaj2 = self.fwhm[sl, :k] ** 2 + psf**2 + PIXEL_FWHM2
                fmin2 = (self.q[sl, :k] * self.fwhm[sl, :k]) ** 2 + psf**2 + PIXEL_FWHM2
                a2 = (fmaj2 / c2).astype(np.float32)[..., None, None]
                b2 = (fmin2 / c2).astype(np.float32)[..., None, None]
                norm = ((beta - 1.0) / np.pi).astype(np.float32)[..., None, None] / np.sqrt(a2 * b2)
                prof = norm * np.exp(
                    -beta.astype(np.float32)[..., None, None] * np.log1p(u * u / a2 + v * v / b2)
                )
                flux = self.flux[sl, :k][:, :, bands].astype(np.float32)
                out[sl, bands] += np.einsum("nkyx,nkb->nbyx", prof, flux)
        return out


def _rates(v_rate: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Per-band count rates (..., 5) of objects of V rate ``v_rate`` and colours m_b - m_V."""
    v_mag = ZP_VEGA[V_INDEX] - 2.5 * np.log10(v_rate)
    return 10.0 ** (-0.4 * (v_mag[..., None] + colour - ZP_VEGA))


def _dust(rng: np.random.Generator, shape: tuple[int, ...], mean: float) -> np.ndarray:
    ebv = np.minimum(rng.exponential(mean, shape), 1.0)
    return ebv[..., None] * (EXT_COEFF - EXT_COEFF[V_INDEX])


def _cluster_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    age = rng.uniform(0.0, 1.0, n) ** 1.5  # more young clusters
    col = COLOUR_YOUNG + age[:, None] * (COLOUR_OLD - COLOUR_YOUNG) + _dust(rng, (n,), 0.2)
    return col + rng.normal(0.0, 0.15, (n, len(BANDS))) * _NOT_V


def _star_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    red = rng.random(n) < 0.4
    col = np.where(red[:, None], COLOUR_RSG, COLOUR_YOUNG) + _dust(rng, (n,), 0.15)
    return col + rng.normal(0.0, 0.2, (n, len(BANDS))) * _NOT_V


def _reff_to_fwhm(reff_px: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Intrinsic FWHM of a Moffat/EFF profile of half-light radius ``reff_px``."""
    alpha = reff_px / np.sqrt(2.0 ** (1.0 / (beta - 1.0)) - 1.0)
    return 2.0 * alpha * np.sqrt(2.0 ** (1.0 / beta) - 1.0)


def _add_cluster(comp, rng, rows, cx, cy, v_rate, cfg, q_range, reff_range=None) -> None:
    n = rows.size
    beta = rng.uniform(1.3, 2.5, n)
    if reff_range is None:
        reff_pc = np.clip(np.exp(rng.normal(np.log(2.5), 0.7, n)), 0.5, 10.0)
    else:
        reff_pc = np.exp(rng.uniform(np.log(reff_range[0]), np.log(reff_range[1]), n))
    fwhm = _reff_to_fwhm(reff_pc / cfg.pc_per_px, beta)
    q = rng.uniform(*q_range, n)
    theta = rng.uniform(0, np.pi, n)
    comp.add(rows, cx, cy, _rates(v_rate, _cluster_colours(rng, n)), fwhm, q, theta, beta)


def _association(comp, rng, rows, cx, cy, v_rate) -> None:
    n = rows.size
    n_peaks = rng.integers(4, 11, n)
    diffuse = rng.uniform(0.2, 0.6, n)
    # candidate positions uniform in a 5-px disk; greedy minimum-separation selection
    m = 40
    r = 5.0 * np.sqrt(rng.random((n, m)))
    phi = rng.uniform(0, 2 * np.pi, (n, m))
    px, py = r * np.cos(phi), r * np.sin(phi)
    keep = np.zeros((n, m), bool)
    for j in range(m):
        d2 = (px - px[:, j : j + 1]) ** 2 + (py - py[:, j : j + 1]) ** 2
        clash = (keep & (d2 < 1.8**2)).any(axis=1)
        keep[:, j] = ~clash & (keep.sum(axis=1) < n_peaks)
    rel = np.where(keep, np.maximum(rng.uniform(0.15, 1.0, (n, m)) ** 1.5, 0.15), 0.0)
    rel /= rel.sum(axis=1, keepdims=True)
    stars_v = v_rate * (1.0 - diffuse)
    colour = COLOUR_YOUNG + _dust(rng, (n,), 0.25)
    for j in range(m):
        sel = keep[:, j]
        if not sel.any():
            continue
        col = colour[sel] + rng.normal(0.0, 0.25, (int(sel.sum()), len(BANDS))) * _NOT_V
        flux = _rates(stars_v[sel] * rel[sel, j], col)
        comp.add(rows[sel], cx[sel] + px[sel, j], cy[sel] + py[sel, j], flux)
    comp.add(
        rows,
        cx + rng.normal(0, 1.0, n),
        cy + rng.normal(0, 1.0, n),
        _rates(v_rate * diffuse, colour),
        rng.uniform(5.0, 12.0, n),
        rng.uniform(0.5, 1.0, n),
        rng.uniform(0, np.pi, n),
        rng.uniform(1.5, 3.0, n),
    )


def _artefacts(rng, cx, cy, v_rate, size) -> np.ndarray:
    """Images (n, 5, size, size) of cosmic-ray streaks or hot pixels (not PSF-convolved)."""
    n = cx.size
    img = np.zeros((n, len(BANDS), size, size), np.float32)
    streak = rng.random(n) < 0.6
    length = np.where(streak, rng.uniform(2.0, 10.0, n), rng.integers(0, 3, n).astype(float))
    phi = rng.uniform(0, np.pi, n)
    other = np.where(rng.random(n) < 0.3, rng.choice([0, 1, 2, 4], n), -1)
    t = np.linspace(-0.5, 0.5, 24)
    xs = cx[:, None] + t[None, :] * length[:, None] * np.cos(phi)[:, None]
    ys = cy[:, None] + t[None, :] * length[:, None] * np.sin(phi)[:, None]
    ix = np.clip(np.round(xs).astype(int), 0, size - 1)
    iy = np.clip(np.round(ys).astype(int), 0, size - 1)
    w = (v_rate / t.size)[:, None] * rng.uniform(0.5, 1.5, (n, t.size))
    idx = np.broadcast_to(np.arange(n)[:, None], ix.shape)
    v_img = np.zeros((n, size, size), np.float32)
    np.add.at(v_img, (idx, iy, ix), w.astype(np.float32))
    img[:, V_INDEX] = v_img
    scale = rng.uniform(0.3, 3.0, n)
    for b in (0, 1, 2, 4):
        sel = other == b
        img[sel, b] = v_img[sel] * scale[sel, None, None]
    return img


def simulate_stamps(
    n: int, seed: int, config: StampSimConfig | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate ``n`` labelled five-band stamps (see the module docstring for the recipe).

    Parameters
    ----------
    n : int
        Number of stamps.
    seed : int
        Random seed (same seed, same stamps).
    config : StampSimConfig, optional
        Simulator parameters.

    Returns
    -------
    stamps : ndarray
        float32 ``(n, 5, size, size)`` in e-/s, band order ``BANDS``.
    classes : ndarray
        int16 ``(n,)`` class codes 1-4.
    subtypes : ndarray
        int8 ``(n,)`` index into ``SUBTYPES``.
    """
    cfg = config or StampSimConfig()
    rng = np.random.default_rng(seed)
    size = cfg.size
    frac = np.asarray(cfg.class_fractions, float)
    classes = rng.choice(np.array(CLASS_CODES, np.int16), n, p=frac / frac.sum())
    subtypes = np.zeros(n, np.int8)
    comp = _Components(n, 28)
    c = size // 2
    cx = c + rng.uniform(-0.5, 0.5, n)
    cy = c + rng.uniform(-0.5, 0.5, n)
    v_mag = rng.uniform(*cfg.v_mag_range, n)
    v_rate = 10.0 ** (-0.4 * (v_mag - ZP_VEGA[V_INDEX]))
    extra = np.zeros((n, len(BANDS), size, size), np.float32)

    # class 1: round cluster
    rows = np.flatnonzero(classes == 1)
    _add_cluster(comp, rng, rows, cx[rows], cy[rows], v_rate[rows], cfg, (0.8, 1.0))
    subtypes[rows] = SUBTYPES.index("1-round")

    # class 2: elongated and/or off-centre secondary
    rows = np.flatnonzero(classes == 2)
    kind = rng.choice(3, rows.size, p=[0.4, 0.35, 0.25])
    names = ("2-elongated", "2-secondary", "2-both")
    subtypes[rows] = np.array([SUBTYPES.index(s) for s in names])[kind]
    elong = kind != 1
    sec = kind != 0
    ratio = np.where(sec, rng.uniform(0.15, 0.6, rows.size), 0.0)
    v_main = v_rate[rows] / (1.0 + ratio)
    r_el, r_round = rows[elong], rows[~elong]
    _add_cluster(comp, rng, r_el, cx[r_el], cy[r_el], v_main[elong], cfg, (0.3, 0.65), (2.0, 10.0))
    _add_cluster(comp, rng, r_round, cx[r_round], cy[r_round], v_main[~elong], cfg, (0.7, 1.0))
    r_sec = rows[sec]
    m = r_sec.size
    rad = rng.uniform(1.5, 4.0, m)
    phi = rng.uniform(0, 2 * np.pi, m)
    point = rng.random(m) < 0.5
    colours = np.where(point[:, None], _star_colours(rng, m), _cluster_colours(rng, m))
    comp.add(
        r_sec,
        cx[r_sec] + rad * np.cos(phi),
        cy[r_sec] + rad * np.sin(phi),
        _rates(v_main[sec] * ratio[sec], colours),
        np.where(point, 0.0, rng.uniform(0.3, 2.0, m)),
    )

    # class 3: compact association
    rows = np.flatnonzero(classes == 3)
    _association(comp, rng, rows, cx[rows], cy[rows], v_rate[rows])
    subtypes[rows] = SUBTYPES.index("3-association")

    # class 4: star, star pair, background galaxy, artefact
    rows = np.flatnonzero(classes == 4)
    kind = rng.choice(4, rows.size, p=[0.40, 0.25, 0.20, 0.15])
    names = ("4-star", "4-pair", "4-galaxy", "4-artefact")
    subtypes[rows] = np.array([SUBTYPES.index(s) for s in names])[kind]
    r = rows[kind == 0]
    comp.add(r, cx[r], cy[r], _rates(v_rate[r], _star_colours(rng, r.size)))
    r = rows[kind == 1]
    f2 = rng.uniform(0.2, 1.0, r.size)
    d = rng.uniform(1.5, 5.0, r.size)
    phi = rng.uniform(0, 2 * np.pi, r.size)
    w1, w2 = 1.0 / (1.0 + f2), f2 / (1.0 + f2)
    ux, uy = np.cos(phi) * d, np.sin(phi) * d
    col1, col2 = _star_colours(rng, r.size), _star_colours(rng, r.size)
    comp.add(r, cx[r] - w2 * ux, cy[r] - w2 * uy, _rates(v_rate[r] * w1, col1))
    comp.add(r, cx[r] + w1 * ux, cy[r] + w1 * uy, _rates(v_rate[r] * w2, col2))
    r = rows[kind == 2]
    bulge = np.where(rng.random(r.size) < 0.5, rng.uniform(0.2, 0.5, r.size), 0.0)
    gcol = COLOUR_GALAXY + rng.normal(0.0, 0.3, (r.size, len(BANDS))) * _NOT_V
    theta = rng.uniform(0, np.pi, r.size)
    q = rng.uniform(0.3, 1.0, r.size)
    disk_fwhm = rng.uniform(3.0, 10.0, r.size)
    disk_beta = rng.uniform(1.5, 4.0, r.size)
    comp.add(r, cx[r], cy[r], _rates(v_rate[r] * (1 - bulge), gcol), disk_fwhm, q, theta, disk_beta)
    bulge_v = np.maximum(v_rate[r] * bulge, 1e-9)
    comp.add(
        r, cx[r], cy[r], _rates(bulge_v, gcol + 0.3), rng.uniform(0.5, 2.0, r.size), q, theta, 2.5
    )
    r = rows[kind == 3]
    extra[r] = _artefacts(rng, cx[r], cy[r], v_rate[r], size)

    # neighbours (bright) and faint crowding stars
    n_nb = np.minimum(rng.poisson(rng.uniform(0.0, cfg.max_neighbours, n)), 8)
    for j in range(8):
        rows = np.flatnonzero(n_nb > j)
        m = rows.size
        rad = rng.uniform(np.where(classes[rows] == 3, 7.0, 5.0), 22.0)
        phi = rng.uniform(0, 2 * np.pi, m)
        rel = np.exp(rng.uniform(np.log(0.03), np.log(1.5), m))
        is_cl = rng.random(m) < 0.15
        col = np.where(is_cl[:, None], _cluster_colours(rng, m), _star_colours(rng, m))
        comp.add(
            rows,
            cx[rows] + rad * np.cos(phi),
            cy[rows] + rad * np.sin(phi),
            _rates(v_rate[rows] * rel, col),
            np.where(is_cl, rng.uniform(0.5, 3.0, m), 0.0),
            rng.uniform(0.6, 1.0, m),
            rng.uniform(0, np.pi, m),
            np.where(is_cl, rng.uniform(1.3, 2.5, m), PSF_BETA),
        )
    n_faint = np.minimum(rng.poisson(rng.uniform(0.0, cfg.max_faint, n)), 28)
    for j in range(28):
        rows = np.flatnonzero(n_faint > j)
        if rows.size == 0:
            break
        fx = rng.uniform(0, size - 1, rows.size)
        fy = rng.uniform(0, size - 1, rows.size)
        far = np.hypot(fx - cx[rows], fy - cy[rows]) >= 4.0
        rows, fx, fy = rows[far], fx[far], fy[far]
        vrate = 10 ** (-0.4 * (rng.uniform(25.5, 27.5, rows.size) - ZP_VEGA[V_INDEX]))
        comp.add(rows, fx, fy, _rates(vrate, _star_colours(rng, rows.size)))

    img = comp.render(size) + extra

    # disk light with a gradient, then noise
    mu_v = rng.uniform(19.5, 23.5, n)
    disk_v = 10 ** (-0.4 * (mu_v - ZP_VEGA[V_INDEX])) / 625.0  # e-/s/px (625 px per arcsec^2)
    disk = _rates(disk_v, COLOUR_DISK + rng.normal(0, 0.2, (n, len(BANDS))) * _NOT_V)
    grad = rng.uniform(-0.2, 0.2, (n, 2)) / size
    g = np.arange(size) - c
    plane = (
        1.0 + grad[:, 0, None, None] * g[None, None, :] + grad[:, 1, None, None] * g[None, :, None]
    )
    img += (disk[:, :, None, None] * plane[:, None]).astype(np.float32)

    depth = rng.uniform(0.8, 1.6, n)
    sigma = (SIGMA_SKY[None, :] * depth[:, None]).astype(np.float32)
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    k = np.array([0.25, 0.5, 0.25], np.float32)
    for axis in (-1, -2):
        noise = k[0] * np.roll(noise, 1, axis) + k[1] * noise + k[2] * np.roll(noise, -1, axis)
    noise /= np.float32(np.sum(k**2))  # back to unit variance (the 2-D factor is sum(k^2)^2)
    var_src = np.maximum(img, 0.0) / EXPTIME[None, :, None, None].astype(np.float32)
    stamps = img + noise * np.sqrt(sigma[:, :, None, None] ** 2 + var_src)
    return stamps.astype(np.float32), classes, subtypes

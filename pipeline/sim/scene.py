"""The simulated scene: a galaxy disk, field stars, star clusters and stellar associations.

Everything here is truth in sky coordinates; :mod:`phangs_products.pipeline.sim.exposure` turns
it into pixels.  The numbers are the paper's where it gives them and documented choices otherwise:

Disk (diffuse light)
    Exponential disk centred on the galaxy (Lee et al. 2022 Table 1 position and inclination;
    position angle ``DISK_PA`` = 20 deg, a choice close to NGC 628's), scale length
    ``DISK_SCALE_KPC`` = 2.5 kpc and face-on central V surface brightness ``DISK_MU0_V`` =
    20.5 mag/arcsec^2 (typical of the PHANGS disks; choices).  Its colours are those of a 3 Gyr
    BC03 SSP with E(B-V) = 0.1.  Optional two-armed logarithmic spiral (pitch 20 deg) adds light
    with the colours of a 30 Myr SSP, ``ARM_AMPLITUDE`` = 0.5 of the smooth disk in V at the
    crest.  All SSP colours come from :mod:`phangs_products.pipeline.stellarpops.ssp`.
Field stars
    Point sources.  V magnitudes follow an exponential luminosity function
    dN/dV ~ 10^(0.3 V) between V = 21.5 and 27.5 (M_V ~ -8.5 to -2.5 at NGC 628; the slope is a
    choice typical of the upper main sequence plus supergiants).  60% are blue (upper main
    sequence, m - V = -1.3, -1.1, -0.2, 0, +0.25 in F275W, F336W, F438W, F555W, F814W) and 40%
    red (red supergiants and bright giants: +4.0, +2.6, +1.4, 0, -1.6), each colour with
    0.15 mag Gaussian scatter (representative colours; a choice).
Star clusters
    EFF (Elson, Fall & Freeman 1987) profiles I(r) ~ (1 + r^2/a^2)^(-gamma/2) with gamma uniform
    in 2.2-3.2 (the EFF87 range), truncated at ``TRUNCATION`` = 10 a, with effective
    (half-light) radius r_eff log-uniform in 0.5-10 pc (Lee et al. 2022 Sect. 4.2), age
    log-uniform in 1 Myr-3 Gyr, mass log-uniform in 10^3.3-10^5.3 Msun (flat in log M so that
    tests cover the range evenly; not a realistic mass function) and E(B-V) uniform in 0-0.5.
    Their five-band Vega magnitudes come from the BC03 grid
    (:func:`phangs_products.pipeline.stellarpops.ssp.cluster_magnitudes`).  Clusters younger
    than 100 Myr prefer the spiral arms.
Stellar associations
    Loose Gaussian groups of young blue stars (V 22.5-26.5), FWHM log-uniform in 10-100 pc,
    centred preferentially on the arms; their members are point sources of kind
    ``assoc_star``.  Each draws 15-45 members, of which it keeps at most as many as leave their
    mean separation inside the half-light radius at ``ASSOC_MIN_SEPARATION`` (2) F555W PSF
    FWHMs: associations are groups HST resolves into stars, denser groups are star clusters
    (their own kind).  At 9.84 Mpc that caps a 10 pc association at 3 members, 16 pc at 9 and
    32 pc at 39.  Without the cap, the 10-18 pc associations of the medium field (15-45 members
    within 2-5 px) were measured as 2-8 catalog sources each, mostly typed extended: blends,
    not stars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from astropy.table import Table

from phangs_products.bands import Band, Galaxy, band, galaxy, galaxy_table
from phangs_products.pipeline.instrument import flc_scale
from phangs_products.pipeline.stellarpops.extinction import foreground_extinction
from phangs_products.pipeline.stellarpops.ssp import absolute_magnitudes, cluster_magnitudes
from phangs_products.spec import BandInfo

if TYPE_CHECKING:
    from phangs_products.pipeline.sim.config import SimConfig


DISK_PA = 20.0  # deg, position angle of the major axis (choice, close to NGC 628's)


DISK_SCALE_KPC = 2.5  # kpc, exponential scale length (choice)


DISK_MU0_V = 20.5  # mag/arcsec^2, face-on central V surface brightness (choice)


DISK_AGE_MYR, DISK_EBV = 3000.0, 0.1  # colours of the smooth disk


ARM_AGE_MYR, ARM_EBV = 30.0, 0.2  # colours of the spiral-arm light


ARM_AMPLITUDE = 0.5  # arm crest / smooth disk, V band


ARM_PITCH = 20.0  # deg


ARM_SHARPNESS = 4  # arm profile ((1 + cos)/2)^n


FIELD_OFFSET = (60.0, 60.0)  # arcsec east, north of the galaxy centre (field centre)


STAR_V_RANGE = (21.5, 27.5)


STAR_LF_SLOPE = 0.3  # dlog10 N / dV


BLUE = {"F275W": -1.3, "F336W": -1.1, "F438W": -0.2, "F555W": 0.0, "F814W": 0.25}


RED = {"F275W": 4.0, "F336W": 2.6, "F438W": 1.4, "F555W": 0.0, "F814W": -1.6}


ASSOC_MIN_SEPARATION = 2.0  # F555W PSF FWHMs: mean member separation inside r_half (choice)


TRUNCATION = 10.0  # EFF truncation radius in units of the core radius a


KINDS = ("star", "assoc_star", "cluster")


def vega_rate(mag: np.ndarray | float, filt: str, instrument: str = "WFC3/UVIS") -> np.ndarray:
    """Count rate (e-/s) of a Vega magnitude with the PHANGS zero point of the band."""
    return 10.0 ** (-0.4 * (np.asarray(mag, float) - band(filt, instrument).zp_vega))


def field_center(gal: Galaxy) -> tuple[float, float]:
    """RA, Dec (deg) of the simulated field: ``FIELD_OFFSET`` from the galaxy centre."""
    cosd = math.cos(math.radians(gal.dec))
    return gal.ra + FIELD_OFFSET[0] / 3600.0 / cosd, gal.dec + FIELD_OFFSET[1] / 3600.0


def _inclination(gal: Galaxy) -> float:
    table = galaxy_table()
    row = table[table["target"] == gal.target]
    return float(row["incl"][0]) if len(row) else 0.0


def eff_shape(r_eff_px: np.ndarray, gamma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Core radius a and truncation radius (px) of truncated EFF profiles of given r_eff.

    For I(r) ~ (1 + r^2/a^2)^(-beta), beta = gamma/2, truncated at R_t = c a, the enclosed
    fraction is [1 - (1 + r^2/a^2)^(1-beta)] / [1 - q] with q = (1 + c^2)^(1-beta); solving
    for one half gives r_eff / a = sqrt((0.5 (1 + q))^(1/(1-beta)) - 1).

    Parameters
    ----------
    r_eff_px : ndarray
        Half-light radii, px.
    gamma : ndarray
        EFF power-law slopes (> 2).

    Returns
    -------
    a, r_t : ndarray
        Core and truncation radii, px.
    """
    beta = np.asarray(gamma, float) / 2.0
    q = (1.0 + TRUNCATION**2) ** (1.0 - beta)
    ratio = np.sqrt((0.5 * (1.0 + q)) ** (1.0 / (1.0 - beta)) - 1.0)
    a = np.asarray(r_eff_px, float) / ratio
    return a, TRUNCATION * a


@dataclass(frozen=True)
class DiskModel:
    """Surface brightness of the galaxy disk (module doc) in each band.

    Attributes
    ----------
    ra0, dec0 : float
        Galaxy centre, deg.
    incl, pa : float
        Inclination and major-axis position angle, deg.
    scale_arcsec : float
        Exponential scale length, arcsec.
    mu0_v : float
        Face-on central V surface brightness, mag/arcsec^2.
    arms : bool
        Add the spiral arms.
    """

    ra0: float
    dec0: float
    incl: float
    pa: float
    scale_arcsec: float
    mu0_v: float
    arms: bool

    @classmethod
    def for_galaxy(cls, gal: Galaxy, arms: bool = True) -> DiskModel:
        """The disk of a survey galaxy."""
        scale = DISK_SCALE_KPC * 1e3 / (gal.distance_mpc * 1e6) * 206264.806
        return cls(gal.ra, gal.dec, _inclination(gal), DISK_PA, scale, DISK_MU0_V, arms)

    def _plane(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Radius (arcsec) and azimuth (rad) in the disk plane."""
        cosd = math.cos(math.radians(self.dec0))
        xi = (np.asarray(ra) - self.ra0) * cosd * 3600.0  # east
        eta = (np.asarray(dec) - self.dec0) * 3600.0  # north
        pa = math.radians(self.pa)
        major = xi * math.sin(pa) + eta * math.cos(pa)
        minor = (xi * math.cos(pa) - eta * math.sin(pa)) / math.cos(math.radians(self.incl))
        return np.hypot(major, minor), np.arctan2(minor, major)

    def arm_profile(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Spiral-arm pattern in 0-1 (1 on an arm crest; 0 everywhere without arms)."""
        if not self.arms:
            return np.zeros(np.shape(ra))
        r, theta = self._plane(ra, dec)
        phase = 2.0 * (
            theta
            - np.log(np.maximum(r, 1.0) / self.scale_arcsec) / math.tan(math.radians(ARM_PITCH))
        )
        return ((1.0 + np.cos(phase)) / 2.0) ** ARM_SHARPNESS

    def rate(
        self, ra: np.ndarray, dec: np.ndarray, filt: str, instrument: str = "WFC3/UVIS"
    ) -> np.ndarray:
        """Count rate per FLC pixel (e-/s/px) of the disk light in a band."""
        r, _ = self._plane(ra, dec)
        old, young = _disk_colours(filt, instrument)
        mu_v = self.mu0_v + 2.5 / math.log(10.0) * r / self.scale_arcsec
        zp = band(filt, instrument).zp_vega
        base = 10.0 ** (-0.4 * (mu_v - zp)) * flc_scale(instrument) ** 2
        arm = ARM_AMPLITUDE * self.arm_profile(ra, dec)
        return base * (10.0 ** (-0.4 * old) + arm * 10.0 ** (-0.4 * young))


def _disk_colours(filt: str, instrument: str = "WFC3/UVIS") -> tuple[float, float]:
    """m_band - m_V of the smooth disk and of the arm light (BC03 SSP colours)."""
    mags = absolute_magnitudes(
        np.array([DISK_AGE_MYR, ARM_AGE_MYR]),
        np.array([DISK_EBV, ARM_EBV]),
        [BandInfo(filt, instrument), BandInfo("F555W")],
    )
    colour = mags[:, 0] - mags[:, 1]
    return float(colour[0]), float(colour[1])


def resolved_members(fwhm_arcsec: np.ndarray) -> np.ndarray:
    """Most members a Gaussian group of this FWHM holds while HST still resolves it.

    Half the members lie within r_half = FWHM/2; their mean separation 1/sqrt(density) is kept
    at ``ASSOC_MIN_SEPARATION`` F555W PSF FWHMs or more: n <= pi FWHM^2 / (2 d^2), at least 2.
    """
    d = ASSOC_MIN_SEPARATION * band("F555W").psf_fwhm
    n = np.floor(np.pi * np.asarray(fwhm_arcsec, float) ** 2 / (2.0 * d**2))
    return np.maximum(n, 2).astype(np.int64)


def _lf_sample(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """V magnitudes from dN/dV ~ 10^(STAR_LF_SLOPE V) between lo and hi (inverse CDF)."""
    k = STAR_LF_SLOPE
    u = rng.uniform(0.0, 1.0, n)
    return np.log10(10 ** (k * lo) + u * (10 ** (k * hi) - 10 ** (k * lo))) / k


def _star_mags(
    rng: np.random.Generator, vmag: np.ndarray, blue: np.ndarray, bands: tuple[Band, ...]
) -> np.ndarray:
    """Vega magnitudes (N, n_band) of stars of given V and population (module doc).

    A band takes the colours of the WFC3/UVIS filter of its PHANGS label (ACS F435W those of
    F438W).
    """
    out = np.empty((vmag.size, len(bands)))
    for j, facts in enumerate(bands):
        twin = next(f for f in BLUE if band(f).label == facts.label)
        base = np.where(blue, BLUE[twin], RED[twin])
        scatter = 0.0 if facts.label == "V" else 0.15
        out[:, j] = vmag + base + rng.normal(0.0, scatter, vmag.size)
    return out


class _Sampler:
    """Uniform or arm-weighted random positions over the field (deg)."""

    def __init__(
        self,
        rng: np.random.Generator,
        center: tuple[float, float],
        width: float,
        height: float,
        disk: DiskModel,
    ) -> None:
        self.rng, self.center, self.disk = rng, center, disk
        self.width, self.height = width, height
        self.cosd = math.cos(math.radians(center[1]))

    def uniform(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        ra = self.center[0] + self.rng.uniform(-0.5, 0.5, n) * self.width / self.cosd
        dec = self.center[1] + self.rng.uniform(-0.5, 0.5, n) * self.height
        return ra, dec

    def on_arms(self, n: int, floor: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
        """Positions with probability ~ floor + (1 - floor) * arm profile (rejection)."""
        if n == 0:
            return np.zeros(0), np.zeros(0)
        ras, decs, have = [], [], 0
        while have < n:
            ra, dec = self.uniform(max(4 * (n - have), 16))
            keep = self.rng.uniform(0, 1, ra.size) < floor + (1 - floor) * self.disk.arm_profile(
                ra, dec
            )
            ras.append(ra[keep])
            decs.append(dec[keep])
            have += int(keep.sum())
        return np.concatenate(ras)[:n], np.concatenate(decs)[:n]


def build_scene(
    config: SimConfig,
    field_size_deg: tuple[float, float],
    center: tuple[float, float] | None = None,
    area: float | None = None,
) -> tuple[Table, Table, DiskModel]:
    """Truth of the scene.

    Parameters
    ----------
    config : SimConfig
        Simulation configuration (target, seed, numbers of objects, bands).
    field_size_deg : (float, float)
        Width (RA) and height (Dec) of the area to populate, deg.
    center : (float, float), optional
        RA, Dec (deg) of the area's centre (default :func:`field_center`).
    area : float, optional
        Area factor scaling the numbers of objects (default ``config.area_factor``; several
        pointings populate a wider area with the same density).

    Returns
    -------
    truth : Table
        One row per object: ``id``, ``kind`` (star, assoc_star, cluster), ``ra``, ``dec`` (deg),
        ``r_eff_pc``, ``eff_gamma``, ``age_myr``, ``mass``, ``ebv`` (-1 where not applicable),
        ``assoc_id`` (0 = none) and per band ``<F>_vega`` (mag) and ``<F>_rate`` (e-/s).
    associations : Table
        ``assoc_id``, ``ra``, ``dec`` (deg), ``fwhm_pc``, ``n_members``.
    disk : DiskModel
        The diffuse light.
    """
    rng = np.random.default_rng([config.seed, 0])
    gal = galaxy(config.target)
    bands = tuple(config.facts(f) for f in config.bands)  # instrument and filter
    disk = DiskModel.for_galaxy(gal, arms=config.spiral_arms)
    center = field_center(gal) if center is None else center
    width, height = field_size_deg
    sampler = _Sampler(rng, center, width, height, disk)
    area = config.area_factor if area is None else area
    pc_per_arcsec = gal.distance_mpc * 1e6 / 206264.806

    parts: list[dict[str, np.ndarray]] = []

    def add(kind: str, ra: np.ndarray, dec: np.ndarray, mags: np.ndarray, **extra) -> None:
        n = ra.size
        row = {
            "kind": np.full(n, kind),
            "ra": ra,
            "dec": dec,
            "r_eff_pc": np.zeros(n),
            "eff_gamma": np.zeros(n),
            "age_myr": np.full(n, -1.0),
            "mass": np.full(n, -1.0),
            "ebv": np.full(n, -1.0),
            "assoc_id": np.zeros(n, int),
            "mags": mags,
        }
        row.update(extra)
        parts.append(row)

    # field stars
    n_stars = round(config.n_stars * area)
    vmag = _lf_sample(rng, n_stars, *STAR_V_RANGE)
    blue = rng.uniform(0, 1, n_stars) < 0.6
    ra, dec = sampler.uniform(n_stars)
    add("star", ra, dec, _star_mags(rng, vmag, blue, bands))

    # stellar associations
    n_assoc = max(1, round(config.n_associations * area)) if config.n_associations else 0
    a_ra, a_dec = sampler.on_arms(n_assoc)
    fwhm_pc = 10 ** rng.uniform(1.0, 2.0, n_assoc)
    drawn = rng.integers(15, 46, n_assoc)
    members = np.minimum(drawn, resolved_members(fwhm_pc / pc_per_arcsec))
    for i in range(n_assoc):
        n, k = int(drawn[i]), int(members[i])  # all drawn, the first k kept: same random stream
        sigma_deg = fwhm_pc[i] / 2.3548 / pc_per_arcsec / 3600.0
        m_ra = a_ra[i] + rng.normal(0, sigma_deg, n) / sampler.cosd
        m_dec = a_dec[i] + rng.normal(0, sigma_deg, n)
        vm = _lf_sample(rng, n, 22.5, 26.5)
        mags = _star_mags(rng, vm, np.ones(n, bool), bands)
        add("assoc_star", m_ra[:k], m_dec[:k], mags[:k], assoc_id=np.full(k, i + 1))
    associations = Table(
        {
            "assoc_id": np.arange(1, n_assoc + 1),
            "ra": a_ra,
            "dec": a_dec,
            "fwhm_pc": fwhm_pc,
            "n_members": members,
        }
    )
    associations["ra"].unit = associations["dec"].unit = "deg"
    associations["fwhm_pc"].unit = "pc"

    # star clusters
    n_cl = round(config.n_clusters * area)
    age = 10 ** rng.uniform(0.0, math.log10(3000.0), n_cl)
    mass = 10 ** rng.uniform(3.3, 5.3, n_cl)
    ebv = rng.uniform(0.0, 0.5, n_cl)
    r_eff = 10 ** rng.uniform(math.log10(0.5), 1.0, n_cl)
    gamma = rng.uniform(2.2, 3.2, n_cl)
    young = age < 100.0
    c_ra, c_dec = sampler.uniform(n_cl)
    y_ra, y_dec = sampler.on_arms(int(young.sum()))
    c_ra[young], c_dec[young] = y_ra, y_dec
    if n_cl:
        mags = cluster_magnitudes(age, mass, ebv, gal.distance_mpc, list(bands))
    else:
        mags = np.zeros((0, len(bands)))
    add(
        "cluster",
        c_ra,
        c_dec,
        mags,
        r_eff_pc=r_eff,
        eff_gamma=gamma,
        age_myr=age,
        mass=mass,
        ebv=ebv,
    )

    truth = Table()
    total = sum(p["ra"].size for p in parts)
    truth["id"] = np.arange(1, total + 1)
    for key in ("kind", "ra", "dec", "r_eff_pc", "eff_gamma", "age_myr", "mass", "ebv", "assoc_id"):
        truth[key] = np.concatenate([p[key] for p in parts])
    all_mags = np.concatenate([p["mags"] for p in parts])
    # Milky Way foreground: the same A_band for every object of a band; truth stays unreddened
    a_mw = foreground_extinction(config.ebv_mw, list(bands))
    for j, facts in enumerate(bands):
        filt = facts.filter
        truth[f"{filt}_vega"] = all_mags[:, j]
        truth[f"{filt}_rate"] = vega_rate(all_mags[:, j] + a_mw[j], filt, facts.instrument)
        truth[f"{filt}_vega"].unit = "mag"
        truth[f"{filt}_rate"].unit = "electron / s"
    truth["ra"].unit = truth["dec"].unit = "deg"
    truth["r_eff_pc"].unit = "pc"
    truth["age_myr"].unit = "Myr"
    truth["mass"].unit = "solMass"
    truth["ebv"].unit = "mag"
    truth.meta.update(
        {
            "target": config.target,
            "field": config.field,
            **({"fields": list(config.pointing_fields)} if config.pointings > 1 else {}),
            "seed": config.seed,
            **(
                {"instruments": dict(zip(config.bands, config.instruments, strict=True))}
                if any(i != "WFC3/UVIS" for i in config.instruments)
                else {}
            ),
            "distance_mpc": gal.distance_mpc,
            **({"ebv_mw": config.ebv_mw, "a_mw": a_mw.tolist()} if config.ebv_mw else {}),
            "comment": "rates are total count rates (e-/s) with the PHANGS Vega zero points"
            + (" after the Milky Way foreground (a_mw per band)" if config.ebv_mw else "")
            + "; vega magnitudes are without it; "
            "-1 = not applicable; assoc_id 0 = not in an association",
        }
    )
    return truth, associations, disk

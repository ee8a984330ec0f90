"""Milky Way foreground A_band of every survey band against an independent calculation.

The pipeline takes A_band from the shipped SSP grid (BC03 1 Gyr solar SSP reddened with CCM89
R_V = 3.1 before integration through each band).  The check here integrates a 7000 K blackbody
(the source spectrum of Schlafly & Finkbeiner 2011) reddened with ``dust_extinction``'s CCM89
through the same total-system throughputs (astro-sedpy / tynt curves named in the grid's
``BANDS`` extension), photon-counting, with no code shared with the grid or the pipeline.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.modeling.physical_models import BlackBody
from astropy.table import Table

from phangs_products.bands import data_path
from phangs_products.errors import PhangsProductsError
from phangs_products.pipeline.stellarpops.extinction import foreground_extinction
from phangs_products.pipeline.stellarpops.ssp import grid_path
from phangs_products.spec import BandInfo

#: 7000 K blackbody vs the 1 Gyr SSP: measured differences are <= 0.0065 mag (F275W, whose
#: red leak sees the spectrum) and <= 0.004 mag in the other bands at E(B-V) = 0.1.
TOLERANCE = 0.01


def survey_bands() -> list[BandInfo]:
    """Every PHANGS-HST band with a zero point in the band table (WFC3 prime, ACS archival)."""
    table = Table.read(data_path("hst_bands.ecsv"))
    return [
        BandInfo(str(r["filter"]), str(r["instrument"]))
        for r in table
        if not np.ma.is_masked(r["zp_vega_phangs"]) and str(r["zp_vega_phangs"]) != ""
    ]


def throughput(band: BandInfo) -> tuple[np.ndarray, np.ndarray]:
    """Wavelength (Angstrom) and total-system throughput of a band, from its named source."""
    with fits.open(grid_path()) as hdul:
        rows = hdul["BANDS"].data
        (source,) = [
            str(r["SOURCE"])
            for r in rows
            if r["FILTER"].strip() == band.filter and r["INSTRUMENT"].strip() == band.instrument
        ]
    package, _, name = source.split(" ", 2)
    if package == "tynt":
        tynt = pytest.importorskip("tynt")
        curve = tynt.FilterGenerator().reconstruct(name)
        return np.asarray(curve.wavelength.to_value(u.AA)), np.asarray(curve.transmittance)
    observate = pytest.importorskip("sedpy.observate")
    curve = observate.load_filters([name])[0]
    return np.asarray(curve.wavelength), np.asarray(curve.transmission)


def independent_a_band(band: BandInfo, ebv: float, temperature: float = 7000.0) -> float:
    """A_band of a blackbody reddened with dust_extinction CCM89 (R_V = 3.1)."""
    ccm89 = pytest.importorskip("dust_extinction.parameter_averages").CCM89(Rv=3.1)
    wave, thru = throughput(band)
    keep = (thru > 0) & (wave > 1000.0)  # CCM89 holds from 1000 A (10 per micron)
    wave, thru = wave[keep], thru[keep]
    flam = BlackBody(temperature * u.K)(wave * u.AA).to_value(
        u.erg / u.s / u.cm**2 / u.AA / u.sr, equivalencies=u.spectral_density(wave * u.AA)
    )
    dimmed = flam * ccm89.extinguish(wave * u.AA, Ebv=ebv)
    return float(
        -2.5
        * np.log10(
            np.trapezoid(dimmed * thru * wave, wave) / np.trapezoid(flam * thru * wave, wave)
        )
    )


def test_survey_bands_are_the_eight_of_the_grid():
    bands = survey_bands()
    assert len(bands) == 8
    assert sum(b.instrument == "WFC3/UVIS" for b in bands) == 5


@pytest.mark.parametrize("band", survey_bands(), ids=lambda b: f"{b.instrument}-{b.filter}")
def test_a_band_matches_an_independent_calculation(band):
    ours = float(foreground_extinction(0.1, [band])[0])
    check = independent_a_band(band, 0.1)
    assert ours == pytest.approx(check, abs=TOLERANCE)
    # and the band's A/E(B-V) is that of CCM89 near its pivot (1.8 in I to 6.3 in NUV)
    assert 1.7 < ours / 0.1 < 6.5


def test_a_band_scales_with_ebv_and_is_zero_without_reddening():
    bands = survey_bands()
    assert np.all(foreground_extinction(0.0, bands) == 0.0)
    a1, a3 = foreground_extinction(0.1, bands), foreground_extinction(0.3, bands)
    np.testing.assert_allclose(a3, 3 * a1, rtol=0.02)
    # bluer bands are dimmed more (the WFC3 rows of the band table are in wavelength order)
    wfc3 = [b for b in bands if b.instrument == "WFC3/UVIS"]
    assert np.all(np.diff(foreground_extinction(0.1, wfc3)) < 0)


@pytest.mark.parametrize("ebv", [-0.01, float("nan"), 2.0])
def test_bad_ebv_is_refused(ebv):
    with pytest.raises(PhangsProductsError, match="E\\(B-V\\)_MW must be 0 to 1.5 mag"):
        foreground_extinction(ebv, ["F555W"])

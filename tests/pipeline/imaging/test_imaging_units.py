"""Imaging helpers that need no drizzle run: input checks, the ERR noise model, header cleaning,
the alignment bookkeeping on a real FLC."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from factories import tiny_flc

from phangs_products.pipeline.imaging.align import (
    _alignment_result,
    _chip_centre,
    _move_wcs,
    _sky_offset,
)
from phangs_products.pipeline.imaging.drizzle import clean_header, error_map
from phangs_products.pipeline.imaging.exposures import (
    ImagingConfig,
    ImagingError,
    group_exposures,
    read_exposure,
)


def test_bad_inputs_are_reported_and_others_kept(tmp_path):
    good = tiny_flc(tmp_path / "a_flc.fits")
    no_sci = tiny_flc(tmp_path / "b_flc.fits", sci=False)
    odd_band = tiny_flc(tmp_path / "c_flc.fits", filt="F999W")
    not_fits = tmp_path / "d_flc.fits"
    not_fits.write_text("nope")
    groups, errors = group_exposures([good, no_sci, odd_band, not_fits], ["F555W", "F814W"])
    assert [e.path for e in groups["F555W"]] == [good]
    assert any("b_flc.fits: HDU SCI,1 is missing" in e for e in errors)
    assert any("F999W is not a PHANGS-HST band" in e for e in errors)
    assert any("d_flc.fits: not a readable FITS file" in e for e in errors)
    with pytest.raises(ImagingError, match="b_flc.fits: HDU SCI,1 is missing"):
        read_exposure(no_sci)


def test_error_map_follows_the_noise_model():
    sci = np.array([[0.0, 10.0], [-1.0, 5.0]], np.float32)
    wht = np.array([[1000.0, 2000.0], [1000.0, 0.0]], np.float32)
    err = error_map(sci, wht, sky=0.02, read_noise=3.0, exptime=500.0)
    expected_00 = np.sqrt((0.0 + 0.02) / 1000.0 + 9.0 / (500.0 * 1000.0))
    expected_01 = np.sqrt((10.0 + 0.02) / 2000.0 + 9.0 / (500.0 * 2000.0))
    assert err[0, 0] == pytest.approx(expected_00, rel=1e-6)
    assert err[0, 1] == pytest.approx(expected_01, rel=1e-6)
    assert err[1, 0] == err[0, 0]  # negative rates count as zero signal
    assert err[1, 1] == 0.0  # no data


def test_clean_header_drops_machine_paths():
    hdr = fits.Header()
    hdr["D001DATA"] = "/home/me/run/a_flc.fits[sci,1]"
    hdr["D001OUDA"] = "/home/me/out.fits"
    hdr["RULEFILE"] = "/venv/lib/fitsblender/rules.txt"
    hdr["FILENAME"] = "/tmp/x.fits"
    hdr["D001SCAL"] = 0.04
    hdr["PHOTFLAM"] = 1e-19
    out = clean_header(hdr)
    assert list(out.keys()) == ["D001SCAL", "PHOTFLAM"]


REAL_FLC = Path(__file__).parents[2] / "data" / "real" / "sample_ipppssoot_flc.fits"


def _sky(path, chip):
    with fits.open(path) as hdul:
        return np.array(WCS(hdul["SCI", chip].header, hdul).all_pix2world(4.5, 4.5, 0), float)


def test_moving_the_wcs_shifts_both_chips_by_the_same_sky_offset(tmp_path):
    flc = Path(shutil.copy(REAL_FLC, tmp_path / "x_flc.fits"))
    before = _chip_centre(flc), _sky(flc, 1), _sky(flc, 2)
    shift = np.array([0.229, -0.699]) / 3600.0  # the medium demo's F555W visit offset (E, N)
    dec = before[0][1]
    _move_wcs(flc, np.array([shift[0] / np.cos(np.radians(dec)), shift[1]]))
    after = _chip_centre(flc), _sky(flc, 1), _sky(flc, 2)
    for b, a in zip(before, after, strict=True):
        # 1 mas = 0.025 px, with the file's full SIP and lookup-table distortion, 80" from CRVAL
        assert np.abs((_sky_offset(b, a) - shift) * 3.6e6).max() < 1.0


def test_a_fit_above_the_rms_limit_is_not_aligned(tmp_path):
    flc = Path(shutil.copy(REAL_FLC, tmp_path / "x_flc.fits"))
    exp = read_exposure(flc)
    config = ImagingConfig()
    assert not _alignment_result(exp, config).aligned  # never TweakReg-ed: no NMATCH
    for rms_mas, aligned in ((4.1, True), (60.0, False)):
        with fits.open(flc, mode="update") as hdul:
            hdul["SCI", 1].header.update(
                NMATCH=20,
                RMS_RA=rms_mas / 3.6e6,  # TweakReg writes degrees
                RMS_DEC=3.8 / 3.6e6,
                WCSTYPE="user-defined",
            )
        res = _alignment_result(exp, config)
        assert res.aligned is aligned
        assert res.rms_ra_mas == pytest.approx(rms_mas)

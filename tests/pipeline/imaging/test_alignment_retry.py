"""Alignment of a band whose exposure TweakReg first fits to a false histogram peak.

On the medium simulated field (seed 1) the 2-D histogram of one F555W exposure (isim132aq)
peaks 20 px away from the true offset, and the first fit matches 20 wrong pairs at 60 mas rms.
:func:`align_exposures` rejects that fit (rms above ``max_rms_mas``) and retries the exposure
from the sky shift of the aligned exposures of its visit: it must land on the true WCS.
"""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from astropy.table import Table
from factories import offsets_from_true_wcs

from phangs_products.pipeline.imaging.align import align_exposures
from phangs_products.pipeline.imaging.exposures import ImagingConfig, read_exposure
from phangs_products.pipeline.sim.config import SimConfig
from phangs_products.pipeline.sim.simulate import simulate


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    return simulate(SimConfig(size="medium"), tmp_path_factory.mktemp("medium") / "sim")


def _align(sim, filters, tmp_path, caplog):
    """Align fresh copies of the FLCs of ``filters``; results, retry messages, rms vs truth."""
    copies = []
    for path in sim.flc_files:
        if read_exposure(path).filter in filters:
            copies.append(shutil.copy(path, tmp_path / path.name))
    exposures = [read_exposure(p) for p in copies]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with caplog.at_level(logging.INFO, logger="phangs_products.pipeline.imaging"):
        results = align_exposures(exposures, sim.reference_catalog, ImagingConfig(), scratch)
    retried = [r.getMessage() for r in caplog.records if "from the shift" in r.getMessage()]
    truth = Table.read(sim.truth_exposures)
    ref = np.loadtxt(sim.reference_catalog, usecols=(0, 1))
    errors = {}
    for exp in exposures:
        offsets = [offsets_from_true_wcs(truth, ref, exp.rootname, c, exp.path) for c in (1, 2)]
        errors[exp.rootname] = float(np.sqrt(np.mean(np.concatenate(offsets) ** 2)))
    print(f"retries: {retried}; rms vs the true WCS (FLC px): {errors}")
    return results, retried, errors


def test_false_peak_is_retried_from_the_band_shift(medium, tmp_path, caplog):
    results, retried, errors = _align(medium, {"F555W"}, tmp_path, caplog)
    assert any("retrying isim132aq" in m for m in retried)  # the false peak of this field
    assert all(r.aligned and max(r.rms_ra_mas, r.rms_dec_mas) < 10 for r in results), results
    assert max(errors.values()) < 0.1  # isim132aq was 18 px off before the retry existed


def test_the_retry_uses_the_shift_of_its_own_visit(medium, tmp_path, caplog):
    """F555W (visit 13) and F814W (visit 14) aligned together: each visit has its own pointing
    error, so the failed F555W exposure must take the shift of the F555W exposures only."""
    results, retried, errors = _align(medium, {"F555W", "F814W"}, tmp_path, caplog)
    assert all(r.aligned for r in results), results
    assert max(errors.values()) < 0.1
    for message in retried:
        failed, used = (
            message.split(" from the shift")[0].split()[-1],
            message.split(" exposures ")[1],
        )
        assert all(name.startswith(failed[:6]) for name in used.split(" (")[0].split(", "))

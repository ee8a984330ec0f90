"""Bands drizzled concurrently in worker processes give the products of the sequential run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from phangs_products.pipeline.config import RunConfig
from phangs_products.pipeline.imaging.exposures import ImagingConfig
from phangs_products.pipeline.imaging.parallel import worker_count
from phangs_products.pipeline.imaging.stage import imaging_stage
from phangs_products.pipeline.runner import Stage, run_stages

#: Header cards that record when a file was written, not what it holds.
WHEN = {"DATE", "CHECKSUM", "DATASUM", "IRAF-TLM"}


def run_imaging(run: RunConfig, root: Path, workers: int) -> dict[str, list[Path]]:
    """The imaging stage of ``run`` in its own work folder with ``workers`` processes."""
    run = dataclasses.replace(run, work=root / "work", output=root / "delivery")
    stage = Stage("imaging", imaging_stage, config=ImagingConfig(workers=workers))
    (result,) = run_stages(run, [stage])
    return result.outputs


def assert_same_fits(a: Path, b: Path) -> None:
    """Same HDUs, equal data, headers equal but for the write date and checksums.

    The ``ASDF`` extension holds the provenance (run id, settings): not compared.
    """
    with fits.open(a) as ha, fits.open(b) as hb:
        assert [h.name for h in ha] == [h.name for h in hb], a.name
        for x, y in zip(ha, hb, strict=True):
            if x.name == "ASDF":
                continue
            ka = [(k, v) for k, v in x.header.items() if k not in WHEN]
            kb = [(k, v) for k, v in y.header.items() if k not in WHEN]
            assert ka == kb, f"{a.name} HDU {x.name}"
            if x.data is None:
                assert y.data is None
            elif isinstance(x, fits.BinTableHDU):
                assert x.data.tobytes() == y.data.tobytes(), f"{a.name} HDU {x.name}"
            else:
                np.testing.assert_array_equal(x.data, y.data, err_msg=f"{a.name} HDU {x.name}")


@pytest.mark.slow
def test_concurrent_bands_match_the_sequential_run(small_run, tmp_path):
    sequential = run_imaging(small_run, tmp_path / "sequential", workers=1)
    concurrent = run_imaging(small_run, tmp_path / "concurrent", workers=2)
    assert sequential.keys() == concurrent.keys()
    for key, paths in sequential.items():
        names = [p.name for p in paths]
        assert names == [p.name for p in concurrent[key]], key
        assert len(names) >= (5 if key != "alignment" else 1), key
        for a, b in zip(paths, concurrent[key], strict=True):
            if a.suffix == ".ecsv":
                ta, tb = Table.read(a), Table.read(b)
                assert ta.colnames == tb.colnames
                for name in ta.colnames:
                    np.testing.assert_array_equal(ta[name], tb[name])
            else:
                assert_same_fits(a, b)
    # the workers' log records reach the stage log
    log = (tmp_path / "concurrent" / "work" / "logs" / "imaging.log").read_text()
    assert "worker processes" in log and "aligned" in log


def test_worker_count():
    assert worker_count(ImagingConfig(workers=1), 5) == 1
    assert worker_count(ImagingConfig(workers=8), 5) == 5
    assert worker_count(ImagingConfig(workers=3), 1) == 1
    assert 1 <= worker_count(ImagingConfig(), 5) <= 5

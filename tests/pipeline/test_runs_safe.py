"""Hostile inputs and runs: writes stay inside the run's folders, nothing hangs or is lost."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from phangs_products.atomic import inside
from phangs_products.errors import ProductError
from phangs_products.pipeline.config import RunConfig
from phangs_products.pipeline.graph import build_stages
from phangs_products.pipeline.imaging.exposures import (
    ImagingError,
    copy_inputs,
    group_exposures,
    read_exposure,
)
from phangs_products.pipeline.runner import StageError, run_stages


def _flc(path: Path, rootname: str | None = "ib0000aaq", filt: str = "F555W") -> Path:
    primary = fits.PrimaryHDU()
    primary.header.update(
        INSTRUME="WFC3",
        DETECTOR="UVIS",
        FILTER=filt,
        EXPTIME=100.0,
        EXPSTART=58800.0,
        EXPEND=58800.001,
    )
    if rootname is not None:
        primary.header["ROOTNAME"] = rootname
    hdus = [primary] + [
        fits.ImageHDU(np.zeros((4, 4), np.float32), name=name, ver=1)
        for name in ("SCI", "ERR", "DQ")
    ]
    fits.HDUList(hdus).writeto(path)
    return path


def _run(tmp_path: Path, inp: Path) -> RunConfig:
    ref = tmp_path / "ref.txt"
    ref.write_text("# ra dec\n")
    return RunConfig(
        target="ngc628",
        field="ngc628c",
        input=inp,
        reference_catalog=ref,
        output=tmp_path / "out",
        work=tmp_path / "out" / ".work" / "ngc628c",
    )


def _imaging(run: RunConfig):
    return [s for s in build_stages(run) if s.name == "imaging"]


# ------------------------------------------------------------------------------ path safety
@pytest.mark.parametrize("name", ["../x", "/etc/x", "a/b", "..", ".", "", "a\\b", "a\0b"])
def test_inside_refuses_names_that_leave_the_folder(tmp_path, name):
    with pytest.raises(ProductError, match="refused file name"):
        inside(tmp_path, name)
    assert inside(tmp_path, "hlsp_x.fits") == tmp_path / "hlsp_x.fits"


def test_inside_refuses_a_symlink_that_leaves_the_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "link.fits").symlink_to(tmp_path / "elsewhere.fits")
    with pytest.raises(ProductError, match="link.fits"):
        inside(tmp_path / "sub", "link.fits")


@pytest.mark.parametrize("rootname", ["/elsewhere/x", "../../../elsewhere/x", "ib0000aaq/../x"])
def test_traversal_rootname_is_refused_with_one_line(tmp_path, rootname):
    inp = tmp_path / "in"
    inp.mkdir()
    bad = _flc(inp / "ib0000aaq_flc.fits", rootname=rootname)
    with pytest.raises(ImagingError) as info:
        read_exposure(bad)
    message = str(info.value)
    assert message.startswith("ib0000aaq_flc.fits: HDU PRIMARY keyword ROOTNAME: ")
    assert "is not an HST rootname" in message and "\n" not in message
    # the imaging stage stops at once and writes nothing outside its folders
    run = _run(tmp_path, inp)
    with pytest.raises(StageError, match="ROOTNAME"):
        run_stages(run, _imaging(run))
    assert not (tmp_path / "elsewhere").exists() and not Path("/elsewhere").exists()
    assert not list(tmp_path.glob("**/x_flc.fits"))


def test_rootname_from_the_file_name_is_checked_too(tmp_path):
    bad = _flc(tmp_path / "..x_flc.fits", rootname=None)
    with pytest.raises(ImagingError, match=r"no keyword ROOTNAME; file name: '..x'"):
        read_exposure(bad)
    good = _flc(tmp_path / "ib0000abq_flc.fits", rootname=None)
    assert read_exposure(good).rootname == "ib0000abq"


def test_scratch_copies_stay_inside_the_scratch_folder(tmp_path):
    exp = read_exposure(_flc(tmp_path / "ib0000aaq_flc.fits"))
    hostile = dataclasses.replace(exp, rootname="../../escaped")
    with pytest.raises(ProductError, match="refused file name"):
        copy_inputs([hostile], tmp_path / "scratch")
    assert not (tmp_path.parent / "escaped_flc.fits").exists()
    groups, errors = group_exposures([exp.path], ["F555W"])
    assert errors == [] and [e.rootname for e in groups["F555W"]] == ["ib0000aaq"]

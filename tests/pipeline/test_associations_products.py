"""Association products on the simulated field: masks, catalogs, DS9 outlines (regions, DS9)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from conftest import ds9_load_and_save, needs_ds9
from regions import PolygonSkyRegion

import phangs_products as pp


@pytest.fixture(scope="module")
def products(science_run):
    return science_run["associations"]


def test_every_product_validates(products):
    assert len(products["assoc-mask"]) == 8 and len(products["ds9-regions"]) == 8
    for kind in ("assoc-mask", "assoc-catalog", "ds9-regions"):
        for path in products[kind]:
            pp.open(path, strict=True).validate()
    if shutil.which("fitsverify"):
        for path in products["assoc-mask"][:2] + products["assoc-catalog"][:1]:
            out = subprocess.run(
                ["fitsverify", "-e", "-q", str(path)], capture_output=True, text=True
            )
            assert out.returncode == 0, out.stdout


def test_polygons_agree_with_masks(products):
    masks = {p.name.split("_")[-1].replace("-msk.fits", ""): p for p in products["assoc-mask"]}
    worst = 1.0
    for reg_path in products["ds9-regions"]:
        key = reg_path.name.split("_")[-1].replace("-reg.reg", "")
        mask = pp.open(masks[key])
        labels = np.asarray(mask.data)
        for region in pp.open(reg_path).regions:
            if not isinstance(region, PolygonSkyRegion):
                continue
            label = int(region.meta["text"])
            drawn = region.to_pixel(mask.wcs).to_mask(mode="center").to_image(labels.shape) > 0
            true = labels == label
            worst = min(worst, (drawn & true).sum() / (drawn | true).sum())
    print(f"worst polygon/mask pixel agreement (intersection over union): {worst:.3f}")
    assert worst >= 0.95


def test_catalog_matches_its_mask(products):
    for cat_path in (p for p in products["assoc-catalog"] if p.suffix == ".fits"):
        key = cat_path.name.split("_")[-1].replace(".fits", "")
        mask_path = next(p for p in products["assoc-mask"] if key + "-msk" in p.name)
        labels = np.asarray(pp.open(mask_path).data)
        table = pp.open(cat_path).table
        assert len(table) == labels.max()
        area = np.bincount(labels.ravel())[1:]
        np.testing.assert_array_equal(np.argsort(table["ASC_ID"]), np.arange(len(table)))
        if len(table):
            ratio = np.asarray(table["ASC_AREA"]) / area
            assert np.allclose(ratio, ratio[0])  # pc2 per pixel, the same for every region


@needs_ds9
def test_regions_load_in_ds9(products, imaging_run, tmp_path):
    image = next(p for p in imaging_run["drc-sci"] if "_f555w_" in p.name)
    reg = next(p for p in products["ds9-regions"] if "asc-v-32pc" in p.name)
    out = tmp_path / "saved.reg"
    result = ds9_load_and_save(image, reg, out)
    assert result.returncode == 0, result.stderr
    assert out.read_text().count("polygon(") == reg.read_text().count("polygon(") > 0

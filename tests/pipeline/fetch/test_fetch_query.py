"""What fetch asks MAST and Gaia, and what it keeps of their (recorded) answers."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest
from astropy.table import Table
from fetchkit import EXPOSURES, TARGET, flc_size

from phangs_products.bands import galaxy, galaxy_bands
from phangs_products.errors import PhangsProductsError, ProductError
from phangs_products.pipeline.fetch.fetch import FetchPlan, FetchRequest, plan, run_config
from phangs_products.pipeline.fetch.gaia import (
    footprint_cone,
    gaia_adql,
    query_gaia,
    write_reference_catalog,
)
from phangs_products.pipeline.fetch.query import (
    FetchError,
    Product,
    SearchCone,
    filter_of,
    flc_products,
    observation_criteria,
    search_cone,
)


def test_galaxy_bands_come_from_the_calibration_rows():
    ngc1087 = [(b.instrument, b.filter) for b in galaxy_bands(TARGET)]
    assert ngc1087 == [("WFC3/UVIS", f) for f in ("F275W", "F336W", "F438W", "F555W", "F814W")]
    # NGC 628: the archival ACS bands of its pointings join the WFC3 ones
    ngc628 = {(b.instrument, b.filter) for b in galaxy_bands("NGC 628")}
    assert ("ACS/WFC", "F435W") in ngc628
    assert ("WFC3/UVIS", "F438W") not in ngc628


def test_search_cone_defaults_to_the_field_of_view_diagonal():
    gal = galaxy(TARGET)
    cone = search_cone(gal, galaxy_bands(TARGET), None)
    # WFC3/UVIS field of view 162" (Lee+2022 Sect. 3.1): half its diagonal is 114.55"
    assert cone.radius_arcmin * 60 == pytest.approx(162 * math.sqrt(2) / 2)
    assert (cone.ra, cone.dec) == (gal.ra, gal.dec)
    assert search_cone(gal, galaxy_bands(TARGET), 4.0).radius_arcmin == 4.0


def test_mosaic_galaxy_needs_a_radius():
    with pytest.raises(FetchError, match=r"several pointings.*--radius") as exc:
        search_cone(galaxy("ngc628"), galaxy_bands("ngc628"), None)
    assert "\n" not in str(exc.value)
    with pytest.raises(FetchError, match="positive"):
        search_cone(galaxy(TARGET), galaxy_bands(TARGET), -1.0)


def test_observation_criteria():
    cone = SearchCone(41.6, -0.5, 2.0)
    crit = observation_criteria(cone, galaxy_bands("ngc628"))
    assert crit["obs_collection"] == "HST"
    assert crit["dataproduct_type"] == "image"
    assert crit["instrument_name"] == ["ACS/WFC", "WFC3/UVIS"]
    assert crit["filters"] == ["F275W", "F336W", "F435W", "F555W", "F814W"]
    assert crit["radius"].to_value("deg") == pytest.approx(2.0 / 60)
    assert "proposal_id" not in crit
    assert observation_criteria(cone, galaxy_bands(TARGET), (15654,))["proposal_id"] == ["15654"]


def test_filter_of_drops_clear_positions():
    assert filter_of("F814W;CLEAR2L") == "F814W"
    assert filter_of("F555W") == "F555W"


@pytest.mark.vcr
@pytest.mark.default_cassette("ngc1087_mast")
def test_plan_keeps_each_flc_exposure_once(tmp_path):
    fplan = plan(FetchRequest(target=TARGET, out=tmp_path))
    names = [p.filename for p in fplan.products]
    # the association repeats the F555W FLCs; RAW/FLT/DRC and the HAP file are left out
    assert names == sorted(f"{r}_flc.fits" for r, _ in EXPOSURES)
    assert {p.size for p in fplan.products} == {flc_size()}
    assert {(p.instrument, p.filter) for p in fplan.products} == {
        ("WFC3/UVIS", f) for _, f in EXPOSURES
    }
    assert all(p.uri == f"mast:HST/product/{p.filename}" for p in fplan.products)
    assert fplan.present == frozenset()
    assert len(fplan.missing) == len(EXPOSURES)


@pytest.mark.vcr
@pytest.mark.default_cassette("ngc1087_mast_hostile")
def test_hostile_product_name_is_refused(tmp_path):
    with pytest.raises(ProductError) as exc:
        plan(FetchRequest(target=TARGET, out=tmp_path))
    message = str(exc.value)
    assert "'../x'" in message and "refused" in message and "\n" not in message
    assert not (tmp_path / "x").exists()


def test_unknown_band_is_refused(tmp_path):
    with pytest.raises(PhangsProductsError, match=r"--bands: F657N not imaged for NGC 1087"):
        plan(FetchRequest(target=TARGET, out=tmp_path, filters=("F555W", "F657N")))


def test_footprint_cone_covers_every_exposure():
    bands = galaxy_bands(TARGET)
    products = [
        Product("a_flc.fits", "", None, "a", "WFC3/UVIS", "F555W", 10.0, 0.0),
        Product("b_flc.fits", "", None, "b", "WFC3/UVIS", "F555W", 10.0 + 2 / 60, 0.0),
    ]
    cone = footprint_cone(products, bands, SearchCone(0, 0, 1))
    assert cone.ra == pytest.approx(10 + 1 / 60)
    assert cone.dec == pytest.approx(0, abs=1e-9)
    # 1' to the farther centre plus half the 162" diagonal
    assert cone.radius_arcmin == pytest.approx(1 + 162 * math.sqrt(2) / 2 / 60)
    no_centres = [Product("a_flc.fits", "", None, "a", "WFC3/UVIS", "F555W")]
    assert footprint_cone(no_centres, bands, SearchCone(1, 2, 3)) == SearchCone(1, 2, 3)


def test_gaia_adql():
    text = gaia_adql(SearchCone(41.6045, -0.499, 1.5))
    assert "FROM gaiadr3.gaia_source" in text
    assert "CIRCLE('ICRS', 41.6045000, -0.4990000, 0.0250000)" in text


@pytest.mark.vcr
@pytest.mark.default_cassette("ngc1087_gaia")
def test_gaia_catalog_in_the_alignment_format(tmp_path):
    cone = SearchCone(41.6045, -0.499, 162 * math.sqrt(2) / 2 / 60)
    table = query_gaia(cone)
    path = write_reference_catalog(table, tmp_path / "gaia_dr3.txt", cone)
    # the imaging stage reads it as align.align_exposures does
    radec = np.loadtxt(path, usecols=(0, 1), ndmin=2, comments="#")
    assert radec.shape == (12, 2)
    expected = np.c_[np.asarray(table["ra"], float), np.asarray(table["dec"], float)]
    assert np.allclose(radec, expected, atol=1e-9)
    gmag = np.loadtxt(path, usecols=2, comments="#")
    assert np.isnan(gmag).sum() == 1  # the star without a G magnitude keeps its position
    assert path.read_text().startswith("# Gaia DR3 reference catalog (gaiadr3.gaia_source")


def _product_rows(*rows) -> Table:
    names = ("obsID", "obs_id", "productSubGroupDescription", "productFilename", "dataURI", "size")
    return Table(rows=rows, names=names, dtype=[str, str, str, str, str, int])


def test_product_filter_checks_every_name(tmp_path):
    obs = Table(
        rows=[("1", "WFC3/UVIS", "F555W", 41.6, -0.5)],
        names=("obsid", "instrument_name", "filters", "s_ra", "s_dec"),
    )
    good = ("1", "ie1a05tgq", "FLC", "ie1a05tgq_flc.fits", "mast:HST/product/ie1a05tgq_flc.fits", 9)
    hap = ("1", "hst_x", "FLC", "hst_1_flc.fits", "mast:HST/product/hst_1_flc.fits", 9)
    drc = ("1", "ie1a05020", "DRC", "ie1a05020_drc.fits", "mast:HST/product/ie1a05020_drc.fits", 9)
    kept = flc_products(_product_rows(good, hap, drc, good), obs, tmp_path)
    assert [(p.filename, p.filter, p.size) for p in kept] == [("ie1a05tgq_flc.fits", "F555W", 9)]
    for bad_name in ("../x", "/etc/passwd", "a/b_flc.fits", ".."):
        row = ("1", "x", "FLC", bad_name, f"mast:HST/product/{bad_name}", 9)
        with pytest.raises(ProductError, match="refused"):
            flc_products(_product_rows(row), obs, tmp_path)
    other_uri = (*good[:4], "mast:HST/product/ie1a05tiq_flc.fits", 9)
    with pytest.raises(ProductError, match=r"dataURI .* is not mast:\.\.\./ie1a05tgq_flc\.fits"):
        flc_products(_product_rows(other_uri), obs, tmp_path)


def test_mosaic_configuration_says_how_to_split_the_pointings(tmp_path):
    bands = galaxy_bands("ngc628")
    request = FetchRequest(target="ngc628", out=tmp_path, radius_arcmin=6.0, ebv_mw=0.0)
    fplan = FetchPlan(request, bands, search_cone(galaxy("ngc628"), bands, 6.0), ())
    text = run_config(fplan)
    doc = tomllib.loads(text)
    assert doc["run"]["bands"] == ["F275W", "F336W", "F435W", "F555W", "F814W"]
    assert doc["run"]["ebv_mw"] == 0.0
    assert "[[run.pointings]]" in text and "several pointings" in text

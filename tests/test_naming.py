"""HLSP file names: built from the schema, parsed back, and every MAST rule enforced."""

from __future__ import annotations

import pytest

from phangs_products import get_schema
from phangs_products.errors import ProductError
from phangs_products.naming import (
    build_name,
    catalog_target,
    check_name,
    historical_product_type,
    parse_name,
    sanitize_target,
)


def test_drc_name_and_round_trip():
    name = build_name(get_schema("drc-sci"), target="NGC 628c", version="v1", filter="F555W")
    assert name == "hlsp_phangs-hst_hst_wfc3-uvis_ngc628c_f555w_v1_drc-sci.fits"
    parsed = parse_name(name)
    assert (parsed.target, parsed.opt_elem, parsed.product_type) == ("ngc628c", "f555w", "drc-sci")


def test_catalog_targets_are_zero_padded_and_types_short():
    schema = get_schema("cluster-catalog")
    name = build_name(schema, target="ngc628c", version="v1", subset="hum-c12", extension="ecsv")
    assert name == "hlsp_phangs-cat_hst_wfc3-uvis_ngc0628c_multi_v1_cl-hum-c12.ecsv"
    assert historical_product_type(schema) == "obs-sed-{classify}-{class}"
    assert catalog_target("ic5332") == "ic5332"


def test_every_current_product_name_passes():
    for schema_name, variants in [
        ("assoc-mask", {"selection": "nuv", "scale": "64"}),
        ("ds9-regions", {"base": "asc-nuv-64pc"}),
        ("flc", {"rootname": "ib4606c5q"}),
    ]:
        name = build_name(
            get_schema(schema_name), target="ngc628c", version="v1", filter="F555W", **variants
        )
        assert [p for p in check_name(name) if p.severity == "error"] == [], name


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("HLSP_phangs-hst_hst_wfc3-uvis_ngc628c_f555w_v1_drc-sci.fits", "name.case"),
        ("hlsp_phangs-hst_hst_wfc3-uvis_ngc628c_v1_drc-sci.fits", "name.fields"),
        (
            "hlsp_phangs-cat_hst_uvis_ngc0628c_multi_v1_obs-human-cluster-class12.fits",
            "name.product-type-length",
        ),
        ("hlsp_phangs-hst_hst_wfc3-uvis_ngc628c_f555w_1.0_drc-sci.fits", "name.version"),
        ("hlsp_phangs-hst_hst_wfc3_uvis_ngc628c_f555w_v1_drc-sci.fits", "name.fields"),
        ("hlsp_phangs-hst_hst_wfc3-uvis_ngc628c_f555w_v1_drc sci.fits", "name.chars"),
        ("hlsp_other_hst_wfc3-uvis_ngc628c_f555w_v1_drc-sci.fits", "name.proj-id"),
        ("../hlsp_phangs-hst_hst_wfc3-uvis_ngc628c_f555w_v1_drc-sci.fits", "name.path"),
        (
            "hlsp_phangs-hst_hst_wfc3-uvis_" + "n" * 31 + "_f555w_v1_drc-sci.fits",
            "name.field-length",
        ),
    ],
)
def test_rule_violations_are_named(name, rule):
    assert rule in {p.rule for p in check_name(name)}


def test_historical_dr4_names_fail_today():
    from pathlib import Path

    names = Path(__file__).parent / "data" / "real" / "phangs_cluster_filenames.txt"
    if not names.exists():
        pytest.skip("reference list not available")
    bad = [
        n
        for n in names.read_text().split()
        if any(p.rule == "name.product-type-length" for p in check_name(n))
    ]
    assert len(bad) == len(names.read_text().split())


@pytest.mark.parametrize("target", ["../etc", "ngc/628", "a..b", "ngc_628!"])
def test_bad_targets_are_refused(target):
    with pytest.raises(ProductError, match="target"):
        sanitize_target(target)


def test_missing_filter_is_a_clear_error():
    with pytest.raises(ProductError, match="a filter is needed"):
        build_name(get_schema("drc-sci"), target="ngc628c", version="v1")

"""Historical products (PHANGS-HST v1 images, PHANGS-CAT DR4 and LEGUS catalogs) open as today's.

The DR4 catalogs are built here exactly as the release code wrote them (astropy ``Table.write``,
columns, dtypes and units from ``data/real/phangs_cluster_columns.csv``, column order from
``data/real/phangs_cluster_table_layout.json``), one file for each of the 359 names of
``data/real/phangs_cluster_filenames.txt``.  The LEGUS catalogs are the real files.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
import shutil
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Column, MaskedColumn, Table
from factories import catalog_product, make_wcs, product_name

import phangs_products as pp
from phangs_products.errors import ProductError, ValidationError
from phangs_products.legacy import LegacyCatalogModel, LegacyImageModel, families
from phangs_products.models.tables import AliasTable

REAL = Path(__file__).parent / "data" / "real"
NAMES = (REAL / "phangs_cluster_filenames.txt").read_text().split()
LAYOUT = json.loads((REAL / "phangs_cluster_table_layout.json").read_text())
with (REAL / "phangs_cluster_columns.csv").open(newline="") as _fh:
    CSV_ROWS = list(csv.DictReader(_fh))
CSV = {r["col_name"]: r for r in CSV_ROWS}
LEGUS_628 = "hlsp_legus_hst_acs-wfc3_ngc628-c_multiband_v1_padagb-mwext-avgapcor.tab"
LEGUS_1566 = "hlsp_legus_hst_wfc3_ngc1566_multiband_v1_padagb-mwext-avgapcor.tab"
LEGUS_SHA256 = {LEGUS_628: "a5eb18160eb5a905", LEGUS_1566: "5f1684a8cdb4082d"}
DR4_NAME = re.compile(
    r"^hlsp_phangs-cat_hst_(?P<ins>[a-z-]+)_(?P<target>[a-z0-9]+)_multi_v1_(?P<type>.+)\.fits$"
)
SUBSETS = {
    "human-cluster-class12": "hum-c12",
    "human-compact-association-class3": "hum-c3",
    "machine-cluster-class12": "ml-c12",
    "machine-compact-association-class3": "ml-c3",
}
N_ROWS = 4


def dr4():
    return next(f for f in families() if f.schema_id.startswith("phangs-cat-dr4"))


def target_filters(target: str) -> list[str]:
    """Filters of a target's obs table, in column order (from the layout JSON)."""
    cols = LAYOUT["obs_columns_by_target"][target]
    return [m[1] for c in cols if (m := re.match(r"^PHANGS_(F\d{3}W)_VEGA$", c))]


def candidate_columns(target: str) -> list[str]:
    """The candidate-table columns of a target as the schema documents them."""
    return dr4().layout_named("candidates").column_names(target_filters(target))


def columns_of(table_type: str, target: str) -> list[str]:
    if table_type == "obs":
        return LAYOUT["obs_columns_by_target"][target]
    if table_type == "sed":
        return LAYOUT["sed_columns"]
    return candidate_columns(target)


# ------------------------------------------------------------------------------ DR4 files
def csv_row(name: str) -> dict[str, str]:
    base = re.sub(r"_[12]$", "", name) if name.startswith("PHANGS_D") else name
    base = re.sub(r"^PHANGS_F\d{3}W_", "PHANGS_[BAND]_", base)
    return CSV[base]


def dr4_values(
    name: str, target: str, radec: tuple[float, float] | None = None
) -> tuple[np.ndarray, str]:
    """Values and astropy unit of one DR4 column (dtype from the column table's unit_str).

    ``radec`` puts the sources a few milliarcseconds from that position (default near NGC 628).
    """
    row = csv_row(name)
    unit_str, unit = row["unit_str"], row["astropy_unit"]
    n = np.arange(1, N_ROWS + 1)
    if unit_str == "str":
        values = np.array([target] * N_ROWS) if name == "PHANGS_GALAXY" else np.array(["YCL"] * 4)
    elif unit_str == "int":
        values = n.astype(np.int64)
        if name == "ID_PHANGS_CLUSTER":
            values = np.array([1, -999, 2, 3], dtype=np.int64)
        if name.startswith("PHANGS_CLUSTER_CLASS"):
            values = np.array([1, 2, 3, 4], dtype=np.int64)
    else:
        values = n * 1.5
        if name.startswith("PHANGS_RA"):
            values = 24.17 + n * 1e-4 if radec is None else radec[0] + n * 1e-6
        if name.startswith("PHANGS_DEC"):
            values = 15.78 + n * 1e-4 if radec is None else radec[1] + n * 1e-6
        if re.match(r"^PHANGS_F\d{3}W_(VEGA|mJy)", name):
            values = np.array([21.5, -9999.0, 22.0, 23.0])
        if name.endswith("_QUAL"):  # a classifier's probability, in [0, 1]
            values = np.array([0.9, 0.8, 0.95, 0.6])
        if name.startswith("SEDfix_") and name != "SEDfix_likelihood_norm":
            values = np.array([5.0, 10.0, -999.0, 20.0])
    return values, unit


def write_dr4(
    path: Path, columns: list[str], target: str, radec: tuple[float, float] | None = None
) -> Path:
    """A DR4 table as the release code writes it: Columns (Quantity for units), Table.write."""
    cols = []
    for name in columns:
        values, unit = dr4_values(name, target, radec)
        data = values * u.Unit(unit) if unit else values
        cols.append(Column(data=data, name=name, description=csv_row(name)["doc_comment"]))
    Table(cols).write(path)
    return path


@pytest.fixture(scope="module")
def dr4_files(tmp_path_factory) -> dict[str, Path]:
    """One file per historical DR4 name (one write per distinct column set, then copies)."""
    folder = tmp_path_factory.mktemp("dr4")
    templates: dict[tuple[str, ...], Path] = {}
    out = {}
    for name in NAMES:
        m = DR4_NAME.match(name)
        table_type = "cand" if m["type"] == "obs-sed-candidates" else m["type"][:3]
        columns = columns_of(table_type, m["target"])
        if tuple(columns) not in templates:
            path = folder / f"template{len(templates)}.fits"
            templates[tuple(columns)] = write_dr4(path, columns, m["target"])
        shutil.copyfile(templates[tuple(columns)], folder / name)
        out[name] = folder / name
    assert len(templates) == 5  # obs and candidates with F435W or F438W, one sed layout
    return out


# ---------------------------------------------------------------------- documented layouts
def test_reference_lists_are_the_documented_ones():
    assert len(NAMES) == len(set(NAMES)) == 359
    assert len(LAYOUT["obs_columns_by_target"]) == 40
    assert all(DR4_NAME.match(n) for n in NAMES)


@pytest.mark.parametrize("target", sorted(LAYOUT["obs_columns_by_target"]))
def test_schema_reproduces_every_documented_column_set(target):
    family = dr4()
    filters = target_filters(target)
    obs = family.layout_named("obs").column_names(filters)
    assert obs == LAYOUT["obs_columns_by_target"][target]
    assert family.layout_named("sed").column_names(filters) == LAYOUT["sed_columns"]
    # the obs and candidate sets agree with the column table's table flags
    bands = [f"PHANGS_{f}_" for f in filters]

    def flagged(flag: str) -> set[str]:
        names = set()
        for r in CSV_ROWS:
            if r[flag] != "1":
                continue
            band = re.match(r"^PHANGS_F\d{3}W_", r["col_name"])
            if band and band[0] not in bands:
                continue
            names.add(r["col_name"])
        return names

    assert set(obs) == flagged("in_obs_table") | {"INDEX", "ID_PHANGS_CLUSTER"}
    cand = {re.sub(r"_[12]$", "", c) for c in candidate_columns(target)}
    extra = {"INDEX", "ID_PHANGS_CLUSTER", "PHANGS_CLUSTER_CLASS_ML_VGG_CORR"}
    assert cand == flagged("in_cand_table") | extra
    # the schema's bands of the target are those of its columns
    documented = family.targets[target]
    assert [b.filter for b in documented] == filters
    expected = LAYOUT["bands_by_target"][target]
    for band in documented:
        listed = "wfc3_uvis" if band.instrument == "WFC3/UVIS" else "acs_wfc1"
        assert band.filter in expected[listed]


def table_type_of(name: str) -> str:
    kind = DR4_NAME.match(name)["type"]
    return "cand" if kind == "obs-sed-candidates" else kind[:3]


@pytest.fixture(scope="module")
def dr4_models(dr4_files) -> dict[str, pp.Model]:
    """Every historical DR4 name opened (headers only), with no layout warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", pp.ProductValidationWarning)
        return {name: pp.open(path) for name, path in dr4_files.items()}


def test_every_historical_dr4_name_opens(dr4_models):
    assert len(dr4_models) == 359
    for name, model in dr4_models.items():
        m = DR4_NAME.match(name)
        table_type = table_type_of(name)
        assert isinstance(model, LegacyCatalogModel)
        assert model.schema.id == "cluster-catalog-1.0.0"
        info = model.meta.legacy
        assert info.schema == "phangs-cat-dr4-1.0.0"
        assert info.layout == {"cand": "candidates"}.get(table_type, table_type)
        subset = "cand" if table_type == "cand" else SUBSETS[m["type"][4:]]
        assert model.meta.clsubset == subset
        assert model.meta.hlsptarg == m["target"] and model.meta.hlspid == "phangs-cat"
        assert model.bands == dr4().targets[m["target"]]
        assert [b.filter for b in model.bands] == target_filters(m["target"])
        if table_type != "sed":
            assert info.renamed["PHANGS_CLUSTER_CLASS_ML_VGG"] == "PHANGS_CLUSTER_CLASS_ML"
            assert info.renamed["PHANGS_CLUSTER_CLASS_ML_VGG_QUAL"] == (
                "PHANGS_CLUSTER_CLASS_ML_QUAL"
            )
        if table_type != "obs":
            assert info.renamed["PHANGS_DM_1"] == "PHANGS_DM"
            assert info.renamed["PHANGS_DM_2"] == "PHANGS_DM"


def representative_names() -> list[str]:
    """One name per distinct (table type, bands): the tables of the others are byte copies."""
    seen, out = set(), []
    family = dr4()
    for name in NAMES:
        key = (table_type_of(name), family.targets[DR4_NAME.match(name)["target"]])
        if key not in seen:
            seen.add(key)
            out.append(name)
    return out


@pytest.mark.parametrize("name", representative_names())
def test_every_dr4_layout_maps_masks_and_attaches_units(name, dr4_models):
    table_type = table_type_of(name)
    model = dr4_models[name]
    table = model.table
    assert isinstance(table, AliasTable) and len(table) == N_ROWS
    assert len(table.colnames) == len(columns_of(table_type, DR4_NAME.match(name)["target"])) - (
        0 if table_type == "obs" else 3
    )
    assert table["PHANGS_RA"].unit == u.deg and table["PHANGS_X"].unit == u.pix
    assert list(table["ID_PHANGS_CLUSTER"].mask) == [False, True, False, False]
    if table_type != "sed":
        assert "PHANGS_CLUSTER_CLASS_ML_VGG" not in table.colnames
        assert table["PHANGS_CLUSTER_CLASS_ML"] is table["PHANGS_CLUSTER_CLASS_ML_VGG"]
        assert table["PHANGS_CLUSTER_CLASS_ML_QUAL"] is table["PHANGS_CLUSTER_CLASS_ML_VGG_QUAL"]
        for band in model.bands:
            for kind, unit in (("VEGA", u.mag), ("VEGA_ERR", u.mag), ("mJy", u.mJy)):
                col = table[f"PHANGS_{band.filter}_{kind}"]
                assert col.unit == unit and list(col.mask) == [False, True, False, False]
    if table_type != "obs":
        assert table["PHANGS_MASS_MINCHISQ"].unit == u.solMass
        assert table["PHANGS_AGE_MINCHISQ"].unit == u.Myr
        assert "PHANGS_DM" in table.colnames and "PHANGS_DM_2" not in table.colnames
        assert table["PHANGS_DM_2"] is table["PHANGS_DM"] and table["PHANGS_DM"].unit == u.mag
        assert list(table["SEDfix_age"].mask) == [False, False, True, False]


def test_a_dr4_script_still_runs(dr4_files):
    """A script written for the DR4 column names, unchanged."""
    name = "hlsp_phangs-cat_hst_uvis_ngc1566_multi_v1_obs-machine-cluster-class12.fits"
    cat = pp.open(dr4_files[name]).table
    # --- DR4 script ---
    ml, qual = cat["PHANGS_CLUSTER_CLASS_ML_VGG"], cat["PHANGS_CLUSTER_CLASS_ML_VGG_QUAL"]
    good = cat[(ml <= 2) & (qual > 0)]
    classes = [row["PHANGS_CLUSTER_CLASS_ML_VGG"] for row in good]
    v_minus_i = good["PHANGS_F555W_VEGA"] - good["PHANGS_F814W_VEGA"]
    # --- end ---
    assert classes == [1, 2]
    assert isinstance(good, AliasTable) and len(v_minus_i) == 2
    assert np.ma.is_masked(v_minus_i[1])  # -9999 (not covered) stays out of the colour


def test_sentinels_raw_on_request(dr4_files):
    name = "hlsp_phangs-cat_hst_acs-uvis_ngc0628c_multi_v1_obs-sed-candidates.fits"
    raw = pp.open(dr4_files[name], masked=False)
    assert raw.meta.legacy.masked is False
    col = raw.table["PHANGS_F435W_VEGA"]
    assert not isinstance(col, MaskedColumn) and col[1] == -9999
    masked = pp.open(dr4_files[name]).table["PHANGS_F435W_VEGA"]
    assert isinstance(masked, MaskedColumn) and masked.filled()[1] == -9999
    assert raw.meta.legacy.renamed["PHANGS_CLUSTER_CLASS_ML_VGG"] == "PHANGS_CLUSTER_CLASS_ML"
    assert [b.instrument for b in raw.bands] == ["WFC3/UVIS"] * 2 + ["ACS/WFC"] * 3


def test_dr4_file_off_layout_warns_or_raises(tmp_path):
    name = "hlsp_phangs-cat_hst_uvis_ngc1566_multi_v1_obs-human-cluster-class12.fits"
    columns = [c for c in LAYOUT["obs_columns_by_target"]["ngc1566"] if c != "PHANGS_DERR"]
    path = write_dr4(tmp_path / name, columns, "ngc1566")
    with pytest.warns(pp.ProductValidationWarning, match="documented column.*PHANGS_DERR"):
        model = pp.open(path)
    assert model.meta.legacy.layout == "obs"
    with pytest.raises(ValidationError, match="PHANGS_DERR"):
        pp.open(path, strict=True)


# --------------------------------------------------------------------------------- LEGUS
@pytest.fixture(scope="module")
def legus(tmp_path_factory) -> Path:
    """The real LEGUS tables, decompressed and checked against their recorded sha256."""
    folder = tmp_path_factory.mktemp("legus")
    for name, digest in LEGUS_SHA256.items():
        data = gzip.decompress((REAL / "legus" / f"{name}.gz").read_bytes())
        assert hashlib.sha256(data).hexdigest().startswith(digest)
        (folder / name).write_bytes(data)
    return folder


def region_points(path: Path) -> np.ndarray:
    pts = re.findall(r"point\(([-0-9.]+),([-0-9.]+)\)", path.read_text())
    return np.array(sorted((float(a), float(b)) for a, b in pts))


def test_legus_ngc628c_maps_masks_and_reports(legus):
    raw = np.loadtxt(legus / LEGUS_628)
    model = pp.open(legus / LEGUS_628)
    assert isinstance(model, LegacyCatalogModel) and model.schema.id == "cluster-catalog-1.0.0"
    info = model.meta.legacy
    assert (info.schema, info.layout) == ("legus-clusters-1.0.0", "readme-35")
    assert info.collection == "legus"
    assert model.meta.clsubset == "cand" and model.meta.hlsptarg == "ngc628-c"
    assert [(b.instrument, b.filter) for b in model.bands] == [
        ("WFC3/UVIS", "F275W"),
        ("WFC3/UVIS", "F336W"),
        ("ACS/WFC", "F435W"),
        ("ACS/WFC", "F555W"),
        ("ACS/WFC", "F814W"),
    ]
    t = model.table
    assert len(t) == 3080 and len(t.colnames) == 35
    # sentinels: 66.666 outside the field, 99.999 not detected
    f275 = t["PHANGS_F275W_VEGA"]
    assert f275.unit == u.mag
    assert f275.mask.sum() == np.sum((raw[:, 5] == 66.666) | (raw[:, 5] == 99.999)) == 871
    assert t["PHANGS_F555W_VEGA"].mask.sum() == 0
    # class 0 = not inspected is masked; 1017 class 1-3 objects, the region file's points
    cls = t["PHANGS_CLUSTER_CLASS_HUMAN"]
    assert cls.dtype == np.int16 and cls.mask.sum() == 1521
    sel = t[~cls.mask & (cls.filled(0) <= 3)]
    assert len(sel) == 1017
    radec = np.array(sorted(zip(sel["PHANGS_RA"], sel["PHANGS_DEC"], strict=True)))
    np.testing.assert_array_equal(radec, region_points(REAL / "ngc628-c_clusters_class123.deg.reg"))
    # SED columns: yr -> Myr, masked where no fit was made (Nflt < 4)
    age = t["PHANGS_AGE_MINCHISQ"]
    assert age.unit == u.Myr and age.mask.sum() == np.sum(raw[:, 32] < 4) == 1179
    np.testing.assert_allclose(age.compressed(), raw[raw[:, 32] >= 4, 16] / 1e6)
    assert t["PHANGS_MASS_MINCHISQ"].unit == u.solMass
    assert t["PHANGS_EBV_MINCHISQ"].mask.sum() == 1179
    assert any("yr to Myr" in n for n in info.notes)
    # astropy's default names of the header-less table still answer
    assert t["col34"] is cls and t["col6"] is f275
    assert info.renamed["col26"] == "LEGUS_F275W_CHI2_RESID"


def test_legus_ngc1566_39_columns(legus):
    raw = np.loadtxt(legus / LEGUS_1566)
    model = pp.open(legus / LEGUS_1566)
    assert model.meta.legacy.layout == "ngc1566-39"
    assert [b.filter for b in model.bands] == ["F275W", "F336W", "F438W", "F555W", "F814W"]
    t = model.table
    assert len(t) == 2752 and len(t.colnames) == 39
    assert t.colnames[33:] == [f"LEGUS_COL{i}" for i in range(34, 40)]
    assert "PHANGS_CLUSTER_CLASS_HUMAN" not in t.colnames  # column 34 is not documented here
    np.testing.assert_array_equal(t["LEGUS_COL34"], raw[:, 33])
    assert t["LEGUS_NFLT"].dtype == np.int16
    assert t["PHANGS_F275W_VEGA"].mask.sum() == 72
    assert t["PHANGS_F438W_VEGA_ERR"].unit == u.mag


def test_cli_info_names_the_legacy_layout(legus, capsys):
    from phangs_products.cli import main

    main(["info", str(legus / LEGUS_628)])
    text = capsys.readouterr().out
    assert "legacy   legus-clusters-1.0.0 layout 'readme-35'" in text
    assert "table    3080 rows x 35 columns" in text


def test_legus_raw_values_on_request(legus):
    t = pp.open(legus / LEGUS_628, masked=False).table
    assert not isinstance(t["PHANGS_F275W_VEGA"], MaskedColumn)
    assert np.sum(t["PHANGS_F275W_VEGA"] == 66.666) == 673
    assert np.sum(t["PHANGS_CLUSTER_CLASS_HUMAN"] == 0) == 1521


def edited_legus(legus: Path, folder: Path, row: int, column: int, value: str) -> Path:
    """The real NGC 628-C table (beside its readme) with one value replaced (0-based)."""
    lines = (legus / LEGUS_628).read_text().splitlines()
    fields = lines[row].split()
    fields[column] = value
    lines[row] = " ".join(fields)
    path = folder / LEGUS_628
    path.write_text("\n".join(lines) + "\n")
    shutil.copy(REAL / "legus" / LEGUS_628.replace(".tab", ".readme"), folder)
    return path


@pytest.mark.parametrize("token", ["inf", "nan", "1e400"])
def test_legus_non_finite_value_is_one_line_naming_row_and_column(legus, tmp_path, token):
    """LEGUS marks missing values with 66.666/99.999: NaN or inf in a table is damage."""
    path = edited_legus(legus, tmp_path, row=5, column=3, value=token)
    with pytest.raises(ProductError, match=rf"{LEGUS_628}: data row 6, column 4 holds"):
        _ = pp.open(path).table


def test_legus_fractional_id_is_one_line_naming_row_and_column(legus, tmp_path):
    """Column 1 (the source id) is declared integer: 1.5 there is damage, not a float id."""
    path = edited_legus(legus, tmp_path, row=0, column=0, value="1.5")
    with pytest.raises(ProductError, match=r"data row 1, column 1 \(ID_PHANGS_CANDIDATE\) holds"):
        _ = pp.open(path).table


def test_legus_repeated_id_is_a_problem_naming_the_column(legus, tmp_path):
    """Today's schema says candidate ids are unique; a historical file is held to that too."""
    first_id = (legus / LEGUS_628).read_text().split(maxsplit=1)[0]
    model = pp.open(edited_legus(legus, tmp_path, row=7, column=0, value=first_id))
    assert len(model.table) == 3080  # still readable
    (problem,) = [p for p in model.problems() if p.rule == "content.unique"]
    assert problem.where == "HDU 1 column ID_PHANGS_CANDIDATE"
    assert f"(first: {first_id})" in problem.message
    # the real files hold no repeated id
    for name in (LEGUS_628, LEGUS_1566):
        assert not [p for p in pp.open(legus / name).problems() if p.rule == "content.unique"]


# -------------------------------------------------------------------------------- images
def write_image(
    path: Path,
    acs: bool = False,
    weight: bool = False,
    filt: str = "F275W",
    extra: dict | None = None,
    radec: tuple[float, float] = (24.174, 15.783),
) -> Path:
    """A PHANGS-HST v1 image: the array in the primary HDU with AstroDrizzle's keywords.

    ``filt`` is the WFC3/UVIS filter (ACS images are F814W); ``extra`` adds header keywords;
    ``radec`` is the image centre.
    """
    rng = np.random.default_rng(1)
    data = rng.uniform(1.0, 4.0, (40, 50)).astype(np.float32)
    if weight:
        data[:5] = 0.0
    hdr = make_wcs(*radec, data.shape).to_header()
    hdr["TELESCOP"] = "HST"
    if acs:
        hdr["INSTRUME"], hdr["DETECTOR"] = "ACS", "WFC"
        hdr["FILTER1"], hdr["FILTER2"] = "F814W", "CLEAR2L"
    else:
        hdr["INSTRUME"], hdr["DETECTOR"], hdr["FILTER"] = "WFC3", "UVIS", filt
    hdr["BUNIT"] = "ELECTRONS/S"
    hdr["EXPTIME"] = 2190.0
    hdr["PHOTFLAM"], hdr["PHOTPLAM"], hdr["PHOTFNU"] = 3.2e-18, 2709.7, 7.8e-7
    hdr["NDRIZIM"] = 3
    for key, value in {
        "VER": "AstroDrizzle 3.5.1",
        "GEOM": "wcs",
        "DEXP": 730.0,
        "WTSC": 1.0,
        "KERN": "square",
        "PIXF": 1.0,
        "COEF": "SIP",
        "OUUN": "cps",
        "FVAL": "INDEF",
        "WKEY": " ",
    }.items():
        hdr[f"D001{key}"] = value
    hdr.update(extra or {})
    fits.PrimaryHDU(data, hdr).writeto(path)
    return path


def test_v1_images_open_as_todays_products(tmp_path):
    base = "hlsp_phangs-hst_hst_wfc3-uvis_ngc7496_f275w_v1_"
    sci = pp.open(write_image(tmp_path / f"{base}exp-drc-sci.fits"))
    assert isinstance(sci, LegacyImageModel) and sci.schema.id == "drc-sci-1.0.0"
    assert sci.meta.legacy.layout == "exp-drc-sci"
    assert sci.meta.filter == "F275W" and sci.meta.hlsptarg == "ngc7496"
    assert sci.data.shape == (40, 50) and sci.wcs.has_celestial
    np.testing.assert_array_equal(sci.data, sci.stored_data)

    err = pp.open(write_image(tmp_path / f"{base}err-drc-wht.fits", weight=True))
    assert err.schema.id == "drc-err-1.0.0" and err.meta.legacy.layout == "err-drc-wht"
    w = err.stored_data
    np.testing.assert_allclose(err.data[5:], 1 / np.sqrt(w[5:]), rtol=1e-6)
    assert np.all(err.data[:5] == 0) and err.meta.bunit == "ELECTRONS/S"
    assert "1/sqrt" in err.meta.legacy.notes[0]

    exp = pp.open(write_image(tmp_path / f"{base}exp-drc-wht.fits"))
    assert exp.schema.id == "drc-exp-1.0.0" and exp.meta.legacy.reads_as == "drc-exp-1.0.0"

    acs_name = "hlsp_phangs-hst_hst_acs-wfc_ngc628e_f814w_v1_exp-drc-sci.fits"
    acs = pp.open(write_image(tmp_path / acs_name, acs=True))
    assert (acs.meta.filter, acs.meta.instrume, acs.meta.detector) == ("F814W", "ACS", "WFC")


# ------------------------------------------------------------------------ unknown layouts
def one_line_error(path: Path, match: str) -> str:
    with pytest.raises(ProductError, match=match) as exc:
        pp.open(path)
    message = str(exc.value)
    assert "\n" not in message and path.name in message
    return message


def test_unknown_layouts_get_one_line_naming_what_was_expected(tmp_path):
    img = tmp_path / "hlsp_phangs-hst_hst_wfc3-uvis_ngc7496_f275w_v1_exp-drc-sci.fits"
    fits.PrimaryHDU(np.zeros((4, 4), np.float32)).writeto(img)
    one_line_error(img, "not a PHANGS-HST v1 image.*expected .*drizzle keywords NDRIZIM")

    cat = tmp_path / "hlsp_phangs-cat_hst_uvis_ngc1566_multi_v1_sed-human-cluster-class12.fits"
    Table({"INDEX": [1], "PHANGS_X": [1.0]}).write(cat)
    one_line_error(cat, "lacks ID_PHANGS_CANDIDATE.*expected the sed columns of phangs-cat-dr4")

    odd = tmp_path / "hlsp_phangs-cat_hst_uvis_ngc1566_multi_v1_sed-hst-halpha.fits"
    shutil.copyfile(cat, odd)
    one_line_error(odd, "unknown PHANGS-CAT DR4 catalog product type 'sed-hst-halpha'.*expected")

    tab = tmp_path / "clusters.tab"
    tab.write_text("1 2 3\n")
    one_line_error(tab, "not a known historical text catalog.*expected LEGUS cluster catalog")

    short = tmp_path / LEGUS_628
    short.write_text(" ".join(["1.0"] * 30) + "\n")
    one_line_error(short, "30 columns; a LEGUS cluster catalog has 35 .* or 39")

    other = tmp_path / LEGUS_628.replace("ngc628-c", "ngc1313-e")
    other.write_text(" ".join(["1.0"] * 35) + "\n")
    one_line_error(other, "target 'ngc1313-e' has no documented bands")

    plain = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((4, 4), np.float32)).writeto(plain)
    one_line_error(plain, "no PPSCHEMA/PPSCHVER.*historical")


def test_no_current_product_name_is_taken_for_a_historical_one():
    from phangs_products.legacy.layouts import match
    from phangs_products.naming import build_name
    from phangs_products.registry import product_schemas

    checked = 0
    for schema in product_schemas():
        variants = {k: v[0] for k, v in schema.product.get("variants", {}).items()}
        variants.setdefault("rootname", "ib4606c5q")
        for instruments in ("WFC3/UVIS", "ACS/WFC", ["WFC3/UVIS", "ACS/WFC"]):
            for ext in schema.product["extensions"]:
                name = build_name(
                    schema,
                    target="ngc628c",
                    version="v1",
                    instruments=instruments,
                    filter="F555W",
                    extension=ext,
                    **variants,
                )
                assert match(Path(name)) is None, name
                checked += 1
    assert checked > 30


def test_read_meta_reads_historical_headers(tmp_path):
    path = write_image(tmp_path / "hlsp_phangs-hst_hst_wfc3-uvis_ngc7496_f275w_v1_exp-drc-sci.fits")
    meta = pp.read_meta(path)
    assert meta.filter == "F275W" and meta["NDRIZIM"] == 3
    assert meta.legacy.layout == "exp-drc-sci"


# ----------------------------------------------------------------------- our own catalogs
@pytest.mark.parametrize("ext", ["fits", "parquet", "ecsv"])
def test_own_catalog_masks_by_default_and_answers_dr4_names(delivery, tmp_path, ext):
    model = catalog_product(delivery, "cluster-catalog")
    model.table["PHANGS_F555W_VEGA"][0] = -9999
    path = model.save(tmp_path / product_name(model, ext))
    plain = pp.open(path, masked=False).table
    assert plain["PHANGS_F555W_VEGA"][0] == -9999 and not plain.has_masked_columns
    assert plain["PHANGS_CLUSTER_CLASS_ML_VGG"] is plain["PHANGS_CLUSTER_CLASS_ML"]
    opened = pp.open(path)
    col = opened.table["PHANGS_F555W_VEGA"]
    assert isinstance(col, MaskedColumn) and col.mask[0] and col.filled()[0] == -9999
    assert col.unit == "mag" and np.all(~col.mask[1:])
    assert opened.meta.legacy is None
    # saved again, the masked entry is stored as the sentinel (not NaN, not an empty field)
    (tmp_path / "again").mkdir()
    copy = opened.save(tmp_path / "again" / path.name)
    assert pp.open(copy, masked=False).table["PHANGS_F555W_VEGA"][0] == -9999

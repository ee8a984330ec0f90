"""The phangs-products command line."""

from __future__ import annotations

import subprocess
import sys

from factories import catalog_product, image_product, product_name

from phangs_products.cli import main
from phangs_products.registry import get_schema


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "phangs_products.cli", *args], capture_output=True, text=True
    )


def test_version_and_help():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("phangs-products ")
    result = run("--help")
    assert "schemas" in result.stdout and "info" in result.stdout
    assert run("schemas", "show", "--help").returncode == 0


def test_schemas_list_and_show(capsys):
    assert main(["schemas", "list"]) == 0
    out = capsys.readouterr().out
    assert "cluster-catalog" in out and "current" in out
    assert main(["schemas", "show", "cluster-catalog"]) == 0
    out = capsys.readouterr().out
    assert "PHANGS_MASS_MINCHISQ" in out and "solMass" in out
    assert main(["schemas", "show", "drc-sci", "--version", "1.0.0", "--raw"]) == 0
    assert "id: drc-sci-1.0.0" in capsys.readouterr().out


def test_info_on_a_product(delivery, out, capsys):
    path = image_product(delivery).save(out / product_name(image_product(delivery)))
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert (
        get_schema("drc-sci").id in text and "FILTER   = 'F555W'" in text and "valid    yes" in text
    )


def test_info_lists_catalog_columns_with_units(delivery, out, capsys):
    model = catalog_product(delivery)
    model.table["PHANGS_F555W_VEGA"][0] = -9999
    path = model.save(out / product_name(model))
    assert main(["info", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    vega = next(line.split() for line in lines if line.split()[:1] == ["PHANGS_F555W_VEGA"])
    assert vega == ["PHANGS_F555W_VEGA", "f8", "[mag]", "1", "masked"]
    mass = next(line.split() for line in lines if line.split()[:1] == ["PHANGS_MASS_MINCHISQ"])
    assert mass[:3] == ["PHANGS_MASS_MINCHISQ", "f8", "[solMass]"]


def test_info_lists_a_manifest_with_broken_file_records(tmp_path, capsys):
    """A record whose size is not a number (or that is not a mapping) is shown as '?' or left
    out, not a ValueError from the formatting; the schema problems follow."""
    import asdf

    from phangs_products.delivery import find_manifest
    from phangs_products.testing import make_clean_delivery

    manifest = find_manifest(make_clean_delivery(tmp_path / "delivery"))
    with asdf.open(manifest) as af:
        tree = {k: v for k, v in af.tree.items() if not k.startswith("asdf_")}
    tree["files"][0]["size"] = "large"
    tree["files"].append("not a record")
    broken = tmp_path / manifest.name
    asdf.AsdfFile(tree).write_to(broken)
    assert main(["info", str(broken)]) == 1  # listed, then reported as not valid
    out = capsys.readouterr().out
    assert f"files    {len(tree['files'])}" in out and "          ? B  " in out
    assert "files/0/size: 'large' is not of type 'integer'" in out


def test_errors_are_one_line_with_exit_code(tmp_path, capsys):
    bad = tmp_path / "x.fits"
    bad.write_text("nope")
    assert main(["info", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: x.fits: not a readable FITS file")
    assert main(["schemas", "show", "nope"]) == 1


def test_info_says_what_each_kind_holds(tmp_path, capsys):
    """Region files: shape counts; manifests: the file list; FLCs: the extensions; checksums."""
    from phangs_products.delivery import find_checksums, find_manifest
    from phangs_products.testing import make_clean_delivery

    field = make_clean_delivery(tmp_path / "delivery")
    region = next(field.glob("*_cl-hum-c12-reg.reg"))
    assert main(["info", str(region)]) == 0
    assert " shape(s): " in capsys.readouterr().out
    manifest = find_manifest(field)
    assert main(["info", str(manifest)]) == 0
    text = capsys.readouterr().out
    n_files = len(list(field.glob("hlsp_*"))) - 2  # all but the manifest and checksum list
    assert f"files    {n_files}" in text and "drc-sci" in text
    from fuzzkit import _write_flc  # an FLC product from a real MAST exposure (two chips)

    flc = _write_flc(tmp_path / "hlsp_phangs-hst_hst_wfc3-uvis_ngc628c_f555w_v1_x-flc.fits")
    assert main(["info", str(flc)]) == 0
    text = capsys.readouterr().out
    assert "extensions" in text and "SCI,2" in text and "DQ,1" in text
    assert main(["info", str(find_checksums(field))]) == 0
    assert f"checksum list (sha256sum format) of {n_files + 1} files" in capsys.readouterr().out

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


def test_errors_are_one_line_with_exit_code(tmp_path, capsys):
    bad = tmp_path / "x.fits"
    bad.write_text("nope")
    assert main(["info", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: x.fits: not a readable FITS file")
    assert main(["schemas", "show", "nope"]) == 1

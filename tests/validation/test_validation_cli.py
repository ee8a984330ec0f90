"""The validate command line: formats, output file, exit codes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from astropy.io import fits
from vtools import refresh

from phangs_products.validation import cli

DRC = "hlsp_phangs-hst_hst_wfc3-uvis_ngc628c_f336w_v1_drc-sci.fits"


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli.add_parser(sub)
    args = parser.parse_args(["validate", *argv])
    return args.func(args)


def test_clean_exit_zero(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run([str(clean)]) == 0
    assert capsys.readouterr().out.startswith("OK: ")


def test_errors_exit_one_json(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with fits.open(clean / DRC, mode="update", checksum=True) as hdul:
        hdul[0].header["LICENSE"] = "proprietary"
    refresh(clean)
    assert run([str(clean.parent), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [p["rule"] for p in doc["problems"]] == ["keyword.value"]
    assert doc["problems"][0]["file"] == f"ngc628c/{DRC}"


def test_strict_and_output_file(clean: Path, tmp_path: Path) -> None:
    with fits.open(clean / DRC, mode="update", checksum=True) as hdul:
        del hdul[0].header["HLSPLEAD"]
    refresh(clean)
    out = tmp_path / "report.xml"
    assert run([str(clean), "--format", "junit", "--output", str(out)]) == 0
    assert out.read_text().startswith("<?xml")
    assert run([str(clean), "--strict", "--headers-only"]) == 1


def test_usage_errors_exit_two(tmp_path: Path) -> None:
    assert run([str(tmp_path / "missing")]) == 2
    assert cli.main(["--format", "yaml", str(tmp_path)]) == 2
    assert cli.main([str(tmp_path), "--workers", "0"]) == 2


def test_main_cli_wires_validate(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from phangs_products.cli import main

    assert main(["validate", str(clean), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True

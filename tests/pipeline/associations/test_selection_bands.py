"""A run whose bands leave out F275W: V-selected associations only, and the delivery says so."""

from __future__ import annotations

import pytest

import phangs_products as pp
from phangs_products.cli import main
from phangs_products.delivery import find_manifest
from phangs_products.pipeline.config import load_config
from phangs_products.validation import validate_delivery

pytestmark = pytest.mark.slow


def test_run_without_f275w_makes_v_selected_associations_and_validates(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(["simulate", "--out", str(out), "--bands", "F555W,F814W"]) == 0
    assert main(["run", str(out / "run.toml")]) == 0  # the NUV selection used to raise KeyError
    text = capsys.readouterr().out
    assert "valid: 0 error(s)" in text
    config = load_config(out / "run.toml")
    field = config.output / config.field
    assert validate_delivery(field).ok
    tree = pp.open(find_manifest(field)).tree
    assert tree["selections"] == ["v"]
    masks = sorted(p.name for p in field.glob("*-msk.fits"))
    assert len(masks) == 4 and all("_asc-v-" in name for name in masks)
    log = (config.work / "logs" / "associations.log").read_text()
    assert "NUV-selected associations left out: the run has no F275W image" in log

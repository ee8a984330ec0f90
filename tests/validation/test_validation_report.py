"""Report formats: JSON against the shipped JSON Schema, JUnit XML through junitparser, text."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from astropy.io import fits
from vtools import refresh

from phangs_products.registry import get_schema
from phangs_products.validation import RULES, report_schema, validate_delivery
from phangs_products.validation.rules import CHECKS

junitparser = pytest.importorskip("junitparser")

DRC = "hlsp_phangs-hst_hst_wfc3-uvis_ngc628c_f336w_v1_drc-sci.fits"


@pytest.fixture
def broken(clean: Path) -> Path:
    with fits.open(clean / DRC, mode="update", checksum=True) as hdul:
        del hdul[0].header["SIMULATD"]  # observed data without its collection DOI
        del hdul[0].header["HLSPNAME"]
    refresh(clean)
    return clean


def test_json_validates_against_shipped_schema(broken: Path) -> None:
    report = validate_delivery(broken)
    doc = json.loads(report.to_json())
    jsonschema.Draft202012Validator.check_schema(report_schema())
    jsonschema.validate(doc, report_schema())
    assert doc["ok"] is False
    assert doc["counts"] == {"files": len(report.files), "errors": 1, "warnings": 1}
    (problem,) = [p for p in doc["problems"] if p["severity"] == "error"]
    assert problem["rule"] == "keyword.missing" and problem["file"] == DRC
    assert problem["schema"] == get_schema("drc-sci").id and problem["check"] == "metadata"
    assert "DOI" in problem["message"]


def test_json_of_clean_delivery(clean: Path) -> None:
    doc = json.loads(validate_delivery(clean).to_json())
    jsonschema.validate(doc, report_schema())
    assert doc["ok"] is True and doc["problems"] == []


def test_junit_parses_with_one_case_per_file_and_check(broken: Path) -> None:
    report = validate_delivery(broken)
    xml = junitparser.JUnitXml.fromstring(report.to_junit().encode())
    suites = list(xml) if isinstance(xml, junitparser.JUnitXml) else [xml]
    cases = [case for suite in suites for case in suite]
    keys = [(c.classname, c.name) for c in cases]
    assert len(keys) == len(set(keys))
    assert {c.name for c in cases} <= set(CHECKS)
    assert {c.classname for c in cases} >= set(report.files)
    failed = [c for c in cases if not c.is_passed and not c.is_skipped]
    assert [(c.classname, c.name) for c in failed] == [(DRC, "metadata")]
    assert "keyword.missing" in failed[0].result[0].message
    assert sum(s.tests for s in suites) == len(cases)
    assert sum(s.failures for s in suites) == 1


def test_junit_clean(clean: Path) -> None:
    xml = junitparser.JUnitXml.fromstring(validate_delivery(clean).to_junit().encode())
    suites = list(xml) if isinstance(xml, junitparser.JUnitXml) else [xml]
    cases = [case for suite in suites for case in suite]
    assert cases and all(c.is_passed for c in cases)


def test_text_groups_by_file(broken: Path) -> None:
    text = validate_delivery(broken).to_text()
    lines = text.splitlines()
    assert lines[0] == DRC
    assert lines[1].split()[:2] == ["ERROR", "keyword.missing"]
    assert "DOI" in lines[1]
    assert lines[-1].startswith("FAILED: ")
    coloured = validate_delivery(broken).to_text(colour=True)
    assert "[red]" in coloured


def test_rules_registry_is_well_formed() -> None:
    for rule_id, rule in RULES.items():
        assert rule.id == rule_id and "." in rule_id
        assert rule.check in CHECKS
        assert rule.severity in ("error", "warning")
        assert rule.description.endswith(".")

"""The layering rules of docs/architecture.md, as import-linter contracts (pyproject.toml).

``phangs_products.pipeline`` and ``phangs_products.validation`` live in their own folders (mapped
into the one namespace by the package configuration); import-linter walks one package folder, so
the test lays the three folders out as one package tree in a temporary folder and lints that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
#: subpackages that live in folders of their own
OWN_FOLDERS = ("pipeline", "validation")


def _package_tree(tmp: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "data", "*.yaml", "*.j2", "*.css", "*.lock")
    target = tmp / "phangs_products"
    shutil.copytree(Path(str(resources.files("phangs_products"))), target, ignore=ignore)
    for sub in ("pipeline", "validation"):
        src = Path(str(resources.files(f"phangs_products.{sub}")))
        shutil.copytree(src, target / sub, ignore=ignore, dirs_exist_ok=True)
    return tmp


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return _package_tree(tmp_path_factory.mktemp("arch"))


def test_import_contracts_hold(tree):
    """Every contract is kept; on failure the output names the offending import chain."""
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    result = subprocess.run(
        [str(lint), "--config", str(PYPROJECT), "--no-cache"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tree,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_contracts_cover_every_core_and_pipeline_module(tree):
    """A new core module or pipeline package must be placed in the contracts, not slip by."""
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    core = set(contracts[0]["source_modules"])
    package = tree / "phangs_products"
    present = {
        f"phangs_products.{p.stem}"
        for p in package.iterdir()
        if (p.suffix == ".py" and p.stem not in ("__init__", "cli"))
        or (
            p.is_dir() and (p / "__init__.py").exists() and p.name not in ("pipeline", "validation")
        )
    }
    assert present == core
    production = set(contracts[2]["source_modules"])
    pipeline = {
        f"phangs_products.pipeline.{p.stem}"
        for p in (package / "pipeline").iterdir()
        if (p.suffix == ".py" and p.stem not in ("__init__", "cli"))
        or (p.is_dir() and (p / "__init__.py").exists() and p.name != "sim")
    }
    assert pipeline == production


def test_a_broken_rule_is_caught_and_named(tree, tmp_path):
    """A core module that imports the pipeline fails the lint, and the output names it."""
    bad = _package_tree(tmp_path)
    naming = bad / "phangs_products" / "naming.py"
    naming.write_text(naming.read_text() + "\nfrom phangs_products.pipeline import runner\n")
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--config", str(PYPROJECT), "--no-cache"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(bad)},
        cwd=bad,
        timeout=300,
    )
    assert result.returncode == 1
    assert "phangs_products.naming -> phangs_products.pipeline.runner" in result.stdout

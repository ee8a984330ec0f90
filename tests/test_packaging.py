"""The wheel ships schemas, templates and data; editable and normal installs both find them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import phangs_products
from phangs_products.registry import current_version, schema_files, schemas_root

ROOT = Path(__file__).resolve().parents[1]
# Both tests share one wheel, so they run on one xdist worker (make test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("wheel")
# Not sources: environments, caches and build output that a developer's tree may hold.
NOT_SOURCES = shutil.ignore_patterns(
    ".venv",
    ".git",
    "build",
    "dist",
    "demo-output",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools writes build/ and *.egg-info into the source tree it is given.
    source = tmp_path_factory.mktemp("source") / "phangs-products"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, f"pip wheel failed:\n{build.stderr[-4000:]}"
    (path,) = out.glob("phangs_products-*.whl")
    return path


def test_wheel_contains_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for schema in (ROOT / "schemas").rglob("*.yaml"):
        rel = schema.relative_to(ROOT / "schemas").as_posix()
        assert f"phangs_products/schemas/{rel}" in names
    assert "phangs_products/schemas/released.lock" in names
    for template in (ROOT / "templates").glob("*.j2"):
        assert f"phangs_products/templates/{template.name}" in names
    for data in (ROOT / "phangs_products" / "data").iterdir():
        assert f"phangs_products/data/{data.name}" in names
    assert "phangs_products/pipeline/__init__.py" in names
    assert "phangs_products/legacy/readers.py" in names
    assert "phangs_products/validation/__init__.py" in names


def test_normal_install_finds_schemas(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import phangs_products as pp; from phangs_products.registry import schemas_root;"
        "assert str(schemas_root()).startswith(sys.argv[1]), schemas_root();"
        "print(pp.get_schema('cluster-catalog').id)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(target)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"cluster-catalog-{current_version('cluster-catalog')}"


def test_editable_install_finds_schemas():
    # this test suite runs on the editable install made by `make test`
    assert Path(phangs_products.__file__).resolve().is_relative_to(ROOT)
    assert schemas_root().resolve() == (ROOT / "schemas").resolve()
    assert len(schema_files()) >= 20

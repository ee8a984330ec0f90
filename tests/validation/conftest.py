"""Fixtures of the validator tests: a fresh clean delivery per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from phangs_products.testing import make_clean_delivery


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    """A fresh, valid field folder (``<tmp>/ngc628c``)."""
    return make_clean_delivery(tmp_path / "delivery")

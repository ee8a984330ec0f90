"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import demo_delivery

from phangs_products.hlsp import Delivery


@pytest.fixture(scope="session")
def delivery() -> Delivery:
    """The simulated NGC 628 field's delivery facts."""
    return demo_delivery()


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A fresh output folder."""
    return tmp_path

"""The clean delivery's FITS files pass HEASARC fitsverify with 0 errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

fitsverify = shutil.which("fitsverify")


@pytest.mark.skipif(
    fitsverify is None, reason="fitsverify not installed (apt-get install fitsverify)"
)
def test_fitsverify_finds_no_errors(clean: Path) -> None:
    files = sorted(str(p) for p in clean.glob("*.fits"))
    proc = subprocess.run([fitsverify, "-q", *files], capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert len(lines) == len(files)
    for line in lines:
        match = re.search(r"(\d+) warnings and (\d+) errors", line)
        assert line.startswith("verification OK") or (match and match[2] == "0"), line

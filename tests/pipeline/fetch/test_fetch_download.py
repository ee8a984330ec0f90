"""Resumable downloads through astroquery from a local HTTP server serving real FLC files."""

from __future__ import annotations

import socket

import pytest
from astropy.io import fits
from fetchkit import EXPOSURES

from phangs_products.atomic import is_temp_file
from phangs_products.pipeline.fetch.download import download_products
from phangs_products.pipeline.fetch.query import FetchError, Product


def _products(folder) -> list[Product]:
    return [
        Product(
            filename=f"{root}_flc.fits",
            uri=f"mast:HST/product/{root}_flc.fits",
            size=(folder / f"{root}_flc.fits").stat().st_size,
            obs_id=root,
            instrument="WFC3/UVIS",
            filter=filt,
        )
        for root, filt in EXPOSURES
    ]


def _gets(log) -> list[str]:
    return [path for method, path in log if method == "GET"]


def test_download_then_resume(flc_server, tmp_path):
    url, archive, log = flc_server
    products = _products(archive)
    out = tmp_path / "flc"
    first = download_products(products, out, base_url=url)
    assert [o.status for o in first] == ["downloaded"] * len(EXPOSURES)
    for product, outcome in zip(products, first, strict=True):
        assert outcome.path.read_bytes() == (archive / product.filename).read_bytes()
        with fits.open(outcome.path) as hdul:  # a real FLC, checksums intact
            assert hdul[0].header["ROOTNAME"] == product.obs_id
            assert hdul["SCI", 1].verify_checksum() == 1
    assert len(_gets(log)) == len(EXPOSURES)

    # a second run downloads nothing
    log.clear()
    again = download_products(products, out, base_url=url)
    assert [o.status for o in again] == ["kept"] * len(EXPOSURES)
    assert log == []

    # a truncated file and one damaged in place (same size, CHECKSUM mismatch) are fetched again
    truncated, damaged = first[0].path, first[1].path
    truncated.write_bytes(truncated.read_bytes()[:5000])
    raw = bytearray(damaged.read_bytes())
    raw[-10] ^= 0xFF  # inside the last HDU's data
    damaged.write_bytes(bytes(raw))
    third = download_products(products, out, base_url=url)
    assert [o.status for o in third] == ["downloaded"] * 2 + ["kept"] * (len(EXPOSURES) - 2)
    assert truncated.read_bytes() == (archive / products[0].filename).read_bytes()
    assert damaged.read_bytes() == (archive / products[1].filename).read_bytes()
    assert not [p for p in out.iterdir() if is_temp_file(p)]


def test_short_transfer_leaves_no_file(flc_server, tmp_path):
    url, archive, _ = flc_server
    products = _products(archive)[:1]
    served = archive / products[0].filename
    served.write_bytes(served.read_bytes()[:2880])  # the archive sends fewer bytes than listed
    out = tmp_path / "flc"
    with pytest.raises(FetchError, match="incomplete download") as exc:
        download_products(products, out, base_url=url)
    assert "\n" not in str(exc.value)
    assert list(out.iterdir()) == []  # neither the final name nor a temporary file


def test_missing_file_on_the_server_is_one_line(flc_server, tmp_path):
    url, archive, _ = flc_server
    products = _products(archive)[:1]
    (archive / products[0].filename).unlink()
    with pytest.raises(FetchError, match="download failed") as exc:
        download_products(products, tmp_path / "flc", base_url=url)
    assert "\n" not in str(exc.value)


def test_unreachable_server_is_one_line(flc_server, tmp_path):
    _, archive, _ = flc_server
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api/v0.1/Download/file"
    with pytest.raises(FetchError, match=r"download of ie1a05t4q_flc\.fits: request failed") as exc:
        download_products(_products(archive)[:1], tmp_path / "flc", base_url=url)
    assert "\n" not in str(exc.value)
    assert list((tmp_path / "flc").iterdir()) == []

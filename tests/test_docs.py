"""README and HTML documentation rendered from the schemas and a delivery."""

from __future__ import annotations

import html
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

import phangs_products as pp
from phangs_products.docs import build_site, render_readme
from phangs_products.models import ReadmeModel
from phangs_products.registry import product_schemas
from phangs_products.testing import make_clean_delivery


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("href", "src") and value:
                self.links.append(value)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("run") / "delivery"
    make_clean_delivery(root)
    problems = [
        {
            "severity": "warning",
            "rule": "keyword.recommended",
            "file": "x.fits",
            "where": "HDU PRIMARY",
            "message": "missing recommended keyword PSFSIZE",
        }
    ]
    index = build_site(root, problems, "0 errors, 1 warning")
    return index.parent, index


def test_every_page_renders_and_links_resolve(site):
    root, _index = site
    pages = sorted(root.rglob("*.html"))
    assert len(pages) >= 5 + len(product_schemas())
    for page in pages:
        text = page.read_text()
        assert text.startswith("<!doctype html>") and "</html>" in text
        parser = Links()
        parser.feed(text)
        for link in parser.links:
            if link.startswith(("http://", "https://", "mailto:")):
                continue
            target = (page.parent / link.split("#")[0]).resolve()
            assert target.exists(), f"{page.name}: broken link {link}"


def test_every_catalog_column_appears_on_its_product_page(site):
    root, _ = site
    for schema in product_schemas():
        page = (root / "products" / f"{schema.name}.html").read_text()
        for col in schema.column_templates():
            assert f"<code>{col.name}</code>" in page, (schema.name, col.name)
        for kw in schema.keywords:
            assert kw.fits_keyword in page


def test_galaxy_page_has_previews(site):
    root, _ = site
    pngs = sorted((root / "galaxies").rglob("*.png"))
    names = {p.name for p in pngs}
    assert {"rgb.png", "clusters.png", "assoc-nuv.png", "assoc-v.png"} <= names
    from PIL import Image

    image = np.asarray(Image.open(next(p for p in pngs if p.name == "rgb.png")))
    assert image.std() > 1.0  # not blank


def test_readme_renders_with_required_sections(site):
    _root, _ = site
    from phangs_products.bands import galaxy

    files = [{"name": "hlsp_x_drc-sci.fits", "product": "drc-sci", "size": 1000, "filter": "F555W"}]
    text = render_readme(
        galaxy_=galaxy("ngc628"),
        field="ngc628c",
        version="v1",
        files=files,
        steps=[{"title": "Alignment", "text": "TweakReg."}],
        simulated=True,
    )
    model = ReadmeModel.create(text)
    assert model.validate() == []
    assert "PHANGS_MASS_MINCHISQ" in text and "hlsp_x_drc-sci.fits" in text
    assert "| `cl-{subset}` | `obs-sed-{classify}-{class}` |" in text


PAGE_KINDS = (
    "index.html",
    "galaxies/ngc628c.html",
    "products/cluster-catalog.html",
    "products/drc-sci.html",
    "products.html",
    "validation.html",
    "versions.html",
    "cite.html",
)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed")
@pytest.mark.parametrize("page", PAGE_KINDS)
def test_every_page_kind_in_headless_chromium(site, tmp_path, page):
    root, _ = site
    shot = tmp_path / "page.png"
    result = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={shot}",
            "--window-size=1200,900",
            (root / page).as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists(), result.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), float)
    assert pixels.std() > 5.0  # not a blank page
    console_errors = [ln for ln in result.stderr.splitlines() if "CONSOLE" in ln and "rror" in ln]
    assert console_errors == []


def test_product_pages_open_with_an_example_preview_and_code(site):
    root, _ = site
    page = (root / "products" / "cluster-catalog.html").read_text()
    intro, columns = page.split("<h2>Columns", 1)
    assert "phangs_products.open(" in intro and ".to_pandas()" in intro
    assert "Table.read(" in intro and " rows x " in intro and 'src="cluster-catalog.png"' in intro
    assert "<details><summary>MAST HLSP keywords" in columns  # boilerplate folded, after columns
    image = html.unescape((root / "products" / "drc-sci.html").read_text())
    assert " x " in image and " px" in image and "WCS(hdul[0].header)" in image


def test_galaxy_page_links_every_file_and_cite_page_exists(site):
    from phangs_products.delivery import find_manifest

    root, _ = site
    page = (root / "galaxies" / "ngc628c.html").read_text()
    manifest = pp.open(find_manifest(root.parent / "delivery" / "ngc628c"))
    for rec in manifest.tree["files"]:
        assert f'href="../../delivery/ngc628c/{rec["name"]}"' in page, rec["name"]
    cite = (root / "cite.html").read_text()
    assert "10.3847/1538-4365/ac1fe5" in cite and "CITATION.cff" in cite


def test_preview_binning_equals_the_block_means_of_the_whole_image():
    """Previews bin a memory-mapped image block by block: the means of the whole-array reshape."""
    from phangs_products.docs import binned

    rng = np.random.default_rng(4)
    data = rng.normal(size=(1003, 517)).astype(np.float32)
    data[10:20, 30:40] = np.nan  # NaN counts as 0, as in the composite before
    for step in (1, 3, 8):
        ny, nx = (data.shape[0] // step) * step, (data.shape[1] // step) * step
        whole = np.nan_to_num(data[:ny, :nx].astype(float))
        expected = whole.reshape(ny // step, step, nx // step, step).mean(axis=(1, 3))
        np.testing.assert_allclose(binned(data, step, rows=5), expected, rtol=1e-12)

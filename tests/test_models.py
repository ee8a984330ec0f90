"""Create -> save -> open -> equal for every product type, lazy reads, provenance, CLI info."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from factories import catalog_product, image_product, product_name
from regions import CircleSkyRegion, PolygonSkyRegion, Regions

import phangs_products as pp
from phangs_products.provenance import read_provenance
from phangs_products.registry import current_version


@pytest.mark.parametrize("kind", ["drc-sci", "drc-err", "drc-exp", "assoc-mask"])
def test_image_round_trip(kind, delivery, out):
    model = image_product(delivery, kind)
    model.provenance = {"stage": "test", "config": {"fwhm_px": 2.5}}
    path = model.save(out / product_name(model))
    back = pp.open(path, strict=True)
    assert isinstance(back, pp.ImageModel)
    version = current_version(kind)
    assert back.schema.id == f"{kind}-{version}"
    np.testing.assert_array_equal(back.data, model.data)
    assert back.data.dtype.name == model.schema.arrays["data"].dtype  # big-endian, memmapped
    assert back.wcs.wcs.compare(model.wcs.wcs, tolerance=1e-12)
    assert back.meta.hlsptarg == model.meta.hlsptarg
    assert back.meta["PPSCHEMA"] == kind and back.meta["PPSCHVER"] == version
    assert "EQUINOX" not in back.meta.header()
    prov = read_provenance(path)
    assert prov["schema"] == f"{kind}-{version}" and prov["config"] == {"fwhm_px": 2.5}
    with fits.open(path) as hdul:  # plain astropy agrees, checksums verify
        assert hdul[0].verify_checksum() == 1 and hdul[0].verify_datasum() == 1


@pytest.mark.parametrize("schema_name", ["cluster-catalog", "dolphot-catalog", "assoc-catalog"])
@pytest.mark.parametrize("ext", ["fits", "parquet", "ecsv"])
def test_catalog_round_trip_all_formats(schema_name, ext, delivery, out):
    model = catalog_product(delivery, schema_name)
    path = model.save(out / product_name(model, ext))
    back = pp.open(path, strict=True)
    assert isinstance(back, pp.CatalogModel)
    assert back.bands == model.bands
    assert back.table.colnames == model.table.colnames
    for name in model.table.colnames:
        np.testing.assert_array_equal(np.asarray(back.table[name]), np.asarray(model.table[name]))
        assert str(back.table[name].unit or "") == str(model.table[name].unit or "")
    assert back.meta.hlspver == "v1"
    assert back.meta["PPSCHEMA"] == schema_name


def test_fits_catalog_has_tunit_tdisp_tnull(delivery, out):
    model = catalog_product(delivery, "cluster-catalog")
    path = model.save(out / product_name(model))
    header = fits.getheader(path, "CATALOG")
    cols = {header[f"TTYPE{i}"]: i for i in range(1, header["TFIELDS"] + 1)}
    assert header[f"TUNIT{cols['PHANGS_MASS_MINCHISQ']}"] == "solMass"
    assert header[f"TDISP{cols['PHANGS_RA']}"] == "F12.7"
    assert header[f"TNULL{cols['PHANGS_CLUSTER_CLASS_HUMAN']}"] == -9999
    assert f"TNULL{cols['PHANGS_F555W_VEGA']}" not in header  # no TNULL on float columns
    assert header["RADESYS"] == "ICRS"


def test_regions_and_readme_round_trip(delivery, out):
    regs = Regions(
        [
            CircleSkyRegion(
                SkyCoord(24.17, 15.78, unit="deg"),
                0.2 * pp_arcsec(),
                visual={"color": "blue"},
                meta={"text": "1"},
            ),
            PolygonSkyRegion(SkyCoord([24.17, 24.171, 24.171], [15.78, 15.78, 15.781], unit="deg")),
        ]
    )
    model = pp.RegionsModel.create(
        regs, meta={"hlsptarg": "ngc0628c", "hlspver": "v1", "source": "x.fits"}
    )
    path = model.save(out / product_name(model, "reg"))
    back = pp.open(path, strict=True)
    assert len(back.regions) == 2
    assert back.regions[0].center.separation(regs[0].center).arcsec < 1e-3
    assert back.meta.source == "x.fits"
    text = "# README\n\n" + "".join(
        f"## {s}\n\ntext\n\n"
        for s in (
            "Summary",
            "Contact",
            "Version and changes",
            "Products",
            "How the products were made",
            "File names",
            "References",
        )
    )
    readme = pp.ReadmeModel.create(text)
    path = readme.save(out / "hlsp_phangs-hst_hst_multi_ngc628c_multi_v1_readme.md")
    assert pp.open(path, strict=True).content()["sections"][0] == "Summary"


def pp_arcsec():
    import astropy.units as u

    return u.arcsec


def test_manifest_round_trip(out):
    model = pp.ManifestModel.create(
        "run-manifest", {"run_id": "r1", "target": "ngc628c", "stages": {}}
    )
    path = model.save(out / "run.asdf")
    back = pp.open(path, strict=True)
    assert back.tree["run_id"] == "r1"


def test_open_reads_headers_only(delivery, out):
    model = image_product(delivery, "drc-sci", shape=(400, 400))
    path = model.save(out / product_name(model))
    back = pp.open(path)
    assert back._data is None  # not loaded until asked
    assert back.data.shape == (400, 400)
    meta = pp.read_meta(path)
    assert meta.filter == "F555W" and meta.hlspid == "phangs-hst"


def test_meta_attributes_come_from_the_schema(delivery):
    model = image_product(delivery, "drc-sci")
    assert "photflam" in dir(model.meta)
    assert "PHOTFLAM" in type(model.meta).photflam.__doc__
    with pytest.raises(AttributeError, match="no keyword attribute 'photflm'"):
        model.meta.photflm = 1.0


def test_unknown_keywords_stay_on_the_model_but_are_not_schema_items(delivery, out):
    model = image_product(delivery, "drc-sci")
    model.meta["MYKEY"] = 3
    path = model.save(out / product_name(model))
    back = pp.open(path)
    assert back.meta["MYKEY"] == 3
    assert "MYKEY" not in back.meta.schema_items()


def test_older_schema_version_still_reads(delivery, out):
    # a file records its schema version; the reader uses that one, not the current one
    model = image_product(delivery, "drc-sci")
    path = model.save(out / product_name(model))
    assert pp.open(path).schema.version == fits.getval(path, "PPSCHVER")


def test_opened_meta_reads_the_header_bytes_until_headers_are_used(delivery, out):
    """``meta.<keyword>`` reads the scanned values; ``meta.headers`` gives astropy headers."""
    from phangs_products.models.meta import LayoutHeaders

    model = catalog_product(delivery)
    path = model.save(out / product_name(model))
    back = pp.open(path, strict=True)
    headers = back.meta.headers
    assert isinstance(headers, LayoutHeaders)
    primary = fits.getheader(path, 0)
    for spec in back.schema.keywords:
        if not spec.per_band and spec.fits_hdu == "PRIMARY" and spec.fits_keyword in primary:
            assert getattr(back.meta, spec.name) == primary[spec.fits_keyword], spec.name
    assert back.bands == model.bands
    assert "CATALOG" in headers and isinstance(headers["CATALOG"], fits.Header)
    assert headers["CATALOG"]["NAXIS2"] == len(model.table)
    back.meta.hlsptarg = "NGC9999"  # a write goes to the astropy header, reads follow it
    assert back.meta.hlsptarg == "NGC9999" and headers["PRIMARY"]["HLSPTARG"] == "NGC9999"

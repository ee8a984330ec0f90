"""Test data and helpers: minimal valid products of every type built with the real models, and
the checks pipeline tests share (products by filter, WCS against the simulator's truth, DS9)."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

import phangs_products as pp
from phangs_products.bands import galaxy, survey_filters
from phangs_products.hlsp import Delivery, HlspIdentity, common_meta
from phangs_products.naming import build_name
from phangs_products.pipeline.config import RunConfig
from phangs_products.pipeline.sim.simulate import true_wcs

BANDS = [pp.BandInfo(f) for f in survey_filters()]

#: Foreground keywords of a test catalog: no Milky Way extinction, nothing corrected.
NO_FOREGROUND = {
    "ebvmw": 0.0,
    "ebvmwsrc": "test product",
    "extmwlaw": "none (E(B-V) = 0)",
    "mwcorr": False,
    "amw_nn": [0.0] * len(BANDS),
}

#: HLSP identity of test runs on simulated data (no collection DOI).
TEST_IDENTITY = HlspIdentity(
    names={"phangs-hst": "phangs-products test products"}, lead="phangs-products tests"
)


def sim_run(sim, root: Path, **settings) -> RunConfig:
    """Run configuration of a simulated field: its FLCs and reference catalog, delivery and
    work folders under ``root``, simulated data, no foreground, the test identity.

    ``settings`` replace any field (``bands``, ``field``, ``pointings`` ...).
    """
    run = RunConfig(
        target="ngc628",
        field="ngc628c",
        input=sim.flc_dir,
        reference_catalog=sim.reference_catalog,
        output=root / "delivery",
        work=root / "work",
        simulated=True,
        ebv_mw=0.0,
        hlsp=TEST_IDENTITY,
    )
    return dataclasses.replace(run, **settings)


def measure(images: dict, errors: dict):
    """Detection on F555W and aperture photometry of every band with the default settings,
    positions in RA/Dec: the photometry stage's measurement, as the star tests check it."""
    from phangs_products.pipeline.photometry.aperture import measure_bands
    from phangs_products.pipeline.photometry.config import PhotometryConfig
    from phangs_products.pipeline.photometry.detect import detect_sources

    config = PhotometryConfig()
    sources = detect_sources(images["F555W"], config)
    table, apcorr = measure_bands(sources, images, errors, config)
    table["ra"], table["dec"] = images["F555W"].wcs.pixel_to_world_values(table["x"], table["y"])
    return table, apcorr


def cluster_figures(truth_path: Path, outputs: dict, drc) -> dict:
    """Truth figures of a cluster stage's candidate catalog (printed for ``pytest -s``)."""
    from astropy.table import Table

    import phangs_products as pp
    from phangs_products.pipeline.sim.recovery import cluster_lines, cluster_recovery

    truth = Table.read(truth_path)
    (path,) = [p for p in outputs["cluster-catalog"] if p.name.endswith("cl-cand.fits")]
    cand = pp.open(path, masked=False).table
    figures = cluster_recovery(truth, cand, drc)
    print("\n" + "\n".join(cluster_lines(truth, figures, float(cand["PHANGS_DM"][0]))))
    return figures


def demo_delivery() -> Delivery:
    """The simulated NGC 628 field's delivery facts."""
    return Delivery(galaxy("ngc628"), "ngc628c", "v1", 58800.1, 58800.3, simulated=True)


def make_wcs(ra: float, dec: float, shape: tuple[int, int]) -> WCS:
    """North-up 0.04 arcsec/pixel TAN WCS centred on (ra, dec)."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
    w.wcs.cd = [[-0.04 / 3600, 0.0], [0.0, 0.04 / 3600]]
    return w


def image_product(
    delivery: Delivery, kind: str = "drc-sci", filt: str = "F555W", shape=(40, 50)
) -> pp.ImageModel:
    rng = np.random.default_rng(1)
    data = rng.normal(0.0, 1.0, shape)
    wcs = make_wcs(delivery.galaxy.ra, delivery.galaxy.dec, shape)
    if kind == "assoc-mask":
        data = (data > 1.5).astype(np.int32)
        meta = {
            **common_meta(delivery, "phangs-cat", instrument="WFC3"),
            "ascscale": 16,
            "ascsel": "V",
            "nassoc": 1,
            "filter": "MULTI",
        }
        return pp.ImageModel.create(kind, data, wcs, meta)
    meta = {
        **common_meta(delivery, "phangs-hst", xposure=670.0),
        "filter": filt,
        "detector": "UVIS",
        "photflam": 1.8e-19,
        "photplam": 5308.0,
        "zp_vega": 25.83,
        "zp_ab": 25.8,
        "exptime": 670.0,
        "ncombine": 3,
        "pixscale": 0.04,
        "refband": "F555W",
        "pointing": "1",
        "psfsize": 0.067,
        "bunit": "s" if kind == "drc-exp" else "ELECTRONS/S",
    }
    return pp.ImageModel.create(kind, data, wcs, meta)


def catalog_table(schema_name: str, n: int = 4) -> Table:
    """A table with every column of a catalog schema filled with plausible values."""
    schema = pp.get_schema(schema_name)
    rng = np.random.default_rng(2)
    table = Table()
    for col in schema.expand_columns(BANDS):
        if col.dtype == "string":
            table[col.name] = ["a"] * n
        elif col.enum:
            table[col.name] = np.full(n, col.enum[0])
        elif col.dtype == "bool":
            table[col.name] = np.zeros(n, bool)
        elif col.dtype.startswith("int"):  # ids among them: distinct values
            table[col.name] = np.arange(1, n + 1).astype(col.numpy_dtype)
        elif col.minimum is not None:
            table[col.name] = col.minimum + rng.uniform(0.1, 0.2, n)
        else:
            table[col.name] = np.arange(1, n + 1).astype(col.numpy_dtype)
    return table


def catalog_product(
    delivery: Delivery, schema_name: str = "cluster-catalog", n: int = 4
) -> pp.CatalogModel:
    extra = {
        "cluster-catalog": {
            "clsubset": "hum-c12",
            "apcorr_v": -0.75,
            "sedmodel": "BC03",
            "humclass": True,
        },
        "dolphot-catalog": {"photeng": "PHOTUTILS-PSF", "photengv": "3.1"},
        "assoc-catalog": {"ascscale": 16, "ascsel": "V"},
    }[schema_name]
    meta = {**common_meta(delivery, "phangs-cat"), **NO_FOREGROUND, **extra}
    return pp.CatalogModel.create(schema_name, catalog_table(schema_name, n), BANDS, meta)


def product_name(model: pp.Model, ext: str | None = None) -> str:
    variants = {
        "cluster-catalog": {"subset": "hum-c12"},
        "assoc-catalog": {"selection": "v", "scale": "16"},
        "assoc-mask": {"selection": "v", "scale": "16"},
        "ds9-regions": {"base": "cl-hum-c12"},
    }.get(model.schema.name, {})
    filt = model.meta.filter if model.schema.product["filter_field"] == "band" else None
    return build_name(
        model.schema, target="ngc628c", version="v1", filter=filt, extension=ext, **variants
    )


def by_filter(paths: list[Path], filt: str) -> Path:
    """The product of one filter from a list of HLSP file names."""
    (path,) = [p for p in paths if f"_{filt.lower()}_" in p.name]
    return path


def offsets_from_true_wcs(
    truth_exposures, ref: np.ndarray, rootname: str, chip: int, path: Path
) -> np.ndarray:
    """Distance (FLC px) between where the WCS of ``path`` and the simulator's true WCS of
    ``rootname`` put the reference stars (``ref``: RA, Dec in deg) that fall on ``chip``."""
    true = true_wcs(truth_exposures, rootname, chip)
    x, y = true.world_to_pixel_values(ref[:, 0], ref[:, 1])
    product = pp.open(path)
    ny, nx = product.hdus["SCI", chip].data.shape
    on = (x >= 0) & (x < nx) & (y >= 0) & (y < ny)
    xa, ya = product.chip_wcs(chip).world_to_pixel_values(ref[on, 0], ref[on, 1])
    return np.hypot(xa - x[on], ya - y[on])


#: skip marker for tests that need the Debian DS9 and xvfb packages
needs_ds9 = pytest.mark.skipif(
    shutil.which("ds9") is None or shutil.which("xvfb-run") is None,
    reason="Debian saods9/xvfb not installed",
)


def ds9_load_and_save(image: Path, regions: Path, out: Path) -> subprocess.CompletedProcess:
    """Open ``image`` in DS9 under xvfb, load ``regions``, save them again to ``out``, exit."""
    command = ["xvfb-run", "-a", "ds9", str(image), "-regions", "load", str(regions)]
    command += ["-regions", "save", str(out), "-exit"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def assert_shared_grid(products: dict[str, list[Path]], bands: tuple[str, ...]) -> pp.ImageModel:
    """Every DRC science/ERR/EXP product of ``bands`` is on the F555W science grid.

    Same shape, CRVAL, CD and CRPIX, 0.04"/px, north up.  Returns the F555W science model.
    """
    ref = pp.open(by_filter(products["drc-sci"], "F555W"))
    for filt in bands:
        for kind in ("drc-sci", "drc-err", "drc-exp"):
            model = pp.open(by_filter(products[kind], filt))
            assert model.data.shape == ref.data.shape
            np.testing.assert_allclose(model.wcs.wcs.crval, ref.wcs.wcs.crval, rtol=0, atol=1e-10)
            np.testing.assert_allclose(
                model.wcs.pixel_scale_matrix, ref.wcs.pixel_scale_matrix, rtol=1e-9, atol=1e-16
            )
            np.testing.assert_allclose(model.wcs.wcs.crpix, ref.wcs.wcs.crpix, atol=1e-6)
    scale = np.sqrt(abs(np.linalg.det(ref.wcs.pixel_scale_matrix))) * 3600
    assert scale == pytest.approx(0.04, rel=1e-6)
    assert ref.wcs.pixel_scale_matrix[0, 1] == pytest.approx(0.0, abs=1e-12)  # north up
    return ref


def tiny_flc(
    path: Path, filt: str = "F555W", rootname: str | None = "ib0000aaq", sci: bool = True
) -> Path:
    """A minimal WFC3/UVIS FLC header file (4x4 SCI/ERR/DQ of zeros; ``sci=False``: none).

    ``rootname=None`` leaves ROOTNAME out (the file name then names the exposure).
    """
    primary = fits.PrimaryHDU()
    primary.header.update(
        INSTRUME="WFC3",
        DETECTOR="UVIS",
        FILTER=filt,
        EXPTIME=100.0,
        EXPSTART=58800.0,
        EXPEND=58800.001,
        READNSEA=3.1,
        READNSEB=3.1,
        READNSEC=3.1,
        READNSED=3.1,
    )
    if rootname is not None:
        primary.header["ROOTNAME"] = rootname
    hdus = [primary]
    if sci:
        hdus += [
            fits.ImageHDU(np.zeros((4, 4), np.float32), name="SCI", ver=1),
            fits.ImageHDU(np.zeros((4, 4), np.float32), name="ERR", ver=1),
            fits.ImageHDU(np.zeros((4, 4), np.int16), name="DQ", ver=1),
        ]
    fits.HDUList(hdus).writeto(path)
    return path


#: Header cards that differ between two runs of the same inputs (when and by which run).
RUN_CARDS = {"DATE", "CHECKSUM", "DATASUM", "PPRUNID", "IRAF-TLM", "DATE-OBS", "FILENAME"}


def assert_same_products(a: Path, b: Path) -> None:
    """Two runs' FITS products hold the same data, bit for bit, and the same headers.

    Headers are compared but for the cards of :data:`RUN_CARDS` and AstroDrizzle's ``D0*``
    records; floats to 1e-6.  The ``ASDF`` extension (provenance: run id, paths) is not
    compared.  The arrays are identical: a Dask worker runs the same code on the same inputs
    (they differed while AstroDrizzle's static masks were shared).
    """
    with fits.open(a) as ha, fits.open(b) as hb:
        for x, y in zip(ha, hb, strict=True):
            if x.name == "ASDF":
                continue
            for key in x.header:
                if key in RUN_CARDS or key.startswith("D0"):
                    continue
                got, want = x.header[key], y.header.get(key)
                if isinstance(got, float):
                    assert got == pytest.approx(want, rel=1e-6, abs=1e-12), (a.name, key)
                else:
                    assert got == want, (a.name, key)
            if x.data is not None:
                columns = x.data.names if hasattr(x.data, "names") else [None]
                for name in columns:
                    a_arr = np.asarray(x.data if name is None else x.data[name])
                    b_arr = np.asarray(y.data if name is None else y.data[name])
                    assert a_arr.shape == b_arr.shape, (a.name, name)
                    np.testing.assert_array_equal(a_arr, b_arr, err_msg=f"{a.name} {name}")


def assert_same_deliveries(got: Path, want: Path) -> int:
    """Every FITS product of the field folder ``got`` equals the one of ``want`` (same names);
    returns how many were compared."""
    names = sorted(p.name for p in got.glob("hlsp_*.fits"))
    assert names == sorted(p.name for p in want.glob("hlsp_*.fits"))
    for name in names:
        assert_same_products(got / name, want / name)
    return len(names)


def manifest_stages(work: Path) -> dict:
    """The stage records of a work folder's run manifest ({} while it is missing or written)."""
    path = work / "run-manifest.asdf"
    if not path.exists():
        return {}
    try:
        return pp.open(path).tree["stages"]
    except Exception:
        return {}

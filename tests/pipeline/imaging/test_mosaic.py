"""Mosaics of a galaxy observed with two pointings: footprint, grid, flux, EXP, validity.

One module-scoped run on a small two-pointing simulation (F555W and F814W, 512x512 detector,
60% overlap): each pointing is run as its own field (imaging, publish) and the mosaic run
(mosaic, publish, validate) drizzles the aligned FLCs both pointings published.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from factories import assert_shared_grid, by_filter, sim_run
from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture

import phangs_products as pp
from phangs_products.naming import check_name
from phangs_products.pipeline.config import ConfigError, Pointing, load_config
from phangs_products.pipeline.graph import build_mosaic_stages
from phangs_products.pipeline.imaging.exposures import ImagingConfig
from phangs_products.pipeline.imaging.mosaic import aligned_flcs
from phangs_products.pipeline.imaging.stage import imaging_stage
from phangs_products.pipeline.instrument import psf_for
from phangs_products.pipeline.publish.publish import publish_stage
from phangs_products.pipeline.runner import Stage, run_stages
from phangs_products.pipeline.sim.config import SimConfig
from phangs_products.pipeline.sim.simulate import simulate

BANDS = ("F555W", "F814W")
FIELDS = ("ngc628c", "ngc628e")
MOSAIC = "ngc628mosaic"
# fewer objects and deeper exposures than the default so that the overlap holds enough isolated
# stars with good S/N for the 2% flux comparisons
SIM = SimConfig(
    bands=BANDS,
    seed=3,
    pointings=2,
    overlap=0.6,
    n_stars=400,
    n_clusters=20,
    n_associations=2,
    exptime_scale=2.0,
)
KINDS = ("drc-sci", "drc-err", "drc-exp")


def galaxy_config(sim, root):
    """The two-pointing galaxy's run configuration, its folders under ``root``."""
    return sim_run(
        sim,
        root,
        field=MOSAIC,
        input=sim.pointings[FIELDS[0]],
        bands=BANDS,
        pointings=tuple(Pointing(f, sim.pointings[f]) for f in FIELDS),
    )


@pytest.fixture(scope="module")
def galaxy_run(tmp_path_factory):
    """Simulation, per-pointing imaging products and the mosaic products."""
    root = tmp_path_factory.mktemp("mosaic")
    sim = simulate(SIM, root / "sim")
    run = galaxy_config(sim, root)
    imaging = ImagingConfig()
    pointings = {}
    for sub in run.pointing_runs():
        stages = [
            Stage("imaging", imaging_stage, config=imaging),
            Stage("publish", publish_stage, depends=("imaging",), config={}),
        ]
        pointings[sub.field] = run_stages(sub, stages)[0].outputs
    mosaic_run = run.mosaic_run()
    results = run_stages(mosaic_run, build_mosaic_stages(mosaic_run)[:3])  # without the docs
    return {
        "sim": sim,
        "run": run,
        "pointings": pointings,
        "mosaic": results[0].outputs,
        "statuses": [r.status for r in results],
    }


def _open(path) -> tuple[np.ndarray, object]:
    model = pp.open(path)
    return np.asarray(model.data, float), model


def isolated_stars(truth: Table, vmax: float, min_sep: float = 0.6) -> Table:
    coords = SkyCoord(truth["ra"], truth["dec"], unit="deg")
    _, sep, _ = coords.match_to_catalog_sky(coords, nthneighbor=2)
    return truth[(truth["kind"] == "star") & (sep.arcsec > min_sep) & (truth["F555W_vega"] < vmax)]


def aperture_flux(data: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    pos = np.c_[x, y]
    sky = ApertureStats(data, CircularAnnulus(pos, 10, 15)).median
    aper = CircularAperture(pos, 6.0)
    return ApertureStats(data, aper).sum - sky * aper.area


def inside(model, coords: SkyCoord, margin: float = 20.0) -> tuple[np.ndarray, ...]:
    x, y = model.wcs.world_to_pixel(coords)
    ny, nx = model.data.shape
    ok = (x > margin) & (x < nx - margin) & (y > margin) & (y < ny - margin)
    return x, y, ok


def full_depth(exp_model, coords: SkyCoord) -> np.ndarray:
    """Whether each position lies where all of the map's exposures overlap."""
    data = np.asarray(exp_model.data, float)
    x, y = exp_model.wcs.world_to_pixel(coords)
    ix, iy = np.round(x).astype(int), np.round(y).astype(int)
    ny, nx = data.shape
    ok = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    out = np.zeros(ix.shape, bool)
    out[ok] = data[iy[ok], ix[ok]] > 0.99 * exp_model.meta.exptime
    return out


@pytest.mark.slow
def test_two_pointings_share_one_scene(galaxy_run):
    sim = galaxy_run["sim"]
    truth = Table.read(sim.truth)
    assert truth.meta["fields"] == list(FIELDS)
    exposures = Table.read(sim.truth_exposures)
    assert sorted(set(exposures["field"])) == list(FIELDS)
    targets = {}
    for field in FIELDS:
        files = sorted(sim.pointings[field].glob("*_flc.fits"))
        assert len(files) == 3 * len(BANDS)
        letter = "a" if field == FIELDS[0] else "b"
        assert all(fits.getval(p, "ROOTNAME")[7] == letter for p in files)
        assert {fits.getval(p, "HLSPTARG") for p in files} == {field}
        targets[field] = {(fits.getval(p, "RA_TARG"), fits.getval(p, "DEC_TARG")) for p in files}
        assert len(targets[field]) == 1
    (c,), (e,) = targets[FIELDS[0]], targets[FIELDS[1]]
    east = (e[0] - c[0]) * np.cos(np.radians(c[1])) * 3600
    assert east == pytest.approx(SIM.pointing_step_px * 0.0396, rel=1e-6) and e[1] == c[1]
    # the reference catalog spans both pointings
    ref = np.loadtxt(sim.reference_catalog)
    assert ref[:, 0].min() < c[0] - 5 / 3600 and ref[:, 0].max() > e[0] + 5 / 3600


@pytest.mark.slow
def test_stages_ran_and_products_are_named_for_the_mosaic(galaxy_run):
    assert galaxy_run["statuses"] == ["done", "done", "done"]  # mosaic, publish, validate
    mosaic = galaxy_run["mosaic"]
    for kind in KINDS:
        assert len(mosaic[kind]) == len(BANDS)
        for path in mosaic[kind]:
            assert f"_{MOSAIC}_" in path.name
            assert [p for p in check_name(path.name) if p.severity == "error"] == []
    for field, outputs in galaxy_run["pointings"].items():
        assert all(f"_{field}_" in p.name for kind in KINDS for p in outputs[kind])
        assert len(aligned_flcs(galaxy_run["run"].output / field)) == 3 * len(BANDS)
    published = sorted((galaxy_run["run"].output / MOSAIC).glob("hlsp_*_drc*.fits"))
    assert len(published) == 3 * len(BANDS)


@pytest.mark.slow
def test_bands_drizzled_side_by_side_equal_the_sequential_mosaic(galaxy_run, tmp_path):
    """The module's mosaic drizzled its bands in worker processes; in turn gives the same arrays."""
    import dataclasses

    from phangs_products.pipeline.imaging.mosaic import mosaic_stage
    from phangs_products.pipeline.imaging.parallel import worker_count

    assert worker_count(ImagingConfig(), len(BANDS)) == 2  # the fixture's run was parallel
    run = dataclasses.replace(galaxy_run["run"].mosaic_run(), work=tmp_path / "work")
    stage = Stage("mosaic", mosaic_stage, config=ImagingConfig(workers=1))
    (result,) = run_stages(run, [stage])
    for kind in KINDS:
        for filt in BANDS:
            one = fits.getdata(by_filter(result.outputs[kind], filt))
            two = fits.getdata(by_filter(galaxy_run["mosaic"][kind], filt))
            np.testing.assert_array_equal(one, two, err_msg=f"{kind} {filt}")


def test_mosaic_covers_both_pointings(galaxy_run):
    _, mosaic_exp = _open(by_filter(galaxy_run["mosaic"]["drc-exp"], "F555W"))
    mexp = np.asarray(mosaic_exp.data, float)
    shapes = {}
    for field, outputs in galaxy_run["pointings"].items():
        exp, model = _open(by_filter(outputs["drc-exp"], "F555W"))
        shapes[field] = exp.shape
        # every exposed pixel of the pointing (on a coarse grid) is exposed in the mosaic
        yy, xx = np.mgrid[0 : exp.shape[0] : 7, 0 : exp.shape[1] : 7]
        covered = exp[yy, xx] > 0
        world = model.wcs.pixel_to_world(xx[covered], yy[covered])
        mx, my = mosaic_exp.wcs.world_to_pixel(world)
        # inside the mosaic to within a pixel (the grids differ by sub-pixel phases)
        assert mx.min() > -1 and my.min() > -1
        assert mx.max() < mexp.shape[1] and my.max() < mexp.shape[0]
        ix = np.clip(np.round(mx).astype(int), 0, mexp.shape[1] - 1)
        iy = np.clip(np.round(my).astype(int), 0, mexp.shape[0] - 1)
        frac = np.mean(mexp[iy, ix] > 0)
        print(f"{field}: DRC {exp.shape}, {frac:.4f} of its exposed pixels exposed in the mosaic")
        assert frac > 0.995
    # two 512-px pointings 205 FLC px apart (0.0396"/px) on 0.04" pixels
    step = SIM.pointing_step_px * 0.0396 / 0.04
    width = shapes[FIELDS[0]][1]
    print(
        f"mosaic {mexp.shape} vs pointing {shapes[FIELDS[0]]}, expected width ~{width + step:.0f}"
    )
    assert mexp.shape[1] == pytest.approx(width + step, abs=12)
    assert mexp.shape[0] == pytest.approx(shapes[FIELDS[0]][0], abs=12)


@pytest.mark.slow
def test_all_mosaic_bands_share_the_f555w_mosaic_grid(galaxy_run):
    ref = assert_shared_grid(galaxy_run["mosaic"], BANDS)
    single = pp.open(by_filter(galaxy_run["pointings"][FIELDS[0]]["drc-sci"], "F555W"))
    assert single.data.shape != ref.data.shape  # its own grid, not a pointing's


@pytest.mark.slow
def test_overlap_star_fluxes_agree_with_pointings_and_truth(galaxy_run):
    truth = Table.read(galaxy_run["sim"].truth)
    stars = isolated_stars(truth, 25.0)
    coords = SkyCoord(stars["ra"], stars["dec"], unit="deg")
    for filt in BANDS:
        mosaic, mosaic_model = _open(by_filter(galaxy_run["mosaic"]["drc-sci"], filt))
        x, y, ok = inside(mosaic_model, coords)
        per_pointing = {}
        for field, outputs in galaxy_run["pointings"].items():
            data, model = _open(by_filter(outputs["drc-sci"], filt))
            px, py, pok = inside(model, coords)
            exp_model = pp.open(by_filter(outputs["drc-exp"], filt))
            ok &= pok & full_depth(exp_model, coords)
            per_pointing[field] = (data, px, py)
        assert ok.sum() >= 5, f"{filt}: only {ok.sum()} isolated stars in the overlap"
        flux = aperture_flux(mosaic, x[ok], y[ok])
        ee = psf_for(filt).ee(6.0 * 0.04 / 0.0396)
        vs_truth = np.median(flux / ee / np.asarray(stars[f"{filt}_rate"])[ok])
        line = f"{filt}: {ok.sum()} isolated stars in the overlap; mosaic/truth {vs_truth:.4f}"
        assert abs(vs_truth - 1) < 0.02
        for field, (data, px, py) in per_pointing.items():
            ratio = np.median(flux / aperture_flux(data, px[ok], py[ok]))
            line += f"; mosaic/{field} {ratio:.4f}"
            assert abs(ratio - 1) < 0.02
        print(line)


@pytest.mark.slow
def test_exp_in_the_overlap_is_the_sum_of_both_pointings(galaxy_run):
    for filt in BANDS:
        mosaic = pp.open(by_filter(galaxy_run["mosaic"]["drc-exp"], filt))
        mexp = np.asarray(mosaic.data, float)
        yy, xx = np.mgrid[0 : mexp.shape[0] : 3, 0 : mexp.shape[1] : 3]
        world = mosaic.wcs.pixel_to_world(xx.ravel(), yy.ravel())
        both = np.ones(world.size, bool)
        summed = np.zeros(world.size)
        for outputs in galaxy_run["pointings"].values():
            model = pp.open(by_filter(outputs["drc-exp"], filt))
            both &= full_depth(model, world)
            data = np.asarray(model.data, float)
            px, py = model.wcs.world_to_pixel(world)
            ix = np.clip(np.round(px).astype(int), 0, data.shape[1] - 1)
            iy = np.clip(np.round(py).astype(int), 0, data.shape[0] - 1)
            summed += data[iy, ix]
        total = sum(
            pp.open(by_filter(o["drc-exp"], filt)).meta.exptime
            for o in galaxy_run["pointings"].values()
        )
        values = mexp[yy.ravel(), xx.ravel()][both]
        print(
            f"{filt}: {both.sum()} sampled overlap pixels at full depth in both pointings; "
            f"mosaic EXP median {np.median(values):.1f} s, sum of pointings {total:.1f} s, "
            f"pixel ratio mosaic/(c+e) median {np.median(values / summed[both]):.5f}"
        )
        assert both.sum() > 100
        assert np.median(values) == pytest.approx(total, rel=1e-3)
        assert np.median(values / summed[both]) == pytest.approx(1.0, rel=1e-3)
        assert mosaic.meta.exptime == pytest.approx(total, rel=1e-6)


@pytest.mark.slow
def test_mosaic_products_validate_and_pass_fitsverify(galaxy_run):
    paths = [p for kind in KINDS for p in galaxy_run["mosaic"][kind]]
    for path in paths:
        model = pp.open(path, strict=True)
        model.validate()
        header = fits.getheader(path)
        assert header["HLSPTARG"] == MOSAIC
        assert header["POINTING"] == "mosaic"
        assert header["NCOMBINE"] == 3 * len(FIELDS)
        text = header.tostring() + fits.getheader(path, 1).tostring()
        assert str(galaxy_run["run"].work) not in text and "/tmp" not in text
        # the target position lies inside the mosaic
        x, y = model.wcs.world_to_pixel(SkyCoord(header["RA_TARG"], header["DEC_TARG"], unit="deg"))
        assert 0 < x < model.data.shape[1] and 0 < y < model.data.shape[0]
    if shutil.which("fitsverify") is None:
        pytest.skip("fitsverify is not installed (make test installs it)")
    for path in paths:
        out = subprocess.run(["fitsverify", "-e", "-q", str(path)], capture_output=True, text=True)
        assert "0 error" in out.stdout or out.returncode == 0, out.stdout


# ----------------------------------------------------------------------------- config
def _write_config(tmp_path, body: str):
    for field in FIELDS:
        (tmp_path / field).mkdir(exist_ok=True)
    (tmp_path / "ref.txt").write_text("#\n")
    path = tmp_path / "run.toml"
    path.write_text(
        '[run]\ntarget = "ngc628"\nreference_catalog = "ref.txt"\noutput = "out"\n'
        'ebv_mw = 0\nhlsp = {preset = "phangs-hst"}\n' + body
    )
    return path


POINTINGS_TOML = "".join(f'[[run.pointings]]\nfield = "{f}"\ninput = "{f}"\n' for f in FIELDS)


def test_multi_pointing_config_loads(tmp_path):
    config = load_config(_write_config(tmp_path, POINTINGS_TOML))
    assert config.field == MOSAIC
    assert [p.field for p in config.pointings] == list(FIELDS)
    assert [r.field for r in config.pointing_runs()] == list(FIELDS)
    assert config.pointing_runs()[1].input == (tmp_path / "ngc628e").resolve()
    assert config.pointing_runs()[0].work == (tmp_path / "out" / "work" / "ngc628c").resolve()
    mosaic = config.mosaic_run()
    assert mosaic.work == (tmp_path / "out" / "work" / MOSAIC).resolve()
    assert [p.input for p in mosaic.pointings] == [config.output / f for f in FIELDS]
    named = load_config(_write_config(tmp_path, 'mosaic = "ngc628mos"\n' + POINTINGS_TOML))
    assert named.field == "ngc628mos"
    assert "pointings" in config.to_dict() and "pointings" not in named.pointing_runs()[0].to_dict()


def test_the_site_is_built_once_per_galaxy(tmp_path):
    """Each pointing is published and validated; only the mosaic run builds the HTML site."""
    from phangs_products.pipeline.graph import galaxy_plan

    plan = galaxy_plan(load_config(_write_config(tmp_path, POINTINGS_TOML)))
    assert [run.field for run, _ in plan] == [*FIELDS, MOSAIC]
    for _, stages in plan[:-1]:
        names = [s.name for s in stages]
        assert "validate" in names and "docs" not in names
    assert [s.name for s in plan[-1][1]][-1] == "docs"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('field = "ngc628c"\n' + POINTINGS_TOML, "field cannot be given with pointings"),
        ('[[run.pointings]]\nfield = "ngc628c"\ninput = "ngc628c"\n', "run-config-1.3.0: run"),
        ('mosaic = "ngc628mosaic"\ninput = "ngc628c"\n', "mosaic needs pointings"),
        (POINTINGS_TOML.replace('input = "ngc628e"', 'input = "nope"'), "pointings.1.input"),
    ],
)
def test_multi_pointing_config_errors_are_one_line(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(_write_config(tmp_path, body))
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_pointings_side_by_side_equal_the_pointings_in_turn(galaxy_run, tmp_path, caplog):
    """Both pointings in two worker processes: the products of the fixture's pointings in turn."""
    from phangs_products.pipeline.fields import run_fields

    run = galaxy_config(galaxy_run["sim"], tmp_path)
    plans = [
        (
            sub,
            [
                Stage("imaging", imaging_stage, config=ImagingConfig()),
                Stage("publish", publish_stage, depends=("imaging",), config={}),
            ],
        )
        for sub in run.pointing_runs()
    ]
    seen: list[tuple[str, str, str]] = []
    caplog.set_level("INFO", logger="phangs_products")
    done = run_fields(plans, 2, report=lambda f, r: seen.append((f, r.name, r.status)))
    for field, results in zip(FIELDS, done, strict=True):
        assert [r.status for r in results] == ["done", "done"]
        for kind in KINDS:
            for filt in BANDS:
                side = fits.getdata(by_filter(results[0].outputs[kind], filt))
                in_turn = fits.getdata(by_filter(galaxy_run["pointings"][field][kind], filt))
                np.testing.assert_array_equal(side, in_turn, err_msg=f"{field} {kind} {filt}")
        # every stage was reported as it ran and as it ended, named by its field
        assert {(field, "imaging", "running"), (field, "publish", "done")} <= set(seen)
    # the workers' log records reached this process
    assert {f"{f}: field {f}" for f in FIELDS} <= {r.getMessage() for r in caplog.records}

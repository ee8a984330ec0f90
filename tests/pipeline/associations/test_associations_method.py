"""The association method against truth, on point-source catalogs built here (no imaging).

* Recovery: the simulator's own scene (:func:`build_scene`, many associations, two seeds)
  projected on the 0.04"/px grid, with a simple detection model standing in for the photometry
  (a magnitude limit and a 2 px resolution limit: of two stars closer than 2 px only the
  brighter is kept).  An injected association counts as recovered when a region at the
  nearest kernel scale (in log FWHM) has its centre within one kernel FWHM of the true centre.
* Scale behaviour and nesting: a hierarchical young population (64 pc complexes holding 32 pc
  groups holding 16 pc groups holding 8 pc clumps) over a uniform field.
* Spurious detections: the simulator's field stars alone (no associations, no arms), and a
  denser uniform field.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from scipy.spatial import cKDTree

from phangs_products.bands import galaxy, pc_per_pixel
from phangs_products.pipeline.associations.config import FWHM_SIGMA, AssociationConfig
from phangs_products.pipeline.associations.maps import MapSmoother, tracer_map
from phangs_products.pipeline.associations.watershed import watershed_regions
from phangs_products.pipeline.instrument import FLC_SCALE
from phangs_products.pipeline.sim.config import MARGIN_PX, SimConfig
from phangs_products.pipeline.sim.recovery import nearest_scales
from phangs_products.pipeline.sim.scene import build_scene, field_center

SCALES = (8, 16, 32, 64)
PC_PX = pc_per_pixel(galaxy("ngc628").distance_mpc, 0.04)
LIMITS = {"v": ("F555W_vega", 26.5), "nuv": ("F275W_vega", 25.5)}


def _scene(seed: int, size: str, **kw) -> dict:
    """Simulator truth on a 0.04"/px grid centred on the field: positions, magnitudes."""
    config = SimConfig(seed=seed, size=size, n_clusters=0, **kw)
    gal = galaxy(config.target)
    ra0, dec0 = field_center(gal)
    chips, ny, nx = config.shape
    size_deg = (
        (nx + 2 * MARGIN_PX) * FLC_SCALE / 3600.0,
        (chips * ny + 2 * MARGIN_PX) * FLC_SCALE / 3600.0,
    )
    truth, assoc, _ = build_scene(config, size_deg)
    shape = (int(chips * ny * FLC_SCALE / 0.04), int(nx * FLC_SCALE / 0.04))
    cosd = math.cos(math.radians(dec0))

    def to_pixel(ra, dec):
        x = -(np.asarray(ra) - ra0) * cosd * 3600.0 / 0.04 + shape[1] / 2.0
        y = (np.asarray(dec) - dec0) * 3600.0 / 0.04 + shape[0] / 2.0
        return x, y

    x, y = to_pixel(truth["ra"], truth["dec"])
    ax, ay = to_pixel(assoc["ra"], assoc["dec"])
    return {"truth": truth, "x": x, "y": y, "ax": ax, "ay": ay, "assoc": assoc, "shape": shape}


def _detected(scene: dict, selection: str) -> tuple[np.ndarray, np.ndarray]:
    """Stars brighter than the limit, resolved (2 px), on the grid."""
    column, limit = LIMITS[selection]
    mag = np.asarray(scene["truth"][column], float)
    keep = mag < limit
    x, y, mag = scene["x"][keep], scene["y"][keep], mag[keep]
    order = np.argsort(mag)
    x, y = x[order], y[order]
    pairs = cKDTree(np.c_[x, y]).query_pairs(2.0, output_type="ndarray")
    hidden = np.zeros(len(x), bool)
    for i, j in pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]:
        if not hidden[i]:
            hidden[j] = True
    x, y = x[~hidden], y[~hidden]
    shape = scene["shape"]
    on = (x >= 0) & (y >= 0) & (x < shape[1] - 0.5) & (y < shape[0] - 0.5)
    return x[on], y[on]


def _run(x: np.ndarray, y: np.ndarray, shape: tuple[int, int], config=None) -> dict:
    """Labels, peaks and member centres at every scale."""
    config = config or AssociationConfig()
    foot = np.ones(shape, bool)
    pad = int(np.ceil(4 * max(SCALES) / PC_PX * config.highpass_factor / FWHM_SIGMA))
    smoother = MapSmoother(tracer_map(x, y, shape), foot, pad)
    out = {}
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    for scale in SCALES:
        labels, peaks, _ = watershed_regions(
            x, y, shape, scale / PC_PX, config, foot, smoother, pc_px=PC_PX
        )
        n = len(peaks)
        member = labels[iy, ix]
        counts = np.bincount(member, minlength=n + 1)[1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            cx = np.bincount(member, x, minlength=n + 1)[1:] / counts
            cy = np.bincount(member, y, minlength=n + 1)[1:] / counts
        out[scale] = {"labels": labels, "n": n, "cx": cx, "cy": cy}
    return out


def _hierarchical(seed: int, shape: tuple[int, int], n_complex: int, n_field: int):
    """Young stars in 64/32/16/8 pc nested groups plus a uniform field; (x, y) in px."""
    rng = np.random.default_rng(seed)
    margin = 64 / PC_PX
    centres = np.c_[
        rng.uniform(margin, shape[1] - margin, n_complex),
        rng.uniform(margin, shape[0] - margin, n_complex),
    ]
    for size_pc in (32, 16, 8):
        children = rng.integers(2, 4, len(centres))
        parent = np.repeat(centres, children, axis=0)
        offset = rng.normal(0.0, 0.5 * 2 * size_pc / FWHM_SIGMA / PC_PX, parent.shape)
        centres = parent + offset
    members = rng.integers(4, 8, len(centres))
    stars = np.repeat(centres, members, axis=0)
    stars += rng.normal(0.0, 8 / FWHM_SIGMA / PC_PX / 1.5, stars.shape)
    field = np.c_[rng.uniform(0, shape[1] - 1, n_field), rng.uniform(0, shape[0] - 1, n_field)]
    allxy = np.vstack([stars, field])
    on = (allxy[:, 0] >= 0) & (allxy[:, 1] >= 0)
    on &= (allxy[:, 0] < shape[1] - 1) & (allxy[:, 1] < shape[0] - 1)
    return allxy[on, 0], allxy[on, 1]


@pytest.mark.parametrize("selection", ["v", "nuv"])
def test_recovery_of_injected_associations(selection):
    found, total = 0, 0
    per_scale: dict[int, list[int]] = {s: [0, 0] for s in SCALES}
    for seed in (11, 12):
        scene = _scene(seed, "medium", n_associations=3, spiral_arms=False)
        x, y = _detected(scene, selection)
        result = _run(x, y, scene["shape"])
        fwhm = np.asarray(scene["assoc"]["fwhm_pc"], float)
        nearest = nearest_scales(fwhm, SCALES)
        shape = scene["shape"]
        inside = (scene["ax"] >= 0) & (scene["ay"] >= 0)
        inside &= (scene["ax"] < shape[1]) & (scene["ay"] < shape[0])
        for i in np.flatnonzero(inside):
            res = result[nearest[i]]
            dist = np.hypot(res["cx"] - scene["ax"][i], res["cy"] - scene["ay"][i])
            hit = res["n"] > 0 and np.nanmin(dist) <= nearest[i] / PC_PX
            found += int(hit)
            total += 1
            per_scale[int(nearest[i])][0] += int(hit)
            per_scale[int(nearest[i])][1] += 1
    fraction = found / total
    detail = ", ".join(f"{s} pc {h}/{n}" for s, (h, n) in per_scale.items())
    print(f"{selection}: recovered {found}/{total} = {fraction:.0%} ({detail})")
    assert total >= 30
    assert fraction >= 0.8


@pytest.fixture(scope="module")
def hierarchy():
    shape = (1024, 1024)
    x, y = _hierarchical(3, shape, n_complex=12, n_field=4 * 300)
    return _run(x, y, shape)


def test_larger_scales_give_fewer_larger_regions(hierarchy):
    counts = [hierarchy[s]["n"] for s in SCALES]
    areas = [float(np.median(np.bincount(hierarchy[s]["labels"].ravel())[1:])) for s in SCALES]
    print("regions per scale", dict(zip(SCALES, counts, strict=True)))
    print("median area (px)", dict(zip(SCALES, areas, strict=True)))
    assert all(a >= b for a, b in pairwise(counts)), counts
    assert counts[0] > counts[-1] > 0
    assert all(a < b for a, b in pairwise(areas)), areas


def test_masks_nest(hierarchy):
    """Nesting rule: >= 80% of the pixels of the regions at a scale lie inside regions of the
    next larger scale, and >= 90% of the regions have their peak-scale centre inside one."""
    for small, large in pairwise(SCALES):
        inner = hierarchy[small]["labels"] > 0
        outer = hierarchy[large]["labels"] > 0
        pixel_fraction = (inner & outer).sum() / inner.sum()
        cx, cy = hierarchy[small]["cx"], hierarchy[small]["cy"]
        good = np.isfinite(cx)
        centre_in = outer[np.rint(cy[good]).astype(int), np.rint(cx[good]).astype(int)]
        print(
            f"{small} pc in {large} pc: {pixel_fraction:.0%} of pixels, "
            f"{centre_in.mean():.0%} of centres"
        )
        assert pixel_fraction >= 0.8
        assert centre_in.mean() >= 0.9


@pytest.mark.parametrize("selection", ["v", "nuv"])
def test_few_spurious_on_a_smooth_disk(selection):
    """Simulator field stars only (smooth disk, no arms, no associations): < 5 per scale."""
    worst = 0
    for seed in (21, 22, 23):
        scene = _scene(seed, "small", n_associations=0, spiral_arms=False)
        x, y = _detected(scene, selection)
        result = _run(x, y, scene["shape"])
        counts = [result[s]["n"] for s in SCALES]
        print(f"{selection} seed {seed}: {len(x)} stars, spurious per scale {counts}")
        worst = max(worst, *counts)
    assert worst < 5


def test_few_spurious_in_a_dense_uniform_field():
    """A 2048 x 2048 field (15 kpc^2) with 0.01 stars/px^2 (10x the simulated density): fewer
    than 0.5 spurious regions per kpc^2 and scale, a twelfth of the simulated fields' density
    of true associations (6 per kpc^2)."""
    rng = np.random.default_rng(5)
    shape = (2048, 2048)
    n = int(0.01 * shape[0] * shape[1])
    x, y = rng.uniform(0, shape[1] - 1, n), rng.uniform(0, shape[0] - 1, n)
    counts = np.array([_run(x, y, shape)[s]["n"] for s in SCALES])
    kpc2 = shape[0] * shape[1] * (PC_PX / 1e3) ** 2
    print(f"{n} uniform stars on {kpc2:.1f} kpc^2: spurious per scale {counts.tolist()}")
    assert counts.max() / kpc2 < 0.5


def test_region_photometry_equals_the_ndimage_statistics(tmp_path):
    """Real DRC products (with a missing-data corner), regions from the watershed."""
    from astropy.io import fits

    import phangs_products as pp
    from phangs_products.pipeline.associations.catalog import region_photometry
    from phangs_products.testing import make_drc_products, ndimage_region_photometry

    folder = make_drc_products(tmp_path / "d", size=256, bands=("F555W", "F814W"))
    images, errors = {}, {}
    for band in ("F555W", "F814W"):
        for kind, into in (("sci", images), ("err", errors)):
            path = next(folder.glob(f"*_{band.lower()}_*drc-{kind}.fits"))
            with fits.open(path, mode="update") as hdul:
                hdul[0].data[:40, :60] = np.nan  # missing data counts as 0, as in the sums
            into[band] = pp.open(path)
    x, y = _hierarchical(7, (256, 256), n_complex=3, n_field=300)
    for scale in (8, 16, 32):
        fwhm = scale / PC_PX
        labels, _, _ = watershed_regions(x, y, (256, 256), fwhm, AssociationConfig(), pc_px=PC_PX)
        assert labels.max() > 0
        ours = region_photometry(labels, images, errors, fwhm)
        for band in images:
            ref = ndimage_region_photometry(
                labels,
                np.asarray(images[band].data, float),
                np.asarray(errors[band].data, float),
                fwhm,
            )
            np.testing.assert_allclose(ours[band][0], ref[0], rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(ours[band][1], ref[1], rtol=1e-9, atol=1e-9)

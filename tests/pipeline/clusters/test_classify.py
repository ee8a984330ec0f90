"""Cluster classification: stamps, the shipped ONNX CNN, user weights, human-class import."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from astropy.table import Table

from phangs_products.bands import band
from phangs_products.pipeline.clusters.classify import (
    ClassifierConfig,
    ClassifyError,
    classify,
    classify_candidates,
    cut_stamps,
    default_model_path,
    model_info,
    normalise_stamps,
)
from phangs_products.pipeline.clusters.human_classes import HUMAN_SENTINEL, import_human_classes
from phangs_products.pipeline.sim.stamps import BANDS, SUBTYPES, ZP_VEGA, simulate_stamps

HELD_OUT_SEED = 424242  # differs from the training (1001) and the script's test (2002) seeds


@pytest.fixture(scope="module")
def held_out():
    stamps, classes, subtypes = simulate_stamps(3000, HELD_OUT_SEED)
    pred, qual = classify(normalise_stamps(stamps))
    return stamps, classes, subtypes, pred, qual


def test_zero_points_match_band_table():
    assert np.allclose(ZP_VEGA, [band(f).zp_vega for f in BANDS])


def test_simulation_is_deterministic():
    a = simulate_stamps(40, 5)
    b = simulate_stamps(40, 5)
    c = simulate_stamps(40, 6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == (40, 5, 32, 32) and a[0].dtype == np.float32
    assert set(np.unique(a[1])) <= {1, 2, 3, 4}


def test_normalise_handles_nan_and_bad_shape():
    stamps, _, _ = simulate_stamps(8, 3)
    stamps[0, 1] = np.nan  # a band without coverage
    stamps[1, :, :5] = np.nan  # an image edge
    out = normalise_stamps(stamps)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert np.all(out[0, 1] == 0)
    with pytest.raises(ValueError, match="shape"):
        normalise_stamps(stamps[:, :3])


def test_cut_stamps_geometry_matches_simulation():
    """Stamps pasted into a mosaic and cut back out are the simulated stamps, pixel for pixel."""
    stamps, _, _ = simulate_stamps(12, 11)
    size = stamps.shape[-1]
    mosaic = stamps.reshape(3, 4, 5, size, size).transpose(2, 0, 3, 1, 4).reshape(5, 3 * size, -1)
    images = {f.lower(): mosaic[b] for b, f in enumerate(BANDS)}  # case-insensitive keys
    k = np.arange(12)
    x = (k % 4) * size + size // 2 + 0.3
    y = (k // 4) * size + size // 2 - 0.4
    raw = cut_stamps(images, x, y, size, normalise=False)
    assert np.array_equal(raw, stamps)
    assert np.array_equal(cut_stamps(images, x, y, size), normalise_stamps(stamps))
    table = Table({"PHANGS_X": x, "PHANGS_Y": y})
    cls, qual = classify_candidates(table, images)
    assert cls.shape == (12,) and np.all((qual > 0) & (qual <= 1))


def test_cut_stamps_edges_and_missing_bands(caplog):
    image = np.zeros((60, 80), np.float32)
    image[10, 70] = 5.0
    images = {"F555W": image, "F814W": image}
    raw = cut_stamps(images, [70.0, -100.0], [10.0, 5.0], 32, normalise=False)
    assert raw[0, 3, 16, 16] == 5.0
    assert np.isnan(raw[0, 3, 0, 0])  # row -6 is outside the image
    assert np.isnan(raw[1]).all()  # far outside
    assert np.isnan(raw[0, 0]).all()  # no F275W image
    assert "no F275W image" in caplog.text
    assert np.isfinite(cut_stamps(images, [70.0], [10.0], 32)).all()
    with pytest.raises(ClassifyError, match="no F555W image"):
        cut_stamps({"F814W": image}, [1.0], [1.0])
    with pytest.raises(ClassifyError, match="one pixel grid"):
        cut_stamps({"F555W": image, "F814W": image[:10]}, [1.0], [1.0])


def test_shipped_model_matches_sidecar():
    import onnxruntime as ort

    path = default_model_path()
    assert path.is_file()
    assert 10_000 < path.stat().st_size < 1_000_000
    info = model_info(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == info["input_name"]
    assert inp.shape[1:] == info["input_shape"][1:] == [5, 32, 32]
    assert not isinstance(inp.shape[0], int)  # dynamic batch
    assert info["class_codes"] == [1, 2, 3, 4]
    assert info["bands"] == list(BANDS)
    assert info["normalisation"] == "asinh10-vcore-v1"
    for key in ("training_data", "architecture", "versions", "held_out", "date"):
        assert key in info
    assert info["training_data"]["seed_train"] != HELD_OUT_SEED


def test_held_out_accuracy(held_out):
    _, truth, subtypes, pred, qual = held_out
    assert pred.dtype == np.int16 and qual.dtype == np.float32
    assert np.all((qual >= 0.25) & (qual <= 1.0))
    per_class = {c: float(np.mean(pred[truth == c] == c)) for c in (1, 2, 3, 4)}
    sel = np.isin(truth, (1, 2, 4))
    binary = float(np.mean(np.isin(truth[sel], (1, 2)) == np.isin(pred[sel], (1, 2))))
    per_sub = {
        name: float(np.mean(pred[subtypes == k] == truth[subtypes == k]))
        for k, name in enumerate(SUBTYPES)
    }
    print(
        f"\nheld-out (seed {HELD_OUT_SEED}, n={truth.size}): per class "
        + ", ".join(f"{c}: {a:.3f}" for c, a in per_class.items())
        + f"; binary 1+2 vs 4: {binary:.3f}"
    )
    print("per subtype: " + ", ".join(f"{k}: {v:.2f}" for k, v in per_sub.items()))
    assert binary >= 0.80
    assert min(per_class.values()) >= 0.5
    # recorded sidecar numbers are reproduced within sampling noise
    recorded = model_info(default_model_path())["held_out"]["cnn"]
    assert abs(recorded["binary_cluster12_vs_4"] - binary) < 0.05


def test_batch_size_does_not_change_results(held_out):
    stamps = normalise_stamps(held_out[0][:50])
    a = classify(stamps, ClassifierConfig(batch_size=7))
    b = classify(stamps, ClassifierConfig(batch_size=1000))
    assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1], atol=1e-5)
    empty = classify(np.zeros((0, 5, 32, 32), np.float32))
    assert empty[0].shape == (0,)


def test_user_weights_errors(tmp_path):
    stamps = np.zeros((2, 5, 32, 32), np.float32)
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ClassifyError, match=r"classifier weights .*nope\.onnx not found"):
        classify(stamps, ClassifierConfig(model=missing))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ClassifyError, match=r"junk\.onnx: not a usable ONNX model"):
        classify(stamps, ClassifierConfig(model=junk))
    with pytest.raises(ClassifyError, match=r"input shape .* does not match stamps"):
        classify(np.zeros((2, 5, 24, 24), np.float32), ClassifierConfig(stamp_size=24))
    with pytest.raises(ClassifyError, match=r"stamps must have shape"):
        classify(np.zeros((2, 5, 24, 24), np.float32))


def test_user_weights_path_is_used(tmp_path):
    """A copy of the shipped model under another name works, with and without a sidecar."""
    src = default_model_path()
    user = tmp_path / "mine.onnx"
    user.write_bytes(src.read_bytes())
    stamps = normalise_stamps(simulate_stamps(20, 9)[0])
    ref = classify(stamps)
    assert np.array_equal(classify(stamps, ClassifierConfig(model=user))[0], ref[0])
    # a sidecar with other class codes relabels the outputs
    (tmp_path / "mine.json").write_text(json.dumps({"class_codes": [11, 12, 13, 14]}))
    user2 = tmp_path / "mine.onnx"
    assert np.array_equal(classify(stamps, ClassifierConfig(model=user2))[0], ref[0] + 10)


@pytest.fixture
def candidates():
    return Table(
        {
            "ID_PHANGS_CANDIDATE": np.array([10, 11, 12, 13], np.int64),
            "PHANGS_RA": [24.17000, 24.17010, 24.17020, 24.17030],
            "PHANGS_DEC": [15.78000, 15.78000, 15.78000, 15.78000],
        }
    )


def test_human_classes_by_id(tmp_path, candidates):
    path = tmp_path / "human.csv"
    path.write_text("id,class\n12,3\n10,1\n99,4\n13,\n")  # 99 unmatched, 13 empty
    got = import_human_classes(candidates, path)
    assert got.dtype == np.int16
    assert got.tolist() == [1, HUMAN_SENTINEL, 3, HUMAN_SENTINEL]
    ecsv = tmp_path / "human.ecsv"
    Table({"ID_PHANGS_CANDIDATE": [11], "PHANGS_CLUSTER_CLASS_HUMAN": [2]}).write(ecsv)
    assert import_human_classes(candidates, ecsv).tolist() == [HUMAN_SENTINEL, 2] + [-9999] * 2


def test_human_classes_by_radec(tmp_path, candidates):
    arcsec = 1 / 3600
    path = tmp_path / "human_radec.csv"
    rows = [
        (24.17000 + 0.03 * arcsec, 15.78, 1),  # 0.03" from candidate 10
        (24.17020, 15.78 + 0.05 * arcsec, 2),  # 0.05" from candidate 12
        (24.17030, 15.78 + 0.5 * arcsec, 4),  # 0.5" away: unmatched
        (24.5, 15.0, 3),  # far away: unmatched
    ]
    path.write_text("RA,Dec,class\n" + "".join(f"{r:.9f},{d:.9f},{c}\n" for r, d, c in rows))
    got = import_human_classes(candidates, path)
    assert got.tolist() == [1, HUMAN_SENTINEL, 2, HUMAN_SENTINEL]
    wide = import_human_classes(candidates, path, match_radius_arcsec=1.0)
    assert wide.tolist() == [1, HUMAN_SENTINEL, 2, 4]


def test_human_classes_errors(tmp_path, candidates):
    with pytest.raises(ClassifyError, match=r"user class table: .*absent\.csv: no such file"):
        import_human_classes(candidates, tmp_path / "absent.csv")
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)  # read, it would block
    with pytest.raises(ClassifyError, match=r"user class table: fifo\.csv: not a regular file"):
        import_human_classes(candidates, fifo)
    no_class = tmp_path / "no_class.csv"
    no_class.write_text("id,label\n10,1\n")
    with pytest.raises(ClassifyError, match=r"no_class\.csv: no class column .*id, label"):
        import_human_classes(candidates, no_class)
    no_key = tmp_path / "no_key.csv"
    no_key.write_text("name,class\na,1\n")
    with pytest.raises(ClassifyError, match=r"no_key\.csv: no id column .* and no RA/Dec"):
        import_human_classes(candidates, no_key)
    frac = tmp_path / "frac.csv"
    frac.write_text("id,class\n10,1.5\n")
    with pytest.raises(ClassifyError, match="non-integer"):
        import_human_classes(candidates, frac)
    conflict = tmp_path / "conflict.csv"
    conflict.write_text("id,class\n10,1\n10,2\n")
    with pytest.raises(ClassifyError, match="id 10 has conflicting classes"):
        import_human_classes(candidates, conflict)
    ok = tmp_path / "ok.csv"
    ok.write_text("id,class\n10,1\n")
    with pytest.raises(ClassifyError, match="no column ID_PHANGS_CANDIDATE"):
        import_human_classes(Table({"x": [1]}), ok)


def test_class_codes_are_the_catalog_schema_code_lists():
    from phangs_products.pipeline.clusters.human_classes import CLASS_CODES
    from phangs_products.registry import get_schema

    columns = {c.name: c for c in get_schema("cluster-catalog").columns}
    for name in ("PHANGS_CLUSTER_CLASS_HUMAN", "PHANGS_CLUSTER_CLASS_ML"):
        assert set(columns[name].enum) == set(CLASS_CODES), name
    assert set(model_info(default_model_path())["class_codes"]) == set(CLASS_CODES)

"""Inference speed of the cluster classifier on 10,000 stamps: batched vs one stamp per call.

Also times stamp cutting + normalisation (``cut_stamps``) from five 4k x 4k images.
Prints stamps/s of each and the batched / per-stamp ratio.
"""

from __future__ import annotations

import time

import numpy as np

from phangs_products.pipeline.clusters.classify import (
    ClassifierConfig,
    classify,
    cut_stamps,
    normalise_stamps,
)
from phangs_products.pipeline.sim.stamps import BANDS, simulate_stamps

N = 10_000
N_LOOP = 2_000  # the per-stamp loop is timed on a subset and scaled


def main() -> None:
    raw, _, _ = simulate_stamps(N, 99)
    stamps = normalise_stamps(raw)
    config = ClassifierConfig()
    classify(stamps[:10], config)  # load the session once

    t0 = time.perf_counter()
    batched, _ = classify(stamps, config)
    t_batch = time.perf_counter() - t0

    t0 = time.perf_counter()
    loop = np.concatenate([classify(stamps[i : i + 1], config)[0] for i in range(N_LOOP)])
    t_loop = (time.perf_counter() - t0) * N / N_LOOP
    assert np.array_equal(loop, batched[:N_LOOP])

    rng = np.random.default_rng(1)
    images = {f: rng.normal(0, 0.01, (4096, 4096)).astype(np.float32) for f in BANDS}
    x, y = rng.uniform(0, 4095, N), rng.uniform(0, 4095, N)
    t0 = time.perf_counter()
    cut_stamps(images, x, y, config.stamp_size)
    t_cut = time.perf_counter() - t0

    print(f"classify {N} stamps (5x32x32), onnxruntime CPU, {config.threads} threads")
    print(f"  batched (batch {config.batch_size}): {N / t_batch:10.0f} stamps/s  ({t_batch:.2f} s)")
    print(
        f"  one stamp per call       : {N / t_loop:10.0f} stamps/s  ({t_loop:.2f} s, from {N_LOOP})"
    )
    print(f"  ratio batched / per-stamp: {t_loop / t_batch:.1f}x")
    print(f"cut_stamps + normalise     : {N / t_cut:10.0f} stamps/s  ({t_cut:.2f} s)")


if __name__ == "__main__":
    main()

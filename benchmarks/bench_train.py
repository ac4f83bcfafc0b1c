"""asv suites: training epochs, prediction and memory of the engine's backends.

Run (offline, in the current environment)::

    asv run --quick --python=same --show-stderr    # every benchmark once
    asv run --python=same -b TimeEpoch             # timed properly

Each ``setup`` trains on a few rows first, so Numba compiles (or loads its cache) before
anything is timed; compile time has its own suite (bench_startup.py). Timed epochs use the
real MNIST test set (10,000 images) so that a full run takes minutes; ``compare.py`` runs the
50,000-image workloads of the goal table against other libraries.
"""

import numpy as np

import engine

from .common import WORKLOADS, images, network_kwargs, peak_rss_mb, reset_peak_rss, rss_mb

ROWS = 10_000


class TimeEpoch:
    """One epoch (10,000 images) of mini-batch SGD through ``Network.fit``."""

    params = (["numba", "numba-parallel", "numpy"], ["float32", "float64"],
              ["seeds", "ce100", "deep"], [10, 128])
    param_names = ["backend", "dtype", "network", "batch_size"]
    timeout = 600
    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0

    def setup(self, backend, dtype, network, batch_size):
        spec = WORKLOADS[network]
        if network == "deep" and batch_size == 10:
            raise NotImplementedError("the deep network is benchmarked at batch 128")
        if network == "deep" and backend == "numpy" and dtype == "float64":
            raise NotImplementedError("too slow to be useful")
        self.X, self.y, _ = images(ROWS, dtype)
        self.net = engine.Network(spec["sizes"], dtype=dtype, backend=backend, seed=0,
                                  **network_kwargs(network))
        self.lr = spec["lr"]
        self.net.fit(self.X[:4 * batch_size], self.y[:4 * batch_size], epochs=1,
                     batch_size=batch_size, lr=self.lr)

    def time_epoch(self, backend, dtype, network, batch_size):
        self.net.fit(self.X, self.y, epochs=1, batch_size=batch_size, lr=self.lr)


class TimeTrainingFeatures:
    """One epoch (10,000 images) of Nielsen's network at batch 10 with a training feature
    to track what each costs over the plain SGD of ``TimeEpoch``."""

    params = (["numba", "numba-parallel"],
              ["sgd", "momentum", "adam", "l2", "dropout", "batch_norm"])
    param_names = ["backend", "feature"]
    timeout = 600
    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0
    OPTIONS = {"sgd": {}, "momentum": dict(optimizer="momentum"),
               "adam": dict(optimizer="adam"), "l2": dict(l2=5.0),
               "dropout": dict(dropout=0.2), "batch_norm": {}}

    def setup(self, backend, feature):
        self.X, self.y, _ = images(ROWS, "float32")
        self.net = engine.Network([784, 30, 10], dtype="float32", backend=backend, seed=0,
                                  batch_norm=feature == "batch_norm",
                                  **network_kwargs("seeds"))
        self.options = dict(self.OPTIONS[feature], epochs=1, batch_size=10,
                            lr={"adam": 0.01, "momentum": 0.3}.get(feature, 3.0))
        self.net.fit(self.X[:40], self.y[:40], **self.options)

    def time_epoch(self, backend, feature):
        self.net.fit(self.X, self.y, **self.options)


class TimePredict:
    """Class predictions for 10,000 images with Nielsen's network."""

    params = (["numba", "numba-parallel", "numpy"], ["float32", "float64"])
    param_names = ["backend", "dtype"]
    repeat = (3, 10, 30.0)

    def setup(self, backend, dtype):
        self.X, _, _ = images(ROWS, dtype)
        self.net = engine.Network([784, 30, 10], dtype=dtype, backend=backend, seed=0)
        self.net.predict(self.X[:300])

    def time_predict(self, backend, dtype):
        self.net.predict(self.X)


class MemoryFit:
    """Memory of ``fit`` on 60,000 × 784 float32 images (goal: at most 64 MB beyond the
    input arrays, and no growth from epoch to epoch)."""

    params = (["numba", "numba-parallel"],)
    param_names = ["backend"]
    timeout = 600
    unit = "MB"

    def setup(self, backend):
        self.X, self.y, _ = images(60_000, "float32")
        self.net = engine.Network([784, 30, 10], dtype="float32", backend=backend, seed=0)
        self.net.fit(self.X[:100], self.y[:100], epochs=1)

    def peakmem_fit_60k_float32(self, backend):
        self.net.fit(self.X, self.y, epochs=2, batch_size=10, lr=3.0)

    def track_fit_rss_growth(self, backend):
        """Peak RSS during two epochs minus RSS before them (inputs already resident)."""
        before = rss_mb()
        if not reset_peak_rss():
            return float("nan")
        self.net.fit(self.X, self.y, epochs=2, batch_size=10, lr=3.0)
        return peak_rss_mb() - before

    track_fit_rss_growth.unit = "MB"

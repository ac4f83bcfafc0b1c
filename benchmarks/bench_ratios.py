"""asv suites: speed as ratios of two contenders timed side by side inside one call.

On a shared machine an absolute time drifts by 2-3x from one day to the next; two
contenders timed in turn, in the same process and the same minute, see the same weather,
so their ratio holds across days, and across machines of a kind, far better than either
time (threads aside: see ``one_blas_thread``). Each ``track_`` benchmark builds its
contenders in ``setup`` (compilation, warm caches), then runs ``ROUNDS`` rounds in which
every contender runs once in turn, and returns the ratio of the medians.

Every value is the engine's time over a reference's time, so **lower is better**, the
direction asv assumes: a rise is what ``asv continuous`` and ``guard.py`` report as a
regression. Only the public API is used (``Network``, ``fit``), so the suites run on every
commit of the history that has it; a contender that cannot run here (PyTorch not
installed) makes ``setup`` raise ``NotImplementedError``, which asv records as skipped.

Workloads (``common.WORKLOADS``) on 10,000 MNIST images (``common.images``; the stream
ratio 40,000); an engine epoch is one public ``fit(..., epochs=1)``, its input check
included. benchmarks/README.md has the ratios' history and how to run them.
"""

import time

import numpy as np

import engine

from .common import WORKLOADS, images, network_kwargs

ROWS = 10_000
ROUNDS = 5


def one_blas_thread():
    """Run NumPy's (and scikit-learn's) BLAS on one thread until ``teardown``.

    The serial ratios compare single-threaded work: the ``numba`` backend runs one thread,
    PyTorch is set to one. Threads that synchronise at every small batch-10 product swing
    with whatever else takes the cores (PyTorch's two threads: 10-40x slower epochs on the
    loaded VM), and a threaded BLAS under the oracle's and scikit-learn's products is the
    same kind; on these sizes threads gain little even where the cores are free."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def engine_epoch(backend, workload, dtype, X, y):
    """One public ``fit`` epoch of a workload, compiled (or cache-loaded) before it returns."""
    spec = WORKLOADS[workload]
    net = engine.Network(spec["sizes"], dtype=dtype, backend=backend, seed=0,
                         **network_kwargs(workload))
    batch, lr = spec["batch_size"], spec["lr"]
    net.fit(X[:4 * batch], y[:4 * batch], epochs=1, batch_size=batch, lr=lr)

    def run():
        net.fit(X, y, epochs=1, batch_size=batch, lr=lr)

    return run


def seconds(contenders, rounds=None, clock=time.process_time):
    """Seconds per call of each contender (a list per name), from ``rounds`` (default
    ``ROUNDS``) rounds in which every contender runs once in turn (``compare.interleaved``).

    By default the process's CPU time: the serial ratios' contenders each run on this
    process's one thread (``one_blas_thread``), and CPU time leaves out the slices in which
    the machine gave the core to someone else. Wall time on the loaded VM let a 20 ms
    engine epoch and a 600 ms PyTorch epoch meet different shares of preemption: two runs
    of identical code read ratios 1.35-1.43x apart. Threads need wall time (their CPU time
    adds up), so the parallel ratio passes ``time.perf_counter``."""
    from .compare import interleaved

    named = [(name, run, "") for name, run in contenders.items()]
    return interleaved(named, ROUNDS if rounds is None else rounds, clock)


def median_ratio(times, numerator, denominator):
    return float(np.median(times[numerator]) / np.median(times[denominator]))


class _Ratio:
    timeout = 600
    rounds = 1  # one value per commit; the rounds that matter run inside the call

    def teardown(self, *params):
        blas = getattr(self, "blas", None)
        if blas is not None:
            blas.restore_original_limits()


class OracleRatio(_Ratio):
    """The compiled epoch against the NumPy oracle (``backend="numpy"``) on Nielsen's
    network, same data and settings."""

    params = (["float32", "float64"],)
    param_names = ["dtype"]
    unit = "ratio: numba epoch / NumPy-oracle epoch"

    def setup(self, dtype):
        self.blas = one_blas_thread()
        X, y, _ = images(ROWS, dtype)
        self.runs = {b: engine_epoch(b, "seeds", dtype, X, y) for b in ("numba", "numpy")}

    def track_numba_over_oracle(self, dtype):
        return median_ratio(seconds(self.runs), "numba", "numpy")


class ParallelRatio(_Ratio):
    """``numba-parallel`` against ``numba`` on the deep network at batch 128, where the
    threads have work (at batch 10 both backends run the same serial code)."""

    unit = "ratio: numba-parallel epoch / numba epoch"

    def setup(self):
        X, y, _ = images(ROWS, "float32")
        self.runs = {b: engine_epoch(b, "deep", "float32", X, y)
                     for b in ("numba", "numba-parallel")}

    def track_parallel_over_numba(self):
        times = seconds(self.runs, clock=time.perf_counter)
        return median_ratio(times, "numba-parallel", "numba")


class PeerRatio(_Ratio):
    """The engine (``numba``) against what a user would pick instead, on Nielsen's network
    in float32: scikit-learn's ``MLPClassifier(solver="sgd")`` (one ``partial_fit`` epoch;
    it trains softmax + cross-entropy) and PyTorch (``nn.Sequential`` + ``optim.SGD``, one
    thread), as ``compare.py`` builds them."""

    params = (["scikit-learn", "PyTorch"],)
    param_names = ["peer"]
    unit = "ratio: numba epoch / peer's epoch"
    peer_rounds = 3  # a peer's epoch takes 10-40 times the engine's

    def setup(self, peer):
        from . import compare

        self.blas = one_blas_thread()
        X, y, _ = images(ROWS, "float32")
        factory = {"scikit-learn": compare.sklearn_trainer,
                   "PyTorch": compare.torch_trainer}[peer]
        try:
            other, _ = factory("seeds", "float32", X, y)
        except compare.Skip as why:
            raise NotImplementedError(str(why)) from None
        if peer == "PyTorch":
            # On a loaded machine PyTorch's threads wait on each other at every batch-10
            # step (10-40x slower epochs on the shared VM); see one_blas_thread.
            import torch

            torch.set_num_threads(1)
        other()  # first call: allocations, caches
        self.runs = {"numba": engine_epoch("numba", "seeds", "float32", X, y), peer: other}

    def track_engine_over_peer(self, peer):
        return median_ratio(seconds(self.runs, min(ROUNDS, self.peer_rounds)), "numba", peer)


class StreamRatio(_Ratio):
    """Nielsen's network's epoch (``numba``) against the machine's own memory-stream floor: one NumPy
    pass over the same images (``X.sum(axis=0)``, the fastest of the rounds). An epoch
    reads every image at least once, so this ratio cannot fall below about 1; what stays
    above it is compute and overhead.

    On ``STREAM_ROWS`` images (125 MB in float32), several times a server's last-level
    cache: over 10,000 float32 images (31 MB) the pass ran from a cache that other
    processes share, and the ratio read 10.5, 21.9 and 27.7 in three runs of the same
    code on the shared VM."""

    params = (["float32", "float64"],)
    param_names = ["dtype"]
    unit = "ratio: numba epoch / one NumPy pass over the images"
    STREAM_ROWS = 40_000

    def setup(self, dtype):
        self.blas = one_blas_thread()
        X, y, _ = images(self.STREAM_ROWS, dtype)
        self.X = X
        self.epoch = engine_epoch("numba", "seeds", dtype, X, y)

    def track_epoch_over_stream(self, dtype):
        X = self.X
        times = seconds({"epoch": self.epoch, "pass": lambda: X.sum(axis=0)})
        return float(np.median(times["epoch"]) / np.min(times["pass"]))

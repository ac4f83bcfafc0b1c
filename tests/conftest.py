"""Shared fixtures: small awkward data sets and the real MNIST test set when present."""

# Numba's CUDA target reads NUMBA_ENABLE_CUDASIM once, when numba.cuda is first imported, so
# this must run before anything else here imports the engine. Where no CUDA driver is
# installed the simulator is turned on, so tests/test_cuda_backend.py checks the CUDA kernels
# everywhere, CI included; where a driver is installed the tests use the real GPU. A value
# already set in the environment always wins. The CPU backends never read the variable.
import ctypes.util
import os

if "NUMBA_ENABLE_CUDASIM" not in os.environ and not (
        os.path.exists("/dev/nvidiactl") or ctypes.util.find_library("cuda")):
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import threading
import time
from contextlib import contextmanager, nullcontext
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


def relative_error(actual, expected):
    """max |actual − expected| / max |expected|: the error relative to the scale of the
    expected values, so that entries near zero do not blow it up. 0 for two empty arrays."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if expected.size == 0:
        return 0.0
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30))


def assert_close_relative(actual, expected, rtol):
    """|actual − expected| ≤ rtol · max|expected|, elementwise (scale-aware; NaN fails)."""
    err = relative_error(actual, expected)
    assert err <= rtol, f"max relative difference {err:.3e} exceeds {rtol:.0e}"


def assert_matches_central_differences(analytic, param, cost, h=1e-6):
    """``analytic`` is the gradient of ``cost()`` with respect to the array ``param``
    (changed in place and restored, entry by entry): central differences with step ``h``
    have truncation error O(h²) ≈ 1e-12 and rounding error ≈ 1e-16/h ≈ 1e-10 of the cost,
    so on these small smooth problems they agree to ~1e-9 of the gradient's scale; the
    assertion allows 1e-6 of it (and of 1, for tiny gradients)."""
    numeric = np.zeros_like(param)
    for idx in np.ndindex(param.shape):
        saved = param[idx]
        param[idx] = saved + h
        up = cost()
        param[idx] = saved - h
        down = cost()
        param[idx] = saved
        numeric[idx] = (up - down) / (2 * h)
    scale = max(1.0, np.abs(numeric).max())
    np.testing.assert_allclose(analytic, numeric, rtol=0, atol=1e-6 * scale)


# -- numba-parallel's threads -------------------------------------------------------------


def _thread_cpu_ns(tid):
    """CPU time of one thread of this process (Linux: the thread's own CPU-time clock, which
    counts a running thread exactly; 0 once the thread has ended)."""
    try:
        return time.clock_gettime_ns(((~tid) << 3) | 6)  # MAKE_THREAD_CPUCLOCK(tid, SCHED)
    except OSError:
        return 0


def _numba_worker_threads():
    """Native ids of the threads of Numba's pool other than the caller, or None where they
    cannot be watched (no glibc gettid or per-thread CPU clocks). A parallel loop records
    which thread runs each iteration: Numba splits a prange in one chunk per thread."""
    import numba
    from numba import njit, prange

    try:
        gettid = ctypes.CDLL(None).gettid
        time.clock_gettime_ns(((~threading.get_native_id()) << 3) | 6)
    except (AttributeError, OSError):
        return None
    gettid.restype, gettid.argtypes = ctypes.c_int, ()

    @njit(parallel=True)
    def thread_of_each_iteration(out):
        for i in prange(out.size):
            out[i] = gettid()

    ids = np.zeros(64 * numba.get_num_threads(), np.int64)
    thread_of_each_iteration(ids)
    return set(ids.tolist()) - {threading.get_native_id()}


def _resting_cpu_ns(tids):
    """The threads' CPU times once they have stopped running (OpenMP's workers spin for a
    while after a parallel loop), waiting at most about 0.2 s."""
    times = {t: _thread_cpu_ns(t) for t in tids}
    for _ in range(100):
        time.sleep(0.002)
        now = {t: _thread_cpu_ns(t) for t in tids}
        if now == times:
            break
        times = now
    return times


_WORKERS = []


@contextmanager
def numba_threads_ran():
    """Asserts that a thread of Numba's pool other than the caller ran inside the block (a
    numba-parallel step really took threads). Skips where Numba has one thread; checks
    nothing where threads cannot be watched (see _numba_worker_threads)."""
    import numba

    if numba.get_num_threads() < 2:
        pytest.skip("numba-parallel needs 2 threads here; Numba has 1 on this machine")
    if not _WORKERS:
        _WORKERS.append(_numba_worker_threads())
    workers = _WORKERS[0]
    if workers is None:
        yield
        return
    before = _resting_cpu_ns(workers)
    yield
    after = {t: _thread_cpu_ns(t) for t in workers}
    assert any(after[t] > before[t] for t in workers), \
        "no worker thread of Numba's pool ran: the threaded steps ran serially"


@pytest.fixture
def threaded(monkeypatch):
    """``with threaded(backend): ...`` makes ``numba-parallel`` thread every step of a
    mini-batch, even of a tiny test network, and asserts that Numba's worker threads ran
    inside the block; for other backends it does nothing.

    By default a step starts threads only from ``config.PARALLEL_MIN_WORK`` multiply-adds,
    which no small test network reaches: its numba-parallel runs would test the serial code
    twice. As in tests/test_cpu_kernel_paths.py, the thresholds are forced to 0, weights are
    split in panels (one per thread, where a layer's vectors divide evenly) and the other
    updates in blocks of 2 rows."""

    @contextmanager
    def threads_run():
        monkeypatch.setattr(config, "PARALLEL_MIN_WORK", 0)
        monkeypatch.setattr(config, "PARALLEL_MIN_WORK_BIG_BATCH", 0)
        monkeypatch.setattr(config, "PARALLEL_ROW_BLOCK", 2)
        monkeypatch.setattr(config, "PARALLEL_PANEL_MIN_BYTES", 0)
        with numba_threads_ran():
            yield

    return lambda backend: threads_run() if backend == "numba-parallel" else nullcontext()


@pytest.fixture(scope="session")
def dask_client():
    """A real Dask cluster for the tests of engine.dask: two worker processes of one thread
    each (one Numba thread each, engine.dask.worker_environment), no dashboard. A lost
    worker is retried once (allowed-failures=1), so that the fault tests stay short."""
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    import engine.dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.comm.timeouts.connect": "30s"}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
            env=engine.dask.worker_environment(), silence_logs=50)
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()


@pytest.fixture
def time_bound():
    """Bounds a test's time (pytest-timeout is not a dependency): past ``seconds`` the
    process prints every thread's stack and exits, so a hang fails the run loudly."""
    import faulthandler

    def arm(seconds):
        faulthandler.dump_traceback_later(seconds, exit=True)
    yield arm
    faulthandler.cancel_dump_traceback_later()

"""The CUDA backend (``backend="cuda"``) against the NumPy oracle (``backend="numpy"``).

Where no GPU exists these run on Numba's CUDA simulator (the repository's conftest.py turns
it on before ``numba.cuda`` is imported), which runs every CUDA thread as a Python thread:
so the networks are tiny, and the tile edge is patched down to 4 and the persistent
kernel's block to 8 threads, so that a handful of units and samples already spans several
tiles and thread strides (the boundaries where indexing bugs live). The kernels take the
tile as a parameter; the production size (16) runs in the ``gpu`` tests.

Tolerances (``TOL``; the ``gpu`` test documents its own): float64 agrees to 1e-10
relative: the device sums products in tile order, with fused multiply-adds, where NumPy's
BLAS uses its own order, so each sum differs by a few ulp (~1e-16 relative), and a few
training steps on these small networks amplify that by well under 1e4. float32 (ε ≈ 6e-8)
by the same reasoning agrees to 1e-4 relative. Absolute floors (1e-12, 1e-5) cover values
near zero.
"""

import importlib.util
import subprocess
import sys
import time
import types

import numpy as np
import pytest

from conftest import COMBINATIONS
from engine import DivergenceError, Network, backends, config, training

HAVE_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
needs_numba_cuda = pytest.mark.skipif(
    not HAVE_NUMBA_CUDA, reason="numba-cuda is not installed (pip install '.[cuda]')")

if HAVE_NUMBA_CUDA:
    from engine._backends import cuda as cuda_backend

    AVAILABLE = cuda_backend.availability()
    from numba import cuda

    SIMULATED = bool(cuda.config.ENABLE_CUDASIM)
else:
    AVAILABLE, SIMULATED = "numba-cuda is not installed", False

needs_cuda = pytest.mark.skipif(AVAILABLE is not True,
                                reason=f"backend='cuda' cannot run here: {AVAILABLE}")
needs_gpu = pytest.mark.skipif(AVAILABLE is not True or SIMULATED,
                               reason="needs a real CUDA GPU, not the simulator")

TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-4, atol=1e-5)}



@pytest.fixture
def small_kernels(monkeypatch):
    """Small tiles and blocks, and (on the simulator) a short GIL switch interval: the
    simulator's block manager polls its threads, and the default 5 ms interval makes
    every ``syncthreads`` cost milliseconds."""
    monkeypatch.setattr(config, "CUDA_TILE", 4)
    monkeypatch.setattr(config, "CUDA_PERSISTENT_THREADS", 8)
    monkeypatch.setattr(config, "CUDA_ROW_THREADS", 4)
    if SIMULATED:
        interval = sys.getswitchinterval()
        sys.setswitchinterval(2e-4)
        yield
        sys.setswitchinterval(interval)
    else:
        yield


def _data(n, sizes, output, seed, labels=True):
    """Inputs in [0, 1) and targets the output can reach: class labels for sigmoid and
    softmax outputs (unless ``labels`` is False: then soft target rows summing to one, or
    ``"any"``: rows in [0, 1) that need not), else values."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, sizes[0]))
    n_out = sizes[-1]
    if output in ("sigmoid", "softmax"):
        if labels is True:
            return X, rng.integers(0, n_out, n)
        if labels == "any":
            return X, rng.random((n, n_out))
        return X, rng.dirichlet(np.ones(n_out), size=n)
    if output == "tanh":
        return X, rng.uniform(-0.8, 0.8, (n, n_out))
    if output == "relu":
        return X, rng.uniform(0.0, 1.0, (n, n_out))
    return X, rng.normal(size=(n, n_out))


def _pair(sizes, dtype="float64", seed=3, **options):
    """The same network (same initial weights, same shuffles) on numpy and on cuda."""
    ref = Network(sizes, dtype=dtype, backend="numpy", seed=seed, **options)
    dev = Network(sizes, dtype=dtype, backend="cuda", seed=seed, **options)
    return ref, dev


def _assert_same(ref, dev, dtype, X=None, ref_history=None, dev_history=None):
    tol = TOL[dtype]
    if ref_history is not None:
        for key in ref_history:
            np.testing.assert_allclose(dev_history[key], ref_history[key], **tol,
                                       err_msg=f"history[{key!r}]")
    for layer, (w_ref, w_dev) in enumerate(zip(ref.weights, dev.weights)):
        np.testing.assert_allclose(w_dev, w_ref, **tol, err_msg=f"weights[{layer}]")
    for layer, (b_ref, b_dev) in enumerate(zip(ref.biases, dev.biases)):
        np.testing.assert_allclose(b_dev, b_ref, **tol, err_msg=f"biases[{layer}]")
    if X is not None:
        np.testing.assert_allclose(dev.predict_proba(X), ref.predict_proba(X), **tol,
                                   err_msg="predict_proba")


def _fit_both(sizes, hidden, output, cost, dtype, n=7, batch_size=3, epochs=2, lr=0.1,
              labels=True, seed=11, predict=True, **fit_options):
    ref, dev = _pair(sizes, dtype, activation=hidden, output=output, cost=cost)
    X, y = _data(n, sizes, output, seed, labels)
    ref_history = ref.fit(X, y, epochs=epochs, batch_size=batch_size, lr=lr, **fit_options)
    dev_history = dev.fit(X, y, epochs=epochs, batch_size=batch_size, lr=lr, **fit_options)
    assert np.all(np.isfinite(dev_history["loss"]))
    _assert_same(ref, dev, dtype, X if predict else None, ref_history, dev_history)
    return ref, dev


# -- every activation, output and cost, both dtypes --------------------------------------


@needs_cuda
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("hidden,output,cost", COMBINATIONS)
def test_persistent_kernel_matches_oracle(small_kernels, monkeypatch, hidden, output, cost,
                                          dtype):
    # 7 samples in batches of 3: the last mini-batch holds one sample. Prediction runs the
    # tiled forward kernels, slow on the simulator; the tiled tests cover it.
    monkeypatch.setattr(config, "CUDA_STRATEGY", "persistent")
    _fit_both([5, 6, 3], hidden, output, cost, dtype, predict=False)


# Each hidden activation, each output activation and each cost path at least once in
# float64; float32 on two of them (the persistent tests cover every combination in both).
TILED_CASES = [
    ("sigmoid", "sigmoid", "quadratic", "float64"),
    ("tanh", "softmax", "cross_entropy", "float64"),
    ("relu", "sigmoid", "cross_entropy", "float64"),
    ("identity", "softmax", "quadratic", "float64"),
    ("relu", "tanh", "quadratic", "float64"),
    ("tanh", "relu", "quadratic", "float64"),
    ("sigmoid", "identity", "quadratic", "float64"),
    ("tanh", "softmax", "cross_entropy", "float32"),
    ("sigmoid", "sigmoid", "quadratic", "float32"),
]


@needs_cuda
@pytest.mark.parametrize("hidden,output,cost,dtype", TILED_CASES)
def test_tiled_kernels_match_oracle(small_kernels, monkeypatch, hidden, output, cost, dtype):
    # Single tiles here (the next test spans several), to keep the simulator quick.
    monkeypatch.setattr(config, "CUDA_STRATEGY", "tiled")
    _fit_both([3, 4, 2], hidden, output, cost, dtype, epochs=1)


@needs_cuda
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tiled_kernels_span_several_tiles_in_every_dimension(small_kernels, monkeypatch,
                                                             dtype):
    # With 4×4 tiles: batches of 5 rows, layers of 5 and 6 units, 5 inputs (+1 bias
    # column) all cross a tile edge, in the forward, δ and gradient products alike.
    monkeypatch.setattr(config, "CUDA_STRATEGY", "tiled")
    _fit_both([5, 6, 5, 3], "tanh", "softmax", "cross_entropy", dtype, n=11, batch_size=5,
              epochs=1)


@needs_cuda
@pytest.mark.skipif(not SIMULATED, reason="checks the kernels' use of the CUDA simulator")
def test_tiled_kernels_survive_the_simulators_shared_array_race(small_kernels,
                                                                 monkeypatch):
    # The simulator creates a static cuda.shared.array lazily with an unlocked
    # check-then-store, so two threads of a block can end up with different arrays. That
    # made the tiled kernels mismatch now and then, until their tiles moved to dynamic
    # shared memory (allocated before the threads start). Here the race's window is held
    # open (each thread yields the GIL before creating the array): kernels that go back
    # to static shared arrays then fail at once instead of one run in ten.
    from numba.cuda.simulator import kernelapi

    real_np = kernelapi.np
    if not callable(getattr(real_np, "empty", None)):
        pytest.skip("the simulator no longer allocates shared arrays with np.empty")

    class YieldingNumpy:
        """NumPy, except that ``empty`` first lets another thread run."""

        def __getattr__(self, name):
            return getattr(real_np, name)

        @staticmethod
        def empty(*args, **kwargs):
            time.sleep(0)
            return real_np.empty(*args, **kwargs)

    monkeypatch.setattr(kernelapi, "np", YieldingNumpy())
    monkeypatch.setattr(config, "CUDA_STRATEGY", "tiled")
    _fit_both([3, 4, 2], "tanh", "softmax", "cross_entropy", "float64", epochs=1)


@needs_cuda
@pytest.mark.parametrize("strategy", ["persistent", "tiled"])
@pytest.mark.parametrize("output,cost,rows", [("sigmoid", "cross_entropy", "any"),
                                              ("softmax", "cross_entropy", False),
                                              ("softmax", "cross_entropy", "any"),
                                              ("softmax", "quadratic", "any")])
def test_soft_target_rows_match_oracle(small_kernels, monkeypatch, strategy, output, cost,
                                       rows):
    # Targets given as rows, not class labels; softmax cross-entropy's δ = a·Σy − y
    # differs from a − y when a row does not sum to one.
    monkeypatch.setattr(config, "CUDA_STRATEGY", strategy)
    _fit_both([4, 3, 3], "sigmoid", output, cost, "float64", n=5, epochs=1, labels=rows)


# -- odd sizes ---------------------------------------------------------------------------


@needs_cuda
@pytest.mark.parametrize("strategy", ["persistent", "tiled"])
@pytest.mark.parametrize("sizes,batch_size,n", [
    ([4, 3], 2, 5),            # no hidden layer; last batch partial
    ([3, 4, 2, 5, 3], 1, 4),   # four layers, batch of one
    ([4, 5, 3], 10, 6),        # batch larger than the data: one partial mini-batch
    ([2, 3, 1], 3, 6),         # a single output unit (regression)
])
def test_odd_sizes_match_oracle(small_kernels, monkeypatch, strategy, sizes, batch_size, n):
    monkeypatch.setattr(config, "CUDA_STRATEGY", strategy)
    output = "identity" if sizes[-1] == 1 else "sigmoid"
    _fit_both(sizes, "relu", output, "quadratic", "float64", n=n, batch_size=batch_size,
              epochs=1, lr=0.3)


@needs_cuda
def test_validation_data_and_unshuffled_epochs_match_oracle(small_kernels):
    X_val, y_val = _data(5, [4, 5, 3], "softmax", seed=99)
    _fit_both([4, 5, 3], "sigmoid", "softmax", "cross_entropy", "float64", n=6, epochs=2,
              shuffle=False, validation_data=(X_val, y_val))


@needs_cuda
@pytest.mark.parametrize("strategy", ["persistent", "tiled"])
def test_chunked_epoch_matches_one_call(small_kernels, monkeypatch, strategy):
    # Progress bars split an epoch into calls of one mini-batch each; the device keeps the
    # order and parameters between them, and the result must not change.
    monkeypatch.setattr(config, "CUDA_STRATEGY", strategy)
    ref, dev = _pair([3, 4, 2], activation="tanh", output="sigmoid", cost="cross_entropy")
    X, y = _data(7, [3, 4, 2], "sigmoid", seed=5)
    seen, costs = [], {"numpy": [], "cuda": []}
    for net in (ref, dev):
        record = costs[net.backend]
        training.train_epochs(net, *net._training_arrays(X, y), 2, 2, 0.4, True,
                              lambda epoch, cost, record=record: record.append(cost),
                              on_progress=lambda done, total: seen.append(done),
                              updates_per_call=1)
    assert seen == [2, 4, 6, 7] * 4
    np.testing.assert_allclose(costs["cuda"], costs["numpy"], **TOL["float64"])
    _assert_same(ref, dev, "float64", X)


# -- Nielsen's API ------------------------------------------------------------------------


@needs_cuda
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("strategy", ["persistent", "tiled"])
def test_backprop_and_update_mini_batch_match_oracle(small_kernels, monkeypatch, strategy,
                                                     dtype):
    monkeypatch.setattr(config, "CUDA_STRATEGY", strategy)
    ref, dev = _pair([5, 6, 3], dtype, activation="sigmoid")
    x = np.linspace(0.0, 1.0, 5).reshape(5, 1)
    for label in (0, 2):
        (b_ref, w_ref), (b_dev, w_dev) = ref.backprop(x, label), dev.backprop(x, label)
        for got, want in zip(b_dev + w_dev, b_ref + w_ref):
            np.testing.assert_allclose(got, want, **TOL[dtype])
    X, y = _data(4, [5, 6, 3], "sigmoid", seed=2)
    pairs = [(row.reshape(-1, 1), label) for row, label in zip(X, y)]
    ref.update_mini_batch(pairs, 2.0)
    dev.update_mini_batch(pairs, 2.0)
    _assert_same(ref, dev, dtype, X)


# -- what stays on the device --------------------------------------------------------------


@needs_cuda
def test_uploads_do_not_grow_with_the_number_of_mini_batches(small_kernels, monkeypatch):
    # One upload of the data per fit and of the order per epoch, none per mini-batch.
    monkeypatch.setattr(config, "CUDA_STRATEGY", "tiled")
    X, y = _data(3, [3, 2, 2], "softmax", seed=4)

    def uploads(batch_size, epochs, chunked=False):
        net = Network([3, 2, 2], output="softmax", backend="cuda", seed=0)
        backend = net._backend
        count = [0, 0]  # all uploads, uploads of X
        real = backend._cuda.to_device

        def counting(array, *args, **kwargs):
            count[0] += 1
            count[1] += array is X
            return real(array, *args, **kwargs)

        # The backend's own handle on numba.cuda, so that nothing else is affected.
        real_cuda = backend._cuda
        backend._cuda = types.SimpleNamespace(to_device=counting,
                                              device_array=real_cuda.device_array,
                                              device_array_like=real_cuda.device_array_like)
        if chunked:  # one backend call per mini-batch, as under a progress bar
            training.train_epochs(net, *net._training_arrays(X, y), epochs, batch_size, 0.1,
                                  True, lambda *_: None, on_progress=lambda *_: None,
                                  updates_per_call=1)
        else:
            net.fit(X, y, epochs=epochs, batch_size=batch_size, lr=0.1)
        assert count[1] == 1, "the data set should be uploaded once per fit"
        return count[0]

    one_batch, three_batches = uploads(batch_size=3, epochs=1), uploads(batch_size=1, epochs=1)
    assert one_batch == three_batches
    assert uploads(batch_size=1, epochs=2) == three_batches + 1  # the extra epoch's order
    assert uploads(batch_size=1, epochs=2, chunked=True) == three_batches + 1


@needs_cuda
def test_edits_between_calls_reach_the_device(small_kernels):
    ref, dev = _pair([4, 3, 2], activation="tanh", output="softmax", cost="cross_entropy")
    X, y = _data(6, [4, 3, 2], "softmax", seed=8)
    for net in (ref, dev):
        net.fit(X, y, epochs=1, batch_size=4, lr=0.5)
    for net in (ref, dev):
        net.weights[0][1, 2] = 3.0                                # in place
        net.biases = [b + 0.25 for b in net.biases]               # a new list
    _assert_same(ref, dev, "float64", X)
    X[:3] = 1.0 - X[:3]  # the same array object, edited in place after a fit
    _assert_same(ref, dev, "float64", X)
    for net in (ref, dev):
        net.fit(X, y, epochs=1, batch_size=4, lr=0.5)
    _assert_same(ref, dev, "float64", X)


@needs_cuda
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the simulator's
def test_divergence_keeps_the_last_finite_parameters(small_kernels, monkeypatch):
    # The network restores its host parameters after a diverged epoch; the device must
    # pick them up again (the prediction below runs on the device).
    monkeypatch.setattr(config, "CUDA_STRATEGY", "persistent")
    rng = np.random.default_rng(0)
    X, y = rng.random((8, 3)) * 10, rng.random(8) * 100
    ref, dev = _pair([3, 4, 1], activation="relu", output="identity", seed=0)
    epochs = {}
    for net in (ref, dev):
        with pytest.raises(DivergenceError) as caught:
            net.fit(X, y, epochs=40, batch_size=4, lr=500.0)
        epochs[net.backend] = caught.value.epoch
    assert 0 < epochs["cuda"] == epochs["numpy"]
    assert np.isfinite(dev._params).all()
    _assert_same(ref, dev, "float64", X)


@needs_cuda
@pytest.mark.parametrize("strategy", ["persistent", "tiled"])
@pytest.mark.parametrize("hidden,output,cost", [("tanh", "softmax", "cross_entropy"),
                                                ("sigmoid", "sigmoid", "cross_entropy"),
                                                ("relu", "softmax", "quadratic")])
def test_saturated_units_stay_finite_and_match_oracle(small_kernels, monkeypatch, strategy,
                                                      hidden, output, cost):
    # Pre-activations in the thousands: the overflow-free forms keep everything finite.
    monkeypatch.setattr(config, "CUDA_STRATEGY", strategy)
    ref, dev = _pair([3, 4, 2], activation=hidden, output=output, cost=cost, seed=1)
    X, y = _data(5, [3, 4, 2], output, seed=2)
    for net in (ref, dev):
        net.weights = [w * 1000 for w in net.weights]
    histories = [net.fit(X, y, epochs=1, batch_size=5, lr=1e-3) for net in (ref, dev)]
    assert np.isfinite(histories[1]["loss"]).all()
    _assert_same(ref, dev, "float64", X, *histories)


@needs_cuda
def test_an_interrupted_call_leaves_host_and_device_consistent(small_kernels):
    ref, dev = _pair([3, 4, 2], activation="sigmoid", output="softmax")
    X, y = _data(4, [3, 4, 2], "softmax", seed=6)
    for net in (ref, dev):
        net.fit(X, y, epochs=1, batch_size=2, lr=0.5)
    backend = dev._backend
    launch = backend._train_persistent

    def interrupted(*args):
        launch(*args)  # the device's parameters move on...
        raise KeyboardInterrupt  # ...and Ctrl-C arrives before they are copied back

    backend._train_persistent = backend._train_tiled = interrupted
    with pytest.raises(KeyboardInterrupt):
        dev.fit(X, y, epochs=1, batch_size=2, lr=0.5)
    del backend._train_persistent, backend._train_tiled
    # The host kept the parameters from before the interrupted fit; the device follows.
    _assert_same(ref, dev, "float64", X)


# -- choosing the backend ------------------------------------------------------------------


def test_import_engine_does_not_import_numba_cuda():
    code = "import sys, engine; print('numba.cuda' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


@needs_numba_cuda
def test_backends_reports_cuda_as_availability_says():
    assert backends()["cuda"] == cuda_backend.availability()


@needs_numba_cuda
def test_choosing_cuda_where_it_cannot_run_says_why(monkeypatch):
    monkeypatch.setattr(cuda_backend, "availability", lambda: "no CUDA GPU was found")
    with pytest.raises(RuntimeError, match="backend='cuda' cannot run here: no CUDA GPU"):
        Network([2, 2], backend="cuda")


@needs_numba_cuda
def test_availability_names_a_missing_numba_cuda(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "numba_cuda" else real(name, *a))
    reason = cuda_backend.availability()
    assert "numba-cuda" in reason and "engine[cuda]" in reason


@needs_cuda
def test_unknown_strategy_is_refused(monkeypatch):
    monkeypatch.setattr(config, "CUDA_STRATEGY", "warp-speed")
    net = Network([2, 2], backend="cuda")
    with pytest.raises(ValueError, match="CUDA_STRATEGY"):
        net.fit(np.zeros((2, 2)), np.array([0, 1]))


@needs_cuda
def test_auto_strategy_follows_the_work_per_mini_batch(monkeypatch):
    monkeypatch.setattr(config, "CUDA_STRATEGY", "auto")
    backend = Network([2, 2], backend="cuda")._backend
    seeds_net = Network([784, 30, 10], backend="numpy")  # 23,520 weights
    wide_net = Network([784, 512, 256, 10], backend="numpy")  # 535,040 weights
    assert backend.strategy(seeds_net, 10) == "persistent"
    assert backend.strategy(wide_net, 128) == "tiled"
    monkeypatch.setattr(config, "CUDA_PERSISTENT_MAX_WORK", 10 * 23520 - 1)
    assert backend.strategy(seeds_net, 10) == "tiled"


# -- real GPU ------------------------------------------------------------------------------


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("strategy,batch_size", [("persistent", 10), ("tiled", 10),
                                                 ("tiled", 128), ("persistent", 33)])
def test_gpu_matches_numba_backend_at_production_tile_size(strategy, batch_size, dtype,
                                                           monkeypatch):
    # Default tile and block sizes, MNIST-sized inputs. Compared with the compiled CPU
    # backend (itself checked against the oracle) because the oracle would be slow here.
    # 1e-9 float64 / 1e-3 float32: a few hundred updates amplify rounding differences
    # more than the few steps of the simulator tests.
    monkeypatch.setattr(config, "CUDA_STRATEGY", strategy)
    rng = np.random.default_rng(0)
    X, y = rng.random((1000, 784)), rng.integers(0, 10, 1000)
    cpu = Network([784, 40, 10], dtype=dtype, backend="numba", seed=1)
    dev = Network([784, 40, 10], dtype=dtype, backend="cuda", seed=1)
    h_cpu = cpu.fit(X, y, epochs=2, batch_size=batch_size, lr=1.0)
    h_dev = dev.fit(X, y, epochs=2, batch_size=batch_size, lr=1.0)
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == "float64" else dict(rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(h_dev["loss"], h_cpu["loss"], **tol)
    for w_dev, w_cpu in zip(dev.weights, cpu.weights):
        np.testing.assert_allclose(w_dev, w_cpu, **tol)
    np.testing.assert_allclose(dev.predict_proba(X), cpu.predict_proba(X), **tol)


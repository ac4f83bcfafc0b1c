"""Resources and concurrency: batch sizes beyond the data, every Numba threading layer
under concurrent prediction, two fits on one network, read-only inputs."""

import importlib
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import engine
from conftest import make_classification


@pytest.mark.parametrize("backend", ["numpy", "numba", "numba-parallel"])
def test_a_batch_larger_than_the_data_is_the_whole_data(backend):
    """batch_size=10**9 would ask for hundreds of GiB of scratch; it trains as batch_size=n
    (the same numbers), in fit and in SGD."""
    X, y = make_classification(60, 5, 3, seed=0)
    nets = [engine.Network([5, 7, 3], backend=backend, seed=1) for _ in range(3)]
    nets[0].fit(X, y, epochs=2, batch_size=60, lr=0.5)
    nets[1].fit(X, y, epochs=2, batch_size=10**9, lr=0.5)
    nets[2].SGD(list(zip(X, y)), 2, 10**9, 0.5)
    np.testing.assert_array_equal(nets[1]._params, nets[0]._params)
    np.testing.assert_array_equal(nets[2]._params, nets[0]._params)


LAYERS = {"tbb": "numba.np.ufunc.tbbpool", "omp": "numba.np.ufunc.omppool",
          "workqueue": "numba.np.ufunc.workqueue"}


def _importable(module):
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("layer", list(LAYERS))
def test_threads_predict_and_train_under_every_threading_layer(layer):
    """Four threads predict with one numba-parallel network while two more train networks
    of their own, under each threading layer Numba offers here (a process each: the layer
    is chosen once per process). workqueue is not thread-safe: without the engine's lock
    the process aborts."""
    if not _importable(LAYERS[layer]):
        pytest.skip(f"Numba's {layer} threading layer is not available here")
    script = textwrap.dedent("""
        import threading, numba, numpy as np, engine
        rng = np.random.default_rng(0)
        X = rng.random((2000, 30))  # 8 blocks of rows: a real parallel region
        net = engine.Network([30, 20, 3], backend="numba-parallel", seed=0)
        expected = net.predict_proba(X)
        trained = [engine.Network([30, 20, 3], backend="numba-parallel", seed=s)
                   for s in (1, 2)]
        same = []

        def predict():
            same.extend(np.array_equal(net.predict_proba(X), expected) for _ in range(15))

        def train(other):
            other.fit(X, np.arange(2000) % 3, epochs=2, batch_size=200, lr=0.1)

        threads = [threading.Thread(target=predict) for _ in range(4)]
        threads += [threading.Thread(target=train, args=(t,)) for t in trained]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        again = engine.Network([30, 20, 3], backend="numba-parallel", seed=1)
        again.fit(X, np.arange(2000) % 3, epochs=2, batch_size=200, lr=0.1)
        assert np.array_equal(again._params, trained[0]._params)
        print(numba.threading_layer(), len(same), all(same))
    """)
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer, NUMBA_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [layer, "60", "True"]


def test_a_second_fit_on_one_network_is_refused_while_the_first_runs():
    X, y = make_classification(40, 4, 3, seed=2)
    net = engine.Network([4, 6, 3], backend="numpy", seed=0)
    started, tried = threading.Event(), threading.Event()
    outcome = {}

    def wait_for_the_second(epoch, history):
        if epoch == 0:
            started.set()
            tried.wait(timeout=60)

    def first():
        outcome["history"] = net.fit(X, y, epochs=3, batch_size=8, lr=0.5,
                                     callbacks=[wait_for_the_second])

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(timeout=60)
    try:
        for second in (lambda: net.fit(X, y, epochs=1), lambda: net.SGD(list(zip(X, y)), 1, 8, 0.5),
                       lambda: net.update_mini_batch(list(zip(X[:4], y[:4])), 0.5)):
            with pytest.raises(RuntimeError, match="already training"):
                second()
    finally:
        tried.set()
        thread.join(timeout=120)
    alone = engine.Network([4, 6, 3], backend="numpy", seed=0)
    alone.fit(X, y, epochs=3, batch_size=8, lr=0.5)
    np.testing.assert_array_equal(net._params, alone._params)  # the first ran undisturbed
    assert len(outcome["history"]["loss"]) == 3
    net.fit(X, y, epochs=1, batch_size=8, lr=0.5)  # free again afterwards


def test_read_only_and_memory_mapped_inputs_compile_nothing_new(tmp_path):
    from engine.kernels import cpu

    X, y = make_classification(30, 5, 3, seed=3)
    net = engine.Network([5, 4, 3], seed=0)
    net.fit(X, y, epochs=1, batch_size=10, lr=0.5)
    expected = net.predict_proba(X)
    kernels = (*cpu.TRAIN.values(), *cpu.FORWARD.values())
    before = sum(len(k.signatures) for k in kernels)
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    frozen = X.copy()
    frozen.flags.writeable = False
    labels = y.copy()
    labels.flags.writeable = False
    for rows in (mapped, frozen):
        np.testing.assert_array_equal(net.predict_proba(rows), expected)
        twin = engine.Network([5, 4, 3], seed=0)
        twin.fit(rows, labels, epochs=1, batch_size=10, lr=0.5)
        twin.fit(rows, np.eye(3)[y] * 0.5, epochs=1, batch_size=10, lr=0.5)
    assert sum(len(k.signatures) for k in kernels) == before

"""Numerical trouble, threads and processes: the engine keeps working and loses nothing."""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import engine
from conftest import COMBINATIONS, make_classification

BACKENDS = ["numpy", "numba", "numba-parallel"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_stops_with_last_finite_weights(backend):
    rng = np.random.default_rng(0)
    X, y = rng.random((100, 3)) * 10, rng.random(100) * 100

    def network():
        return engine.Network([3, 8, 1], activation="relu", output="identity",
                              backend=backend, seed=0)

    net = network()
    with pytest.raises(engine.DivergenceError, match=r"diverged in epoch \d+.*smaller "
                                                     r"learning rate than 50.0") as caught:
        net.fit(X, y, epochs=40, batch_size=10, lr=50.0, validation_data=(X, y))
    err = caught.value
    assert 0 < err.epoch < 40
    assert len(err.history["loss"]) == len(err.history["val_loss"]) == err.epoch
    assert net.history is err.history
    # The parameters kept are exactly those at the end of the last finite epoch.
    replay = network()
    replay.fit(X, y, epochs=err.epoch, batch_size=10, lr=50.0)
    np.testing.assert_array_equal(net._params, replay._params)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden,output,cost", [c for c in COMBINATIONS if c[2] == "cross_entropy"]
                         + [("sigmoid", "softmax", "quadratic"), ("tanh", "sigmoid", "quadratic")])
def test_saturated_units_stay_finite(backend, dtype, hidden, output, cost):
    """Pre-activations in the thousands: no overflow, finite costs and gradients."""
    net = engine.Network([4, 5, 3], activation=hidden, output=output, cost=cost,
                         dtype=dtype, backend=backend, seed=1)
    net.weights = [w * 1000 for w in net.weights]
    X, y = make_classification(20, 4, 3, seed=2)
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        probs = net.predict_proba(X)
        grads = net.backprop(X[0], int(y[0]))
        history = net.fit(X, y, epochs=1, batch_size=5, lr=1e-3)
    assert np.isfinite(probs).all() and np.isfinite(history["loss"]).all()
    assert all(np.isfinite(g).all() for part in grads for g in part)
    if output == "softmax":
        np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize("backend", ["numba", "numba-parallel"])
def test_concurrent_predict_matches_sequential(backend):
    net = engine.Network([50, 40, 10], backend=backend, seed=3)
    X, _ = make_classification(3000, 50, 10, seed=4)
    chunks = np.array_split(X, 8)
    expected = [net.predict_proba(c) for c in chunks]
    results = [None] * len(chunks)
    errors = []

    def work(i):
        try:
            for _ in range(5):
                results[i] = net.predict_proba(chunks[i])
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(chunks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_two_processes_share_one_numba_cache(tmp_path):
    """Two processes compile into the same empty cache at once; a third loads it and
    gets the same numbers, without compiling."""
    script = textwrap.dedent("""
        import sys, numpy as np, engine
        from engine.kernels import cpu
        net = engine.Network([6, 5, 3], seed=0, dtype=sys.argv[1])
        X = np.random.default_rng(0).random((40, 6))
        net.fit(X, np.arange(40) % 3, epochs=2, batch_size=4, lr=0.5)
        kernels = (*cpu.TRAIN.values(), *cpu.FORWARD.values())
        print(repr(float(net._params.sum())), sum(len(k.stats.cache_misses) for k in kernels))
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    run = [sys.executable, "-c", script, "float32"]
    first = [subprocess.Popen(run, env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0].split() for p in first]
    assert all(p.returncode == 0 for p in first)
    third = subprocess.run(run, env=env, stdout=subprocess.PIPE, text=True, timeout=300,
                           check=True).stdout.split()
    assert outputs[0][0] == outputs[1][0] == third[0]
    assert third[1] == "0", "the third process should load the cache, not compile"

"""The engine learns for real: XOR, and handwritten digits from the real MNIST test set."""

import numpy as np
import pytest

import engine

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0.0, 1.0, 1.0, 0.0])


@pytest.mark.parametrize("backend", ["numpy", "numba", "numba-parallel"])
def test_xor_is_learned_by_a_2_3_1_network(threaded, backend):
    """(numba-parallel with every step threaded: see conftest.threaded.)"""
    net = engine.Network([2, 3, 1], backend=backend, seed=0)
    untrained = net.predict(XOR_X)
    with threaded(backend):
        history = net.fit(XOR_X, XOR_Y, epochs=3000, batch_size=4, lr=2.0)
    outputs = net.predict(XOR_X)
    assert np.array_equal(np.round(outputs), XOR_Y), (untrained, outputs)
    assert np.all(np.abs(outputs - XOR_Y) < 0.2)
    assert history["loss"][-1] < 0.01 < history["loss"][0]


def test_network2_style_net_reaches_90_percent_on_real_mnist(mnist_test_set):
    """Nielsen's network2 setup: [784, 30, 10], cross-entropy, N(0, 1/n_in) weights."""
    X, y = mnist_test_set
    net = engine.Network([784, 30, 10], cost="cross_entropy", init="lecun_normal", seed=1)
    history = net.fit(X[:8000], y[:8000], epochs=10, batch_size=10, lr=0.5,
                      validation_data=(X[8000:], y[8000:]))
    accuracy = net.score(X[8000:], y[8000:])
    assert accuracy >= 0.90, history["val_accuracy"]
    assert history["val_accuracy"][-1] == pytest.approx(accuracy)
    assert history["loss"][-1] < history["loss"][0]


def test_parallel_backend_trains_mnist_to_the_same_weights(threaded, mnist_test_set):
    """numba-parallel splits work over threads without changing any sum's order: the same
    bits. Nielsen's network at batch 10 is below the thresholds from which it starts
    threads, so every step is made to take them (conftest.threaded)."""
    X, y = mnist_test_set
    nets = [engine.Network([784, 30, 10], backend=b, seed=2, cost="cross_entropy",
                           init="lecun_normal") for b in ("numba", "numba-parallel")]
    nets[0].fit(X[:2000], y[:2000], epochs=1, batch_size=10, lr=0.5)
    with threaded("numba-parallel"):
        nets[1].fit(X[:2000], y[:2000], epochs=1, batch_size=10, lr=0.5)
    np.testing.assert_array_equal(nets[1]._params, nets[0]._params)

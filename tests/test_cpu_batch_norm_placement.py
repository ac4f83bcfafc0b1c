"""Batch normalisation after a layer's activation (Keras' ``Dense(n, activation=...),
BatchNormalization()``), with Keras' running-statistics rule: the oracle against finite
differences, every CPU kernel against the oracle.

The engine's own batch norm precedes the activation (``Network(batch_norm=True)``); a
layer marked ``_bn_after`` computes h = σ(z + b) and normalises h, so it keeps its bias and
σ' comes after the batch norm's backward pass. Tolerances as in test_oracle_training.py
(finite differences: 1e-6 of the gradient's scale) and test_cpu_oracle_agreement.py (float64
epochs 1e-10 relative; serial and parallel twins bit for bit).
"""

import numpy as np
import pytest

import engine
from engine import oracle
from conftest import assert_matches_central_differences


@pytest.mark.parametrize("dropout_rate", [None, 0.4], ids=["bn", "bn+dropout"])
def test_gradients_with_batch_norm_after_the_activation_match_finite_differences(
        dropout_rate):
    rng = np.random.default_rng(5)
    sizes, hidden = (4, 5, 3, 3), ["tanh", "sigmoid"]
    weights = [rng.normal(0, 0.8, (n, m)) for m, n in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(0, 0.5, (n, 1)) for n in sizes[1:]]
    bn = [oracle.BatchNorm(rng.normal(1, 0.3, 5), rng.normal(0, 0.3, 5), np.zeros(5),
                           np.ones(5), eps=1e-3, unbiased=False, after_activation=True),
          oracle.BatchNorm(rng.normal(1, 0.3, 3), rng.normal(0, 0.3, 3), np.zeros(3),
                           np.ones(3)),  # and one before its activation, for contrast
          None]
    X, Y = rng.normal(size=(6, 4)), np.eye(3)[rng.integers(0, 3, 6)]
    dropout = None
    if dropout_rate:
        dropout = [oracle.dropout_multipliers(rng.random((6, n)) >= dropout_rate,
                                              dropout_rate, np.dtype(np.float64))
                   for n in sizes[1:-1]] + [None]

    def summed_cost():
        trace = oracle.forward_training(weights, biases, X, hidden, "softmax", bn, dropout)
        return oracle.sample_costs(trace.activations[-1], trace.z_out, Y, "cross_entropy",
                                   "softmax").sum()

    grads = oracle.gradients(weights, biases, X, Y, hidden, "softmax", "cross_entropy", bn,
                             dropout)
    probes = [(grads.w[l], weights[l]) for l in range(3)]
    probes += [(grads.b[0], biases[0]), (grads.b[2], biases[2])]
    probes += [(grads.gamma[l], bn[l].gamma) for l in (0, 1)]
    probes += [(grads.beta[l], bn[l].beta) for l in (0, 1)]
    for analytic, param in probes:
        assert_matches_central_differences(analytic, param, summed_cost)
    assert np.abs(grads.b[0]).max() > 1e-3  # the layer's bias matters now
    np.testing.assert_array_equal(grads.b[1], 0)  # before the activation: it cancels


def test_keras_running_statistics_average_the_biased_variance():
    z = np.array([[1.0, 2.0], [3.0, 6.0], [2.0, 1.0]])
    bn = oracle.BatchNorm(np.ones(2), np.zeros(2), np.zeros(2), np.ones(2), momentum=0.01,
                          unbiased=False)
    _, (_, _, mean, var) = oracle.batch_norm_training(z, bn)
    oracle.update_running_statistics(bn, mean, var, 3)
    np.testing.assert_allclose(bn.running_mean, 0.01 * z.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(bn.running_var, 0.99 + 0.01 * z.var(axis=0), rtol=1e-15)


def networks(backends, after=(True, False, False)):
    nets = []
    for backend in backends:
        net = engine.Network([9, 7, 5, 3], activation=["tanh", "relu"], output="softmax",
                             cost="cross_entropy", init="lecun_normal", backend=backend,
                             seed=2, batch_norm=[True, True])
        net._bn_after = after
        net._set_batch_norm_rule(momentum=0.01, eps=1e-3, unbiased=False)  # Keras'
        net._bias_views[0][...] = np.linspace(-0.5, 0.5, 7)[:, None]
        nets.append(net)
    return nets


@pytest.mark.parametrize("after", [(True, False, False), (True, True, False)],
                         ids=["after-then-before", "after-twice"])
@pytest.mark.parametrize("features", [dict(optimizer="momentum"),
                                      dict(optimizer="adam", dropout=[0.3, 0.2])],
                         ids=["momentum", "adam-dropout"])
def test_kernels_match_the_oracle_with_batch_norm_after_the_activation(threaded, after,
                                                                       features):
    """numba and numba-parallel (threads for every step: conftest.threaded) against the
    oracle: parameters (the first layer's bias trains), running statistics and
    predictions."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(150, 9)), rng.integers(0, 3, 150)
    nets = networks(("numpy", "numba", "numba-parallel"), after)
    bias_before = nets[0]._bias_views[0].copy()
    for net in nets:
        with threaded(net.backend):
            net.fit(X, y, epochs=2, batch_size=8, lr=0.05, **features)
    reference = nets[0]
    assert np.abs(reference._bias_views[0] - bias_before).max() > 1e-4
    for net in nets[1:]:
        scale = np.max(np.abs(reference._params))
        assert np.max(np.abs(net._params - reference._params)) / scale <= 1e-10
        np.testing.assert_allclose(net._bn_running, reference._bn_running, rtol=1e-10,
                                   atol=1e-14)
        np.testing.assert_allclose(net.predict_proba(X), reference.predict_proba(X),
                                   rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(nets[2]._params, nets[1]._params)

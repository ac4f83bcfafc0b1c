"""The oracle checked against calculus: backprop gradients vs central finite differences.

Tolerance: central differences with h = 1e-6 have truncation error O(h²) ≈ 1e-12 and
rounding error ≈ ε·C/h ≈ 1e-10 on costs of order one, so analytic and numerical gradients
agree to ~1e-7 relative to the gradient's scale; we assert 1e-6.
"""

import numpy as np
import pytest

from engine import oracle
from conftest import COMBINATIONS, assert_matches_central_differences, targets_for


def _summed_cost(weights, biases, X, Y, hidden, output, cost):
    activations, z_out = oracle.forward(weights, biases, X, hidden, output)
    return oracle.sample_costs(activations[-1], z_out, Y, cost, output).sum()


@pytest.mark.parametrize("hidden,output,cost", COMBINATIONS)
@pytest.mark.parametrize("sizes", [[4, 3, 3], [3, 5, 1, 4, 2]], ids=["2-layer", "4-layer"])
def test_backprop_matches_finite_differences(hidden, output, cost, sizes):
    rng = np.random.default_rng(7)
    Y = targets_for(output, rng.integers(0, sizes[-1], 3), sizes[-1], rng)
    _check_gradients(hidden, output, cost, sizes, Y, rng)


def test_softmax_cross_entropy_gradient_for_targets_not_summing_to_one():
    rng = np.random.default_rng(8)
    _check_gradients("tanh", "softmax", "cross_entropy", [3, 4, 3], rng.random((3, 3)), rng)


def _check_gradients(hidden, output, cost, sizes, Y, rng):
    weights = [rng.normal(0, 0.8, (n, m)) for m, n in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(0, 0.5, (n, 1)) for n in sizes[1:]]
    X = rng.normal(size=(3, sizes[0]))

    nabla_b, nabla_w, _ = oracle.backprop(weights, biases, X, Y, hidden, output, cost)

    for analytic, params in ((nabla_w, weights), (nabla_b, biases)):
        for grad, p in zip(analytic, params):
            assert_matches_central_differences(
                grad, p, lambda: _summed_cost(weights, biases, X, Y, hidden, output, cost))


def test_mean_cost_is_mean_of_sample_costs():
    rng = np.random.default_rng(0)
    a = rng.random((5, 3))
    Y = rng.random((5, 3))
    assert oracle.mean_cost(a, a, Y, "quadratic", "sigmoid") == pytest.approx(
        np.mean([0.5 * np.sum((a[i] - Y[i]) ** 2) for i in range(5)]))


def test_cross_entropy_forms_match_their_definitions():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, 3))
    Y = np.eye(3)[[0, 2, 1, 1]]
    a = oracle.sigmoid(z)
    binary = -np.sum(Y * np.log(a) + (1 - Y) * np.log(1 - a), axis=1)
    np.testing.assert_allclose(oracle.sample_costs(a, z, Y, "cross_entropy", "sigmoid"),
                               binary, rtol=1e-12)
    p = oracle.softmax(z)
    categorical = -np.sum(Y * np.log(p), axis=1)
    np.testing.assert_allclose(oracle.sample_costs(p, z, Y, "cross_entropy", "softmax"),
                               categorical, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_forms_at_extreme_inputs(dtype):
    z = np.array([[-5000.0, 0.0, 5000.0]], dtype=dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        s = oracle.sigmoid(z)
        p = oracle.softmax(z)
        costs = oracle.sample_costs(s, z, np.array([[1, 0, 0]], dtype), "cross_entropy",
                                    "sigmoid")
    np.testing.assert_array_equal(s, np.array([[0.0, 0.5, 1.0]], dtype))
    np.testing.assert_array_equal(p, np.array([[0.0, 0.0, 1.0]], dtype))
    assert np.isfinite(costs).all() and costs[0] == pytest.approx(5000 + np.log(2) + 5000,
                                                                  rel=1e-6)

"""The oracle's training features checked against hand-worked values and calculus.

* Optimisers: three steps of each rule worked out here in plain Python floats, from the
  textbook form of each update (for Adam the bias-corrected m̂ and v̂, not torch's
  rearrangement), against ``oracle.Optimizer``. Both are float64 evaluations of the same
  formula in different arrangements, so they agree to a few ulps; we assert 1e-12 relative.
* Batch normalisation and dropout gradients: central finite differences of the summed
  training-mode cost (batch statistics recomputed at every probe; a fixed dropout mask).
  As in test_oracle_gradients.py, h = 1e-6 gives errors ~1e-9; we assert 1e-6 of the scale.
* Running statistics, dropout scaling and inference: exact or 1e-12 relative against
  definitions computed here (``np.var(ddof=1)`` for torch's unbiased running variance).
"""

import math

import numpy as np
import pytest

import engine
from engine import oracle, training
from conftest import assert_matches_central_differences

HYPER = {"momentum": 0.8, "beta1": 0.85, "beta2": 0.99, "eps": 1e-3, "rho": 0.9,
         "weight_decay": 0.0}


def _by_hand(name, p, grads, lr, m, wd):
    """Textbook updates, one scalar at a time, for the gradient sequence ``grads`` (sums of
    m per-sample gradients)."""
    h = HYPER
    out = []
    for k in range(len(p)):
        w, b, s, v, mom, vel = p[k], 0.0, 0.0, 0.0, 0.0, 0.0
        for t, nabla in enumerate(grads, start=1):
            if name == "sgd":
                w = (1 - lr * wd) * w - (lr / m) * nabla[k]
                continue
            g = nabla[k] / m + wd * w
            if name == "momentum":
                vel = h["momentum"] * vel + g
                w -= lr * vel
            elif name == "nesterov":
                vel = h["momentum"] * vel + g
                w -= lr * (g + h["momentum"] * vel)
            elif name == "adagrad":
                s += g * g
                w -= lr * g / (math.sqrt(s) + h["eps"])
            elif name == "rmsprop":
                v = h["rho"] * v + (1 - h["rho"]) * g * g
                w -= lr * g / (math.sqrt(v) + h["eps"])
            elif name == "adam":
                mom = h["beta1"] * mom + (1 - h["beta1"]) * g
                b = h["beta2"] * b + (1 - h["beta2"]) * g * g
                m_hat = mom / (1 - h["beta1"] ** t)
                v_hat = b / (1 - h["beta2"] ** t)
                w -= lr * m_hat / (math.sqrt(v_hat) + h["eps"])
            elif name in ("velocity", "velocity_nesterov"):
                # scikit-learn's SGDOptimizer._get_updates, Keras' SGD
                vel = h["momentum"] * vel - lr * g
                w += (h["momentum"] * vel - lr * g if name == "velocity_nesterov" else vel)
            elif name == "adagrad_eps_inside":  # Keras' Adagrad.update_step
                s += g * g
                w -= lr * g / math.sqrt(s + h["eps"])
            elif name == "rmsprop_eps_inside":  # Keras' RMSprop.update_step
                v = h["rho"] * v + (1 - h["rho"]) * g * g
                w -= lr * g / math.sqrt(v + h["eps"])
            elif name == "adam_folded":
                # scikit-learn's AdamOptimizer._get_updates, Keras' Adam
                mom = h["beta1"] * mom + (1 - h["beta1"]) * g
                b = h["beta2"] * b + (1 - h["beta2"]) * g * g
                step = lr * math.sqrt(1 - h["beta2"] ** t) / (1 - h["beta1"] ** t)
                w -= step * mom / (math.sqrt(b) + h["eps"])
        out.append(w)
    return np.array(out)


@pytest.mark.parametrize("wd", [0.0, 0.05], ids=["plain", "weight decay"])
@pytest.mark.parametrize("name", training.OPTIMIZERS)
def test_optimizer_rules_match_hand_worked_updates(name, wd):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=4)
    grads = [rng.normal(size=4) * 3 for _ in range(3)]
    lr, m = 0.07, 5
    p = p0.copy()
    n_slots = {"sgd": 0, "adam": 2, "adam_folded": 2}.get(name, 1)
    slots = [[np.zeros(4) for _ in range(n_slots)]]
    opt = oracle.Optimizer(name, dict(HYPER, weight_decay=wd), slots, np.zeros(1, np.int64))
    for nabla in grads:
        opt.update([p], [nabla], [True], m, lr)
    expected = _by_hand(name, p0, grads, lr, m, wd)
    np.testing.assert_allclose(p, expected, rtol=1e-12, atol=0)
    assert opt.step[0] == 3
    assert not np.allclose(p, p0)


def test_weight_decay_skips_parameters_marked_without_it():
    p, q = np.ones(3), np.ones(3)
    opt = oracle.Optimizer("adam", dict(HYPER, weight_decay=0.5),
                           [[np.zeros(3), np.zeros(3)], [np.zeros(3), np.zeros(3)]],
                           np.zeros(1, np.int64))
    opt.update([p, q], [np.zeros(3), np.zeros(3)], [True, False], 1, 0.1)
    assert np.all(p < 1)                # decayed towards zero by the L2 term's gradient
    np.testing.assert_array_equal(q, 1)  # no gradient, no decay: unchanged


def test_sgd_l2_step_is_the_gradient_of_network2s_regularised_cost():
    """w ← (1 − lr·λ/n)·w − (lr/m)·Σ∇ is a gradient step on C + (λ/2n)·Σw²."""
    rng = np.random.default_rng(1)
    w, nabla = rng.normal(size=5), rng.normal(size=5)
    lr, m, lam, n = 0.3, 4, 2.0, 50
    stepped = w.copy()
    oracle.sgd_update(stepped, nabla, m, lr, lam / n)
    np.testing.assert_allclose(stepped, w - lr * (nabla / m + (lam / n) * w), rtol=1e-14)


# -- batch normalisation --------------------------------------------------------------------


def _bn_problem(seed, sizes=(4, 5, 3, 3), dropout_rate=None):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, 0.8, (n, m)) for m, n in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(0, 0.5, (n, 1)) for n in sizes[1:]]
    bn = [None] * (len(sizes) - 1)
    bn[0] = oracle.BatchNorm(rng.normal(1, 0.3, sizes[1]), rng.normal(0, 0.3, sizes[1]),
                             np.zeros(sizes[1]), np.ones(sizes[1]))
    bn[1] = oracle.BatchNorm(rng.normal(1, 0.3, sizes[2]), rng.normal(0, 0.3, sizes[2]),
                             np.zeros(sizes[2]), np.ones(sizes[2]))
    X = rng.normal(size=(6, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], 6)]
    dropout = None
    if dropout_rate:
        dropout = [oracle.dropout_multipliers(rng.random((6, n)) >= dropout_rate,
                                              dropout_rate, np.dtype(np.float64))
                   for n in sizes[1:-1]] + [None]
    return weights, biases, bn, X, Y, dropout


def _summed_training_cost(weights, biases, X, Y, hidden, output, cost, bn, dropout):
    trace = oracle.forward_training(weights, biases, X, hidden, output, bn, dropout)
    return oracle.sample_costs(trace.activations[-1], trace.z_out, Y, cost, output).sum()


@pytest.mark.parametrize("hidden,output,cost", [("sigmoid", "softmax", "cross_entropy"),
                                                ("relu", "sigmoid", "quadratic"),
                                                ("tanh", "identity", "quadratic")])
@pytest.mark.parametrize("dropout_rate", [None, 0.4], ids=["bn", "bn+dropout"])
def test_batch_norm_and_dropout_gradients_match_finite_differences(hidden, output, cost,
                                                                   dropout_rate):
    weights, biases, bn, X, Y, dropout = _bn_problem(3, dropout_rate=dropout_rate)
    grads = oracle.gradients(weights, biases, X, Y, hidden, output, cost, bn, dropout)
    probes = [(grads.w[l], weights[l]) for l in range(3)] + [(grads.b[2], biases[2])]
    probes += [(grads.gamma[l], bn[l].gamma) for l in (0, 1)]
    probes += [(grads.beta[l], bn[l].beta) for l in (0, 1)]
    for analytic, param in probes:
        assert_matches_central_differences(
            analytic, param,
            lambda: _summed_training_cost(weights, biases, X, Y, hidden, output, cost, bn,
                                          dropout))
    # a normalised layer's bias cancels out of the cost: no gradient, by definition
    np.testing.assert_array_equal(grads.b[0], 0)


def test_batch_norm_training_output_is_normalised_per_unit():
    rng = np.random.default_rng(4)
    z = rng.normal(3.0, 2.0, size=(50, 4))
    gamma, beta = np.array([1.0, 2.0, 0.5, 1.5]), np.array([0.0, -1.0, 0.3, 2.0])
    y, (z_hat, inv_std, mean, var) = oracle.batch_norm_training(
        z, oracle.BatchNorm(gamma, beta, np.zeros(4), np.ones(4)))
    np.testing.assert_allclose(mean, z.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(var, np.var(z, axis=0, ddof=0), rtol=1e-14)  # biased
    np.testing.assert_allclose(y.mean(axis=0), beta, atol=1e-13)
    np.testing.assert_allclose(y.std(axis=0), gamma * np.sqrt(var / (var + 1e-5)), rtol=1e-12)
    np.testing.assert_allclose(inv_std, 1 / np.sqrt(var + 1e-5), rtol=1e-14)


def test_running_statistics_follow_torch_definitions():
    """running ← 0.9·running + 0.1·batch value, with the unbiased variance; from (0, 1)."""
    weights, biases, bn, X, Y, _ = _bn_problem(5)
    z = X @ weights[0].T
    oracle.update_mini_batch(weights, biases, X, Y, 0.0, "sigmoid", "softmax", "cross_entropy",
                             batch_norm=bn)
    np.testing.assert_allclose(bn[0].running_mean, 0.1 * z.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn[0].running_var, 0.9 + 0.1 * np.var(z, axis=0, ddof=1),
                               rtol=1e-12)
    before = bn[0].running_mean.copy(), bn[0].running_var.copy()
    oracle.update_mini_batch(weights, biases, X[:1], Y[:1], 0.0, "sigmoid", "softmax",
                             "cross_entropy", batch_norm=bn)  # one sample: no statistics
    np.testing.assert_array_equal(bn[0].running_mean, before[0])
    np.testing.assert_array_equal(bn[0].running_var, before[1])


def test_prediction_uses_running_statistics():
    weights, biases, bn, X, _, _ = _bn_problem(6, sizes=(4, 5, 3))
    bn = bn[:1] + [None]
    bn[0].running_mean[:] = [0.5, -0.2, 0.1, 0.0, 1.0]
    bn[0].running_var[:] = [2.0, 0.5, 1.0, 3.0, 0.1]
    r = bn[0]
    z = X @ weights[0].T
    hidden = oracle.sigmoid(r.gamma * (z - r.running_mean) / np.sqrt(r.running_var + 1e-5)
                            + r.beta)
    expected = oracle.sigmoid(hidden @ weights[1].T + biases[1].T)
    out, _ = oracle.feedforward(weights, biases, X, "sigmoid", "sigmoid", bn)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    # one sample at a time gives the same answers: no batch statistics at prediction time
    single, _ = oracle.feedforward(weights, biases, X[2:3], "sigmoid", "sigmoid", bn)
    np.testing.assert_allclose(single, out[2:3], rtol=1e-14)


# -- dropout ------------------------------------------------------------------------------------


def test_dropout_with_a_fixed_mask_scales_kept_units_exactly():
    rng = np.random.default_rng(7)
    weights = [rng.normal(size=(6, 3)), rng.normal(size=(2, 6))]
    biases = [rng.normal(size=(6, 1)), rng.normal(size=(2, 1))]
    X = rng.random((4, 3))
    keep = np.array([[1, 0, 1, 1, 0, 1]] * 2 + [[0, 0, 0, 0, 0, 1]] * 2, dtype=np.uint8)
    D = oracle.dropout_multipliers(keep, 0.25, np.dtype(np.float64))
    np.testing.assert_array_equal(D, keep / 0.75)
    trace = oracle.forward_training(weights, biases, X, "tanh", "sigmoid", dropout=[D, None])
    h = np.tanh(X @ weights[0].T + biases[0].T)
    np.testing.assert_array_equal(trace.hidden_outputs[1], h)
    np.testing.assert_array_equal(trace.activations[1], h * (keep / 0.75))
    np.testing.assert_array_equal(trace.activations[1][keep == 0], 0)
    # dropped units pass no gradient back: their incoming weights' gradients are zero
    grads = oracle.gradients(weights, biases, X, np.ones((4, 2)) * 0.3, "tanh", "sigmoid",
                             "quadratic", dropout=[D, None])
    dropped_everywhere = np.all(keep == 0, axis=0)
    np.testing.assert_array_equal(grads.w[0][dropped_everywhere], 0)
    assert np.all(grads.w[0][~dropped_everywhere].any(axis=1))


def test_dropout_masks_drop_the_rate_and_keep_the_expected_activation():
    """Statistically: P(drop) = p per unit, E[D] = 1, so a training-mode hidden activation
    averages to the deterministic prediction-mode one."""
    net = engine.Network([3, 40, 30, 2], backend="numpy", seed=8)
    plan = training.Plan(net, dropout=training.dropout_rates([0.3, 0.6], net.sizes))
    mask = plan.draw_mask(net.rng, 20000)
    assert mask.shape == (20000, 70) and mask.dtype == np.uint8
    # 800,000 and 600,000 Bernoulli draws: the standard error of the rate is ≤ 6e-4.
    assert 1 - mask[:, :40].mean() == pytest.approx(0.3, abs=3e-3)
    assert 1 - mask[:, 40:].mean() == pytest.approx(0.6, abs=3e-3)
    x = np.random.default_rng(9).random((1, 3))
    X = np.repeat(x, 20000, axis=0)
    D = oracle.dropout_multipliers(mask[:, :40], 0.3, np.dtype(np.float64))
    trace = oracle.forward_training(net.weights, net.biases, X, "sigmoid", "sigmoid",
                                    dropout=[D, None, None])
    predicted = oracle.forward(net.weights, net.biases, x, "sigmoid", "sigmoid")[0][1]
    # sigmoid activations < 1, scaled by 1/0.7: per unit the mean of 20,000 draws has a
    # standard error below 0.005; 0.03 is six of them.
    np.testing.assert_allclose(trace.activations[1].mean(axis=0), predicted[0], atol=0.03)
    assert not np.allclose(trace.activations[1][0], predicted[0])  # training ≠ prediction


def test_train_and_predict_differ_only_in_training_with_dropout():
    X = np.random.default_rng(10).random((30, 4))
    y = np.arange(30) % 3
    net = engine.Network([4, 16, 3], backend="numpy", seed=0)
    net.fit(X, y, epochs=1, batch_size=5, dropout=0.5)
    first = net.predict_proba(X)
    np.testing.assert_array_equal(net.predict_proba(X), first)  # prediction: deterministic
    # ... and drops nothing, scales nothing: the plain forward pass, written out here with
    # the textbook sigmoid (the oracle's overflow-free form differs by a few ulps)
    def sigmoid(z):
        return 1.0 / (1.0 + np.exp(-z))

    (W1, W2), (b1, b2) = net.weights, net.biases
    plain = sigmoid(sigmoid(X @ W1.T + b1.T) @ W2.T + b2.T)
    np.testing.assert_allclose(first, plain, rtol=1e-13, atol=0)

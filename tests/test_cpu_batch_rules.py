"""Per-sample weights and scikit-learn's per-batch rules (``kernels/codes.py``: sample
weights, H_WEIGHT_TOTAL, H_L2_BATCH, H_COST_SCALE) in the oracle and the compiled kernels.

* Oracle against calculus: one plain gradient step of ``oracle.update_mini_batch`` with
  every rule on moves the parameters by −lr times the gradient of the batch cost it
  reports, Σ sᵢ·Cᵢ/M + ½·α·Σ‖W‖²/M, measured here by central finite differences
  (h = 1e-6 on a smooth tanh network: errors ~1e-9 of the scale; we assert 1e-6).
* Kernels against the oracle: twin networks (one seed) run the same two epochs through
  ``backend.train`` with the same :class:`engine.training.Plan`. Tolerances as in
  test_cpu_training_agreement.py: 1e-10 relative in float64 (the same formulas, summed in
  another order), 1e-4 in float32.
"""

import numpy as np
import pytest

import engine
from engine import oracle, state, training
from engine.kernels import codes
from conftest import assert_close_relative as close, make_classification
from test_cpu_training_agreement import COMPILED, RTOL, assert_twins_agree, twins


def _plan(net, optimizer, *, weights=None, total=True, l2_batch=0.0, cost_scale=1.0,
          dtype="float64"):
    plan = training.Plan(net, optimizer)
    plan.hyper[codes.H_WEIGHT_TOTAL] = float(total)
    plan.hyper[codes.H_L2_BATCH] = l2_batch
    plan.hyper[codes.H_COST_SCALE] = cost_scale
    plan.sample_weight = None if weights is None else weights.astype(dtype)
    return plan


def test_oracle_batch_step_is_the_gradient_of_its_reported_cost():
    rng = np.random.default_rng(0)
    sizes = (4, 5, 3)
    weights = [rng.normal(0, 0.7, (n, k)) for k, n in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(0, 0.3, (n, 1)) for n in sizes[1:]]
    X = rng.normal(size=(6, 4))
    Y = np.eye(3)[rng.integers(0, 3, 6)]
    s = rng.uniform(0.2, 3.0, 6)
    rules = dict(sample_weight=s, weight_total=True, l2_batch=0.3, cost_scale=1.0)

    def cost(flat):
        w, b = _unflat(flat, weights, biases)
        return oracle.update_mini_batch(w, b, X, Y, 0.0, "tanh", "softmax", "cross_entropy",
                                        **rules)

    flat = _flat(weights, biases)
    grad = np.zeros_like(flat)
    h = 1e-6
    for k in range(flat.size):
        up, down = flat.copy(), flat.copy()
        up[k] += h
        down[k] -= h
        grad[k] = (cost(up) - cost(down)) / (2 * h)
    lr = 0.1
    w, b = _unflat(flat, weights, biases)
    reported = oracle.update_mini_batch(w, b, X, Y, lr, "tanh", "softmax", "cross_entropy",
                                        **rules)
    assert reported == pytest.approx(cost(flat), rel=1e-14)
    step = (flat - _flat(w, b)) / lr
    assert np.max(np.abs(step - grad)) <= 1e-6 * np.max(np.abs(grad))
    # the same cost written out: weighted mean over Σs plus ½·α·Σw²/Σs
    per_sample = oracle.sample_costs(*oracle.feedforward(*_unflat(flat, weights, biases), X,
                                                         "tanh", "softmax"),
                                     Y, "cross_entropy", "softmax")
    by_hand = (np.sum(s * per_sample) + 0.5 * 0.3 * sum(np.sum(m ** 2) for m in weights)) \
        / np.sum(s)
    assert reported == pytest.approx(by_hand, rel=1e-12)


def _flat(weights, biases):
    return np.concatenate([a.ravel() for a in weights + biases])


def _unflat(flat, weights, biases):
    out, k = [], 0
    for a in weights + biases:
        out.append(flat[k:k + a.size].reshape(a.shape).copy())
        k += a.size
    return out[:len(weights)], out[len(weights):]


def test_unit_weights_and_size_denominator_change_nothing():
    """Weights of one divided by the batch size are the unweighted rule (oracle)."""
    X, y = make_classification(23, 4, 3, seed=1)
    nets = twins("numpy", [4, 5, 3])
    Y = np.eye(3)[y]
    order = np.arange(23)
    costs = []
    for net, weights in zip(nets, (None, np.ones(23))):
        opt = oracle.Optimizer("adam_folded", state.hyper_dict(state.default_hyper()),
                               [[np.zeros_like(p), np.zeros_like(p)]
                                for p in net._oracle_views(net._params)],
                               np.zeros(1, np.int64))
        costs.append(oracle.train_epoch(net._weight_views, net._bias_views, X, Y, order, 5,
                                        0.01, net.activation, net.output, net.cost, opt,
                                        sample_weight=weights, weight_total=False))
    np.testing.assert_array_equal(nets[0]._params, nets[1]._params)
    assert costs[0] == costs[1]


def _train_twins(backend, dtype, optimizer, make_plan, epochs=2, batch_size=7, lr=0.05,
                 sizes=(6, 5, 4), targets=False, output="softmax", cost="cross_entropy"):
    nets = twins(backend, list(sizes), dtype, output=output, cost=cost)
    X, y = make_classification(151, sizes[0], sizes[-1], seed=2)  # last batch: 151 % 7 = 4
    X = X.astype(dtype)
    labels, Y = y.astype(np.int64), np.zeros((0, sizes[-1]), dtype)
    if targets:
        labels = np.zeros(0, np.int64)
        Y = np.random.default_rng(3).normal(size=(151, sizes[-1])).astype(dtype)
    costs = []
    for net in nets:
        plan = make_plan(net)
        plan.lr = lr
        total = []
        for epoch in range(epochs):
            order = np.random.default_rng(epoch).permutation(151).astype(np.int64)
            total.append(net._backend.train(net, X, labels, Y, order, 0, 151, batch_size, lr,
                                            plan=plan))
        costs.append(total)
    return nets, costs


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer", ["velocity", "velocity_nesterov", "adam_folded", "sgd"])
@pytest.mark.parametrize("total", [True, False], ids=["weight total", "batch size"])
def test_sample_weights_and_batch_l2_match_oracle(row_paths, threaded, backend, dtype,
                                                 optimizer, total):
    weights = np.random.default_rng(4).uniform(0.0, 3.0, 151)
    weights[::10] = 0.0  # a zero weight takes no part, as in scikit-learn

    def make_plan(net):
        return _plan(net, optimizer, weights=weights, total=total, l2_batch=0.2,
                     dtype=dtype)

    with threaded(backend):
        (oracle_net, fast_net), (want, got) = _train_twins(backend, dtype, optimizer,
                                                           make_plan)
    assert_twins_agree(oracle_net, fast_net, RTOL[dtype])
    close(np.array(got), np.array(want), RTOL[dtype])
    assert fast_net._opt_step[0] == 2 * 22


@pytest.mark.parametrize("backend", COMPILED)
def test_cost_scale_and_regression_targets_match_oracle(threaded, backend):
    """scikit-learn's squared error reports ½·mean over outputs (H_COST_SCALE = 1/n_out)."""

    def make_plan(net):
        return _plan(net, "adam_folded", l2_batch=0.1, cost_scale=0.25)

    with threaded(backend):
        (oracle_net, fast_net), (want, got) = _train_twins(
            backend, "float64", "adam_folded", make_plan, targets=True, output="identity",
            cost="quadratic")
    assert_twins_agree(oracle_net, fast_net, RTOL["float64"])
    close(np.array(got), np.array(want), RTOL["float64"])
    # the scale changes the report only: the same run unscaled gives the same parameters
    (_, plain_net), (_, unscaled) = _train_twins(
        backend, "float64", "adam_folded",
        lambda net: _plan(net, "adam_folded", l2_batch=0.1), targets=True,
        output="identity", cost="quadratic")
    np.testing.assert_array_equal(plain_net._params, fast_net._params)
    assert not np.allclose(unscaled, got)


def test_cuda_refuses_the_batch_rules_by_name():
    try:
        net = engine.Network([3, 4, 2], backend="cuda", seed=0)
    except RuntimeError as exc:  # neither a GPU nor the simulator
        pytest.skip(str(exc))
    plan = _plan(net, "adam_folded", weights=np.ones(5), l2_batch=0.1)
    X = np.zeros((5, 3))
    with pytest.raises(ValueError, match="backend='cuda' does not support.*sample_weight"):
        net._backend.train(net, X, np.zeros(5, np.int64), np.zeros((0, 2)),
                           np.arange(5, dtype=np.int64), 0, 5, 5, 0.1, plan=plan)


@pytest.mark.parametrize("backend", COMPILED)
def test_full_batch_loss_gradient_matches_oracle_and_calculus(threaded, backend):
    """``loss_gradient`` (L-BFGS's objective) of a compiled backend equals the oracle's, and
    the oracle's gradient is the derivative of its cost (central differences, h = 1e-6)."""
    oracle_net, fast_net = twins(backend, [5, 6, 3])
    X, y = make_classification(40, 5, 3, seed=5)
    weights = np.random.default_rng(6).uniform(0.5, 2.0, 40)
    results = []
    with threaded(backend):
        for net in (oracle_net, fast_net):
            plan = _plan(net, "sgd", weights=weights, l2_batch=0.3)
            results.append(net._backend.loss_gradient(net, X, y.astype(np.int64),
                                                      np.zeros((0, 3)), plan))
    (want_cost, want_grad), (got_cost, got_grad) = results
    assert got_cost == pytest.approx(want_cost, rel=1e-12)
    close(got_grad, want_grad, 1e-10)
    plan = _plan(oracle_net, "sgd", weights=weights, l2_batch=0.3)
    params = oracle_net._params
    for k in np.random.default_rng(7).choice(params.size, 8, replace=False):
        saved = params[k]
        costs = []
        for h in (1e-6, -1e-6):
            params[k] = saved + h
            costs.append(oracle_net._backend.loss_gradient(
                oracle_net, X, y.astype(np.int64), np.zeros((0, 3)), plan)[0])
        params[k] = saved
        assert (costs[0] - costs[1]) / 2e-6 == pytest.approx(want_grad[k], abs=1e-7)


# -- Network.fit(sample_weight=, class_weight=) ------------------------------------------------


@pytest.mark.parametrize("backend", COMPILED)
def test_fit_with_sample_and_class_weights_matches_oracle(threaded, backend):
    oracle_net, fast_net = twins(backend, [6, 5, 4])
    X, y = make_classification(150, 6, 4, seed=8)
    weights = np.random.default_rng(9).uniform(0.0, 2.0, 150)
    with threaded(backend):
        histories = [net.fit(X, y, epochs=2, batch_size=7, lr=0.05, optimizer="adam",
                             sample_weight=weights, class_weight={0: 3.0, 2: 0.5},
                             validation_fraction=0.2)
                     for net in (oracle_net, fast_net)]
    assert_twins_agree(oracle_net, fast_net, RTOL["float64"], *histories)


def test_weights_multiply_each_samples_share_of_the_mean():
    """Weights of 2 everywhere double every gradient of the batch mean (Keras' reduction):
    plain SGD then takes the steps of twice the rate; class weights are per-sample weights
    per label, and "balanced" is n / (k · count)."""
    X, y = make_classification(60, 4, 3, seed=10)
    y[:5] = 1  # unequal class counts
    make = lambda: engine.Network([4, 5, 3], seed=0)
    doubled, faster = make(), make()
    doubled.fit(X, y, epochs=2, batch_size=6, lr=0.05, sample_weight=np.full(60, 2.0))
    faster.fit(X, y, epochs=2, batch_size=6, lr=0.1)
    np.testing.assert_allclose(doubled._params, faster._params, rtol=1e-12, atol=1e-15)
    per_class, per_sample = make(), make()
    per_class.fit(X, y, epochs=1, batch_size=6, lr=0.1, optimizer="adam",
                  class_weight="balanced")
    counts = np.bincount(y, minlength=3)
    per_sample.fit(X, y, epochs=1, batch_size=6, lr=0.1, optimizer="adam",
                   sample_weight=(60 / (3 * counts))[y])
    np.testing.assert_array_equal(per_class._params, per_sample._params)


@pytest.mark.parametrize("kwargs,message", [
    (dict(sample_weight=np.ones(7)), r"one weight per sample, shape \(8,\)"),
    (dict(sample_weight=-np.ones(8)), "non-negative"),
    (dict(sample_weight=np.zeros(8)), "all zero"),
    (dict(class_weight={5: 1.0}), "keys must be class labels 0..2"),
    (dict(class_weight="even"), "dict"),
])
def test_bad_weights_are_named_and_change_nothing(kwargs, message):
    X, y = make_classification(8, 4, 3, seed=11)
    net = engine.Network([4, 5, 3], seed=0)
    before = net._params.copy()
    with pytest.raises((ValueError, TypeError), match=message):
        net.fit(X, y, **kwargs)
    np.testing.assert_array_equal(net._params, before)


def test_class_weight_needs_class_labels():
    net = engine.Network([2, 3, 2], seed=0)
    with pytest.raises(ValueError, match="class_weight applies to class labels"):
        net.fit(np.zeros((4, 2)), np.zeros((4, 2)), class_weight="balanced")

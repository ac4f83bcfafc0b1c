"""The public API: Nielsen's methods and output, the array API, parameters, seeds, errors."""

import re

import numpy as np
import pytest

import engine
from conftest import make_classification

BACKENDS = ["numpy", "numba", "numba-parallel"]


def nielsen_pairs(X, labels, n_out, one_hot):
    """Data in Nielsen's format: a list of (x column, y column or int label)."""
    pairs = []
    for x, label in zip(X, labels):
        y = np.eye(n_out)[label].reshape(-1, 1) if one_hot else int(label)
        pairs.append((x.reshape(-1, 1), y))
    return pairs


def test_default_network_is_nielsens():
    net = engine.Network([784, 30, 10], seed=5)
    assert (net.activation, net.output, net.cost, net.init) == (
        "sigmoid", "sigmoid", "quadratic", "standard_normal")
    assert net.dtype == np.float64 and net.backend == "numba" and net.num_layers == 3
    # network.py draws biases, then weights, from N(0, 1), layer by layer.
    rng = np.random.default_rng(5)
    biases = [rng.standard_normal((n, 1)) for n in (30, 10)]
    weights = [rng.standard_normal((n, m)) for m, n in ((784, 30), (30, 10))]
    for got, want in zip(net.biases + net.weights, biases + weights):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("init,w_std,zero_bias", [
    ("standard_normal", lambda i, o: 1.0, False),
    ("lecun_normal", lambda i, o: np.sqrt(1 / i), False),
    ("glorot_normal", lambda i, o: np.sqrt(2 / (i + o)), True),
    ("glorot_uniform", lambda i, o: np.sqrt(2 / (i + o)), True),
    ("he_normal", lambda i, o: np.sqrt(2 / i), True),
    ("he_uniform", lambda i, o: np.sqrt(2 / i), True),
])
def test_initialisation_statistics(init, w_std, zero_bias):
    net = engine.Network([400, 300, 10], init=init, seed=0)
    w = net.weights[0]
    # 120,000 draws: the sample std is within 1% of the target with overwhelming probability.
    assert w.std() == pytest.approx(w_std(400, 300), rel=0.01)
    assert abs(w.mean()) < 0.01 * w_std(400, 300) * 3
    if init.endswith("uniform"):
        assert np.abs(w).max() <= np.sqrt(3) * w_std(400, 300)
    assert (np.all(net.biases[0] == 0)) == zero_bias


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_trained_weights(backend):
    X, y = make_classification(120, 5, 3, seed=0)
    nets = [engine.Network([5, 4, 3], backend=backend, seed=42) for _ in range(2)]
    for net in nets:
        net.fit(X, y, epochs=3, batch_size=7, lr=0.5)
    np.testing.assert_array_equal(nets[0]._params, nets[1]._params)
    other = engine.Network([5, 4, 3], backend=backend, seed=43)
    other.fit(X, y, epochs=3, batch_size=7, lr=0.5)
    assert not np.array_equal(other._params, nets[0]._params)


def test_backprop_shapes_and_single_sample_semantics():
    net = engine.Network([4, 3, 2], seed=1)
    x, y = np.arange(4.0).reshape(4, 1) / 4, np.array([[0.0], [1.0]])
    nabla_b, nabla_w = net.backprop(x, y)
    assert [b.shape for b in nabla_b] == [(3, 1), (2, 1)]
    assert [w.shape for w in nabla_w] == [(3, 4), (2, 3)]
    # an integer label means the same as its one-hot column
    label_b, label_w = net.backprop(x, 1)
    for a, b in zip(nabla_b + nabla_w, label_b + label_w):
        np.testing.assert_array_equal(a, b)
    # A gradient step along -nabla lowers the cost of that sample.
    before = 0.5 * np.sum((net.feedforward(x) - y) ** 2)
    net.weights = [w - 0.1 * nw for w, nw in zip(net.weights, nabla_w)]
    net.biases = [b - 0.1 * nb for b, nb in zip(net.biases, nabla_b)]
    assert 0.5 * np.sum((net.feedforward(x) - y) ** 2) < before


def test_update_mini_batch_is_one_step_of_the_seeds_rule():
    X, y = make_classification(6, 3, 2, seed=2)
    pairs = nielsen_pairs(X, y, 2, one_hot=True)
    net = engine.Network([3, 4, 2], seed=3)
    expected_w = [w.copy() for w in net.weights]
    expected_b = [b.copy() for b in net.biases]
    grads = [net.backprop(x, t) for x, t in pairs]
    for layer in range(2):
        expected_w[layer] -= (0.7 / 6) * sum(g[1][layer] for g in grads)
        expected_b[layer] -= (0.7 / 6) * sum(g[0][layer] for g in grads)
    net.update_mini_batch(pairs, 0.7)
    for got, want in zip(net.weights + net.biases, expected_w + expected_b):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_sgd_prints_nielsens_lines(capsys):
    X, y = make_classification(50, 4, 3, seed=4)
    net = engine.Network([4, 5, 3], seed=0)
    training = nielsen_pairs(X[:40], y[:40], 3, one_hot=True)
    test = nielsen_pairs(X[40:], y[40:], 3, one_hot=False)
    net.SGD(training, 3, 10, 3.0, test_data=test)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines):
        match = re.fullmatch(rf"Epoch {epoch}: (\d+) / 10", line)
        assert match, line
    assert int(match.group(1)) == net.evaluate(test)
    net.SGD(iter(training), 2, 10, 3.0)  # a one-shot iterator works, as zip() did in Python 2
    assert capsys.readouterr().out.splitlines() == ["Epoch 0 complete", "Epoch 1 complete"]


def test_evaluate_counts_correct_predictions():
    X, y = make_classification(30, 4, 3, seed=6)
    net = engine.Network([4, 5, 3], seed=0)
    predicted = net.predict(X)
    assert net.evaluate(nielsen_pairs(X, y, 3, one_hot=False)) == int(np.sum(predicted == y))
    assert net.evaluate(nielsen_pairs(X, y, 3, one_hot=True)) == int(np.sum(predicted == y))


def test_feedforward_layouts():
    net = engine.Network([3, 4, 2], seed=0)
    X = np.random.default_rng(0).random((5, 3))
    rows = net.predict_proba(X)
    np.testing.assert_allclose(net.feedforward(X.T), rows.T, rtol=1e-15)
    np.testing.assert_allclose(net.feedforward(X[0].reshape(3, 1)), rows[:1].T, rtol=1e-15)
    np.testing.assert_allclose(net.feedforward(X[0]), rows[0], rtol=1e-15)
    with pytest.raises(ValueError, match=r"column vectors of shape \(3, m\)"):
        net.feedforward(np.zeros((5, 4)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_parameters_edited_by_the_user_are_used(backend):
    X, y = make_classification(40, 3, 2, seed=7)
    a = engine.Network([3, 4, 2], backend=backend, seed=1)
    b = engine.Network([3, 4, 2], backend=backend, seed=2)
    # whole-list assignment, element replacement and in-place edits all reach training
    b.weights = [w.copy() for w in a.weights]
    b.biases[0] = a.biases[0].copy()
    b.biases[1][...] = a.biases[1]
    np.testing.assert_array_equal(b.predict_proba(X), a.predict_proba(X))
    a.fit(X, y, epochs=2, batch_size=5, lr=0.3, shuffle=False)
    b.fit(X, y, epochs=2, batch_size=5, lr=0.3, shuffle=False)
    np.testing.assert_array_equal(a._params, b._params)
    # the views users hold see the training
    held = a.weights[0]
    a.fit(X, y, epochs=1, batch_size=5, lr=0.3)
    assert held is a.weights[0] and not np.array_equal(held, b.weights[0])


def test_fit_without_shuffle_uses_batches_in_order():
    X, y = make_classification(9, 3, 2, seed=8)
    net = engine.Network([3, 2, 2], backend="numba", seed=0)
    manual = engine.Network([3, 2, 2], backend="numpy", seed=0)
    net.fit(X, y, epochs=1, batch_size=4, lr=1.0, shuffle=False)
    eye = np.eye(2)
    for rows in (slice(0, 4), slice(4, 8), slice(8, 9)):
        manual.update_mini_batch(list(zip(X[rows], eye[y[rows]])), 1.0)
    np.testing.assert_allclose(net._params, manual._params, rtol=1e-12)


def test_history_and_validation():
    X, y = make_classification(200, 4, 3, seed=9)
    net = engine.Network([4, 8, 3], output="softmax", cost="cross_entropy",
                         init="lecun_normal", seed=0)
    history = net.fit(X[:150], y[:150], epochs=4, batch_size=10, lr=0.5,
                      validation_data=(X[150:], y[150:]))
    assert set(history) == {"loss", "val_loss", "val_accuracy"}
    assert all(len(v) == 4 for v in history.values())
    assert history["val_accuracy"][-1] == pytest.approx(net.score(X[150:], y[150:]))
    probs = net.predict_proba(X[150:])
    expected_loss = np.mean(-np.log(probs[np.arange(50), y[150:]]))
    assert history["val_loss"][-1] == pytest.approx(expected_loss, rel=1e-10)
    assert net.history is history


def test_regression_predict_and_r2():
    rng = np.random.default_rng(10)
    X = rng.random((300, 2))
    y = X @ np.array([1.5, -2.0]) + 0.3
    net = engine.Network([2, 1], activation="identity", init="glorot_uniform", seed=0)
    net.fit(X, y, epochs=200, batch_size=10, lr=0.1)
    assert net.predict(X).shape == (300,)
    assert net.score(X, y) > 0.999
    np.testing.assert_allclose(net.weights[0], [[1.5, -2.0]], atol=1e-2)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_dtype_is_kept_end_to_end(dtype, backend):
    net = engine.Network([3, 4, 2], dtype=dtype, backend=backend, seed=0)
    X, y = make_classification(20, 3, 2, seed=11)
    net.fit(X.astype(np.float64), y, epochs=1, batch_size=5, lr=0.1)
    assert net._params.dtype == dtype
    assert all(w.dtype == dtype for w in net.weights + net.biases)
    assert net.predict_proba(X).dtype == dtype
    assert all(g.dtype == dtype for part in net.backprop(X[0], 1) for g in part)


@pytest.mark.parametrize("kwargs,message", [
    (dict(activation="softplus"), r"activation must be one of 'sigmoid', 'tanh', 'relu', 'identity'; got 'softplus'"),
    (dict(output="logistic"), r"output must be one of .*'softmax'"),
    (dict(cost="mse"), r"cost must be one of 'quadratic', 'cross_entropy'"),
    (dict(init="xavier"), r"init must be one of .*'he_uniform'"),
    (dict(dtype="int32"), r"dtype must be one of 'float64', 'float32'"),
    (dict(backend="gpu"), r"backend must be one of 'numpy', 'numba', 'numba-parallel', 'cuda'"),
    (dict(output="relu", cost="cross_entropy"), r"cross_entropy.*'sigmoid' or 'softmax'.*relu"),
    (dict(output="identity", cost="cross_entropy"), r"cross_entropy.*identity"),
])
def test_bad_configuration_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        engine.Network([3, 4, 2], **kwargs)


@pytest.mark.parametrize("sizes,message", [
    ([3], "at least an input and an output layer"),
    ([3, 0, 2], r"sizes\[1\] must be a positive integer"),
    ([3, -4, 2], r"sizes\[1\] must be a positive integer"),
    ([3, 2.5, 2], r"sizes\[1\] must be a positive integer"),
])
def test_bad_sizes_are_named(sizes, message):
    with pytest.raises(ValueError, match=message):
        engine.Network(sizes)


def test_softmax_needs_two_outputs():
    with pytest.raises(ValueError, match="at least 2 output units"):
        engine.Network([3, 1], output="softmax")


@pytest.mark.parametrize("X,y,exc,message", [
    (np.zeros((5, 4)), np.zeros(5, int), ValueError, "X has 4 features but the network's input layer has 3"),
    (np.zeros(3), np.zeros(1, int), ValueError, r"X must be 2-D .*got shape \(3,\)"),
    (np.zeros((0, 3)), np.zeros(0, int), ValueError, "X is empty"),
    (np.zeros((5, 3)), np.zeros(4, int), ValueError, "y has 4 samples but X has 5"),
    (np.full((5, 3), np.nan), np.zeros(5, int), ValueError, "X contains 15 NaN or infinite"),
    (np.zeros((5, 3)), np.array([0, 1, 2, 0, 1]), ValueError, r"labels, which must lie in 0..1 .* got 2"),
    (np.zeros((5, 3)), np.array([0, 1, -1, 0, 1]), ValueError, r"must lie in 0..1 .* got -1"),
    (np.zeros((5, 3)), np.array([0, 0.5, 1, 0, 1]), ValueError, "whole numbers"),
    (np.zeros((5, 3)), np.zeros((5, 3)), ValueError, r"targets of shape \(5, 2\); got shape \(5, 3\)"),
    (np.array([["a"] * 3] * 5), np.zeros(5, int), TypeError, "X must be a numeric array; got dtype <U1"),
    (np.zeros((5, 3), dtype=object), np.zeros(5, int), TypeError, "X must be a numeric array; got dtype object"),
])
def test_bad_training_data_is_named(X, y, exc, message):
    net = engine.Network([3, 4, 2], seed=0)
    with pytest.raises(exc, match=message):
        net.fit(X, y)


@pytest.mark.parametrize("kwargs,exc,message", [
    (dict(epochs=0), ValueError, "epochs must be a positive integer; got 0"),
    (dict(epochs=1.5), TypeError, "epochs must be a positive integer"),
    (dict(batch_size=-1), ValueError, "batch_size must be a positive integer; got -1"),
    (dict(lr=0), ValueError, "lr must be a positive finite number; got 0"),
    (dict(lr=float("nan")), ValueError, "lr must be a positive finite number"),
])
def test_bad_hyperparameters_are_named(kwargs, exc, message):
    net = engine.Network([3, 4, 2], seed=0)
    X, y = make_classification(10, 3, 2, seed=0)
    with pytest.raises(exc, match=message):
        net.fit(X, y, **kwargs)


def test_awkward_but_valid_arrays_are_accepted():
    X, y = make_classification(40, 3, 2, seed=12)
    net = engine.Network([3, 4, 2], seed=0)
    expected = net.predict_proba(X)
    np.testing.assert_array_equal(net.predict_proba(X.astype(">f8")), expected)
    np.testing.assert_array_equal(net.predict_proba(np.asfortranarray(X)), expected)
    wide = np.zeros((40, 6))
    wide[:, ::2] = X
    np.testing.assert_array_equal(net.predict_proba(wide[:, ::2]), expected)
    net.fit(X.astype(np.float32), y.astype(np.int8), epochs=1)


def test_weight_assignment_is_checked():
    net = engine.Network([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match=r"weights\[1\] must have shape \(2, 4\); got \(4, 2\)"):
        net.weights = [np.zeros((4, 3)), np.zeros((4, 2))]
    with pytest.raises(ValueError, match="weights needs 2 arrays"):
        net.weights = [np.zeros((4, 3))]
    net.weights[0] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"weights\[0\] must have shape \(4, 3\)"):
        net.predict_proba(np.zeros((1, 3)))

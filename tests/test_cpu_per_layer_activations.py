"""A different activation per hidden layer (``Network(activation=[...])``), on every CPU
backend against the NumPy oracle, and the oracle itself against finite differences.

The kernels read each layer's activation code from their layout array (``kernels.cpu.working_layout``,
row ``ACT``) inside the one compiled epoch. Tolerances as in test_cpu_oracle_agreement.py:
float64 parameters after an epoch of 100+ mini-batches 1e-10 relative (only the summation
order differs; rounding carried over a contractive map stays near 1e-15), float32 1e-4;
forward passes 1e-12 / 1e-5. Serial and parallel twins agree bit for bit.
"""

import numpy as np
import pytest

import engine
from engine import oracle
from engine.kernels import codes, cpu
from conftest import assert_matches_central_differences, relative_error, targets_for

RTOL_EPOCH = {"float64": 1e-10, "float32": 1e-4}
RTOL_STEP = {"float64": 1e-12, "float32": 1e-5}
SIZES = [9, 8, 7, 6, 3]
MIXED = ["relu", "tanh", "sigmoid"]


def task(n=240, n_in=9, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    X[rng.random(X.shape) < 0.3] = 0.0  # some zeros: the index-list path runs too
    return X, rng.integers(0, n_out, n)


def networks(backends, activation=MIXED, dtype="float64", **kwargs):
    kwargs = dict(dict(output="softmax", cost="cross_entropy", init="lecun_normal"), **kwargs)
    return [engine.Network(SIZES, activation=activation, dtype=dtype, backend=b, seed=4,
                           **kwargs) for b in backends]


@pytest.fixture
def forced_threads(request, threaded):
    """numba-parallel with threads for every step, weights in panels: the thresholds that
    keep small networks serial are forced to zero, and Numba's workers must have run
    (conftest.threaded). A test without a backend parameter runs numba-parallel too."""
    params = getattr(request.node, "callspec", None)
    with threaded(params.params.get("backend", "numba-parallel") if params else
                  "numba-parallel"):
        yield


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("features", [{}, dict(optimizer="adam", dropout=[0.2, 0.0, 0.3]),
                                      dict(optimizer="nesterov", l2=0.5)],
                         ids=["sgd", "adam-dropout", "nesterov-l2"])
def test_epoch_with_per_layer_activations_matches_oracle(forced_threads, dtype, features):
    X, y = task()
    nets = networks(("numpy", "numba", "numba-parallel"), dtype=dtype)
    for net in nets:
        net.fit(X, y, epochs=1, batch_size=6, lr=0.05, **features)
    lay = nets[2]._backend._working_layout(nets[2])[0]
    assert list(lay[cpu.ACT, 1:]) == [codes.RELU, codes.TANH, codes.SIGMOID, codes.SOFTMAX]
    oracle_params = nets[0]._params
    assert relative_error(nets[1]._params, oracle_params) <= RTOL_EPOCH[dtype]
    np.testing.assert_array_equal(nets[2]._params, nets[1]._params)
    expected = nets[0].predict_proba(X)
    for net in nets[1:]:
        assert relative_error(net.predict_proba(X), expected) <= RTOL_EPOCH[dtype]


@pytest.mark.parametrize("backend", ["numba", "numba-parallel"])
def test_batch_norm_applies_each_layers_own_activation(forced_threads, backend):
    """A batch-normalised layer normalises first, then applies its own activation: in
    training (batch statistics) and in prediction (running statistics)."""
    X, y = task()
    nets = networks(("numpy", backend), activation=["tanh", "relu", "sigmoid"],
                    batch_norm=[True, False, True])
    for net in nets:
        net.fit(X, y, epochs=1, batch_size=8, lr=0.05, optimizer="momentum")
    assert relative_error(nets[1]._params, nets[0]._params) <= RTOL_EPOCH["float64"]
    assert relative_error(nets[1]._bn_running, nets[0]._bn_running) <= RTOL_EPOCH["float64"]
    assert relative_error(nets[1].predict_proba(X), nets[0].predict_proba(X)) <= 1e-10


@pytest.mark.parametrize("backend", ["numba", "numba-parallel"])
@pytest.mark.parametrize("output,cost", [("identity", "quadratic"), ("sigmoid", "quadratic"),
                                         ("sigmoid", "cross_entropy")])
def test_gradient_and_forward_with_per_layer_activations_match_oracle(forced_threads, backend,
                                                                      output, cost):
    X, labels = task(n=37)
    y = targets_for(output, labels, 3, np.random.default_rng(1))
    nets = networks(("numpy", backend), activation=["identity", "sigmoid", "relu"],
                    output=output, cost=cost)
    for net in nets:
        net._task = "regression"
    for got, want in zip(nets[1].backprop(X[0], y[0]), nets[0].backprop(X[0], y[0])):
        for g, w in zip(got, want):
            assert relative_error(g, w) <= RTOL_STEP["float64"]
    assert relative_error(nets[1].predict_proba(X), nets[0].predict_proba(X)) <= 1e-12


def test_the_oracle_uses_each_layers_activation_in_backprop():
    """The oracle's per-layer gradients against central finite differences (tolerance as
    in test_oracle_gradients.py: 1e-6 of the gradient's scale, h = 1e-6)."""
    rng = np.random.default_rng(3)
    sizes, hidden = [4, 5, 3, 4, 2], ["tanh", "relu", "sigmoid"]
    weights = [rng.normal(0, 0.8, (n, m)) for m, n in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(0, 0.5, (n, 1)) for n in sizes[1:]]
    X, Y = rng.normal(size=(3, 4)), rng.random((3, 2))

    def summed_cost():
        acts, z = oracle.forward(weights, biases, X, hidden, "identity")
        return oracle.sample_costs(acts[-1], z, Y, "quadratic", "identity").sum()

    nabla_b, nabla_w, _ = oracle.backprop(weights, biases, X, Y, hidden, "identity",
                                          "quadratic")
    for analytic, params in ((nabla_w, weights), (nabla_b, biases)):
        for grad, p in zip(analytic, params):
            assert_matches_central_differences(grad, p, summed_cost)


def test_a_list_of_equal_activations_is_the_uniform_network():
    X, y = task()
    uniform = engine.Network(SIZES, activation="tanh", output="softmax", backend="numba",
                             cost="cross_entropy", seed=2)
    listed = engine.Network(SIZES, activation=["tanh"] * 3, output="softmax",
                            backend="numba", cost="cross_entropy", seed=2)
    for net in (uniform, listed):
        net.fit(X, y, epochs=1, batch_size=10, lr=0.1)
    np.testing.assert_array_equal(listed._params, uniform._params)


def test_per_layer_activations_survive_save_and_load(tmp_path):
    X, y = task()
    net = networks(("numba",))[0]
    net.fit(X, y, epochs=1, batch_size=10, lr=0.1)
    loaded = engine.load(net.save(tmp_path / "mixed.npz"))
    assert loaded.activation == tuple(MIXED)
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


@pytest.mark.parametrize("activation,error,match", [
    (["relu", "tanh"], ValueError, r"one name per hidden layer \(3\); got 2"),
    (["relu", "tanh", "softmax"], ValueError, r"activation\[2\] must be one of"),
    (["relu", "tanh", "swish"], ValueError, r"activation\[2\] must be one of"),
    (3, TypeError, "a name or a list of 3 names"),
])
def test_bad_activation_lists_are_refused_by_name(activation, error, match):
    with pytest.raises(error, match=match):
        engine.Network(SIZES, activation=activation, output="softmax")


def test_a_list_needs_an_explicit_output():
    with pytest.raises(ValueError, match="output must be given"):
        engine.Network(SIZES, activation=MIXED)


def test_cuda_refuses_per_layer_activations_by_name():
    pytest.importorskip("numba_cuda")
    from engine._backends.cuda import CudaBackend

    net = networks(("numpy",))[0]
    with pytest.raises(ValueError, match="one activation for every hidden layer"):
        CudaBackend._refuse_unsupported(None, net)

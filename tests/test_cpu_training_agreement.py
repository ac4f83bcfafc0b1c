"""Training features in the compiled kernels against the NumPy oracle, at fixed seeds.

Twin networks (one seed: identical parameters and generator) run the same fit on the oracle
(``backend="numpy"``) and a compiled backend. Dropout masks come from the network's
generator in Python and reach both backends, so the runs are the same computation.

Tolerances (see test_cpu_oracle_agreement.py for the reasoning):
* float64: 1e-10 relative for parameters, optimiser memory and running statistics after
  two epochs (~90 mini-batches). Both sides evaluate the same formulas in the same order
  except for the summation order inside dot products and the kernels' fused multiply-adds,
  a few ulps per step; the adaptive rules divide by √v + ε, which can magnify a rounding
  difference in g by at most |g|/(√v + ε) ≲ 1/(1 − β) and keeps them far below 1e-10.
* float32: 1e-4 relative (ε ≈ 6e-8, carried the same way).

``numba-parallel`` runs with every step threaded (fixture ``threaded``): these networks are
too small to reach the thresholds from which it starts threads.
"""

import numpy as np
import pytest

import engine
from engine import training
from conftest import assert_close_relative as close, make_classification

COMPILED = ["numba", "numba-parallel"]
RTOL = {"float64": 1e-10, "float32": 1e-4}
LR = {"sgd": 0.5, "momentum": 0.1, "nesterov": 0.1, "adagrad": 0.05, "rmsprop": 0.01,
      "adam": 0.01, "velocity": 0.1, "velocity_nesterov": 0.1, "adam_folded": 0.01,
      "rmsprop_eps_inside": 0.01, "adagrad_eps_inside": 0.05}


def twins(backend, sizes, dtype="float64", seed=11, **kwargs):
    kwargs = dict(dict(activation="tanh", output="softmax", cost="cross_entropy",
                       init="lecun_normal", dtype=dtype, seed=seed), **kwargs)
    return (engine.Network(sizes, backend="numpy", **kwargs),
            engine.Network(sizes, backend=backend, **kwargs))


def assert_twins_agree(oracle_net, fast_net, rtol, h_oracle=None, h_fast=None):
    close(fast_net._params, oracle_net._params, rtol)
    close(fast_net._bn_running, oracle_net._bn_running, rtol)
    assert fast_net._opt_name == oracle_net._opt_name
    assert fast_net._opt_step[0] == oracle_net._opt_step[0]
    close(fast_net._opt_slots, oracle_net._opt_slots, rtol)
    if h_oracle is not None:
        assert set(h_fast) == set(h_oracle)
        for key in h_oracle:
            close(np.array(h_fast[key]), np.array(h_oracle[key]), rtol)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("l2", [0.0, 3.0], ids=["no-l2", "l2"])
@pytest.mark.parametrize("optimizer", training.OPTIMIZERS)
def test_optimizers_match_oracle(row_paths, threaded, backend, dtype, l2, optimizer):
    oracle_net, fast_net = twins(backend, [6, 5, 4], dtype)
    X, y = make_classification(310, 6, 4, seed=1)
    fit = dict(epochs=2, batch_size=7, lr=LR[optimizer], optimizer=optimizer, l2=l2)
    histories = [oracle_net.fit(X, y, **fit)]
    with threaded(backend):
        histories.append(fast_net.fit(X, y, **fit))
    assert_twins_agree(oracle_net, fast_net, RTOL[dtype], *histories)
    assert fast_net._opt_step[0] == 2 * 45  # one step per mini-batch (44 full, 1 partial)
    assert fast_net._params.dtype == np.dtype(dtype)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("hidden", ["sigmoid", "relu", "tanh"])
@pytest.mark.parametrize("dropout", [0.3, [0.5, 0.0]], ids=["one rate", "per layer"])
def test_dropout_matches_oracle(row_paths, threaded, backend, hidden, dropout):
    oracle_net, fast_net = twins(backend, [6, 8, 5, 3], activation=hidden, init="he_normal")
    X, y = make_classification(200, 6, 3, seed=2)
    fit = dict(epochs=2, batch_size=9, lr=0.1, dropout=dropout, optimizer="momentum")
    histories = [oracle_net.fit(X, y, **fit)]
    with threaded(backend):
        histories.append(fast_net.fit(X, y, **fit))
    assert_twins_agree(oracle_net, fast_net, RTOL["float64"], *histories)
    close(fast_net.predict_proba(X), oracle_net.predict_proba(X), 1e-12)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch_norm,dropout,optimizer", [
    (True, 0.0, "sgd"),
    (True, 0.0, "adam"),
    ([False, True], 0.2, "momentum"),
    ([True, False], 0.0, "rmsprop"),
])
def test_batch_norm_matches_oracle(row_paths, threaded, backend, dtype, batch_norm, dropout,
                                   optimizer):
    oracle_net, fast_net = twins(backend, [6, 8, 5, 3], dtype, activation="relu",
                                 init="he_normal", batch_norm=batch_norm)
    X, y = make_classification(203, 6, 3, seed=3)  # last batch of 203 % 9 = 5 samples
    X = X * 3 + 1  # off-centre inputs give the normalisation something to do
    fit = dict(epochs=2, batch_size=9, lr=LR[optimizer], dropout=dropout, optimizer=optimizer,
               validation_data=(X[:50], y[:50]))
    histories = [oracle_net.fit(X, y, **fit)]
    with threaded(backend):
        histories.append(fast_net.fit(X, y, **fit))
    assert_twins_agree(oracle_net, fast_net, RTOL[dtype], *histories)
    # training moved the statistics off their start (0, 1) and γ, β off (1, 0)
    assert not np.allclose(fast_net._bn_running[0], 0)
    gamma = fast_net.batch_norm_layers[[bool(f) for f in fast_net.batch_norm].index(True)].gamma
    assert not np.allclose(gamma, 1)
    close(fast_net.predict_proba(X), oracle_net.predict_proba(X),
          {"float64": 1e-10, "float32": 1e-4}[dtype])


@pytest.mark.parametrize("backend", COMPILED)
def test_batch_norm_backprop_gradient_matches_oracle(threaded, backend):
    """``lr == 0`` (``backprop``) gives the training-mode gradient and updates nothing."""
    oracle_net, fast_net = twins(backend, [5, 4, 3], batch_norm=True)
    X, y = make_classification(6, 5, 3, seed=4)
    before = fast_net._params.copy(), fast_net._bn_running.copy()
    labels, targets = engine.network.check.targets(y, 6, 3, np.float64)
    with threaded(backend):
        gradient = fast_net._backend.gradient(fast_net, X, labels, targets)
    for got, want in zip(gradient, oracle_net._backend.gradient(oracle_net, X, labels, targets)):
        for a, b in zip(got, want):
            close(a, b, 1e-12)
    np.testing.assert_array_equal(fast_net._params, before[0])
    np.testing.assert_array_equal(fast_net._bn_running, before[1])


@pytest.mark.parametrize("backend", COMPILED)
def test_chunked_epochs_with_features_equal_one_call(threaded, backend):
    """Progress reporting splits epochs into calls; masks and optimiser steps must not move."""
    nets = [twins(backend, [6, 7, 4], batch_norm=True)[1] for _ in range(2)]
    X, y = make_classification(203, 6, 4, seed=5)
    with threaded(backend):
        opts = training.options(nets[0], optimizer="adam", dropout=0.3)
        whole = training.run(nets[0], X, y, np.empty((0, 4)), 2, 7, 0.01, True, opts)
        opts = training.options(nets[1], optimizer="adam", dropout=0.3)
        chunked = training.run(nets[1], X, y, np.empty((0, 4)), 2, 7, 0.01, True, opts,
                               on_progress=lambda done, n: None)
    np.testing.assert_array_equal(nets[1]._params, nets[0]._params)
    np.testing.assert_array_equal(nets[1]._opt_slots, nets[0]._opt_slots)
    assert chunked["loss"] == pytest.approx(whole["loss"], rel=1e-14)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_training_resumes_exactly_from_saved_state(backend):
    """Two fits of one epoch equal one fit of two, on this network and on a copy rebuilt
    from the arrays save/load stores (parameters, running statistics, optimiser state and
    the generator's state)."""
    X, y = make_classification(120, 5, 3, seed=6)
    kwargs = dict(batch_size=8, lr=0.01, optimizer="adam", dropout=0.2, l2=0.5)
    make = lambda: engine.Network([5, 6, 3], backend=backend, seed=3, batch_norm=True)
    straight, resumed = make(), make()
    straight.fit(X, y, epochs=2, **kwargs)
    resumed.fit(X, y, epochs=1, **kwargs)
    copy = engine.Network([5, 6, 3], backend=backend, seed=99, batch_norm=True)
    copy._params[...] = resumed._params
    copy._bn_running[...] = resumed._bn_running
    copy._set_optimizer_state(resumed._optimizer_state())
    copy.rng.bit_generator.state = resumed.rng.bit_generator.state
    for net in (resumed, copy):
        net.fit(X, y, epochs=1, **kwargs)
        np.testing.assert_array_equal(net._params, straight._params)
        np.testing.assert_array_equal(net._opt_slots, straight._opt_slots)
    state = straight._optimizer_state()
    assert state["optimizer"] == "adam" and state["step"] == 2 * 15
    assert set(state) == {"optimizer", "step", "exp_avg", "exp_avg_sq"}


def test_changing_optimizer_starts_a_fresh_state():
    X, y = make_classification(40, 3, 2, seed=7)
    net = engine.Network([3, 4, 2], seed=0)
    net.fit(X, y, epochs=1, optimizer="momentum")
    assert net._optimizer_state()["step"] == 4
    net.fit(X, y, epochs=1, optimizer="adagrad")
    state = net._optimizer_state()
    assert state["optimizer"] == "adagrad" and state["step"] == 4
    net.reset_optimizer()
    assert net._optimizer_state() == {"optimizer": "sgd", "step": 0}


@pytest.mark.parametrize("backend", COMPILED)
def test_schedules_and_early_stopping_match_oracle(threaded, backend):
    oracle_net, fast_net = twins(backend, [6, 5, 4])
    X, y = make_classification(300, 6, 4, seed=8)
    fit = dict(epochs=6, batch_size=10, lr=0.3,
               lr_schedule=training.StepDecay(step_size=2, gamma=0.5),
               early_stopping=True, patience=2, validation_fraction=0.2)
    histories = [oracle_net.fit(X, y, **fit)]
    with threaded(backend):
        histories.append(fast_net.fit(X, y, **fit))
    assert_twins_agree(oracle_net, fast_net, RTOL["float64"], *histories)
    assert histories[1]["lr"][:4] == [0.3, 0.3, 0.15, 0.15]

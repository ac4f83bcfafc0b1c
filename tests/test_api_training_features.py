"""Training features as a user meets them: schedules, early stopping, monitoring, callbacks,
network2's SGD, argument checking, and one check on real digits that a feature helps."""

import re

import numpy as np
import pytest

import engine
from engine import training
from conftest import make_classification


def small_problem(n=120, seed=0):
    return make_classification(n, 4, 3, seed=seed)


# -- learning-rate schedules ------------------------------------------------------------------


def test_step_decay_and_invscaling_rates_per_epoch():
    X, y = small_problem()
    net = engine.Network([4, 5, 3], seed=0)
    h = net.fit(X, y, epochs=5, lr=0.8, lr_schedule=training.StepDecay(step_size=2, gamma=0.25))
    assert h["lr"] == [0.8, 0.8, 0.2, 0.2, 0.05]
    h = net.fit(X, y, epochs=3, lr=0.8, lr_schedule="invscaling")
    # scikit-learn: after e epochs of n = 120 samples, lr / (e·n + 1)^0.5
    assert h["lr"] == pytest.approx([0.8, 0.8 / 121 ** 0.5, 0.8 / 241 ** 0.5], rel=1e-15)
    assert "lr" not in net.fit(X, y, epochs=1)  # constant rate: nothing to record


def test_the_rate_a_schedule_sets_is_the_rate_used():
    """An epoch at a scheduled rate does what a plain fit at that rate does."""
    X, y = small_problem()
    scheduled = engine.Network([4, 5, 3], seed=1, backend="numpy")
    plain = engine.Network([4, 5, 3], seed=1, backend="numpy")
    scheduled.fit(X, y, epochs=2, lr=0.8, shuffle=False,
                  lr_schedule=training.StepDecay(step_size=1, gamma=0.5))
    plain.fit(X, y, epochs=1, lr=0.8, shuffle=False)
    plain.fit(X, y, epochs=1, lr=0.4, shuffle=False)
    np.testing.assert_array_equal(scheduled._params, plain._params)


def test_reduce_on_plateau_follows_keras():
    sched = training.ReduceOnPlateau(factor=0.5, patience=2, min_delta=0.1, min_lr=0.2)
    assert sched.start(1.0, 100) == 1.0
    history = {"loss": []}
    rates = []
    for value in [5.0, 4.0, 3.95, 3.92, 3.0, 2.99, 2.98, 2.97, 2.96, 2.95, 2.94]:
        history["loss"].append(value)
        rates.append(sched.after_epoch(len(rates), history))
    # improvements (by > 0.1) at 5.0, 4.0, 3.0; two stale epochs halve the rate; floor 0.2
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2]


def test_plateau_schedule_monitors_validation_loss_when_present():
    X, y = small_problem()
    net = engine.Network([4, 5, 3], seed=2)
    h = net.fit(X[:90], y[:90], epochs=6, lr=5.0, validation_data=(X[90:], y[90:]),
                lr_schedule=training.ReduceOnPlateau(factor=0.5, patience=1, min_delta=10.0))
    # min_delta = 10 means no epoch after the first improves: halve after every epoch
    assert h["lr"] == [5.0, 5.0, 2.5, 1.25, 0.625, 0.3125]
    with pytest.raises(ValueError, match="monitors 'val_loss', which this fit does not record"):
        net.fit(X, y, epochs=2, lr_schedule=training.ReduceOnPlateau(monitor="val_loss"))


# -- early stopping ------------------------------------------------------------------------------


class Snapshots:
    """A callback keeping the parameters after every epoch."""

    def __init__(self, net):
        self.net, self.params = net, []

    def on_epoch_end(self, epoch, history):
        self.params.append(self.net._params.copy())


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_early_stopping_restores_the_best_epochs_weights(backend):
    rng = np.random.default_rng(3)
    X = rng.random((60, 4))
    y = rng.integers(0, 3, 60)  # labels unrelated to X: validation loss soon rises
    net = engine.Network([4, 20, 3], output="softmax", cost="cross_entropy", seed=4,
                         backend=backend)
    snaps = Snapshots(net)
    h = net.fit(X, y, epochs=60, batch_size=5, lr=2.0, early_stopping=True, patience=3,
                validation_fraction=0.25, callbacks=[snaps])
    best = int(np.argmin(h["val_loss"]))
    assert net.best_epoch == best
    assert net.stopped_epoch == best + 3 == len(h["loss"]) - 1 < 59
    np.testing.assert_array_equal(net._params, snaps.params[best])
    assert not np.array_equal(net._params, snaps.params[-1])


def test_early_stopping_min_delta_and_held_out_fraction():
    X, y = small_problem(100)
    net = engine.Network([4, 5, 3], seed=5)
    snaps = Snapshots(net)
    h = net.fit(X, y, epochs=20, early_stopping=True, patience=2, min_delta=100.0,
                callbacks=[snaps])
    # only the first epoch improves on +inf by more than 100: stop two epochs later
    assert len(h["loss"]) == 3 and net.best_epoch == 0 and net.stopped_epoch == 2
    np.testing.assert_array_equal(net._params, snaps.params[0])
    # the default hold-out is 10%: validation metrics on 10 samples, so accuracies are tenths
    assert all(round(10 * a, 9) == round(10 * a) for a in h["val_accuracy"])


def test_early_stopping_restores_batch_norm_statistics():
    X, y = small_problem(100)
    net = engine.Network([4, 6, 3], seed=6, batch_norm=True)
    stats = []
    net.fit(X, y, epochs=20, early_stopping=True, patience=2, min_delta=100.0,
            callbacks=[lambda e, h: stats.append(net._bn_running.copy())])
    np.testing.assert_array_equal(net._bn_running, stats[0])
    assert not np.array_equal(stats[0], stats[-1])


# -- monitoring and callbacks ----------------------------------------------------------------------


def test_network2_monitoring_flags_in_history():
    X, y = small_problem(150)
    net = engine.Network([4, 6, 3], output="softmax", cost="cross_entropy", seed=7)
    h = net.fit(X[:100], y[:100], epochs=3, lr=0.5, l2=4.0, validation_data=(X[100:], y[100:]),
                monitor_training_cost=True, monitor_training_accuracy=True)
    assert set(h) == {"loss", "val_loss", "val_accuracy", "training_cost", "training_accuracy"}
    assert all(len(v) == 3 for v in h.values())
    # network2's total_cost: mean cross-entropy plus (λ/2n)·Σ‖w‖², n = 100 training samples
    penalty = 0.5 * (4.0 / 100) * sum(np.sum(w ** 2) for w in net.weights)
    probs = net.predict_proba(X)
    ce = -np.log(probs[np.arange(150), y])
    assert h["training_cost"][-1] == pytest.approx(ce[:100].mean() + penalty, rel=1e-12)
    assert h["val_loss"][-1] == pytest.approx(ce[100:].mean() + penalty, rel=1e-12)
    assert h["training_accuracy"][-1] == net.score(X[:100], y[:100])
    assert h["val_accuracy"][-1] == net.score(X[100:], y[100:])


def test_callbacks_see_the_history_and_can_stop_training():
    X, y = small_problem()
    net = engine.Network([4, 5, 3], seed=8)
    seen = []

    class StopAfterThird:
        def on_epoch_end(self, epoch, history):
            seen.append((epoch, len(history["loss"])))
            return epoch == 2

    h = net.fit(X, y, epochs=10, callbacks=[StopAfterThird(), lambda e, hist: None])
    assert seen == [(0, 1), (1, 2), (2, 3)] and len(h["loss"]) == 3
    h = net.fit(X, y, epochs=10, callbacks=lambda e, hist: hist["loss"][-1] < 10)
    assert len(h["loss"]) == 1  # a single callable is accepted too


def test_validation_fraction_holds_out_samples_from_the_generator():
    X, y = small_problem(100)
    a, b = (engine.Network([4, 5, 3], seed=9) for _ in range(2))
    ha = a.fit(X, y, epochs=2, validation_fraction=0.3)
    hb = b.fit(X, y, epochs=2, validation_fraction=0.3)
    assert ha == hb and len(ha["val_loss"]) == 2
    np.testing.assert_array_equal(a._params, b._params)
    with pytest.raises(ValueError, match="validation_data or validation_fraction, not both"):
        a.fit(X, y, validation_data=(X, y), validation_fraction=0.2)
    with pytest.raises(ValueError, match="leaves 2 for training and 0 for validation"):
        a.fit(X[:2], y[:2], validation_fraction=0.2)


def test_verbose_prints_every_recorded_value(capsys):
    X, y = small_problem()
    net = engine.Network([4, 5, 3], seed=10)
    net.fit(X, y, epochs=2, verbose=1, lr_schedule="step", validation_fraction=0.25)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"Epoch 2/2 - loss: \d\.\d{4} - lr: 0\.1 - val_loss: \d\.\d{4} - "
                        r"val_accuracy: \d\.\d{4}", lines[1]), lines[1]


# -- Nielsen's API with network2's options --------------------------------------------------------


def _pairs(X, y, n_out, one_hot):
    return [(x.reshape(-1, 1), np.eye(n_out)[t].reshape(-1, 1) if one_hot else int(t))
            for x, t in zip(X, y)]


def test_sgd_with_network2_lmbda_and_monitoring(capsys):
    X, y = small_problem(80)
    net = engine.Network([4, 6, 3], cost="cross_entropy", init="lecun_normal", seed=11)
    twin = engine.Network([4, 6, 3], cost="cross_entropy", init="lecun_normal", seed=11)
    result = net.SGD(_pairs(X[:60], y[:60], 3, True), 2, 10, 0.5, lmbda=5.0,
                     evaluation_data=_pairs(X[60:], y[60:], 3, False),
                     monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                     monitor_training_cost=True, monitor_training_accuracy=True)
    ev_cost, ev_acc, tr_cost, tr_acc = result
    assert len(ev_cost) == len(ev_acc) == len(tr_cost) == len(tr_acc) == 2
    assert ev_acc[-1] == net.evaluate(_pairs(X[60:], y[60:], 3, False))
    assert tr_acc[-1] == net.evaluate(_pairs(X[:60], y[:60], 3, False))
    out = capsys.readouterr().out.splitlines()
    assert out[:5] == ["Epoch 0 training complete", f"Cost on training data: {tr_cost[0]}",
                       f"Accuracy on training data: {tr_acc[0]} / 60",
                       f"Cost on evaluation data: {ev_cost[0]}",
                       f"Accuracy on evaluation data: {ev_acc[0]} / 20"]
    # the same training through fit: network2's L2 step with n = 60
    twin.fit(X[:60], y[:60], epochs=2, batch_size=10, lr=0.5, l2=5.0)
    np.testing.assert_array_equal(net._params, twin._params)


def test_update_mini_batch_with_network2_l2():
    X, y = small_problem(8)
    pairs = _pairs(X, y, 3, True)
    net = engine.Network([4, 5, 3], seed=12)
    w = [a.copy() for a in net.weights]
    b = [a.copy() for a in net.biases]
    grads = [net.backprop(x, t) for x, t in pairs]
    net.update_mini_batch(pairs, 0.6, lmbda=2.0, n=40)
    for layer in range(2):
        nw = sum(g[1][layer] for g in grads)
        nb = sum(g[0][layer] for g in grads)
        np.testing.assert_allclose(net.weights[layer],
                                   (1 - 0.6 * 2.0 / 40) * w[layer] - (0.6 / 8) * nw, rtol=1e-12)
        np.testing.assert_allclose(net.biases[layer], b[layer] - (0.6 / 8) * nb, rtol=1e-12)


def test_sgd_accepts_optimizer_options_and_rejects_others():
    X, y = small_problem(30)
    net = engine.Network([4, 5, 3], seed=13)
    net.SGD(_pairs(X, y, 3, True), 1, 10, 0.1, optimizer="adam", dropout=0.2)
    assert net._optimizer_state()["optimizer"] == "adam"
    with pytest.raises(TypeError, match="unexpected argument 'patience'.*optimizer, momentum"):
        net.SGD(_pairs(X, y, 3, True), 1, 10, 0.1, patience=3)


# -- argument checking -------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,exc,message", [
    (dict(optimizer="adamw"), ValueError,
     "optimizer must be one of 'sgd', 'momentum', 'nesterov', 'adagrad', 'rmsprop', 'adam', "
     "'velocity', 'velocity_nesterov', 'adam_folded', 'rmsprop_eps_inside', "
     "'adagrad_eps_inside'; got 'adamw'"),
    (dict(momentum=0.9), ValueError, "momentum applies to optimizer='momentum' or 'nesterov'"),
    (dict(optimizer="adam", rho=0.9), ValueError, "rho applies to optimizer='rmsprop'"),
    (dict(optimizer="momentum", momentum=1.0), ValueError, r"momentum must lie in \[0, 1\)"),
    (dict(optimizer="adam", beta2="high"), TypeError, "beta2 must be a number"),
    (dict(optimizer="adam", eps=0), ValueError, "eps must be a positive finite number"),
    (dict(l2=-1), ValueError, "l2 must be a non-negative finite number; got -1"),
    (dict(dropout=1.0), ValueError, r"dropout must be a rate p with 0 <= p < 1 .*got 1.0"),
    (dict(dropout=[0.1, 0.2]), ValueError, r"one rate per hidden layer \(1\); got 2"),
    (dict(dropout=[1.5]), ValueError, r"dropout\[0\] must be a rate"),
    (dict(dropout="half"), TypeError, "dropout must be a rate in"),
    (dict(lr_schedule="cosine"), ValueError,
     "lr_schedule must be one of 'constant', 'step', 'invscaling', 'plateau', 'adaptive'"),
    (dict(lr_schedule=3), TypeError, "lr_schedule must be one of"),
    (dict(early_stopping="yes"), TypeError, "early_stopping must be True or False"),
    (dict(patience=0), ValueError, "patience must be a positive integer; got 0"),
    (dict(min_delta=-0.1), ValueError, "min_delta must be a non-negative"),
    (dict(validation_fraction=1.0), ValueError, "validation_fraction must lie strictly between"),
    (dict(monitor_training_cost=1), TypeError, "monitor_training_cost must be True or False"),
    (dict(callbacks=[42]), TypeError, r"callbacks\[0\] must have an on_epoch_end"),
])
def test_bad_training_options_are_named(kwargs, exc, message):
    net = engine.Network([3, 4, 2], seed=0)
    X, y = make_classification(10, 3, 2, seed=0)
    before = net._params.copy(), net.rng.bit_generator.state
    with pytest.raises(exc, match=message):
        net.fit(X, y, **kwargs)
    np.testing.assert_array_equal(net._params, before[0])  # checked before any training
    assert net.rng.bit_generator.state == before[1]


@pytest.mark.parametrize("kwargs,exc,message", [
    (dict(factor=1.5), ValueError, "factor must be below 1"),
    (dict(patience=-1), ValueError, "patience must be a positive integer"),
    (dict(monitor="accuracy"), ValueError, "monitor must be one of 'loss', 'val_loss'"),
])
def test_bad_schedule_settings_are_named(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        training.ReduceOnPlateau(**kwargs)


@pytest.mark.parametrize("value,exc", [("yes", TypeError), ([True], ValueError),
                                       ([True, 1], ValueError)])
def test_bad_batch_norm_flags_are_named(value, exc):
    with pytest.raises(exc, match="batch_norm must be True, False or a list of 2 booleans"):
        engine.Network([3, 4, 4, 2], batch_norm=value)


def test_batch_norm_needs_batches_of_two():
    net = engine.Network([3, 4, 2], batch_norm=True)
    X, y = make_classification(10, 3, 2, seed=0)
    state = net.rng.bit_generator.state
    with pytest.raises(ValueError, match="batch_size must be at least 2 with batch norm"):
        net.fit(X, y, batch_size=1, validation_fraction=0.2)
    assert net.rng.bit_generator.state == state  # refused before any draw


def test_a_backend_without_a_feature_refuses_it():
    """The contract for other backends (e.g. CUDA): list what you support in ``features``."""

    class SeedsOnly(type(engine.Network([2, 1])._backend)):
        features = ()

    net = engine.Network([3, 4, 2], seed=0)
    net._backend = SeedsOnly()
    net._backend.name = "seeds-only"
    X, y = make_classification(10, 3, 2, seed=0)
    net.fit(X, y)  # plain SGD is fine
    with pytest.raises(ValueError, match="'seeds-only' does not support dropout, "
                                         "optimizer='adam'"):
        net.fit(X, y, optimizer="adam", dropout=0.5)
    normalised = engine.Network([3, 4, 2], seed=0, batch_norm=True)
    normalised._backend = net._backend
    with pytest.raises(ValueError, match="'seeds-only' does not support batch_norm"):
        normalised.fit(X, y)


# -- a feature that helps, on real digits -------------------------------------------------------------


def test_momentum_and_adam_reach_92_percent_in_fewer_epochs_than_sgd(mnist_test_set):
    """[784, 100, 10] ReLU/softmax on 8,000 real digits, validated on 2,000: plain SGD at
    lr 0.01 needs more than 4 epochs to reach 92% (about 7 at this seed); momentum at the
    same lr, and Adam at its usual 1e-3, get there within 2."""
    X, y = mnist_test_set
    data = dict(validation_data=(X[8000:], y[8000:]), batch_size=32)

    def epochs_to_target(max_epochs, **kwargs):
        net = engine.Network([784, 100, 10], activation="relu", output="softmax",
                             cost="cross_entropy", init="he_normal", seed=0)
        h = net.fit(X[:8000], y[:8000], epochs=max_epochs,
                    callbacks=[lambda e, hist: hist["val_accuracy"][-1] >= 0.92],
                    **data, **kwargs)
        reached = [i for i, a in enumerate(h["val_accuracy"]) if a >= 0.92]
        return reached[0] + 1 if reached else np.inf

    assert epochs_to_target(4, lr=0.01) == np.inf  # plain SGD: more than 4 epochs
    assert epochs_to_target(2, lr=0.01, optimizer="momentum") <= 2
    assert epochs_to_target(2, lr=0.001, optimizer="adam") <= 2

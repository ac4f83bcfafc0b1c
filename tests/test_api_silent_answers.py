"""No silent wrong answers: what cannot be computed raises an error that says why, instead of
handing back NaN, a label taken from NaN, or a number that means something else."""

import numpy as np
import pytest

import engine
from engine import cli
from conftest import make_classification

BACKENDS = ["numpy", "numba", "numba-parallel", "cuda"]


def _network(backend, **kwargs):
    if backend == "cuda" and engine.backends()["cuda"] is not True:
        pytest.skip(f"backend 'cuda' unavailable: {engine.backends()['cuda']}")
    return engine.Network([4, 8, 3], activation="relu", output="softmax",
                          cost="cross_entropy", backend=backend, seed=0, **kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_finite_inputs_that_overflow_raise_on_every_backend(backend):
    net = _network(backend)
    X = np.full((2, 4), 1e308)
    X[0] = 0.5  # a good row first: the error names the row that overflowed
    for call in (net.predict, net.predict_proba, lambda X: net.score(X, [0, 1])):
        with pytest.raises(ValueError, match=r"overflowed on row 1 of X.*size of the inputs"):
            call(X)
    big = _network(backend)
    big.weights = [w * 1e307 for w in big.weights]
    with pytest.raises(ValueError, match="size of the parameters"):
        big.predict(np.full((1, 4), 10.0))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", ["edited", "loaded"])
def test_non_finite_parameters_are_refused_naming_the_layer(tmp_path, backend, how):
    X, y = make_classification(10, 4, 3, seed=0)
    net = _network(backend)
    net.weights[1][2, 5] = np.nan
    if how == "loaded":
        net = engine.load(net.save(tmp_path / "m.npz"), backend=backend)
    for call in (lambda: net.predict(X), lambda: net.predict_proba(X),
                 lambda: net.score(X, y),
                 lambda: net.fit(X, y, epochs=1, batch_size=5, lr=0.1),
                 lambda: net.backprop(X[0], y[0])):
        with pytest.raises(ValueError, match=r"weights\[1\] holds 1 NaN or infinite"):
            call()


@pytest.mark.parametrize("rate", [-1.0, 0.0, np.nan, np.inf, "fast", None, True])
def test_a_schedule_that_gives_a_bad_rate_is_refused(rate):
    X, y = make_classification(20, 4, 3, seed=1)

    class Custom(engine.training.Constant):
        def after_epoch(self, epoch, history):
            return 0.1 if epoch == 0 else rate

    net = _network("numpy")
    with pytest.raises(ValueError, match=rf"learning rate {rate!r} for epoch 3"):
        net.fit(X, y, epochs=4, batch_size=5, lr=0.1, lr_schedule=Custom())
    assert len(net.history["loss"]) == 2  # epoch 3 never ran


def test_one_rule_for_what_y_means():
    """Labels, integer one-hot rows and float one-hot rows are the same classification on
    every entry point; other 2-D targets are regression."""
    X, labels = make_classification(30, 4, 3, seed=2)
    one_hot = np.eye(3, dtype=np.int64)[labels]
    runs = {}
    for name, y in (("labels", labels), ("int one-hot", one_hot), ("float one-hot",
                                                                   one_hot.astype(float))):
        net = _network("numpy")
        history = net.fit(X, y, epochs=2, batch_size=5, lr=0.1, validation_data=(X, y))
        assert "val_accuracy" in history and net._task == "classification"
        assert net.score(X, y) == net.score(X, labels)
        runs[name] = net._params
        sgd = _network("numpy")
        sgd.SGD(list(zip(X, y)), 2, 5, 0.1)
        assert sgd._task == "classification"
        np.testing.assert_array_equal(sgd._params, net._params)
    np.testing.assert_array_equal(runs["labels"], runs["int one-hot"])
    np.testing.assert_array_equal(runs["labels"], runs["float one-hot"])
    soft = np.eye(3)[labels] * 0.8 + 0.2 / 3
    net = _network("numpy")
    assert "val_accuracy" not in net.fit(X, soft, epochs=1, validation_data=(X, soft))


@pytest.mark.parametrize("entry", ["fit", "SGD", "evaluate", "score"])
def test_y_that_does_not_fit_the_output_layer_is_refused_everywhere(entry):
    X, labels = make_classification(12, 4, 3, seed=3)
    wide = np.eye(4, dtype=np.int64)[labels]  # one-hot, but 4 columns for 3 outputs
    net = _network("numpy")
    calls = {"fit": lambda y: net.fit(X, y), "SGD": lambda y: net.SGD(list(zip(X, y)), 1, 4, 0.1),
             "evaluate": lambda y: net.evaluate(list(zip(X, y))),
             "score": lambda y: net.score(X, y)}
    with pytest.raises(ValueError, match=r"shape \(12, 3\); got shape \(12, 4\)"):
        calls[entry](wide)
    with pytest.raises(ValueError, match="must lie in 0..2"):
        calls[entry](labels + 1)


def test_evaluate_refuses_float_targets():
    X, labels = make_classification(6, 4, 3, seed=4)
    with pytest.raises(ValueError, match="evaluate counts correct class predictions"):
        _network("numpy").evaluate(list(zip(X, np.full((6, 3), 0.3))))


@pytest.mark.parametrize("rows", [4, 40])
def test_r2_of_constant_targets_does_not_depend_on_the_number_of_rows(rows):
    net = engine.Network([2, 1], activation="identity", backend="numpy", seed=0)
    X = np.zeros((rows, 2))
    exact = net.predict(X)
    assert net.score(X, exact) == 1.0
    assert net.score(X, exact + 0.5) == 0.0


def test_command_line_rows_with_missing_values_and_headers(tmp_path, capsys):
    net = engine.Network([3, 4, 2], backend="numpy", seed=0)
    model = net.save(tmp_path / "m.npz")
    X = np.arange(9.0).reshape(3, 3) / 10
    labels = net.predict(X)
    cases = {
        "header.csv": ("a,b,c\n0,0.1,0.2\n0.3,0.4,0.5\n0.6,0.7,0.8\n", None),
        "plain.csv": ("0,0.1,0.2\n0.3,0.4,0.5\n0.6,0.7,0.8\n", None),
        "first.csv": ("0,,0.2\n0.3,0.4,0.5\n", "line 1, column 2: a missing value"),
        "second.csv": ("a,b,c\n0,0.1,0.2\n0.3,0.4,\n", "line 3, column 3: a missing value"),
        "word.csv": ("0,0.1,0.2\n0.3,x,0.5\n", "line 2, column 2: 'x', not a finite number"),
        "ragged.csv": ("0,0.1,0.2\n0.3,0.4\n", "line 2: 2 values, but the lines above have 3"),
    }
    for name, (text, error) in cases.items():
        (tmp_path / name).write_text(text)
        status = cli.main(["predict", str(model), str(tmp_path / name), "--backend", "numpy"])
        out, err = capsys.readouterr()
        if error is None:
            assert status == 0, err
            assert out.splitlines() == [f"row {i}: {label} (output {net.predict_proba(X)[i, label]:.3f})"
                                        for i, label in enumerate(labels)]
        else:
            assert status == 1 and error in err and len(err.strip().splitlines()) == 1, err

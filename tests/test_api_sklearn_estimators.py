"""engine.MLPClassifier and engine.MLPRegressor against scikit-learn's own MLPs.

Equality (float64): both estimators start from the same ``coefs_`` (assigned, then ``fit``
with ``warm_start=True`` and ``shuffle=False``) and run one epoch of scikit-learn's rules.
They evaluate the same formulas; the engine sums dot products in another order and fuses
multiply-adds, a few ulps per operation, which one epoch of a small, well-conditioned
problem (inputs in [0, 1), weights ~0.3, rates ≤ 0.1) carries to ~1e-15 relative. We
assert 1e-8, the issue's bound, leaving room for the adaptive rules' division by √v + ε.
L-BFGS: ten iterations of SciPy's L-BFGS-B on objectives that agree to ~1e-15; its line
searches can amplify such differences, so the bound is 1e-6.
"""

import copy
import pickle
import warnings

import joblib
import numpy as np
import pytest
from sklearn import neural_network
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import engine
from conftest import relative_error as _relative

BACKENDS = ["numpy", "numba", "numba-parallel"]
RTOL = 1e-8


def _data(kind, n=90, n_in=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, n_in))
    if kind == "multiclass":
        y = rng.integers(0, 3, n)
    elif kind == "binary":
        y = np.where(rng.random(n) < 0.5, "no", "yes")
    elif kind == "multilabel":
        y = (rng.random((n, 3)) < 0.4).astype(int)
    else:
        y = rng.normal(size=(n, 2))
    return X, y




def _assert_same_model(ours, theirs, rtol=RTOL):
    assert len(ours.coefs_) == len(theirs.coefs_)
    for name in ("coefs_", "intercepts_"):
        for layer, (a, b) in enumerate(zip(getattr(ours, name), getattr(theirs, name))):
            assert a.shape == b.shape
            err = _relative(a, b)
            assert err <= rtol, f"{name}[{layer}] differs by {err:.2e} relative"
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=rtol)


def _from_same_start(params, X, y, backend, sample_weight=None, fits=1):
    """Both estimators fitted once (to set them up), given the same starting coefs_, then
    fitted ``fits`` more times with warm_start; returns (ours, theirs)."""
    regression = params.pop("regression", False)
    peer = neural_network.MLPRegressor if regression else neural_network.MLPClassifier
    mine = engine.MLPRegressor if regression else engine.MLPClassifier
    theirs, ours = peer(**params), mine(backend=backend, **params)
    rng = np.random.default_rng(42)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in (theirs, ours):
            est.fit(X, y, sample_weight=sample_weight)
        start = [rng.uniform(-0.3, 0.3, c.shape) for c in theirs.coefs_]
        start_b = [rng.uniform(-0.1, 0.1, b.shape) for b in theirs.intercepts_]
        for est in (theirs, ours):
            est.coefs_ = [c.copy() for c in start]
            est.intercepts_ = [b.copy() for b in start_b]
            est.set_params(warm_start=True)
            for _ in range(fits):
                est.fit(X, y, sample_weight=sample_weight)
    return ours, theirs


CASES = {
    "sgd momentum": ("multiclass", dict(solver="sgd", nesterovs_momentum=False,
                                        learning_rate_init=0.1)),
    "sgd nesterov": ("multiclass", dict(solver="sgd", learning_rate_init=0.1)),
    "adam": ("multiclass", dict(solver="adam", learning_rate_init=0.01)),
    "sample_weight": ("multiclass", dict(solver="adam", learning_rate_init=0.01)),
    "binary": ("binary", dict(solver="sgd", learning_rate_init=0.1, activation="tanh")),
    "multilabel": ("multilabel", dict(solver="adam", learning_rate_init=0.01,
                                      activation="logistic")),
    "regression": ("regression", dict(solver="adam", learning_rate_init=0.01,
                                      regression=True)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_one_epoch_equals_scikit_learn(threaded, backend, case):
    kind, extra = CASES[case]
    X, y = _data(kind)
    weights = None
    if case == "sample_weight":
        weights = np.random.default_rng(1).uniform(0.0, 3.0, X.shape[0])
    params = dict(hidden_layer_sizes=(5, 4), alpha=1e-3, batch_size=16, max_iter=1,
                  shuffle=False, random_state=0, **extra)
    with threaded(backend):
        ours, theirs = _from_same_start(params, X, y, backend, weights)
    _assert_same_model(ours, theirs)
    assert ours.n_iter_ == theirs.n_iter_ == 1 and ours.t_ == theirs.t_
    assert ours.out_activation_ == theirs.out_activation_
    np.testing.assert_allclose(ours.predict_proba(X) if hasattr(ours, "predict_proba")
                               else ours.predict(X),
                               theirs.predict_proba(X) if hasattr(theirs, "predict_proba")
                               else theirs.predict(X), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_partial_fit_keeps_the_optimiser_state_as_scikit_learn(threaded, backend):
    X, y = _data("multiclass")
    params = dict(hidden_layer_sizes=(5,), solver="adam", learning_rate_init=0.01,
                  batch_size=16, random_state=0)
    theirs = neural_network.MLPClassifier(**params)
    ours = engine.MLPClassifier(backend=backend, **params)
    weights = np.random.default_rng(2).uniform(0.5, 2.0, X.shape[0])
    with threaded(backend):
        for est in (theirs, ours):
            for part in range(3):
                rows = slice(30 * part, 30 * part + 30)
                est.partial_fit(X[rows], y[rows], classes=[0, 1, 2],
                                sample_weight=weights[rows])
    _assert_same_model(ours, theirs)
    assert ours.t_ == theirs.t_ == 90 and ours.loss_curve_ == pytest.approx(
        theirs.loss_curve_, rel=RTOL)


@pytest.mark.parametrize("backend", ["numba"])
@pytest.mark.parametrize("params", [
    dict(solver="sgd", learning_rate="invscaling", early_stopping=True),
    dict(solver="sgd", learning_rate="adaptive", n_iter_no_change=2, tol=0.05),
    dict(solver="adam", n_iter_no_change=3, tol=1e-2),
], ids=["invscaling+early stopping", "adaptive", "adam tol"])
def test_epochs_shuffles_and_stopping_follow_scikit_learn(backend, params):
    """Several epochs from the same random_state: the same initial weights, shuffles,
    validation split, rates and stopping epoch."""
    X, y = _data("multiclass", n=120)
    params = dict(hidden_layer_sizes=(6,), batch_size=20, max_iter=25, random_state=3,
                  learning_rate_init=0.05, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = neural_network.MLPClassifier(**params).fit(X, y)
        ours = engine.MLPClassifier(backend=backend, **params).fit(X, y)
    _assert_same_model(ours, theirs)
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_
    assert ours.loss_curve_ == pytest.approx(theirs.loss_curve_, rel=RTOL)
    assert ours.validation_scores_ == theirs.validation_scores_
    assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=RTOL) \
        if theirs.best_loss_ is not None else ours.best_loss_ is None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_lbfgs_ten_iterations_equal_scikit_learn(threaded, backend, kind):
    X, y = _data(kind)
    params = dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=10, alpha=1e-2,
                  random_state=0)
    peer = neural_network.MLPRegressor if kind == "regression" else \
        neural_network.MLPClassifier
    mine = engine.MLPRegressor if kind == "regression" else engine.MLPClassifier
    weights = np.random.default_rng(3).uniform(0.5, 2.0, X.shape[0])
    with warnings.catch_warnings(), threaded(backend):
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = peer(**params).fit(X, y, sample_weight=weights)
        ours = mine(backend=backend, **params).fit(X, y, sample_weight=weights)
    _assert_same_model(ours, theirs, rtol=1e-6)
    assert ours.n_iter_ == theirs.n_iter_ == 10


def test_class_weight_is_sample_weight_per_class():
    X, y = _data("multiclass")
    params = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        by_class = engine.MLPClassifier(class_weight={0: 2.0, 1: 0.5, 2: 1.0},
                                        **params).fit(X, y)
        by_sample = engine.MLPClassifier(**params).fit(
            X, y, sample_weight=np.array([2.0, 0.5, 1.0])[y])
        balanced = engine.MLPClassifier(class_weight="balanced", **params).fit(X, y)
        plain = engine.MLPClassifier(**params).fit(X, y)
    for a, b in zip(by_class.coefs_, by_sample.coefs_):
        np.testing.assert_array_equal(a, b)
    counts = np.bincount(y)
    expected = (len(y) / (3 * counts))[y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        by_counts = engine.MLPClassifier(**params).fit(X, y, sample_weight=expected)
    np.testing.assert_array_equal(balanced.coefs_[0], by_counts.coefs_[0])
    assert not np.allclose(balanced.coefs_[0], plain.coefs_[0])


def test_float32_data_trains_in_float32():
    X, y = _data("multiclass")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = engine.MLPClassifier(hidden_layer_sizes=(5,), max_iter=2,
                                   random_state=0).fit(X.astype(np.float32), y)
        wide = engine.MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0,
                                    dtype="float64").fit(X.astype(np.float32), y)
    assert all(c.dtype == np.float32 for c in clf.coefs_ + clf.intercepts_)
    assert clf.predict_proba(X).dtype == np.float32
    assert wide.coefs_[0].dtype == np.float64


def _fitted(backend="numba", **params):
    X, y = _data("multiclass")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return engine.MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0,
                                    backend=backend, **params).fit(X, y), X, y


def _round_trip(model, how, folder):
    if how == "pickle":
        return pickle.loads(pickle.dumps(model))
    if how == "deepcopy":
        return copy.deepcopy(model)
    joblib.dump(model, folder / "model.joblib")
    return joblib.load(folder / "model.joblib", mmap_mode="r")  # read-only arrays, too


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "joblib"])
def test_estimators_round_trip_and_train_on_identically(how, tmp_path):
    clf, X, y = _fitted(dropout=0.2)
    twin = _round_trip(clf, how, tmp_path)
    np.testing.assert_array_equal(twin.predict_proba(X), clf.predict_proba(X))
    for est in (clf, twin):
        est.partial_fit(X, y)
    for a, b in zip(twin.coefs_ + twin.intercepts_, clf.coefs_ + clf.intercepts_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("how", ["pickle", "deepcopy", "joblib"])
def test_network_round_trips_and_trains_on_identically(backend, how, tmp_path):
    X, y = _data("multiclass")
    net = engine.Network([6, 5, 3], backend=backend, seed=0, batch_norm=True)
    net.fit(X, y, epochs=1, batch_size=8, optimizer="adam", dropout=0.2)
    twin = _round_trip(net, how, tmp_path)
    assert twin.backend == backend
    np.testing.assert_array_equal(twin.predict_proba(X), net.predict_proba(X))
    for model in (net, twin):
        model.fit(X, y, epochs=1, batch_size=8, optimizer="adam", dropout=0.2)
    np.testing.assert_array_equal(twin._params, net._params)
    twin.weights[0][0, 0] = 5.0  # the views are the unpickled network's own storage
    assert twin._params[0] == 5.0 and net._params[0] != 5.0


def test_pipeline_grid_search_in_two_processes_matches_one():
    X, y = _data("multiclass", n=120)
    pipe = make_pipeline(StandardScaler(),
                         engine.MLPClassifier(hidden_layer_sizes=(6,), max_iter=30,
                                              random_state=0))
    grid = {"mlpclassifier__alpha": [1e-4, 1.0], "mlpclassifier__solver": ["adam", "sgd"]}
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for n_jobs in (1, 2):
            search = GridSearchCV(pipe, grid, cv=3, n_jobs=n_jobs).fit(X, y)
            results.append(search)
    one, two = results
    assert one.best_params_ == two.best_params_
    np.testing.assert_array_equal(one.cv_results_["mean_test_score"],
                                  two.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(one.predict_proba(X), two.predict_proba(X))


def test_pickles_hold_no_compiled_code():
    net = engine.Network([3, 4, 2], seed=0)
    assert "_backend" not in net.__getstate__() and net.__getstate__()["backend"] == "numba"
    clf, X, _ = _fitted()
    data = pickle.dumps(clf)
    assert b"Dispatcher" not in data and b"engine.kernels" not in data


def test_assigned_coefs_of_the_wrong_shape_are_named():
    clf, X, y = _fitted()
    clf.coefs_ = [c.T for c in clf.coefs_]
    with pytest.raises(ValueError, match=r"coefs_\[0\] must have shape \(6, 5\); got \(5, 6\)"):
        clf.predict(X)
    clf.coefs_ = [c.T for c in clf.coefs_]
    clf.predict(X)


@pytest.mark.parametrize("backend", ["numba", "numba-parallel"])
def test_engine_extras_match_the_oracle_through_the_estimator(threaded, backend):
    """dropout and batch_norm (no scikit-learn peer): a compiled backend against the NumPy
    oracle (float64 1e-10, as in test_cpu_training_agreement.py), and they learn."""
    X, y = _data("multiclass", n=120)
    y = (X[:, 0] + X[:, 1] > 1).astype(int) + (X[:, 2] > 0.5)  # learnable classes
    params = dict(hidden_layer_sizes=(8, 6), dropout=[0.2, 0.1], batch_norm=[True, False],
                  batch_size=16, max_iter=30, learning_rate_init=0.01, random_state=0)
    with warnings.catch_warnings(), threaded(backend):
        warnings.simplefilter("ignore", ConvergenceWarning)
        fast = engine.MLPClassifier(backend=backend, **params).fit(X, y)
        slow = engine.MLPClassifier(backend="numpy", **params).fit(X, y)
    for a, b in zip(fast.coefs_ + fast.intercepts_, slow.coefs_ + slow.intercepts_):
        assert _relative(a, b) <= 1e-10
    np.testing.assert_allclose(fast._net._bn_running, slow._net._bn_running, rtol=1e-10)
    assert fast.score(X, y) > 0.8


def test_dropout_masks_follow_random_state():
    """The same random_state gives the same masks, also when dropout is switched on for a
    warm-started fit of a network first fitted without it."""
    X, y = _data("multiclass")
    fits = []
    for _ in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = engine.MLPClassifier(hidden_layer_sizes=(5,), max_iter=2,
                                       random_state=0).fit(X, y)
            clf.set_params(dropout=0.3, warm_start=True).fit(X, y)
        fits.append(clf)
    for a, b in zip(fits[0].coefs_, fits[1].coefs_):
        np.testing.assert_array_equal(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        other = engine.MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=1,
                                     dropout=0.3).fit(X, y)
    assert not np.allclose(other.coefs_[0], fits[0].coefs_[0])

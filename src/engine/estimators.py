"""scikit-learn's multi-layer perceptrons on the engine's kernels: :class:`MLPClassifier` and
:class:`MLPRegressor`.

Both take scikit-learn's parameters with its names, defaults and meanings, and follow its
definitions (``sklearn/neural_network/_multilayer_perceptron.py`` and
``_stochastic_optimizers.py``): Glorot-uniform initialisation from ``random_state``, the
same shuffles and validation split, α's L2 term per mini-batch, the velocity form of
momentum and Nesterov's momentum, Adam with the bias correction folded into the step size,
``invscaling`` and ``adaptive`` rates, early stopping on the validation score, one logistic
output for binary problems, logistic outputs for multilabel targets, softmax otherwise,
identity output and half the squared error for regression, and L-BFGS through SciPy. So a
fit from the same starting point gives scikit-learn's numbers.

The engine runs each epoch in one compiled call (``kernels/cpu/epoch.py``: every mini-batch, the
optimiser step, sample weights); Python runs between epochs only. After the scikit-learn
parameters come the engine's own: ``class_weight``, ``dropout``, ``batch_norm``, ``backend``
and ``dtype``.
"""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.optimize
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d, shuffle as shuffled
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (_check_partial_fit_first_call, type_of_target,
                                      unique_labels)
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import _backends, state, training
from .kernels import codes
from .network import Network

ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_OUTPUTS = {"identity": "identity", "logistic": "sigmoid", "softmax": "softmax"}
_STOCHASTIC = ("sgd", "adam")


class _BaseMLP(BaseEstimator):
    """What both estimators share; see :class:`MLPClassifier` for the parameters."""

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"),
                             Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "batch_norm": ["boolean", "array-like"],
        "backend": [StrOptions(set(_backends.NAMES))],
        "dtype": [None, StrOptions({"float32", "float64"}), type],
    }

    # -- fitting ----------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (classification, a label-indicator matrix for multilabel
            targets) or real numbers (regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss: each mini-batch's loss and gradient are
            sums weighted by it, divided by the batch's total weight, as in scikit-learn.

        Returns
        -------
        self
        """
        self._validate_params()
        return self._fit(X, y, sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    def _fit(self, X, y, sample_weight, incremental):
        hidden = self.hidden_layer_sizes
        hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
        if any(not isinstance(h, Integral) or h <= 0 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        sample_weight = self._with_class_weight(y, sample_weight, incremental)
        y = self._encode_targets(y)
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        self.n_outputs_ = y.shape[1]
        layer_units = [X.shape[1]] + hidden + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, X.dtype)
        net = self._network(layer_units)
        # the kernels take writeable C arrays (Numba compiles read-only ones separately)
        X = np.require(X, net.dtype, ["C", "W"])
        if sample_weight is not None:
            sample_weight = np.require(sample_weight, net.dtype, ["C", "W"])
        self._push(net)
        if self.solver in _STOCHASTIC:
            self._fit_stochastic(net, X, y, sample_weight, incremental)
        else:
            self._fit_lbfgs(net, X, y, sample_weight)
        if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise ValueError("Solver produced non-finite parameter weights. The input data "
                             "may contain large values and need to be preprocessed.")
        return self

    def _initialize(self, y, layer_units, dtype):
        """scikit-learn's ``_initialize``: counters, output activation and Glorot-uniform
        weights drawn from ``random_state`` in its order (so the same seed starts from the
        same point)."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        dtype = self._net_dtype(dtype)
        self.coefs_, self.intercepts_ = [], []
        factor = 2.0 if self.activation == "logistic" else 6.0
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = self._random_state.uniform(-bound, bound, fan_out)
            self.coefs_.append(coef.astype(dtype, copy=False))
            self.intercepts_.append(intercept.astype(dtype, copy=False))
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [i.copy() for i in self.intercepts_]
        self._net = None
        if self.solver in _STOCHASTIC:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _input_dtypes(self, reset):
        """The dtype X is converted to: the trained network's when continuing, else the
        ``dtype`` parameter, or float32/float64 as X is (other dtypes become float64)."""
        if not reset and getattr(self, "_net", None) is not None:
            return self._net.dtype
        return (np.float64, np.float32) if self.dtype is None else np.dtype(self.dtype)

    def _net_dtype(self, data_dtype):
        if self.dtype is None:
            return np.dtype(data_dtype)
        return np.dtype(self.dtype)

    def _network(self, layer_units):
        """The engine network that trains and predicts for this estimator (rebuilt when the
        architecture or an engine parameter changed; its parameters come from
        ``coefs_``/``intercepts_`` before every use)."""
        dtype = np.dtype(self.coefs_[0].dtype) if self.dtype is None else np.dtype(self.dtype)
        key = (tuple(layer_units), self.activation, self.out_activation_, dtype.name,
               self.backend, self._batch_norm_flags(len(layer_units) - 2))
        net = getattr(self, "_net", None)
        if net is None or self._net_key != key:
            cost = "quadratic" if self.out_activation_ == "identity" else "cross_entropy"
            net = Network(list(layer_units), activation=ACTIVATIONS[self.activation],
                          output=_OUTPUTS[self.out_activation_], cost=cost,
                          init="glorot_uniform", dtype=dtype.name, backend=self.backend,
                          seed=0, batch_norm=key[-1])
            self._net, self._net_key = net, key
        return net

    def _batch_norm_flags(self, n_hidden):
        flags = self.batch_norm
        if isinstance(flags, (bool, np.bool_)):
            return (bool(flags),) * n_hidden
        return tuple(bool(f) for f in flags)

    def _uses_dropout(self):
        return bool(np.any(np.asarray(self.dropout, dtype=float) > 0))

    def _push(self, net):
        """``coefs_``/``intercepts_`` (scikit-learn's layout, perhaps assigned by the user)
        into the network's parameters."""
        if len(self.coefs_) != len(net.weights) or len(self.intercepts_) != len(net.biases):
            raise ValueError(f"coefs_ and intercepts_ need {len(net.weights)} arrays each "
                             f"(one per layer); got {len(self.coefs_)} and "
                             f"{len(self.intercepts_)}")
        for layer, (w, b) in enumerate(zip(net._weight_views, net._bias_views)):
            coef = np.asarray(self.coefs_[layer])
            intercept = np.asarray(self.intercepts_[layer]).reshape(-1)
            if coef.shape != w.shape[::-1]:
                raise ValueError(f"coefs_[{layer}] must have shape {w.shape[::-1]}; got "
                                 f"{coef.shape}")
            if intercept.shape != (w.shape[0],):
                raise ValueError(f"intercepts_[{layer}] must have shape ({w.shape[0]},); got "
                                 f"{intercept.shape}")
            w[...] = coef.T
            b[:, 0] = intercept
        net._weights_shown[:] = net._weight_views
        net._biases_shown[:] = net._bias_views

    def _pull(self, net):
        """The network's parameters into ``coefs_``/``intercepts_`` (in place where their
        shape and dtype allow, as scikit-learn updates its arrays)."""
        for layer, (w, b) in enumerate(zip(net._weight_views, net._bias_views)):
            coef, intercept = self.coefs_[layer], self.intercepts_[layer]
            if (isinstance(coef, np.ndarray) and coef.shape == w.shape[::-1]
                    and coef.dtype == w.dtype and coef.flags.writeable):
                coef[...] = w.T
            else:
                self.coefs_[layer] = np.ascontiguousarray(w.T)
            if (isinstance(intercept, np.ndarray) and intercept.shape == (w.shape[0],)
                    and intercept.dtype == w.dtype and intercept.flags.writeable):
                intercept[...] = b[:, 0]
            else:
                self.intercepts_[layer] = b[:, 0].copy()

    def _plan(self, net, solver):
        """A :class:`engine.training.Plan` with scikit-learn's rules for ``solver``."""
        if solver == "sgd":
            name = "velocity_nesterov" if self.nesterovs_momentum else "velocity"
        elif solver == "adam":
            name = "adam_folded"
        else:
            name = "sgd"
        plan = training.Plan(net, name, dropout=self._dropout_rates(net))
        plan.hyper[codes.H_MOMENTUM] = self.momentum
        plan.hyper[codes.H_BETA1], plan.hyper[codes.H_BETA2] = self.beta_1, self.beta_2
        plan.hyper[codes.H_EPS] = self.epsilon
        plan.hyper[codes.H_L2_BATCH] = self.alpha
        plan.hyper[codes.H_WEIGHT_TOTAL] = 1.0
        # scikit-learn's squared error is averaged over the outputs, its gradient is not
        plan.hyper[codes.H_COST_SCALE] = (1.0 / self.n_outputs_
                                          if self.out_activation_ == "identity" else 1.0)
        return plan

    def _dropout_rates(self, net):
        if not self._uses_dropout():
            return None
        return training.dropout_rates(self.dropout if np.ndim(self.dropout) == 0
                                      else list(self.dropout), net.sizes)

    def _kernel_targets(self, y, dtype):
        """``(labels, targets)`` as the kernels take them: class indices for a softmax
        output, else float target rows."""
        if self.out_activation_ == "softmax":
            return (np.ascontiguousarray(np.argmax(y, axis=1), dtype=np.int64),
                    np.zeros((0, y.shape[1]), dtype))
        return np.zeros(0, np.int64), np.ascontiguousarray(y, dtype=dtype)

    # -- the stochastic solvers: one compiled call per epoch --------------------------------

    def _fit_stochastic(self, net, X, y, sample_weight, incremental):
        if not incremental or not hasattr(self, "_learning_rate"):
            # a fresh optimiser, as scikit-learn builds a new one for every fit
            state.set_optimizer_state(net, None)
            self._learning_rate = float(self.learning_rate_init)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if self._uses_dropout():
            # masks from random_state, drawn only with dropout so that the shuffles and
            # the validation split stay scikit-learn's otherwise
            net.rng = np.random.default_rng(self._random_state.randint(np.iinfo(np.int32).max))
        if self._net_key[-1] and any(self._net_key[-1]) and self.batch_size == 1:
            raise ValueError("batch_norm needs batch_size of at least 2")
        early_stopping = self.early_stopping
        if early_stopping:
            stratify = y if (self._is_classifier() and self.n_outputs_ == 1) else None
            if sample_weight is None:
                X_train, X_val, y_train, y_val = train_test_split(
                    X, y, random_state=self._random_state,
                    test_size=self.validation_fraction, stratify=stratify)
                sw_train = sw_val = None
            else:
                X_train, X_val, y_train, y_val, sw_train, sw_val = train_test_split(
                    X, y, sample_weight, random_state=self._random_state,
                    test_size=self.validation_fraction, stratify=stratify)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            y_val = self._decode_targets(y_val)
        else:
            X_train, y_train, sw_train = X, y, sample_weight
            X_val = y_val = sw_val = None
        n_samples = X_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It "
                              "is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        X_train = np.require(X_train, net.dtype, ["C", "W"])
        labels, targets = self._kernel_targets(y_train, net.dtype)
        plan = self._plan(net, self.solver)
        plan.sample_weight = (None if sw_train is None
                              else np.require(sw_train, net.dtype, ["C", "W"]))
        state.ensure_optimizer_state(net, plan.optimizer)
        sample_idx = np.arange(n_samples, dtype=np.int64)
        adaptive_sgd = self.solver == "sgd"
        self.n_iter_ = 0
        for _ in range(self.max_iter):
            if self.shuffle:
                sample_idx = shuffled(sample_idx, random_state=self._random_state)
            order = np.ascontiguousarray(sample_idx, dtype=np.int64)
            plan.draw_mask(net.rng, n_samples)
            lr = self._learning_rate if adaptive_sgd else float(self.learning_rate_init)
            plan.lr = lr
            with np.errstate(over="ignore", invalid="ignore"):
                total = net._backend.train(net, X_train, labels, targets, order, 0,
                                           n_samples, batch_size, lr, plan=plan)
            if self._end_epoch(net, total, n_samples, early_stopping, X_val, y_val, sw_val):
                break
            if incremental:
                break
            self._warn_at_max_iter()
        if early_stopping:
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts

    def _end_epoch(self, net, total, n_samples, early_stopping, X_val, y_val, sw_val):
        """scikit-learn's bookkeeping after an epoch whose summed loss is ``total`` (also
        engine.dask's): the fitted attributes, the ``invscaling`` rate and the ``tol`` stop.
        Returns True when training stops."""
        self._pull(net)
        self.n_iter_ += 1
        self.loss_ = float(total) / n_samples
        self.t_ += n_samples
        self.loss_curve_.append(self.loss_)
        if self.verbose:
            print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
        self._update_no_improvement_count(early_stopping, X_val, y_val, sw_val)
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            self._learning_rate = (float(self.learning_rate_init)
                                   / (self.t_ + 1) ** self.power_t)
        if self._no_improvement_count > self.n_iter_no_change:
            if early_stopping:
                msg = ("Validation score did not improve more than tol=%f for %d "
                       "consecutive epochs." % (self.tol, self.n_iter_no_change))
            else:
                msg = ("Training loss did not improve more than tol=%f for %d "
                       "consecutive epochs." % (self.tol, self.n_iter_no_change))
            if self._trigger_stopping(msg):
                return True
            self._no_improvement_count = 0
        return False

    def _warn_at_max_iter(self):
        if self.n_iter_ == self.max_iter:
            warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                          "optimization hasn't converged yet." % self.max_iter,
                          ConvergenceWarning)

    def _trigger_stopping(self, msg):
        """scikit-learn's ``trigger_stopping``: stop, or for ``sgd`` with the adaptive rate
        divide the rate by 5 until it falls to 1e-6."""
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if self._learning_rate <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._learning_rate /= 5.0
        if self.verbose:
            print(msg + " Setting learning rate to %f" % self._learning_rate)
        return False

    def _update_no_improvement_count(self, early_stopping, X_val, y_val, sw_val):
        if early_stopping:
            score = self._score(X_val, y_val, sample_weight=sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [i.copy() for i in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # -- L-BFGS: SciPy on the compiled full-batch loss and gradient --------------------------

    def _fit_lbfgs(self, net, X, y, sample_weight):
        if net._n_bn or self._uses_dropout():
            raise ValueError("solver='lbfgs' minimises a fixed loss: it does not combine "
                             "with dropout or batch_norm; use solver='adam' or 'sgd'")
        if not net._backend.full_batch_gradient:
            raise ValueError(f"backend={self.backend!r} does not support solver='lbfgs'; "
                             f"use 'numba', 'numba-parallel' or 'numpy'")
        labels, targets = self._kernel_targets(y, net.dtype)
        plan = self._plan(net, "lbfgs")
        plan.sample_weight = sample_weight

        def objective():
            with np.errstate(over="ignore", invalid="ignore"):
                return net._backend.loss_gradient(net, X, labels, targets, plan)
        self._minimize_lbfgs(net, objective)

    def _minimize_lbfgs(self, net, objective):
        """SciPy's L-BFGS-B from ``coefs_``/``intercepts_``; ``objective()`` returns the
        loss and the flat gradient (laid out like ``net._params``) at the network's
        current parameters (engine.dask sums it over a cluster's workers)."""
        shapes = [c.shape for c in self.coefs_] + [i.shape for i in self.intercepts_]
        sizes = [int(np.prod(s)) for s in shapes]
        bounds = np.cumsum([0] + sizes)

        def unpack(packed):
            parts = [packed[lo:hi].reshape(shape)
                     for lo, hi, shape in zip(bounds[:-1], bounds[1:], shapes)]
            n_layers = len(self.coefs_)
            self.coefs_ = [p.astype(net.dtype) for p in parts[:n_layers]]
            self.intercepts_ = [p.astype(net.dtype) for p in parts[n_layers:]]

        def loss_and_gradient(packed):
            unpack(packed)
            self._push(net)
            loss, flat = objective()
            biases, weights = net._unflatten(flat, copy=False)
            grad = np.concatenate([w.T.ravel() for w in weights]
                                  + [b.ravel() for b in biases])
            return loss, grad.astype(np.float64)

        packed = np.concatenate([c.ravel() for c in self.coefs_]
                                + [i.ravel() for i in self.intercepts_]).astype(np.float64)
        result = scipy.optimize.minimize(
            loss_and_gradient, packed, method="L-BFGS-B", jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
        if not result.success:
            warnings.warn(f"lbfgs failed to converge after {result.nit} iteration(s) "
                          f"(status={result.status}): {result.message}. Increase the number "
                          f"of iterations (max_iter) or scale the data.", ConvergenceWarning)
        self.n_iter_ = min(int(result.nit), self.max_iter)
        self.loss_ = float(result.fun)
        unpack(result.x)
        self._push(net)

    # -- prediction --------------------------------------------------------------------------

    def _forward(self, X, check_input=True):
        """Output activations for the rows of X, from the current ``coefs_``."""
        net = self._net
        if check_input:
            X = validate_data(self, X, reset=False, dtype=net.dtype)
        X = np.require(X, net.dtype, ["C", "W"])
        self._push(net)
        with np.errstate(over="ignore", invalid="ignore"):
            return net._backend.forward(net, X)[0]

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier`` on the engine.

    Parameters
    ----------
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate, \
learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, warm_start, \
momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2, \
epsilon, n_iter_no_change, max_fun
        As in ``sklearn.neural_network.MLPClassifier`` (same defaults and meanings).
    class_weight : dict, "balanced" or None, default=None
        Weights per class, multiplying each sample's weight (as in scikit-learn's linear
        models): ``{label: weight}``, or "balanced" for n_samples / (n_classes ·
        count of the class). Not for multilabel targets, nor "balanced" in partial_fit.
    dropout : float or list of float, default=0.0
        Inverted dropout on the hidden layers while training (one rate, or one per hidden
        layer); masks come from ``random_state``.
    batch_norm : bool or list of bool, default=False
        Batch normalisation of the hidden layers (``torch.nn.BatchNorm1d``'s definitions);
        its scale and shift are not part of ``coefs_``/``intercepts_``.
    backend : {"numba", "numba-parallel", "numpy", "cuda"}, default="numba"
        Where the work runs (see :class:`engine.Network`).
    dtype : {None, "float32", "float64"}, default=None
        Precision of the parameters and the arithmetic; None follows X (float32 data trains
        in float32, anything else in float64).

    Attributes
    ----------
    classes_, loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, \
t_, coefs_, intercepts_, n_features_in_, feature_names_in_, n_iter_, n_layers_, \
n_outputs_, out_activation_
        As in scikit-learn. ``coefs_[i]`` has shape (n_in, n_out); both lists may be
        assigned, and a later fit with ``warm_start=True`` continues from them.

    Examples
    --------
    >>> import numpy as np, engine
    >>> X = np.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.]])
    >>> clf = engine.MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs",
    ...                            random_state=0).fit(X, [0, 1, 1, 0])
    >>> clf.predict(X).tolist()
    [0, 1, 1, 0]
    """

    _parameter_constraints = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 class_weight=None, dropout=0.0, batch_norm=False, backend="numba",
                 dtype=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.class_weight = class_weight
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.backend = backend
        self.dtype = dtype

    def _is_classifier(self):
        return True

    def _output_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, reset=reset,
                             dtype=self._input_dtypes(reset))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(f"warm_start can only be used where `y` has the same "
                                     f"classes as in the previous call to fit. Previously "
                                     f"got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` "
                                 f"has {self.classes_}. 'y' has {classes}.")
        return X, y

    def _encode_targets(self, y):
        # bool, as scikit-learn: no upcast of float32 data
        return self._label_binarizer.transform(y).astype(bool)

    def _decode_targets(self, y):
        return self._label_binarizer.inverse_transform(y)

    def _with_class_weight(self, y, sample_weight, incremental):
        if self.class_weight is None:
            return sample_weight
        if type_of_target(y).startswith("multilabel"):
            raise ValueError("class_weight is not supported for multilabel targets; pass "
                             "sample_weight instead")
        if incremental and self.class_weight == "balanced":
            raise ValueError("class_weight 'balanced' is not supported for partial_fit (one "
                             "batch's class counts are not the data's); pass a dict of "
                             "weights per class instead")
        weights = compute_sample_weight(self.class_weight, y)
        return weights if sample_weight is None else sample_weight * weights

    def predict(self, X):
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward(X, check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one pass over the given data (the optimiser's state
        carries over between calls).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array of shape (n_classes,), default=None
            Classes across all calls; required for the first call.

        Returns
        -------
        self
        """
        self._validate_params()
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight, incremental=True)

    def predict_log_proba(self, X):
        """The log of :meth:`predict_proba`."""
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def predict_proba(self, X):
        """Probability estimates, shape (n_samples, n_classes)."""
        check_is_fitted(self)
        y_pred = self._forward(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor`` on the engine.

    Parameters are :class:`MLPClassifier`'s without ``class_weight``, with scikit-learn's
    ``loss`` first ("squared_error": half the squared error, averaged over samples and
    outputs, with an identity output). Attributes as in scikit-learn.
    """

    _parameter_constraints = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error"})],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dropout=0.0, batch_norm=False, backend="numba", dtype=None):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.backend = backend
        self.dtype = dtype

    def _is_classifier(self):
        return False

    def _output_activation(self):
        return "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=self._input_dtypes(reset), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _encode_targets(self, y):
        return y

    def _decode_targets(self, y):
        return y

    def _with_class_weight(self, y, sample_weight, incremental):
        return sample_weight

    def predict(self, X):
        """Predict using the multi-layer perceptron model: shape (n_samples,) or
        (n_samples, n_outputs)."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward(X, check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one pass over the given data (the optimiser's state
        carries over between calls)."""
        self._validate_params()
        return self._fit(X, y, sample_weight, incremental=True)

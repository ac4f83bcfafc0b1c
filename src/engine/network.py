"""The public model: :class:`Network`, Nielsen's API and an array API in one class."""

import contextlib

import numpy as np

from . import _backends, _validation as check, oracle
from .errors import DivergenceError
from .initializers import SCHEMES, initial_parameters
from .normalization import Normalization
from .kernels import codes

DTYPES = ("float64", "float32")


class Network:
    """A fully connected feed-forward network trained by mini-batch gradient descent.

    Parameters
    ----------
    sizes : list of int
        Units per layer, input first: ``[784, 30, 10]`` is Nielsen's MNIST network.
    activation : {"sigmoid", "tanh", "relu", "identity"}
        Activation of the hidden layers.
    output : {None, "sigmoid", "softmax", "identity", "tanh", "relu"}
        Activation of the output layer; ``None`` uses ``activation``.
    cost : {"quadratic", "cross_entropy"}
        Per-sample cost: ½‖a − y‖², or cross-entropy (binary per unit for sigmoid outputs,
        categorical for softmax outputs). The cost of a batch is the mean over its samples.
    init : {"standard_normal", "lecun_normal", "glorot_normal", "glorot_uniform", \
"he_normal", "he_uniform"}
        Weight initialisation (see :mod:`engine.initializers`).
    dtype : {"float64", "float32"}
        Precision of parameters and arithmetic, end to end.
    backend : {"numba", "numba-parallel", "numpy", "cuda"}
        Where the work runs. ``"numpy"`` is the reference oracle.
    seed : int, numpy.random.Generator or None
        Source of all randomness (initialisation, shuffling).

    Attributes
    ----------
    weights : list of arrays, ``weights[l].shape == (sizes[l+1], sizes[l])``
    biases : list of arrays, ``biases[l].shape == (sizes[l+1], 1)``
        Views of the parameters. Edit them in place, replace an element, or assign a new
        list; training continues from what you set.
    history : dict
        Per-epoch records of the last :meth:`fit` (see there).
    normalization : engine.normalization.Normalization or None
        Scaling of raw inputs (and regression targets) that :meth:`fit`, :meth:`predict`,
        :meth:`predict_proba` and :meth:`score` apply; saved with the model.

    Examples
    --------
    >>> net = Network([2, 3, 1], seed=0)
    >>> net.feedforward(np.array([[0.0], [1.0]])).shape
    (1, 1)
    """

    def __init__(self, sizes, activation="sigmoid", output=None, cost="quadratic",
                 init="standard_normal", dtype="float64", backend="numba", seed=None):
        self.sizes = check.layer_sizes(sizes)
        self.num_layers = len(self.sizes)
        self.activation = check.choice("activation", activation, codes.ACTIVATIONS)
        self.output = check.choice("output", activation if output is None else output,
                                   codes.OUTPUTS)
        self.cost = check.choice("cost", cost, codes.COSTS)
        self.init = check.choice("init", init, SCHEMES)
        self.dtype = np.dtype(check.choice("dtype", str(np.dtype(dtype)) if _is_dtype(dtype)
                                           else dtype, DTYPES))
        if self.cost == "cross_entropy" and self.output not in ("sigmoid", "softmax"):
            raise ValueError(
                f"cost='cross_entropy' needs output probabilities, from a 'sigmoid' or "
                f"'softmax' output layer; got output={self.output!r}. Use cost='quadratic' "
                f"for {self.output!r} outputs.")
        if self.output == "softmax" and self.sizes[-1] < 2:
            raise ValueError(f"output='softmax' needs at least 2 output units; "
                             f"sizes[-1] is {self.sizes[-1]}")
        self._codes = (codes.ACTIVATIONS[self.activation], codes.OUTPUTS[self.output],
                       codes.COSTS[self.cost])
        self.rng = np.random.default_rng(seed)
        self._allocate_parameters()
        biases, weights = initial_parameters(self.init, self.sizes, self.rng)
        self.biases, self.weights = biases, weights
        self.backend = backend
        self.history = {}
        self.normalization = None
        self._task = None  # "classification" or "regression" once fit has seen targets

    # -- parameters -----------------------------------------------------------------------

    def _allocate_parameters(self):
        """One flat array holds every weight and bias; the public lists are views of it."""
        pairs = list(zip(self.sizes[:-1], self.sizes[1:]))
        w_off, b_off, offset = [], [], 0
        for n_in, n_out in pairs:
            w_off.append(offset)
            offset += n_out * n_in
            b_off.append(offset)
            offset += n_out
        self._params = np.zeros(offset, dtype=self.dtype)
        self._sizes = np.asarray(self.sizes, dtype=np.int64)
        self._w_off = np.asarray(w_off, dtype=np.int64)
        self._b_off = np.asarray(b_off, dtype=np.int64)
        self._a_off = np.concatenate([[0], np.cumsum(self.sizes[:-1])]).astype(np.int64)
        self._bias_views, self._weight_views = self._unflatten(self._params, copy=False)
        self._weights_shown = list(self._weight_views)
        self._biases_shown = list(self._bias_views)

    def _unflatten(self, flat, copy=True):
        """Split a flat parameter-shaped array into ``(biases, weights)`` lists."""
        biases, weights = [], []
        for (n_in, n_out), wo, bo in zip(zip(self.sizes[:-1], self.sizes[1:]),
                                         self._w_off, self._b_off):
            w = flat[wo:wo + n_out * n_in].reshape(n_out, n_in)
            b = flat[bo:bo + n_out].reshape(n_out, 1)
            weights.append(w.copy() if copy else w)
            biases.append(b.copy() if copy else b)
        return biases, weights

    @property
    def weights(self):
        return self._weights_shown

    @weights.setter
    def weights(self, new):
        self._assign("weights", new, self._weight_views)
        self._weights_shown = list(self._weight_views)

    @property
    def biases(self):
        return self._biases_shown

    @biases.setter
    def biases(self, new):
        self._assign("biases", new, self._bias_views)
        self._biases_shown = list(self._bias_views)

    def _assign(self, kind, new, views):
        new = list(new)
        if len(new) != len(views):
            raise ValueError(f"{kind} needs {len(views)} arrays, one per layer; got {len(new)}")
        checked = []
        for layer, (value, view) in enumerate(zip(new, views)):
            arr = np.asarray(value)
            if kind == "biases" and arr.shape == view.shape[:1]:
                arr = arr.reshape(view.shape)
            if arr.shape != view.shape:
                raise ValueError(f"{kind}[{layer}] must have shape {view.shape}; got {arr.shape}")
            if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
                raise ValueError(f"{kind}[{layer}] must hold finite numbers")
            checked.append(arr)
        for arr, view in zip(checked, views):
            view[...] = arr

    def _sync_parameters(self):
        """Adopt arrays a user put into ``net.weights[l] = ...`` into the flat storage."""
        for shown, views, kind in ((self._weights_shown, self._weight_views, "weights"),
                                   (self._biases_shown, self._bias_views, "biases")):
            if len(shown) != len(views) or any(s is not v for s, v in zip(shown, views)):
                self._assign(kind, shown, views)
                shown[:] = views

    @property
    def backend(self):
        """Name of the backend in use; assign another name to switch."""
        return self._backend.name

    @backend.setter
    def backend(self, name):
        check.choice("backend", name, _backends.NAMES)
        self._backend = _backends.create(name)

    @property
    def normalization(self):
        """A :class:`~engine.normalization.Normalization` or None; see the class docstring."""
        return self._normalization

    @normalization.setter
    def normalization(self, norm):
        if norm is not None:
            if not isinstance(norm, Normalization):
                raise TypeError(f"normalization must be an engine.normalization.Normalization "
                                f"or None; got {type(norm).__name__}")
            if norm.n_features != self.sizes[0]:
                raise ValueError(f"normalization has statistics for {norm.n_features} input "
                                 f"columns but the network's input layer has {self.sizes[0]}")
            if norm.n_targets not in (None, self.sizes[-1]):
                raise ValueError(f"normalization has statistics for {norm.n_targets} targets "
                                 f"but the network's output layer has {self.sizes[-1]}")
        self._normalization = norm

    def _scaled(self, X, y=None):
        """Raw ``(X, y)`` → the network's scale, through :attr:`normalization` if set."""
        norm = self._normalization
        if norm is None:
            return X, y
        return norm.transform(X), (None if y is None else norm.transform_targets(y))

    def save(self, path):
        """Write the model to ``path`` (``.npz``); see :func:`engine.io.save`."""
        from .io import save

        return save(self, path)

    # -- the array API (scikit-learn / Keras style) ----------------------------------------

    def fit(self, X, y, epochs=1, batch_size=10, lr=0.1, validation_data=None, shuffle=True,
            verbose=0):
        """Train by mini-batch gradient descent: ``w ← w − (lr/m)·Σ∇`` per mini-batch.

        Parameters
        ----------
        X : array, shape (n_samples, n_in)
        y : array
            Integer class labels, shape (n_samples,), one-hot encoded internally; or float
            targets, shape (n_samples, n_out) (or (n_samples,) for one output unit).
        epochs, batch_size : int
            Passes over the data, and samples per mini-batch (the last may be smaller).
        lr : float
            Learning rate (Nielsen's ``eta``).
        validation_data : (X_val, y_val), optional
            Evaluated after every epoch.
        shuffle : bool
            Draw a new order every epoch from the network's generator; with False, batches
            are ``X[0:m], X[m:2m], …`` in order.
        verbose : int
            1 prints one line per epoch.

        Returns
        -------
        history : dict
            ``"loss"``: mean training cost per epoch, each sample's cost taken before its
            mini-batch's update (as Keras and scikit-learn report it); with validation data
            also ``"val_loss"`` and, for classification, ``"val_accuracy"``.

        Raises
        ------
        ValueError, TypeError
            For inputs of the wrong shape, dtype, range or content, before any training.
        """
        epochs = check.positive_int("epochs", epochs)
        batch_size = check.positive_int("batch_size", batch_size)
        lr = check.positive_float("lr", lr)
        X, labels, targets = self._training_arrays(*self._scaled(X, y))
        validation = None
        if validation_data is not None:
            try:
                X_val, y_val = validation_data
            except (TypeError, ValueError):
                raise ValueError("validation_data must be a pair (X_val, y_val)") from None
            X_val, y_val = self._scaled(X_val, y_val)
            X_val = check.features(X_val, self.sizes[0], self.dtype, name="validation X")
            validation = (X_val,) + check.targets(y_val, X_val.shape[0], self.sizes[-1],
                                                   self.dtype, name="validation y")
        history = {"loss": []}
        if validation is not None:
            history["val_loss"] = []
            if labels.size:
                history["val_accuracy"] = []

        def record(epoch, mean_cost):
            history["loss"].append(mean_cost)
            line = f"Epoch {epoch + 1}/{epochs} - loss: {mean_cost:.4f}"
            if validation is not None:
                val_cost, val_correct = self._measure(*validation)
                history["val_loss"].append(val_cost)
                line += f" - val_loss: {val_cost:.4f}"
                if "val_accuracy" in history:
                    history["val_accuracy"].append(val_correct / validation[0].shape[0])
                    line += f" - val_accuracy: {history['val_accuracy'][-1]:.4f}"
            if verbose:
                print(line, flush=True)

        self.history = history
        try:
            self._train_epochs(X, labels, targets, epochs, batch_size, lr, shuffle, record)
        except DivergenceError as exc:
            exc.history = history
            raise
        return history

    def predict_proba(self, X):
        """Output-layer activations for each row of ``X``, shape (n_samples, n_out)."""
        X = check.features(self._scaled(X)[0], self.sizes[0], self.dtype)
        self._sync_parameters()
        return self._backend.forward(self, X)[0]

    def predict(self, X):
        """Class labels (argmax of the outputs) for classifiers; outputs for regression,
        shape (n_samples,) for a single output unit, in the targets' units when
        :attr:`normalization` scales them."""
        out = self.predict_proba(X)
        if self._is_classifier():
            return np.argmax(out, axis=1)
        out = out[:, 0] if out.shape[1] == 1 else out
        return out if self._normalization is None else self._normalization.inverse_targets(out)

    def score(self, X, y):
        """Accuracy for classifiers, R² (averaged over outputs) for regression."""
        X, y = self._scaled(X, y)
        X = check.features(X, self.sizes[0], self.dtype)
        labels, targets = check.targets(y, X.shape[0], self.sizes[-1], self.dtype)
        self._sync_parameters()
        out = self._backend.forward(self, X)[0]
        if labels.size:
            return float(np.mean(np.argmax(out, axis=1) == labels))
        residual = np.sum((targets - out) ** 2, axis=0)
        spread = np.sum((targets - targets.mean(axis=0)) ** 2, axis=0)
        return float(np.mean(1 - residual / np.where(spread == 0, 1, spread)))

    # -- Nielsen's API ----------------------------------------------------------------------

    def feedforward(self, a):
        """Output for input ``a`` in Nielsen's column layout: ``(n_in, 1)`` or a batch of
        columns ``(n_in, m)`` gives ``(n_out, m)``; a 1-D ``(n_in,)`` gives ``(n_out,)``."""
        a = np.asarray(a)
        if a.ndim == 1:
            return self.predict_proba(a.reshape(1, -1))[0]
        if a.ndim != 2 or a.shape[0] != self.sizes[0]:
            raise ValueError(f"feedforward takes column vectors of shape ({self.sizes[0]}, m) "
                             f"as in Nielsen's network.py; got shape {a.shape} "
                             f"(use predict_proba for rows of shape (m, {self.sizes[0]}))")
        return self.predict_proba(a.T).T

    def backprop(self, x, y):
        """Gradient of one sample's cost: ``(nabla_b, nabla_w)`` in the shapes of
        ``biases`` and ``weights``. ``y`` is a target column or an integer label."""
        X = check.features(np.asarray(x).reshape(1, -1), self.sizes[0], self.dtype, name="x")
        labels, targets = check.targets(self._target_row(y), 1, self.sizes[-1], self.dtype)
        self._sync_parameters()
        return self._backend.gradient(self, X, labels, targets)

    def update_mini_batch(self, mini_batch, eta):
        """Nielsen's single gradient step on a list of ``(x, y)`` pairs, in their order."""
        X, labels, targets = self._training_arrays(*_stack_pairs(mini_batch))
        order = np.arange(X.shape[0], dtype=np.int64)
        self._backend.train(self, X, labels, targets, order, 0, X.shape[0], X.shape[0],
                            check.positive_float("eta", eta))

    def evaluate(self, test_data):
        """Number of ``(x, y)`` pairs whose predicted digit (argmax) equals ``y``
        (an integer label, or a one-hot column)."""
        X, y = _stack_pairs(test_data)
        y = np.asarray(y)
        labels = np.argmax(y, axis=1) if y.ndim == 2 else y
        return int(np.sum(np.argmax(self.predict_proba(X), axis=1) == labels))

    def SGD(self, training_data, epochs, mini_batch_size, eta, test_data=None):
        """Nielsen's training loop: prints ``Epoch j: correct / total`` after each epoch
        when ``test_data`` is given, else ``Epoch j complete``."""
        epochs = check.positive_int("epochs", epochs)
        mini_batch_size = check.positive_int("mini_batch_size", mini_batch_size)
        eta = check.positive_float("eta", eta)
        X, labels, targets = self._training_arrays(*_stack_pairs(training_data))
        test_data = list(test_data) if test_data is not None else None

        def report(epoch, _mean_cost):
            if test_data:
                print(f"Epoch {epoch}: {self.evaluate(test_data)} / {len(test_data)}",
                      flush=True)
            else:
                print(f"Epoch {epoch} complete", flush=True)

        self._train_epochs(X, labels, targets, epochs, mini_batch_size, eta, True, report)

    # -- shared machinery -------------------------------------------------------------------

    def _training_arrays(self, X, y):
        X = check.features(X, self.sizes[0], self.dtype)
        labels, targets = check.targets(y, X.shape[0], self.sizes[-1], self.dtype)
        self._task = "classification" if labels.size else "regression"
        return X, labels, targets

    def _train_epochs(self, X, labels, targets, epochs, batch_size, lr, shuffle, on_epoch_end,
                      on_progress=None, updates_per_call=None):
        """The epoch loop every training entry point shares.

        Each epoch's order comes from the network's generator. Without ``on_progress`` all
        mini-batches of an epoch run in one backend call; with it, the epoch runs in chunks of
        ``updates_per_call`` mini-batches (default: about 100 chunks per epoch) and
        ``on_progress(samples_done, n)`` is called between them. A KeyboardInterrupt raised
        during a chunk surfaces after it, at a mini-batch boundary, with the parameters
        consistent.
        """
        self._sync_parameters()
        n = X.shape[0]
        n_batches = -(-n // batch_size)
        if updates_per_call is None:
            updates_per_call = n_batches if on_progress is None else max(1, n_batches // 100)
        step = updates_per_call * batch_size
        last_finite = np.empty_like(self._params)
        # A backend may keep the fit's data on its device for all epochs (the CUDA one does).
        fit_scope = getattr(self._backend, "fit_scope", None)
        with fit_scope(X, labels, targets) if fit_scope else contextlib.nullcontext():
            for epoch in range(epochs):
                order = (self.rng.permutation(n) if shuffle else np.arange(n)).astype(np.int64)
                last_finite[...] = self._params
                total_cost = 0.0
                for start in range(0, n, step):
                    stop = min(n, start + step)
                    total_cost += self._backend.train(self, X, labels, targets, order, start,
                                                      stop, batch_size, lr)
                    if on_progress is not None:
                        on_progress(stop, n)
                mean_cost = float(total_cost) / n
                if not np.isfinite(mean_cost) or not np.isfinite(self._params).all():
                    self._params[...] = last_finite
                    raise DivergenceError(
                        f"training diverged in epoch {epoch + 1}: the loss became "
                        f"{mean_cost}. The network keeps the last finite parameters (from "
                        f"the end of epoch {epoch}). Try a smaller learning rate than {lr}.",
                        epoch)
                on_epoch_end(epoch, mean_cost)

    def _measure(self, X, labels, targets):
        """Mean cost and number correct (classification) of the network on checked arrays."""
        a, z = self._backend.forward(self, X)
        Y = _backends.one_hot(labels, self.sizes[-1], self.dtype) if labels.size else targets
        correct = int(np.sum(np.argmax(a, axis=1) == labels)) if labels.size else 0
        return oracle.mean_cost(a, z, Y, self.cost, self.output), correct

    def _is_classifier(self):
        if self._task is not None:
            return self._task == "classification"
        return self.sizes[-1] > 1

    def _target_row(self, y):
        y = np.asarray(y)
        if y.ndim == 0 and self.sizes[-1] > 1:
            return y.reshape(1)  # a class label
        return y.reshape(1, -1)

    def __repr__(self):
        return (f"Network({self.sizes}, activation={self.activation!r}, "
                f"output={self.output!r}, cost={self.cost!r}, dtype={self.dtype.name!r}, "
                f"backend={self.backend!r})")


def _is_dtype(value):
    try:
        return np.dtype(value).name in DTYPES
    except TypeError:
        return False


def _stack_pairs(pairs):
    """Nielsen's list of ``(x, y)`` column pairs → ``(X rows, y)`` arrays."""
    pairs = list(pairs)
    if not pairs:
        raise ValueError("the data is empty: expected a list of (x, y) pairs")
    try:
        X = np.stack([np.asarray(x).reshape(-1) for x, _ in pairs])
        ys = [np.asarray(y) for _, y in pairs]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"expected a list of (x, y) pairs of equal-sized arrays: {exc}") from None
    if all(y.ndim == 0 for y in ys):
        return X, np.array(ys)
    return X, np.stack([y.reshape(-1) for y in ys])

"""The public model: :class:`Network`, Nielsen's API and an array API in one class."""

import functools
import threading

import numpy as np

from . import _backends, _validation as check, config, io, oracle, state, training
from .initializers import SCHEMES, initial_parameters
from .normalization import Normalization
from .kernels import codes

DTYPES = ("float64", "float32")


_TRAINING = set()  # ids of the networks inside a training call
_TRAINING_LOCK = threading.Lock()


def _one_training_call(method):
    """Refuse a training call (``fit``, ``SGD``, ``update_mini_batch``) on a network that
    is already inside one, from another thread or from a callback: two at once would
    interleave their updates of one set of parameters and optimiser memory. The network
    itself holds no lock, so it stays picklable."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        with _TRAINING_LOCK:
            if id(self) in _TRAINING:
                raise RuntimeError(
                    f"{method.__name__}: this network is already training (in another "
                    f"thread, or from a callback of its own fit); one network trains one "
                    f"call at a time. Train a copy (copy.deepcopy) or wait for the first call.")
            _TRAINING.add(id(self))
        try:
            return method(self, *args, **kwargs)
        finally:
            with _TRAINING_LOCK:
                _TRAINING.discard(id(self))
    return guarded


class Network:
    """A fully connected feed-forward network trained by mini-batch gradient descent.

    Parameters
    ----------
    sizes : list of int
        Units per layer, input first: ``[784, 30, 10]`` is Nielsen's MNIST network.
    activation : {"sigmoid", "tanh", "relu", "identity"} or list of them
        Activation of the hidden layers: one for all, or one per hidden layer (``["relu",
        "tanh"]`` for ``[784, 512, 256, 10]``). Each layer's runs inside the one compiled
        kernel (CPU backends; ``"cuda"`` takes one activation for all).
    output : {None, "sigmoid", "softmax", "identity", "tanh", "relu"}
        Activation of the output layer; ``None`` uses ``activation`` (which must then be
        one name).
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
        Source of all randomness (initialisation, shuffling, validation splits, dropout).
    batch_norm : bool or list of bool
        Batch normalisation after the affine step of every hidden layer (True), or of the
        hidden layers marked True (one entry per hidden layer), with the definitions of
        ``torch.nn.BatchNorm1d``: batch statistics while training, running averages for
        prediction, learnable scale γ (starts at 1) and shift β (starts at 0). A normalised
        layer adds no bias of its own (β takes that role); its ``biases`` entry is zero and
        unused.

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
    batch_norm_layers : list
        Per hidden layer, None or an object whose ``gamma``, ``beta``, ``running_mean`` and
        ``running_var`` are views of the normalisation's parameters and statistics.

    Examples
    --------
    >>> net = Network([2, 3, 1], seed=0)
    >>> net.feedforward(np.array([[0.0], [1.0]])).shape
    (1, 1)
    """

    def __init__(self, sizes, activation="sigmoid", output=None, cost="quadratic",
                 init="standard_normal", dtype="float64", backend="numba", seed=None,
                 batch_norm=False):
        self.sizes = check.layer_sizes(sizes)
        self.num_layers = len(self.sizes)
        self.activation = _hidden_activations(activation, len(self.sizes) - 2)
        if output is None and not isinstance(self.activation, str):
            raise ValueError("output must be given when activation is a list (one per hidden "
                             "layer); e.g. output='softmax'")
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
        hidden = self._hidden_names()
        # (hidden code, or None when the hidden layers differ; output code; cost code)
        uniform = len(set(hidden)) <= 1
        self._codes = (codes.ACTIVATIONS[hidden[0] if hidden else "identity"]
                       if uniform else None, codes.OUTPUTS[self.output],
                       codes.COSTS[self.cost])
        # every weight layer's activation code, output last (the kernels' ``lay`` row ACT)
        self._layer_codes = tuple(codes.ACTIVATIONS[name] for name in hidden) + (
            codes.OUTPUTS[self.output],)
        self.batch_norm = _batch_norm_flags(batch_norm, len(self.sizes) - 2)
        self._set_batch_norm_rule(config.BN_MOMENTUM, config.BN_EPS, unbiased=True)
        # per weight layer: batch norm after the activation (Keras' Dense(n, activation),
        # BatchNormalization(); set by engine.Sequential) instead of before it
        self._bn_after = (False,) * (len(self.sizes) - 1)
        # Keras' losses are the engine's costs times a constant (engine.Sequential)
        self._loss_scale = 1.0
        self.rng = np.random.default_rng(seed)
        self._allocate_parameters()
        biases, weights = initial_parameters(self.init, self.sizes, self.rng)
        for layer, normalised in enumerate(self.batch_norm):
            if normalised:
                biases[layer] = np.zeros_like(biases[layer])
        self.biases, self.weights = biases, weights
        self.backend = backend
        self.history = {}
        self.normalization = None
        self.best_epoch = self.stopped_epoch = None  # set by fit(early_stopping=True)
        self._task = None  # "classification" or "regression" once fit has seen targets
        state.set_optimizer_state(self, None)

    def _hidden_names(self):
        """The activation of each hidden layer, in order."""
        if isinstance(self.activation, str):
            return (self.activation,) * (len(self.sizes) - 2)
        return tuple(self.activation)

    # -- parameters -----------------------------------------------------------------------

    def _allocate_parameters(self):
        """One flat array holds every weight and bias; the public lists are views of it.

        Batch normalisation's γ of every normalised unit follow, then their β (``_n_bn``
        units in all; unit ``u`` of layer ``l`` is ``_bn_off[l] + u``, ``_bn_off[l]`` is -1
        for layers without it). ``_bn_running`` holds the running mean (row 0) and running
        variance (row 1) of each normalised unit.
        """
        where = state.layout(self.sizes, self.batch_norm)
        self._n_bn = where.n_bn
        self._bn_off, self._w_off, self._b_off = where.bn_off, where.w_off, where.b_off
        self._sizes = np.asarray(self.sizes, dtype=np.int64)
        self._params = np.zeros(where.size, dtype=self.dtype)
        first_gamma = where.size - 2 * where.n_bn
        self._params[first_gamma:first_gamma + where.n_bn] = 1  # γ starts at 1, β at 0 (torch)
        self._bn_running = np.zeros((2, where.n_bn), dtype=self.dtype)
        self._bn_running[1] = 1  # running mean 0, running variance 1, as in torch
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
        for arr, view in zip(self._checked_parameters(kind, new, views), views):
            view[...] = arr

    @staticmethod
    def _checked_parameters(kind, new, views):
        """``new`` as arrays for ``views``, each checked (shape, numbers, finite)."""
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
        return checked

    def _sync_parameters(self):
        """Adopt arrays a user put into ``net.weights[l] = ...`` into the flat storage:
        both lists are checked before either is written, so a refused array leaves the
        parameters as they were."""
        edited = [(shown, views, kind) for shown, views, kind in (
            (self._weights_shown, self._weight_views, "weights"),
            (self._biases_shown, self._bias_views, "biases"))
            if len(shown) != len(views) or any(s is not v for s, v in zip(shown, views))]
        checked = [self._checked_parameters(kind, shown, views)
                   for shown, views, kind in edited]
        for (shown, views, _), arrays in zip(edited, checked):
            for arr, view in zip(arrays, views):
                view[...] = arr
            shown[:] = views

    def _set_batch_norm_rule(self, momentum, eps, unbiased):
        """Batch normalisation's constants: ``momentum`` (the weight of each new batch in
        the running averages, torch's meaning), ``eps`` (added to the variance, in training
        and prediction) and whether the running variance averages the unbiased batch
        variance (torch) or the biased one (Keras)."""
        self._bn_momentum, self._bn_eps, self._bn_unbiased = (float(momentum), float(eps),
                                                              bool(unbiased))

    def _bn_views(self, flat=None, eps=None, momentum=None, unbiased=None):
        """Per weight layer, None or an :class:`oracle.BatchNorm` whose γ and β are views
        of ``flat`` (default: the parameters; pass an optimiser slot row to get that
        slot's γ/β parts) and whose running statistics are views of ``_bn_running``."""
        flat = self._params if flat is None else flat
        base = flat.size - 2 * self._n_bn
        layers = []
        for off, n, after in zip(self._bn_off, self.sizes[1:], self._bn_after):
            if off < 0:
                layers.append(None)
                continue
            g, b = base + off, base + self._n_bn + off
            layers.append(oracle.BatchNorm(
                flat[g:g + n], flat[b:b + n], self._bn_running[0, off:off + n],
                self._bn_running[1, off:off + n],
                self._bn_eps if eps is None else eps,
                self._bn_momentum if momentum is None else momentum,
                self._bn_unbiased if unbiased is None else unbiased, after))
        return layers

    def _oracle_views(self, flat):
        """Views of a parameter-shaped flat array in the oracle's parameter order:
        weights, biases, then γ and β of each normalised layer."""
        biases, weights = self._unflatten(flat, copy=False)
        views = weights + biases
        for bn in self._bn_views(flat):
            if bn is not None:
                views += [bn.gamma, bn.beta]
        return views

    @property
    def batch_norm_layers(self):
        return self._bn_views()[:-1]

    # -- optimiser state (save/load stores it; fit resumes from it) -----------------------

    def _optimizer_state(self):
        """The optimiser's memory: ``{"optimizer": name, "step": int, <torch slot name>:
        array shaped like ``_params``, ...}`` (copies; JSON-able scalars). A later
        :meth:`fit` with the same ``optimizer`` continues from it."""
        return state.optimizer_state(self)

    def _set_optimizer_state(self, saved):
        """Adopt a dict from :meth:`_optimizer_state`; None resets to a fresh optimiser."""
        state.set_optimizer_state(self, saved)

    def reset_optimizer(self):
        """Forget the optimiser's memory (momentum, moment estimates, step count)."""
        state.set_optimizer_state(self, None)

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
        return io.save(self, path)

    # -- the array API (scikit-learn / Keras style) ----------------------------------------

    @_one_training_call
    def fit(self, X, y, epochs=1, batch_size=10, lr=0.1, validation_data=None, shuffle=True,
            verbose=0, *, optimizer="sgd", momentum=None, beta1=None, beta2=None, eps=None,
            rho=None, l2=0.0, dropout=0.0, lr_schedule="constant", early_stopping=False,
            patience=10, min_delta=0.0, validation_fraction=None,
            monitor_training_cost=False, monitor_training_accuracy=False, callbacks=None,
            checkpoint=None, resume=None, sample_weight=None, class_weight=None):
        """Train by mini-batch gradient descent: ``w ← w − (lr/m)·Σ∇`` per mini-batch, or
        another optimiser's rule.

        Parameters
        ----------
        X : array, shape (n_samples, n_in)
        y : array
            Class labels, shape (n_samples,) of whole numbers (or one-hot rows, shape
            (n_samples, n_out)), one-hot encoded internally; or float targets, shape
            (n_samples, n_out) (or (n_samples,) for one output unit). The same rule holds
            for every method that takes ``y`` (see ``engine._validation.targets``).
        epochs, batch_size : int
            Passes over the data, and samples per mini-batch (the last may be smaller).
        lr : float
            Learning rate (Nielsen's ``eta``, torch's ``lr``): the first epoch's rate.
        validation_data : (X_val, y_val), optional
            Evaluated after every epoch.
        shuffle : bool
            Draw a new order every epoch from the network's generator; with False, batches
            are ``X[0:m], X[m:2m], …`` in order.
        verbose : int
            1 prints one line per epoch.
        optimizer : {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"}
            The update rule, each as ``torch.optim`` defines it, on the mean gradient
            g = Σ∇/m of the mini-batch (see :mod:`engine.training`). Its memory is kept
            on the network: a later ``fit`` with the same optimiser continues from it.
            The same ideas as scikit-learn and Keras arrange them are "velocity",
            "velocity_nesterov", "adam_folded", "rmsprop_eps_inside" and
            "adagrad_eps_inside" (:class:`engine.Sequential` uses them).
        momentum : float in [0, 1), default 0.9
            μ of "momentum" and "nesterov" (torch's ``momentum``).
        beta1, beta2 : float in [0, 1), default 0.9 and 0.999
            Adam's moment decay rates (torch's ``betas``, Keras' ``beta_1``/``beta_2``).
        eps : float, default 1e-10 (adagrad), 1e-8 (rmsprop, adam)
            Added to the denominator of the adaptive rules, as in torch.
        rho : float in [0, 1), default 0.99
            RMSprop's decay (torch's ``alpha``, Keras' ``rho``).
        l2 : float
            network2's λ: the cost gains (λ/2n)·Σw² over the weights (not biases), n the
            number of training samples; "sgd" then updates w ← (1 − lr·λ/n)·w − (lr/m)·Σ∇,
            other optimisers add (λ/n)·w to g (torch's ``weight_decay=λ/n``).
        dropout : float or list of float
            Inverted dropout on the hidden layers: each unit is dropped with probability p
            and kept units are scaled by 1/(1 − p); training only. One rate for every hidden
            layer or one per hidden layer. Masks come from the network's generator.
        lr_schedule : str or schedule object
            "constant", "step" (:class:`~engine.training.StepDecay`), "invscaling"
            (scikit-learn's), "plateau" (Keras' ReduceLROnPlateau) or "adaptive"
            (scikit-learn's); or an instance of those classes with its own settings.
        early_stopping : bool
            Stop once ``val_loss`` has not improved by more than ``min_delta`` for
            ``patience`` epochs, and restore the parameters of the best epoch (recorded in
            ``self.best_epoch``; ``self.stopped_epoch`` is the epoch it stopped after).
            Without validation data, 10% of the samples are held out.
        validation_fraction : float in (0, 1), optional
            Hold out this fraction of the samples (chosen by the network's generator) as
            validation data instead of passing ``validation_data``.
        monitor_training_cost, monitor_training_accuracy : bool
            network2's flags: after each epoch, also measure the cost (with the L2 term) and
            accuracy on the whole training set.
        callbacks : list
            Objects with ``on_epoch_end(epoch, history)``, or functions of ``(epoch,
            history)``, called after each epoch with the history so far; a truthy return
            value stops training after that epoch.
        checkpoint : str or os.PathLike, optional
            After every epoch, save the network with its optimiser memory, random generator
            state, history and the run's progress to this ``.npz`` file (atomically: the
            previous checkpoint stays in place until the new one is complete). It is also a
            model file for :func:`engine.load`.
        resume : str or os.PathLike, optional
            A checkpoint of an interrupted ``fit``: adopt its network state and continue
            after its last epoch up to ``epochs`` in all, with the same data and options
            (checked), to the same result as the uninterrupted run on the same backend.

        sample_weight : array, shape (n_samples,), optional
            A non-negative weight per sample: each sample's cost (and so its gradient) is
            multiplied by it, and a mini-batch's cost stays the mean over its m samples,
            Σ sᵢ·Cᵢ / m, as Keras' and torch's weighted losses are reduced (scikit-learn's
            estimators divide by Σ sᵢ instead, see :class:`engine.MLPClassifier`). Weights
            apply to training only, not to validation.
        class_weight : dict or "balanced", optional
            With class labels: a weight per class, ``{label: weight}`` (missing labels weigh
            1), or "balanced", n / (k · count of the class) over the k classes present, as
            in scikit-learn and Keras; it multiplies ``sample_weight``.

        Returns
        -------
        history : dict
            ``"loss"``: mean training cost per epoch, each sample's cost taken before its
            mini-batch's update (as Keras and scikit-learn report it; without the L2 term);
            with validation data also ``"val_loss"`` (with network2's L2 term) and, for
            classification, ``"val_accuracy"``; ``"lr"`` with a schedule other than
            "constant"; ``"training_cost"`` and ``"training_accuracy"`` when monitored.

        Raises
        ------
        ValueError, TypeError
            For inputs of the wrong shape, dtype, range or content, before any training.
        """
        epochs = check.positive_int("epochs", epochs)
        batch_size = check.positive_int("batch_size", batch_size)
        lr = check.positive_float("lr", lr)
        opts = training.options(
            self, optimizer=optimizer, momentum=momentum, beta1=beta1, beta2=beta2, eps=eps,
            rho=rho, l2=l2, dropout=dropout, lr_schedule=lr_schedule,
            early_stopping=early_stopping, patience=patience, min_delta=min_delta,
            validation_fraction=validation_fraction,
            monitor_training_cost=monitor_training_cost,
            monitor_training_accuracy=monitor_training_accuracy, callbacks=callbacks)
        if checkpoint is not None:
            checkpoint = io.writable(checkpoint)
        # Validate everything (settings, data, file) before any state changes: a refused
        # call leaves the network as it was. A resumed run scales its data as the
        # checkpoint's network does; training.run adopts that network's state last.
        resumed = None if resume is None else self._read_checkpoint(resume)
        source = self if resumed is None else resumed[1]
        X, labels, targets = self._training_arrays(*source._scaled(X, y))
        weights = training.sample_weights(sample_weight, class_weight, labels, X.shape[0],
                                          self.sizes[-1], self.dtype)
        validation = None
        if validation_data is not None:
            if validation_fraction is not None:
                raise ValueError("pass validation_data or validation_fraction, not both")
            try:
                X_val, y_val = validation_data
            except (TypeError, ValueError):
                raise ValueError("validation_data must be a pair (X_val, y_val)") from None
            X_val, y_val = source._scaled(X_val, y_val)
            X_val = check.features(X_val, self.sizes[0], self.dtype, name="validation X")
            validation = (X_val,) + check.targets(y_val, X_val.shape[0], self.sizes[-1],
                                                   self.dtype, name="validation y")

        def report(epoch, history):
            if verbose:
                values = " - ".join(f"{key}: {values[-1]:.4g}" if key == "lr"
                                    else f"{key}: {values[-1]:.4f}"
                                    for key, values in history.items())
                print(f"Epoch {epoch + 1}/{epochs} - {values}", flush=True)

        self.history = training.run(self, X, labels, targets, epochs, batch_size, lr, shuffle,
                                    opts, validation, report, checkpoint=checkpoint,
                                    resume=resumed, sample_weight=weights)
        return self.history

    def _read_checkpoint(self, path):
        """Read and check a checkpoint for ``resume=path`` without adopting anything;
        returns ``(path, network in the file, (progress, arrays))``."""
        record = io.read(path)
        saved = Network._from_record(record, backend="numpy")
        progress = (record.meta["training"], record.training_arrays())
        if progress[0] is None:
            raise ValueError(f"resume={str(path)!r} is a model file without training progress; "
                             f"checkpoints come from fit(..., checkpoint=PATH)")
        mine = (self.sizes, self.activation, self.output, self.cost, self.dtype,
                self.batch_norm)
        theirs = (saved.sizes, saved.activation, saved.output, saved.cost, saved.dtype,
                  saved.batch_norm)
        if mine != theirs:
            raise ValueError(f"resume={str(path)!r} holds {saved!r}, not this {self!r}")
        return io.model_path(path), saved, progress

    @classmethod
    def _from_record(cls, record, backend="numba"):
        """The network a checked model file holds (:func:`engine.io.read`'s record):
        parameters bit for bit, optimiser memory, generator, normalisation, task, history."""
        path, meta, arrays = record
        sizes = meta["sizes"]
        try:
            net = cls(sizes, activation=meta["activation"], output=meta["output"],
                      cost=meta["cost"], init=meta["init"], dtype=meta["dtype"],
                      backend=backend, batch_norm=meta["batch_norm"])
        except ValueError as exc:
            raise io.ModelFileError(f"{path}: the metadata describe no valid network: "
                                    f"{exc}") from None
        for kind, views in (("weights", net._weight_views), ("biases", net._bias_views)):
            for layer, view in enumerate(views):
                # Written into the views directly (not through the checked setter) so a model
                # saved after training diverged still round-trips, NaN included; prediction and
                # training refuse such parameters.
                view[...] = arrays[f"{kind}_{layer}"]
        if net._n_bn:
            net._params[net._params.size - 2 * net._n_bn:] = arrays["batch_norm_params"]
            net._bn_running[...] = arrays["batch_norm_running"]
        optimizer = dict(meta["optimizer"])
        memory = {"optimizer": optimizer["name"], "step": optimizer["step"]}
        for slot in codes.SLOTS[optimizer["name"]]:
            memory[slot] = arrays[f"optimizer_{slot}"]
        net._set_optimizer_state(memory)
        if meta["rng_state"] is not None:
            try:
                bit_generator = getattr(np.random, meta["rng_state"]["bit_generator"])()
                bit_generator.state = meta["rng_state"]
            except (TypeError, ValueError, KeyError, OverflowError) as exc:
                raise io.ModelFileError(f"{path}: bad rng_state ({type(exc).__name__}: "
                                        f"{exc})") from None
            net.rng = np.random.Generator(bit_generator)
        if meta["normalization"] is not None:
            stats = {}
            for name in meta["normalization"]:
                arr = arrays[f"normalization_{name}"]
                if arr.dtype != np.float64 or arr.ndim != 1:
                    raise io.ModelFileError(f"{path}: normalization_{name} should be a 1-D "
                                            f"float64 array; found {arr.dtype} of shape "
                                            f"{arr.shape}")
                stats[name] = arr
            try:
                net.normalization = Normalization(**stats)
            except (TypeError, ValueError) as exc:
                raise io.ModelFileError(f"{path}: bad normalisation statistics: "
                                        f"{exc}") from None
        net._task = meta["task"]
        net.history = meta["history"]
        return net

    def predict_proba(self, X):
        """Output-layer activations for each row of ``X``, shape (n_samples, n_out)."""
        return self._predict_rows(self._prediction_input(self._scaled(X)[0]))

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
        X = self._prediction_input(X)
        labels, targets = check.targets(y, X.shape[0], self.sizes[-1], self.dtype)
        out = self._predict_rows(X)
        if labels.size:
            return float(np.mean(np.argmax(out, axis=1) == labels))
        residual = np.sum((targets - out) ** 2, axis=0)
        spread = np.sum((targets - targets.mean(axis=0)) ** 2, axis=0)
        # Constant targets (no spread): 1 for an exact fit, else 0, as scikit-learn's
        # r2_score (force_finite=True); never a ratio to the number of rows.
        exact = np.where(residual == 0, 1.0, 0.0)
        return float(np.mean(np.where(spread == 0, exact,
                                      1 - residual / np.where(spread == 0, 1, spread))))

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
        self._usable_parameters()
        return self._backend.gradient(self, X, labels, targets)

    @_one_training_call
    def update_mini_batch(self, mini_batch, eta, lmbda=0.0, n=None):
        """Nielsen's single gradient step on a list of ``(x, y)`` pairs, in their order;
        with network2's ``lmbda`` and ``n`` (training-set size), the L2 step
        ``w ← (1 − eta·lmbda/n)·w − (eta/m)·Σ∇``."""
        X, labels, targets = self._training_arrays(*_stack_pairs(mini_batch))
        eta = check.positive_float("eta", eta)
        plan = None
        if lmbda:
            lmbda = check.non_negative_float("lmbda", lmbda)
            n = check.positive_int("n", n)
            plan = training.Plan(self, hyper=state.network_hyper(self, lmbda / n))
        order = np.arange(X.shape[0], dtype=np.int64)
        self._usable_parameters()
        self._adopt_task(labels)
        self._backend.train(self, X, labels, targets, order, 0, X.shape[0], X.shape[0], eta,
                            plan=plan)

    def evaluate(self, test_data):
        """Number of ``(x, y)`` pairs whose predicted digit (argmax) equals ``y``
        (an integer label, or a one-hot column)."""
        X, y = _stack_pairs(test_data)
        X = self._prediction_input(self._scaled(X)[0])
        labels, _ = check.targets(y, X.shape[0], self.sizes[-1], self.dtype)
        if not labels.size:
            raise ValueError("evaluate counts correct class predictions, so each y must be a "
                             "class label or a one-hot column; got float targets (use "
                             "score for regression)")
        return int(np.sum(np.argmax(self._predict_rows(X), axis=1) == labels))

    @_one_training_call
    def SGD(self, training_data, epochs, mini_batch_size, eta, test_data=None, *, lmbda=0.0,
            evaluation_data=None, monitor_evaluation_cost=False,
            monitor_evaluation_accuracy=False, monitor_training_cost=False,
            monitor_training_accuracy=False, **options):
        """Nielsen's training loop.

        As network.py: prints ``Epoch j: correct / total`` after each epoch when
        ``test_data`` is given, else ``Epoch j complete``. As network2.py: ``lmbda`` is the
        L2 parameter, ``evaluation_data`` and the ``monitor_*`` flags print network2's
        lines (``Epoch j training complete``, ``Cost on training data: …``, …) and fill
        the lists returned. ``options`` are :meth:`fit`'s ``optimizer``, ``momentum``,
        ``beta1``, ``beta2``, ``eps``, ``rho``, ``dropout``, ``lr_schedule`` and
        ``callbacks``.

        Returns
        -------
        (evaluation_cost, evaluation_accuracy, training_cost, training_accuracy)
            network2's per-epoch lists (accuracies as counts); empty unless monitored.
        """
        allowed = ("optimizer", "momentum", "beta1", "beta2", "eps", "rho", "dropout",
                   "lr_schedule", "callbacks")
        for key in options:
            if key not in allowed:
                raise TypeError(f"SGD got an unexpected argument {key!r}; training options "
                                f"it accepts: {', '.join(allowed)}")
        epochs = check.positive_int("epochs", epochs)
        mini_batch_size = check.positive_int("mini_batch_size", mini_batch_size)
        eta = check.positive_float("eta", eta)
        opts = training.options(self, l2=lmbda, monitor_training_cost=monitor_training_cost,
                                monitor_training_accuracy=monitor_training_accuracy,
                                **options)
        X, y = _stack_pairs(training_data)
        X, labels, targets = self._training_arrays(X, y)
        test_data = list(test_data) if test_data is not None else None
        validation = None
        if evaluation_data is not None:
            X_val, y_val = _stack_pairs(evaluation_data)
            X_val = check.features(X_val, self.sizes[0], self.dtype, name="evaluation x")
            validation = (X_val,) + check.targets(y_val, X_val.shape[0], self.sizes[-1],
                                                   self.dtype, name="evaluation y")
        network2 = (evaluation_data is not None or monitor_evaluation_cost
                    or monitor_evaluation_accuracy or monitor_training_cost
                    or monitor_training_accuracy)
        n_val = 0 if validation is None else validation[0].shape[0]
        results = ([], [], [], [])

        def report(epoch, history):
            if test_data:
                print(f"Epoch {epoch}: {self.evaluate(test_data)} / {len(test_data)}",
                      flush=True)
            elif network2:
                print(f"Epoch {epoch} training complete", flush=True)
            else:
                print(f"Epoch {epoch} complete", flush=True)
            if monitor_training_cost:
                results[2].append(history["training_cost"][-1])
                print(f"Cost on training data: {results[2][-1]}")
            if monitor_training_accuracy:
                results[3].append(round(history["training_accuracy"][-1] * X.shape[0]))
                print(f"Accuracy on training data: {results[3][-1]} / {X.shape[0]}")
            if monitor_evaluation_cost and validation is not None:
                results[0].append(history["val_loss"][-1])
                print(f"Cost on evaluation data: {results[0][-1]}")
            if monitor_evaluation_accuracy and "val_accuracy" in history:
                results[1].append(round(history["val_accuracy"][-1] * n_val))
                print(f"Accuracy on evaluation data: {results[1][-1]} / {n_val}", flush=True)

        training.run(self, X, labels, targets, epochs, mini_batch_size, eta, True, opts,
                     validation, report)
        return results

    # -- shared machinery -------------------------------------------------------------------

    def _training_arrays(self, X, y):
        """Checked training arrays ``(X, labels, targets)``; changes nothing (the task is
        adopted with :meth:`_adopt_task` once everything else is checked too)."""
        X = check.features(X, self.sizes[0], self.dtype)
        labels, targets = check.targets(y, X.shape[0], self.sizes[-1], self.dtype)
        return X, labels, targets

    def _adopt_task(self, labels):
        self._task = "classification" if labels.size else "regression"

    def _prediction_input(self, X):
        """``X`` checked for :meth:`_predict_rows`. A backend that flags non-finite
        pre-activations itself (``flags_nonfinite``) spares the separate NaN/inf pass over
        X; :meth:`_forward` counts them only when a row is flagged."""
        return check.features(X, self.sizes[0], self.dtype,
                              finite=not self._backend.flags_nonfinite)

    def _predict_rows(self, X):
        """Output activations for rows ``X`` from :meth:`_prediction_input`."""
        return self._forward(X)[0]

    def _usable_parameters(self):
        """Adopt edited parameter lists, then refuse non-finite parameters (edited in place
        or loaded), naming the first array that holds them: prediction and training
        start here. Saving does not, so a diverged model still round-trips."""
        self._sync_parameters()
        if not (check.count_nonfinite(self._params) or check.count_nonfinite(self._bn_running)):
            return
        named = [(f"weights[{layer}]", w) for layer, w in enumerate(self._weight_views)]
        named += [(f"biases[{layer}]", b) for layer, b in enumerate(self._bias_views)]
        for layer, bn in enumerate(self._bn_views()):
            if bn is not None:
                named += [(f"batch_norm_layers[{layer}].{part}", getattr(bn, part))
                          for part in ("gamma", "beta", "running_mean", "running_var")]
        for name, values in named:
            bad = check.count_nonfinite(values)
            if bad:
                raise ValueError(f"the network's {name} holds {bad} NaN or infinite value(s); "
                                 f"it cannot predict or train with them. Assign finite "
                                 f"parameters or load a model saved before they went bad.")

    def _forward(self, X):
        """``(a, z)`` of the output layer for checked rows ``X``, on any backend.

        Every backend's result passes this one finiteness check: an output that is NaN or
        infinite raises a ValueError saying why (a NaN or infinite input, non-finite
        parameters, or finite inputs and parameters whose products overflow the dtype)
        instead of reaching the caller as NaN or as a label taken from NaN."""
        self._usable_parameters()
        a, z, suspicious = self._backend.forward(self, X)
        if suspicious:  # a bad input, or finite values that overflow on the way
            check.nonfinite_error(X)
        if check.count_nonfinite(a):
            self._overflow_error(X, a)
        return a, z

    def _overflow_error(self, X, a):
        """Raise the ValueError for non-finite outputs of finite inputs and parameters."""
        check.nonfinite_error(X)
        row = int(np.flatnonzero(~np.isfinite(a).all(axis=1))[0])
        x_max = float(np.max(np.abs(X[row])))
        w_max = float(max(np.max(np.abs(w)) for w in self._weight_views))
        culprit = ("inputs", "X") if x_max >= w_max else ("parameters", "the weights")
        raise ValueError(
            f"the forward pass overflowed on row {row} of X: the inputs and parameters are "
            f"finite, but the outputs are NaN or infinite because of the size of the "
            f"{culprit[0]} (largest |x| in the row {x_max:.3g}, largest |w| {w_max:.3g}; "
            f"{self.dtype.name} holds up to {np.finfo(self.dtype).max:.3g}). Scale "
            f"{culprit[1]} down (see Network.normalization) and try again.")

    def _measure(self, X, labels, targets):
        """Mean cost and number correct (classification) of the network on checked arrays."""
        a, z = self._forward(X)
        Y = _backends.one_hot(labels, self.sizes[-1], self.dtype) if labels.size else targets
        correct = int(np.sum(np.argmax(a, axis=1) == labels)) if labels.size else 0
        return self._loss_scale * oracle.mean_cost(a, z, Y, self.cost, self.output), correct

    def _is_classifier(self):
        if self._task is not None:
            return self._task == "classification"
        return self.sizes[-1] > 1

    def _target_row(self, y):
        y = np.asarray(y)
        if y.ndim == 0 and self.sizes[-1] > 1:
            return y.reshape(1)  # a class label
        return y.reshape(1, -1)

    # -- pickling: the state, never the backend's compiled dispatchers --------------------

    def __getstate__(self):
        """Everything but the backend object (it holds compiled kernels) and the views
        into the flat parameters; :meth:`__setstate__` rebuilds both."""
        self._sync_parameters()
        state = dict(self.__dict__)
        for key in ("_backend", "_bias_views", "_weight_views", "_weights_shown",
                    "_biases_shown"):
            state.pop(key, None)
        state["backend"] = self.backend
        return state

    def __setstate__(self, state):
        # arrays may come back read-only (joblib memory-maps them); training writes to them
        state = {key: value.copy() if isinstance(value, np.ndarray)
                 and not value.flags.writeable else value for key, value in state.items()}
        backend = state.pop("backend")
        self.__dict__.update(state)
        self._bias_views, self._weight_views = self._unflatten(self._params, copy=False)
        self._weights_shown = list(self._weight_views)
        self._biases_shown = list(self._bias_views)
        self.backend = backend

    def __repr__(self):
        extra = f", batch_norm={list(self.batch_norm)}" if any(self.batch_norm) else ""
        activation = (self.activation if isinstance(self.activation, str)
                      else list(self.activation))
        return (f"Network({self.sizes}, activation={activation!r}, "
                f"output={self.output!r}, cost={self.cost!r}, dtype={self.dtype.name!r}, "
                f"backend={self.backend!r}{extra})")


def _hidden_activations(value, n_hidden):
    """``activation`` checked: one name, or a tuple with one name per hidden layer."""
    if isinstance(value, str):
        return check.choice("activation", value, codes.ACTIVATIONS)
    names = check.per_hidden_layer("activation", value, n_hidden, "a name", "name")
    for i, name in enumerate(names):
        check.choice(f"activation[{i}]", name, codes.ACTIVATIONS)
    return names


def _batch_norm_flags(value, n_hidden):
    """``batch_norm`` as one bool per hidden layer."""
    if isinstance(value, (bool, np.bool_)):
        return (bool(value),) * n_hidden
    try:
        if isinstance(value, str):
            raise TypeError
        flags = tuple(value)
    except TypeError:
        raise TypeError(f"batch_norm must be True, False or a list of {n_hidden} booleans "
                        f"(one per hidden layer); got {value!r}") from None
    if len(flags) != n_hidden or not all(isinstance(f, (bool, np.bool_)) for f in flags):
        raise ValueError(f"batch_norm must be True, False or a list of {n_hidden} booleans "
                         f"(one per hidden layer); got {value!r}")
    return tuple(bool(f) for f in flags)


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

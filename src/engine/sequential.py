"""Keras' workflow on the engine's kernels: :class:`Sequential`, with Keras' definitions.

Create a model, add layers, compile, fit, evaluate, predict, save: a Keras model ports by
changing its imports (``import engine``, ``from engine import layers, optimizers``). The
model maps its layers onto one :class:`engine.Network` (see :mod:`engine.layers`) and its
training onto the engine's compiled epoch: no Python runs per mini-batch.

Keras' definitions kept
-----------------------
* Losses, each the mean over the mini-batch of a per-sample loss: ``mse`` /
  ``mean_squared_error`` = mean over the outputs of (a − y)² (no ½);
  ``binary_crossentropy`` = mean over the outputs of −y·ln a − (1 − y)·ln(1 − a);
  ``categorical_crossentropy`` = −Σ y·ln a; ``sparse_categorical_crossentropy`` the same
  with integer labels. The engine's costs are ½‖a − y‖² and summed cross-entropies; the
  model trains with every sample weighted by the ratio (2/n_out, 1/n_out or 1), which
  scales costs and gradients alike.
* Optimisers: :mod:`engine.optimizers` (Keras' rules and defaults).
* Batch normalisation: Keras' momentum (weight of the old average), ε = 0.001 and
  moving variance (the biased batch variance).
* ``fit``'s ``validation_split`` holds out the *last* samples, before shuffling.
* ``get_weights``/``set_weights``: Keras' order and shapes (kernel ``(n_in, n_out)``, bias
  ``(n_out,)``; batch norm γ, β, moving mean, moving variance).

Where it differs
----------------
* ``history.history["accuracy"]`` (and other training metrics) are measured on the whole
  training set at the end of each epoch; Keras averages them over the epoch's mini-batches
  as it goes. ``loss`` is Keras' (each sample's loss before its mini-batch's update).
* Dropout masks come from the model's seed, not from Keras' generator.
* ``BatchNormalization`` goes where Keras puts it: after a ``Dense`` layer's activation
  (``Dense(n, activation="tanh"), BatchNormalization()``), or between a ``Dense`` layer
  without activation and an ``Activation`` layer.
"""

import math
import sys
import time

import numpy as np

from . import _validation as check
from . import layers as layers_module
from . import optimizers as optimizers_module
from . import io, oracle, state, training
from .initializers import initial_parameters
from .network import Network

# Keras' loss names -> (engine cost, required output activation or None, sparse labels)
LOSSES = {
    "mse": ("quadratic", None, False),
    "mean_squared_error": ("quadratic", None, False),
    "binary_crossentropy": ("cross_entropy", "sigmoid", False),
    "categorical_crossentropy": ("cross_entropy", "softmax", False),
    "sparse_categorical_crossentropy": ("cross_entropy", "softmax", True),
}
METRICS = ("accuracy", "acc")


class _Group:
    """One layer of the engine's network: a Dense layer and what follows it."""

    def __init__(self, dense, n_in):
        self.dense, self.n_in = dense, n_in
        self.activation = layers_module.ACTIVATIONS[dense.activation]
        self.batch_norm = self.dropout = None
        self.bn_after = False  # batch norm after the activation (the layer keeps its bias)
        self.has_activation_layer = False


class History:
    """What :meth:`Sequential.fit` returns, as Keras' ``History``: ``history`` (a dict of
    per-epoch lists), ``epoch`` (the epoch indices) and ``params``."""

    def __init__(self, history, params):
        self.history = history
        self.epoch = list(range(len(history.get("loss", []))))
        self.params = params

    def __repr__(self):
        return f"History(keys={list(self.history)})"


class Sequential:
    """A linear stack of layers, trained with Keras' definitions on the engine's kernels.

    Parameters
    ----------
    layers : list of engine.layers objects, optional
        ``Input((n_features,))`` first, then ``Dense``, ``Dropout``, ``BatchNormalization``
        and ``Activation`` layers (see :mod:`engine.layers` for how they combine).
    name : str
    dtype : {"float32", "float64"}
        Precision of parameters and arithmetic (Keras' default is float32).
    backend : {"numba", "numba-parallel", "numpy"}
        Where the work runs (``"cuda"`` where the network fits its kernels).
    seed : int or None
        Source of the initial weights, shuffling and dropout masks.

    Examples
    --------
    >>> from engine import layers
    >>> model = Sequential([layers.Input((4,)), layers.Dense(8, activation="relu"),
    ...                     layers.Dense(3, activation="softmax")], seed=0)
    >>> model.count_params()
    67
    """

    def __init__(self, layers=None, name="sequential", *, dtype="float32", backend="numba",
                 seed=None):
        self.name = name
        self.dtype = np.dtype(check.choice("dtype", str(np.dtype(dtype)),
                                           ("float32", "float64")))
        self._backend_name = check.choice("backend", backend,
                                          ("numba", "numba-parallel", "numpy", "cuda"))
        self._seed = seed
        self.layers = []
        self._net = None
        self._compiled = None
        self.history = None
        self.stop_training = False
        for layer in layers or ():
            self.add(layer)

    # -- building ---------------------------------------------------------------------------

    def add(self, layer):
        """Append a layer (Keras' ``model.add``)."""
        if not isinstance(layer, layers_module.Layer):
            raise TypeError(f"add takes an engine.layers object (Input, Dense, Dropout, "
                            f"BatchNormalization, Activation); got {layer!r}")
        if isinstance(layer, layers_module.Input) != (not self.layers):
            raise ValueError("the first layer must be Input((n_features,)), and only the "
                             "first" if self.layers else
                             "start the model with layers.Input((n_features,))")
        if self._net is not None:
            raise ValueError("the model is built (its weights exist); build a new "
                             "Sequential to change its layers")
        self.layers.append(layer)
        self._name_layers()

    def pop(self):
        """Remove the last layer (Keras' ``model.pop``)."""
        if len(self.layers) < 2:
            raise ValueError("there is no layer to pop after the Input")
        if self._net is not None:
            raise ValueError("the model is built (its weights exist); build a new "
                             "Sequential to change its layers")
        return self.layers.pop()

    def _name_layers(self):
        counts = {}
        for layer in self.layers:
            kind = {"BatchNormalization": "batch_normalization",
                    "Input": "input_layer"}.get(type(layer).__name__,
                                                type(layer).__name__.lower())
            n = counts.get(kind, 0)
            counts[kind] = n + 1
            if layer.name is None or getattr(layer, "_auto_name", False):
                layer.name = kind if n == 0 else f"{kind}_{n}"
                layer._auto_name = True

    def _groups(self):
        """The engine's layers: one :class:`_Group` per Dense layer, checked."""
        if not self.layers or len(self.layers) < 2:
            raise ValueError("the model needs Input((n_features,)) and at least one Dense "
                             "layer")
        groups, n_in = [], self.layers[0].shape[0]
        for layer in self.layers[1:]:
            last = groups[-1] if groups else None
            where = f"{type(layer).__name__} layer {layer.name!r}"
            if isinstance(layer, layers_module.Dense):
                groups.append(_Group(layer, n_in))
                n_in = layer.units
            elif last is None:
                raise ValueError(f"{where} comes before any Dense layer: the engine's "
                                 f"networks start with a Dense layer after the Input")
            elif isinstance(layer, layers_module.BatchNormalization):
                if last.batch_norm is not None or last.dropout is not None:
                    raise ValueError(f"{where} must follow a Dense layer (or its Activation), "
                                     f"before any Dropout, once per Dense layer")
                last.batch_norm = layer
                last.bn_after = last.activation != "identity"
            elif isinstance(layer, layers_module.Activation):
                if last.has_activation_layer or last.dropout is not None or \
                        last.activation != "identity" or last.bn_after:
                    raise ValueError(f"{where} must follow a Dense layer without activation "
                                     f"(or its BatchNormalization), before any Dropout")
                last.activation = layers_module.ACTIVATIONS[layer.activation]
                last.has_activation_layer = True
            elif isinstance(layer, layers_module.Dropout):
                if last.dropout is not None:
                    raise ValueError(f"{where} follows another Dropout; use one with the "
                                     f"combined rate")
                last.dropout = layer
        if not groups:
            raise ValueError("the model needs at least one Dense layer")
        for i, group in enumerate(groups):
            output = i == len(groups) - 1
            name = f"Dense layer {group.dense.name!r}"
            if not output and group.activation == "softmax":
                raise ValueError(f"{name}: softmax is for the output layer; hidden layers take "
                                 f"'relu', 'tanh', 'sigmoid' or 'linear'")
            if output and (group.batch_norm is not None or group.dropout is not None):
                raise ValueError(f"{name} is the output layer: BatchNormalization and Dropout "
                                 f"apply to hidden layers only")
            if not group.dense.use_bias and (group.batch_norm is None or group.bn_after):
                raise ValueError(f"{name}: use_bias=False is supported before a "
                                 f"BatchNormalization layer only (which adds its own shift), "
                                 f"without an activation between them")
        moments = {(g.batch_norm.momentum, g.batch_norm.epsilon) for g in groups
                   if g.batch_norm is not None}
        if len(moments) > 1:
            raise ValueError(f"every BatchNormalization layer of a model must share momentum "
                             f"and epsilon; got {sorted(moments)}")
        return groups

    def build(self):
        """Create the weights (done by the first call that needs them)."""
        if self._net is not None:
            return
        groups = self._groups()
        net = self._network(groups, "quadratic", seed=self._seed)
        for layer, group in enumerate(groups):
            dense = group.dense
            _, weights = initial_parameters(dense.kernel_initializer,
                                            [group.n_in, dense.units], net.rng)
            net._weight_views[layer][...] = weights[0]
            bias = 1.0 if dense.bias_initializer == "ones" and dense.use_bias else 0.0
            net._bias_views[layer][...] = bias
        self._groups_built = groups
        self._net = net

    def _network(self, groups, cost, seed=None):
        sizes = [groups[0].n_in] + [g.dense.units for g in groups]
        net = Network(sizes, activation=[g.activation for g in groups[:-1]],
                      output=groups[-1].activation, cost=cost, dtype=self.dtype,
                      backend=self._backend_name, seed=seed, init="glorot_uniform",
                      batch_norm=[g.batch_norm is not None for g in groups[:-1]])
        _keras_batch_norm(net, groups)
        return net

    @property
    def network(self):
        """The :class:`engine.Network` the model runs on (built on first use)."""
        self.build()
        return self._net

    # -- compile ----------------------------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """Choose the optimiser (an :mod:`engine.optimizers` object or its name), the loss
        (one of :data:`LOSSES`) and the metrics (``["accuracy"]`` or none)."""
        self.build()
        optimizer = optimizers_module.get(optimizer)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(map(repr, LOSSES))}; got "
                             f"{loss!r}")
        cost, needs_output, sparse = LOSSES[loss]
        output = self._net.output
        if needs_output is not None and output != needs_output:
            raise ValueError(f"loss={loss!r} takes probabilities from a {needs_output!r} output "
                             f"layer; the last Dense layer has activation="
                             f"{self._groups_built[-1].dense.activation!r}")
        metrics = list(metrics or [])
        for metric in metrics:
            if metric not in METRICS:
                raise ValueError(f"metrics may hold 'accuracy'; got {metric!r}")
            if cost == "quadratic":
                raise ValueError("metrics=['accuracy'] needs a classification loss "
                                 "(binary, categorical or sparse categorical crossentropy)")
        if cost != self._net.cost:
            old, net = self._net, self._network(self._groups_built, cost)
            net._params[...] = old._params
            net._bn_running[...] = old._bn_running
            net.rng = old.rng
            self._net = net
        n_out = self._net.sizes[-1]
        self._net._loss_scale = {"mse": 2.0 / n_out, "mean_squared_error": 2.0 / n_out,
                                 "binary_crossentropy": 1.0 / n_out}.get(loss, 1.0)
        self._net.reset_optimizer()
        self._compiled = {"optimizer": optimizer, "loss": loss, "metrics": metrics,
                          "sparse": sparse, "fresh_optimizer": True}
        self.optimizer, self.loss = optimizer, loss

    def _require_compiled(self, what):
        if self._compiled is None:
            raise RuntimeError(f"call compile(optimizer=..., loss=...) before {what}")
        return self._compiled

    # -- data -------------------------------------------------------------------------------

    def _arrays(self, x, y, name="x"):
        """``x`` checked, and ``y`` as the engine's (labels, targets) for the loss."""
        net = self._net
        X = check.features(x, net.sizes[0], self.dtype, name=name)
        y = np.asarray(y)
        n_out = net.sizes[-1]
        if self._compiled["sparse"]:
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]
            if y.ndim != 1:
                raise ValueError(f"sparse_categorical_crossentropy takes integer class labels "
                                 f"of shape ({X.shape[0]},); got shape {y.shape}")
        elif y.ndim == 1 and n_out == 1:
            y = y.reshape(-1, 1)
        elif y.ndim != 2:
            raise ValueError(f"{self.loss} takes targets of shape ({X.shape[0]}, {n_out}) "
                             f"(one-hot rows for categorical_crossentropy); got shape "
                             f"{y.shape}")
        if not self._compiled["sparse"]:
            y = check._numeric_array("y", y).astype(self.dtype)
        labels, targets = check.targets(y, X.shape[0], n_out, self.dtype)
        return X, labels, targets

    def _outputs(self, X):
        """Output activations and pre-activations (prediction mode)."""
        net = self._net
        net._sync_parameters()
        return net._backend.forward(net, X)[:2]

    def _loss_and_metrics(self, X, labels, targets):
        """Keras' loss and each compiled metric on checked arrays."""
        a, z = self._outputs(X)
        net = self._net
        Y = targets if targets.shape[0] else np.eye(net.sizes[-1], dtype=self.dtype)[labels]
        loss = net._loss_scale * oracle.mean_cost(a, z, Y, net.cost, net.output)
        values = {"loss": float(loss)}
        for metric in self._compiled["metrics"]:
            values["accuracy"] = _accuracy(a, labels, targets, net.output)
        return values

    # -- training ---------------------------------------------------------------------------

    def fit(self, x, y, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, sample_weight=None):
        """Train as Keras' ``fit`` does; returns a :class:`History`.

        ``validation_split`` holds out the last fraction of the samples (before shuffling);
        ``validation_data`` is an ``(x_val, y_val)`` pair. ``callbacks``: Keras-style
        objects whose ``on_epoch_end(epoch, logs)`` is called after each epoch with the
        epoch's values (``on_train_begin``/``on_train_end`` too when they have them); a
        callback stops training by setting ``model.stop_training = True``.
        ``verbose``: 0 silent, 1 (or "auto") a progress bar per epoch, 2 a line per epoch.
        """
        compiled = self._require_compiled("fit")
        batch_size = 32 if batch_size is None else check.positive_int("batch_size", batch_size)
        epochs = check.positive_int("epochs", epochs)
        verbose = _verbosity(verbose)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False; got {shuffle!r}")
        net = self._net
        X, labels, targets = self._arrays(x, y)
        n = X.shape[0]
        weights = None
        if sample_weight is not None:
            weights = check._numeric_array("sample_weight", sample_weight).astype(self.dtype)
            if weights.shape != (n,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
                raise ValueError(f"sample_weight must hold {n} finite non-negative numbers, "
                                 f"one per sample; got shape {weights.shape}")
        validation = None
        if validation_data is not None:
            try:
                x_val, y_val = validation_data
            except (TypeError, ValueError):
                raise ValueError("validation_data must be a pair (x_val, y_val)") from None
            validation = self._arrays(x_val, y_val, name="validation x")
        elif validation_split:
            if isinstance(validation_split, bool) or not 0 < validation_split < 1:
                raise ValueError(f"validation_split must lie strictly between 0 and 1; got "
                                 f"{validation_split!r}")
            split_at = int(math.ceil(n * (1.0 - validation_split)))  # Keras' rule
            if split_at < 1 or split_at >= n:
                raise ValueError(f"validation_split={validation_split} of {n} samples leaves "
                                 f"no training or no validation sample")
            validation = (X[split_at:], labels[split_at:] if labels.size else labels,
                          targets[split_at:] if targets.shape[0] else targets)
            X = X[:split_at]
            labels = labels[:split_at] if labels.size else labels
            targets = targets[:split_at] if targets.shape[0] else targets
            weights = None if weights is None else weights[:split_at]
            n = split_at
        callbacks = _callbacks(callbacks, self)
        optimizer = compiled["optimizer"]
        opts = training.options(net, **optimizer.engine_options(),
                                dropout=[0.0 if g.dropout is None else g.dropout.rate
                                         for g in self._groups_built[:-1]],
                                callbacks=[_KerasCallback(cb, self) for cb in callbacks])
        if compiled["fresh_optimizer"]:  # Keras' optimiser memory starts at compile
            state.ensure_optimizer_state(net, opts.optimizer)
            net._opt_slots[...] = optimizer.initial_slot_value()
            compiled["fresh_optimizer"] = False
        if net._loss_scale != 1.0:  # Keras' loss: every sample weighs the ratio
            weights = np.full(n, net._loss_scale, self.dtype) if weights is None \
                else weights * self.dtype.type(net._loss_scale)
        n_steps = -(-n // batch_size)
        bar = _ProgressBar(epochs, n_steps, batch_size, verbose)
        # A moving bar is redrawn about 10 times per epoch: each redraw ends a call of the
        # compiled epoch, so a bar per mini-batch would cost Python per mini-batch.
        redraw = bar.progress if verbose == 1 and bar.dynamic else None

        def report(epoch, history):
            if compiled["metrics"]:
                train_values = self._loss_and_metrics(X, labels, targets)
                history.setdefault("accuracy", []).append(train_values["accuracy"])
                if validation is not None and len(history.get("val_accuracy", [])) <= epoch:
                    values = self._loss_and_metrics(*validation)
                    history.setdefault("val_accuracy", []).append(values["accuracy"])
            elif "val_accuracy" in history:
                del history["val_accuracy"]  # Keras records only the metrics compiled
            bar.end_epoch(epoch, {k: history[k][-1] for k in sorted(history)})  # Keras' order

        for cb in callbacks:
            if hasattr(cb, "on_train_begin"):
                cb.on_train_begin({})
        self.stop_training = False
        bar.start()
        history = training.run(net, X, labels, targets, epochs, batch_size,
                               optimizer.learning_rate, bool(shuffle), opts, validation,
                               report, on_progress=redraw, sample_weight=weights,
                               updates_per_call=max(1, -(-n_steps // 10)))
        history = {k: history[k] for k in sorted(history) if k != "val_accuracy"
                   or compiled["metrics"]}
        for cb in callbacks:
            if hasattr(cb, "on_train_end"):
                cb.on_train_end({k: v[-1] for k, v in history.items()})
        self.history = History(history, {"verbose": verbose, "epochs": epochs,
                                         "steps": n_steps})
        return self.history

    def evaluate(self, x, y, batch_size=None, verbose="auto", return_dict=False):
        """Keras' loss (and metrics) in prediction mode: ``[loss, accuracy]``, or the loss
        alone without metrics; a dict with ``return_dict=True``."""
        self._require_compiled("evaluate")
        if batch_size is not None:
            check.positive_int("batch_size", batch_size)
        verbosity = _verbosity(verbose)
        values = self._loss_and_metrics(*self._arrays(x, y))
        if verbosity:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in values.items()), flush=True)
        if return_dict:
            return values
        return values["loss"] if len(values) == 1 else list(values.values())

    def predict(self, x, batch_size=None, verbose="auto"):
        """The output layer's activations for each row of ``x``, shape (n, units)."""
        if batch_size is not None:
            check.positive_int("batch_size", batch_size)
        _verbosity(verbose)
        return self.network.predict_proba(x)

    # -- weights ----------------------------------------------------------------------------

    def _layer_weights(self):
        """Per Keras layer, its list of (getter, setter, shape) in Keras' order."""
        net = self.network
        out, group_of = [], {}
        for i, g in enumerate(self._groups_built):
            group_of[id(g.dense)] = (i, g)
            if g.batch_norm is not None:
                group_of[id(g.batch_norm)] = (i, g)
        base = net._params.size - 2 * net._n_bn
        for layer in self.layers:
            entry = []
            if id(layer) in group_of:
                i, g = group_of[id(layer)]
                w, b = net._weight_views[i], net._bias_views[i]
                n = g.dense.units
                if isinstance(layer, layers_module.Dense):
                    entry.append((lambda w=w: w.T.copy(), lambda v, w=w: w.__setitem__(
                        Ellipsis, v.T), (g.n_in, n)))
                    if layer.use_bias:
                        entry.append((lambda b=b: b[:, 0].copy(), lambda v, b=b: b.__setitem__(
                            Ellipsis, v[:, None]), (n,)))
                else:
                    off = int(net._bn_off[i])
                    gamma = net._params[base + off:base + off + n]
                    beta = net._params[base + net._n_bn + off:base + net._n_bn + off + n]
                    mean, var = net._bn_running[0, off:off + n], net._bn_running[1, off:off + n]
                    # Normalised before its activation, the engine's layer adds no bias: a
                    # Keras bias before batch norm (whose gradient is zero) is kept in the
                    # unused bias slot and folded into the moving mean, which Keras measures
                    # after adding it. After the activation, the bias is the layer's own.
                    bias = np.zeros_like(mean) if g.bn_after else b[:, 0]
                    entry += [(lambda a=gamma: a.copy(), lambda v, a=gamma: a.__setitem__(
                        Ellipsis, v), (n,)),
                              (lambda a=beta: a.copy(), lambda v, a=beta: a.__setitem__(
                                  Ellipsis, v), (n,)),
                              (lambda a=mean, c=bias: a + c,
                               lambda v, a=mean, c=bias: a.__setitem__(Ellipsis, v - c), (n,)),
                              (lambda a=var: a.copy(), lambda v, a=var: a.__setitem__(
                                  Ellipsis, v), (n,))]
            out.append(entry)
        return out

    def get_weights(self):
        """Every weight array, in Keras' order and shapes (copies)."""
        return [get() for entry in self._layer_weights() for get, _, _ in entry]

    def set_weights(self, weights):
        """Set every weight array from a list in Keras' order and shapes (as
        :meth:`get_weights` returns, or a Keras model's ``get_weights()``)."""
        weights = list(weights)
        slots = [slot for entry in self._layer_weights() for slot in entry]
        if len(weights) != len(slots):
            raise ValueError(f"set_weights needs {len(slots)} arrays; got {len(weights)}")
        checked = []
        for i, (value, (_, _, shape)) in enumerate(zip(weights, slots)):
            arr = check._numeric_array(f"weights[{i}]", value)
            if arr.shape != shape:
                raise ValueError(f"weights[{i}] must have shape {shape}; got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"weights[{i}] must hold finite numbers")
            checked.append(arr.astype(self.dtype))
        # in Keras' order: a Dense layer's bias is set before the moving mean it is folded
        # into (see _layer_weights)
        for (_, set_value, _), value in zip(slots, checked):
            set_value(value)
        self._net._sync_parameters()

    def count_params(self):
        """The number of weights, batch norm's moving statistics included (as Keras)."""
        return sum(int(np.prod(shape)) for entry in self._layer_weights()
                   for _, _, shape in entry)

    def summary(self, print_fn=None):
        """Print the layers, their output shapes and parameter counts (Keras' table)."""
        print_fn = print_fn or print
        entries = self._layer_weights()
        rows = []
        width = self.layers[0].shape[0]
        trainable = non_trainable = 0
        for layer, entry in zip(self.layers, entries):
            if isinstance(layer, layers_module.Input):
                continue
            if isinstance(layer, layers_module.Dense):
                width = layer.units
            count = sum(int(np.prod(shape)) for _, _, shape in entry)
            if isinstance(layer, layers_module.BatchNormalization):
                trainable += count // 2
                non_trainable += count - count // 2
            else:
                trainable += count
            rows.append((f"{layer.name} ({type(layer).__name__})", f"(None, {width})",
                         f"{count:,}"))
        widths = tuple(max(len(h), *(len(r[i]) for r in rows)) for i, h in
                       enumerate(("Layer (type)", "Output Shape", "Param #")))
        rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
        lines = [f'Model: "{self.name}"', rule,
                 "| " + " | ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in
                                   enumerate(zip(("Layer (type)", "Output Shape", "Param #"),
                                                 widths))) + " |", rule.replace("-", "=")]
        for row in rows:
            lines.append("| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                           for i, (c, w) in enumerate(zip(row, widths))) + " |")
        lines.append(rule)
        item = self.dtype.itemsize
        for label, count in (("Total", trainable + non_trainable), ("Trainable", trainable),
                             ("Non-trainable", non_trainable)):
            lines.append(f" {label} params: {count:,} ({_bytes(count * item)})")
        print_fn("\n".join(lines))

    # -- files ------------------------------------------------------------------------------

    def get_config(self):
        config = {"name": self.name, "layers": [layer.get_config() for layer in self.layers]}
        if self._compiled is not None:
            config["compile"] = {"optimizer": self._compiled["optimizer"].get_config(),
                                 "loss": self._compiled["loss"],
                                 "metrics": self._compiled["metrics"]}
        return config

    def save(self, path):
        """Write the model (layers, weights, optimiser memory, compile settings) to an
        ``.npz`` file in the engine's format; :func:`engine.load` returns a Sequential."""
        return io.save(self.network, path, sequential=self.get_config())

    @classmethod
    def _from_saved(cls, net, config):
        """The model a saved file describes, on the loaded network ``net``."""
        model = cls([layers_module.from_config(c) for c in config["layers"]],
                    name=config.get("name", "sequential"), dtype=net.dtype.name,
                    backend=net.backend)
        groups = model._groups()
        model._groups_built = groups
        _keras_batch_norm(net, groups)
        compile_config = config.get("compile")
        if compile_config is not None:
            state = net._optimizer_state()
            model._net = net
            model.compile(optimizers_module.from_config(compile_config["optimizer"]),
                          compile_config["loss"], compile_config["metrics"])
            model._net._set_optimizer_state(state)
            model._net.rng = net.rng
            model._compiled["fresh_optimizer"] = False
        else:
            model._net = net
        model._net.history = net.history
        return model

    def __repr__(self):
        return f"Sequential(name={self.name!r}, layers={self.layers!r})"


def _keras_batch_norm(net, groups):
    """Keras' batch-normalisation rule on ``net`` (the model's layers share it)."""
    bn = next((g.batch_norm for g in groups if g.batch_norm is not None), None)
    if bn is not None:
        net._set_batch_norm_rule(momentum=1.0 - bn.momentum, eps=bn.epsilon, unbiased=False)
    net._bn_after = tuple(g.batch_norm is not None and g.bn_after for g in groups)


def _accuracy(a, labels, targets, output):
    """Keras' accuracy for the loss: sparse (argmax = label), categorical (argmax = argmax
    of the one-hot row) or binary (a > 0.5 equals the target, mean over outputs)."""
    if labels.size:
        return float(np.mean(np.argmax(a, axis=1) == labels))
    if output == "softmax":
        return float(np.mean(np.argmax(a, axis=1) == np.argmax(targets, axis=1)))
    return float(np.mean((a > 0.5) == (targets > 0.5)))


def _verbosity(verbose):
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto'; got {verbose!r}")
    return verbose


def _bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024


def _callbacks(value, model):
    if value is None:
        return []
    value = list(value) if not hasattr(value, "on_epoch_end") else [value]
    for i, cb in enumerate(value):
        if not callable(getattr(cb, "on_epoch_end", None)):
            raise TypeError(f"callbacks[{i}] must have an on_epoch_end(epoch, logs) method "
                            f"(Keras' Callback protocol); got {cb!r}")
        if callable(getattr(cb, "set_model", None)):
            cb.set_model(model)
        else:
            try:
                cb.model = model
            except AttributeError:
                pass
    return value


class _KerasCallback:
    """A Keras-style callback as an engine callback: ``on_epoch_end(epoch, logs)`` with the
    epoch's last values; stops when it sets ``model.stop_training``."""

    def __init__(self, callback, model):
        self.callback, self.model = callback, model

    def on_epoch_end(self, epoch, history):
        self.callback.on_epoch_end(epoch, {k: v[-1] for k, v in history.items()})
        return self.model.stop_training


class _ProgressBar:
    """Keras' verbose output: ``Epoch i/N``, then a bar of mini-batches with the elapsed
    time (verbose=1) and the epoch's values; one line per epoch with verbose=2."""

    def __init__(self, epochs, steps, batch_size, verbose, stream=None):
        self.epochs, self.steps, self.batch_size = epochs, steps, batch_size
        self.verbose, self.stream = verbose, stream
        self.started, self.epoch, self.header = None, 0, False
        # the bar moves where it can be redrawn; elsewhere (a log file) one line per epoch
        self.dynamic = bool(getattr(self._out(), "isatty", lambda: False)())

    def _out(self):
        return self.stream or sys.stdout

    def _line(self, steps_done, end=""):
        width = 30
        filled = int(width * steps_done / self.steps)
        bar = "=" * max(0, filled - 1) + (">" if filled < width else "=") if filled else ""
        elapsed = time.perf_counter() - self.started
        return (f"{chr(13) if self.dynamic else ''}{steps_done}/{self.steps} "
                f"[{bar.ljust(width, '.')}] - {elapsed:.0f}s "
                f"{1e3 * elapsed / max(steps_done, 1):.0f}ms/step{end}")

    def start(self):
        """An epoch starts (its time is measured from here)."""
        self.started, self.header = time.perf_counter(), False

    def _header(self):
        if not self.header and self.verbose == 1:
            print(f"Epoch {self.epoch + 1}/{self.epochs}", file=self._out(), flush=True)
            self.header = True

    def progress(self, samples_done, n):
        self._header()
        steps_done = min(self.steps, -(-samples_done // self.batch_size))
        print(self._line(steps_done), end="", file=self._out(), flush=True)

    def end_epoch(self, epoch, values):
        self.epoch = epoch
        if self.verbose:
            values = " - ".join(f"{k}: {v:.4f}" for k, v in values.items() if k != "lr")
            if self.verbose == 1:
                self._header()
                print(self._line(self.steps, f" - {values}"), file=self._out(), flush=True)
            else:
                print(f"Epoch {epoch + 1}/{self.epochs} - {values}", file=self._out(),
                      flush=True)
        self.epoch = epoch + 1
        self.start()

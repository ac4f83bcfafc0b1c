"""Training beyond Nielsen's plain SGD: optimisers, learning-rate schedules, L2, dropout, early
stopping, monitoring and callbacks.

:meth:`engine.Network.fit` validates its arguments here (:func:`options`), then runs
:func:`run`. The numbers themselves are computed by the backends: the NumPy oracle
(:mod:`engine.oracle`) and the compiled kernels, which receive a :class:`Plan` (plain
arrays and integer codes) for each call.

Optimisers (``optimizer=``), each ``torch.optim``'s documented rule applied to the mean
gradient g = Σ∇/m of the mini-batch; ``lr`` is torch's ``lr``:

============  ==================================  ==========================================
name          torch.optim equivalent              update
============  ==================================  ==========================================
"sgd"         SGD(lr)                             p ← p − (lr/m)·Σ∇ (Nielsen's rule)
"momentum"    SGD(lr, momentum=μ)                 b ← μ·b + g; p ← p − lr·b
"nesterov"    SGD(lr, momentum=μ, nesterov=True)  b ← μ·b + g; p ← p − lr·(g + μ·b)
"adagrad"     Adagrad(lr, eps=ε)                  s ← s + g²; p ← p − lr·g/(√s + ε)
"rmsprop"     RMSprop(lr, alpha=ρ, eps=ε)         v ← ρ·v + (1 − ρ)·g²; p ← p − lr·g/(√v + ε)
"adam"        Adam(lr, betas=(β1, β2), eps=ε)     bias-corrected moments, see oracle.adam_update
============  ==================================  ==========================================

The same ideas as scikit-learn's MLP and Keras write them (``kernels/codes.py``):

====================  ======================================  ================================
name                  scikit-learn / Keras                    update
====================  ======================================  ================================
"velocity"            solver="sgd" / SGD(momentum=μ)          v ← μ·v − lr·g; p ← p + v
"velocity_nesterov"   nesterovs_momentum / nesterov=True      v ← μ·v − lr·g;
                                                              p ← p + μ·v − lr·g
"adam_folded"         solver="adam" / Adam                    p ← p − lr_t·m/(√v + ε),
                                                              lr_t = lr·√(1 − β2ᵗ)/(1 − β1ᵗ)
"rmsprop_eps_inside"  Keras' RMSprop(rho=ρ, epsilon=ε)        v ← ρ·v + (1 − ρ)·g²;
                                                              p ← p − lr·g/√(v + ε)
"adagrad_eps_inside"  Keras' Adagrad(epsilon=ε)               s ← s + g²; p ← p − lr·g/√(s + ε)
====================  ======================================  ================================

L2 (``l2=λ``) is network2's: the cost gains (λ/2n)·Σw² over the weights (not biases, not
batch-norm γ/β), n the number of training samples. For "sgd" the update is network2's
w ← (1 − lr·λ/n)·w − (lr/m)·Σ∇; the other optimisers add (λ/n)·w to g first, which is
torch's (coupled) ``weight_decay=λ/n``.
"""

import numbers

import numpy as np

from . import _validation as check
from . import io
from .errors import DivergenceError
from .kernels import codes
from .state import (DEFAULT_BETA1, DEFAULT_BETA2, DEFAULT_EPS, DEFAULT_MOMENTUM, DEFAULT_RHO,
                    Snapshot, adopt, default_hyper, ensure_optimizer_state, network_hyper)

OPTIMIZERS = tuple(codes.OPTIMIZERS)

# Which optimisers read which hyper-parameter (for clear errors about misplaced ones).
_USES = {"momentum": ("momentum", "nesterov", "velocity", "velocity_nesterov"),
         "beta1": ("adam", "adam_folded"), "beta2": ("adam", "adam_folded"),
         "eps": ("adagrad", "rmsprop", "adam", "adam_folded", "adagrad_eps_inside",
                 "rmsprop_eps_inside"), "rho": ("rmsprop", "rmsprop_eps_inside")}


# ---------------------------------------------------------------------------------------
# Learning-rate schedules: the rate of each epoch (changed between epochs only)
# ---------------------------------------------------------------------------------------


class Constant:
    """The same rate every epoch."""

    def start(self, lr, n_samples):
        """Called before the first epoch; returns the first epoch's rate."""
        self.lr = lr
        return lr

    def after_epoch(self, epoch, history):
        """Called after epoch ``epoch`` (0-based); returns the next epoch's rate."""
        return self.lr

    def __repr__(self):
        return f"{type(self).__name__}()"


class StepDecay(Constant):
    """``torch.optim.lr_scheduler.StepLR``: lr·gamma^⌊epoch/step_size⌋."""

    def __init__(self, step_size=10, gamma=0.1):
        self.step_size = check.positive_int("step_size", step_size)
        self.gamma = check.positive_float("gamma", gamma)

    def start(self, lr, n_samples):
        self.lr0 = self.lr = lr
        return lr

    def after_epoch(self, epoch, history):
        self.lr = self.lr0 * self.gamma ** ((epoch + 1) // self.step_size)
        return self.lr

    def __repr__(self):
        return f"StepDecay(step_size={self.step_size}, gamma={self.gamma})"


class InvScaling(Constant):
    """scikit-learn's ``learning_rate="invscaling"``: after e epochs of n samples the rate is
    lr / (e·n + 1)^power_t (scikit-learn counts samples seen, t, and updates per epoch)."""

    def __init__(self, power_t=0.5):
        self.power_t = check.positive_float("power_t", power_t)

    def start(self, lr, n_samples):
        self.lr0, self.n = lr, n_samples
        return lr

    def after_epoch(self, epoch, history):
        return self.lr0 / ((epoch + 1) * self.n + 1) ** self.power_t

    def __repr__(self):
        return f"InvScaling(power_t={self.power_t})"


class ReduceOnPlateau(Constant):
    """Keras' ``ReduceLROnPlateau``: multiply the rate by ``factor`` once ``patience`` epochs
    in a row fail to improve the monitored value by more than ``min_delta``.

    ``monitor`` is a history key ("loss", "val_loss", "training_cost"); None means
    "val_loss" when there is validation data, else "loss". The rate never drops below
    ``min_lr``. scikit-learn's ``learning_rate="adaptive"`` (divide by 5 when the training
    loss has not improved by ``tol`` for more than ``n_iter_no_change`` epochs) is
    ``ReduceOnPlateau(factor=0.2, patience=n_iter_no_change + 1, min_delta=tol,
    monitor="loss")``, which ``lr_schedule="adaptive"`` gives with scikit-learn's defaults.
    """

    def __init__(self, factor=0.1, patience=10, min_delta=1e-4, min_lr=0.0, monitor=None):
        self.factor = check.positive_float("factor", factor)
        if self.factor >= 1:
            raise ValueError(f"factor must be below 1 (it multiplies the rate); got {factor}")
        self.patience = check.positive_int("patience", patience)
        self.min_delta = check.non_negative_float("min_delta", min_delta)
        self.min_lr = check.non_negative_float("min_lr", min_lr)
        if monitor is not None:
            check.choice("monitor", monitor, ("loss", "val_loss", "training_cost"))
        self.monitor = monitor

    def start(self, lr, n_samples):
        self.lr, self.best, self.wait = lr, np.inf, 0
        return lr

    def after_epoch(self, epoch, history):
        key = self.monitor or ("val_loss" if "val_loss" in history else "loss")
        if key not in history:
            raise ValueError(f"ReduceOnPlateau monitors {key!r}, which this fit does not "
                             f"record (recorded: {', '.join(history)})")
        value = history[key][-1]
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.lr, self.wait = max(self.lr * self.factor, self.min_lr), 0
        return self.lr

    def __repr__(self):
        return (f"ReduceOnPlateau(factor={self.factor}, patience={self.patience}, "
                f"min_delta={self.min_delta}, min_lr={self.min_lr}, monitor={self.monitor!r})")


SCHEDULES = {
    "constant": Constant,
    "step": StepDecay,
    "invscaling": InvScaling,
    "plateau": ReduceOnPlateau,
    "adaptive": lambda: ReduceOnPlateau(factor=0.2, patience=11, min_delta=1e-4,
                                        monitor="loss"),
}


def schedule(value):
    """A schedule object from a name in :data:`SCHEDULES` or an object with ``start`` and
    ``after_epoch`` methods (such as :class:`StepDecay` with its own settings)."""
    if isinstance(value, str):
        return SCHEDULES[check.choice("lr_schedule", value, SCHEDULES)]()
    if callable(getattr(value, "start", None)) and callable(getattr(value, "after_epoch", None)):
        return value
    raise TypeError(f"lr_schedule must be one of {', '.join(map(repr, SCHEDULES))} or a "
                    f"schedule object such as StepDecay(step_size=5, gamma=0.5); got {value!r}")


def scheduled_rate(schedule, value, epoch):
    """The rate a schedule gave for epoch ``epoch`` (0-based), checked: a custom schedule
    that returns a negative, zero, NaN, infinite or non-numeric rate would otherwise train
    on (gradient ascent at a negative rate)."""
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)
            or not np.isfinite(value) or value <= 0):
        raise ValueError(f"lr_schedule {schedule!r} gave the learning rate {value!r} for "
                         f"epoch {epoch + 1}; a rate must be a positive finite number")
    return float(value)


# ---------------------------------------------------------------------------------------
# Early stopping and callbacks
# ---------------------------------------------------------------------------------------


class EarlyStopping:
    """Stop when the validation loss has not improved by more than ``min_delta`` for
    ``patience`` epochs in a row (Keras' ``EarlyStopping(monitor="val_loss",
    restore_best_weights=True)``), then restore the parameters and batch-norm running
    statistics of the best epoch. The optimiser's state is not rolled back."""

    def __init__(self, patience=10, min_delta=0.0):
        self.patience = check.positive_int("patience", patience)
        self.min_delta = check.non_negative_float("min_delta", min_delta)
        self.best, self.wait, self.best_epoch, self.stopped_epoch = np.inf, 0, None, None
        self._saved = None

    def after_epoch(self, epoch, history, net):
        """Record epoch ``epoch``; returns True when training should stop."""
        value = history["val_loss"][-1]
        if value < self.best - self.min_delta:
            self.best, self.wait, self.best_epoch = value, 0, epoch
            self._saved = (net._params.copy(), net._bn_running.copy())
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def restore(self, net):
        if self._saved is not None:
            net._params[...], net._bn_running[...] = self._saved


def check_callbacks(value):
    """Check the ``callbacks`` list: objects with ``on_epoch_end(epoch, history)``, or plain
    functions of ``(epoch, history)``. A truthy return value stops training after that
    epoch."""
    if value is None:
        return []
    if callable(value) or hasattr(value, "on_epoch_end"):
        value = [value]
    try:
        value = list(value)
    except TypeError:
        raise TypeError(f"callbacks must be a list of objects with an on_epoch_end(epoch, "
                        f"history) method, or of functions; got {value!r}") from None
    for i, cb in enumerate(value):
        if not (callable(getattr(cb, "on_epoch_end", None)) or callable(cb)):
            raise TypeError(f"callbacks[{i}] must have an on_epoch_end(epoch, history) "
                            f"method or be callable; got {cb!r}")
    return value


def _call(cb, epoch, history):
    hook = getattr(cb, "on_epoch_end", None)
    return bool((hook if callable(hook) else cb)(epoch, history))


# ---------------------------------------------------------------------------------------
# What a backend needs: the Plan
# ---------------------------------------------------------------------------------------


class Plan:
    """Everything a backend's ``train`` needs beyond the data and the network.

    Attributes
    ----------
    optimizer : str
        Name in :data:`OPTIMIZERS`; ``code`` is its integer code for the kernels.
    hyper : float64 array, shape (codes.N_HYPER,)
        Hyper-parameters at the positions ``codes.H_*`` (μ, β1, β2, ε, ρ, λ/n, batch-norm
        momentum and ε).
    dropout : float array, shape (depth,)
        Dropout rate per weight layer's output (the last, the output layer, is 0).
    mask : uint8 array (rows, hidden units) or None
        Keep (1) / drop (0) for each sample of the current call (rows follow
        ``order[start:stop]``) and each hidden unit (columns: hidden layers in order).
        Drawn by :meth:`draw_mask` from the network's generator before each backend call,
        so every backend sees the same masks.
    sample_weight : array (n_samples,) of the network's dtype, or None
        Weight of each row of the training data (indexed like ``X``, not like the
        order): it multiplies the sample's cost and gradient. ``hyper[codes.H_WEIGHT_TOTAL]``
        says what a mini-batch's weighted sums are divided by.
    """

    def __init__(self, net, optimizer="sgd", hyper=None, dropout=None):
        self.optimizer = optimizer
        self.code = codes.OPTIMIZERS[optimizer]
        self.hyper = default_hyper() if hyper is None else hyper
        depth = len(net.sizes) - 1
        self.dropout = np.zeros(depth) if dropout is None else np.asarray(dropout, float)
        self.drop_scale = np.array([1.0 / (1.0 - p) for p in self.dropout], dtype=net.dtype)
        self._column_rates = np.concatenate(
            [np.full(n, p) for n, p in zip(net.sizes[1:-1], self.dropout[:-1])] or [[]])
        self.mask = None
        self.lr = None
        self.sample_weight = None

    @property
    def uses_dropout(self):
        return bool(np.any(self.dropout > 0))

    def draw_mask(self, rng, rows):
        """Draw the keep mask for the next ``rows`` samples: unit kept when u ≥ p,
        u ~ U[0, 1) (probability 1 − p). Drawing in chunks consumes the generator exactly
        as one draw of all rows would, so chunked epochs see the same masks."""
        if not self.uses_dropout:
            self.mask = None
        else:
            self.mask = (rng.random((rows, self._column_rates.size))
                         >= self._column_rates).astype(np.uint8)
        return self.mask

    def features(self):
        """Names of the non-default features this plan asks of a backend."""
        used = set()
        if self.optimizer != "sgd":
            used.add("optimizer")
        if self.hyper[codes.H_WEIGHT_DECAY]:
            used.add("l2")
        if self.uses_dropout:
            used.add("dropout")
        if self.sample_weight is not None:
            used.add("sample_weight")
        if self.hyper[codes.H_L2_BATCH] or self.hyper[codes.H_COST_SCALE] != 1:
            used.add("batch_rules")
        return used


# ---------------------------------------------------------------------------------------
# Options: validation of everything fit accepts beyond Nielsen's arguments
# ---------------------------------------------------------------------------------------


class Options:
    """Validated training options (see :func:`options`)."""


def options(net, optimizer="sgd", momentum=None, beta1=None, beta2=None, eps=None, rho=None,
            l2=0.0, dropout=0.0, lr_schedule="constant", early_stopping=False, patience=10,
            min_delta=0.0, validation_fraction=None, monitor_training_cost=False,
            monitor_training_accuracy=False, callbacks=None):
    """Check every option before any training or random draw; returns an :class:`Options`."""
    opts = Options()
    opts.optimizer = check.choice("optimizer", optimizer, OPTIMIZERS)
    given = {"momentum": momentum, "beta1": beta1, "beta2": beta2, "eps": eps, "rho": rho}
    for key, value in given.items():
        if value is not None and opts.optimizer not in _USES[key]:
            users = " or ".join(repr(o) for o in _USES[key])
            raise ValueError(f"{key} applies to optimizer={users}; got optimizer="
                             f"{opts.optimizer!r}")
    hyper = network_hyper(net)
    hyper[codes.H_MOMENTUM] = _unit_interval("momentum", momentum, DEFAULT_MOMENTUM)
    hyper[codes.H_BETA1] = _unit_interval("beta1", beta1, DEFAULT_BETA1)
    hyper[codes.H_BETA2] = _unit_interval("beta2", beta2, DEFAULT_BETA2)
    hyper[codes.H_RHO] = _unit_interval("rho", rho, DEFAULT_RHO)
    hyper[codes.H_EPS] = (check.positive_float("eps", eps) if eps is not None
                          else DEFAULT_EPS.get(opts.optimizer, 1e-8))
    opts.hyper = hyper
    opts.l2 = check.non_negative_float("l2", l2)
    opts.dropout = dropout_rates(dropout, net.sizes)
    opts.schedule = schedule(lr_schedule)
    if not isinstance(early_stopping, (bool, np.bool_)):
        raise TypeError(f"early_stopping must be True or False; got {early_stopping!r}")
    opts.early_stopping = EarlyStopping(patience, min_delta) if early_stopping else None
    if not early_stopping:  # still checked, so that a typo does not wait for later
        check.positive_int("patience", patience)
        check.non_negative_float("min_delta", min_delta)
    if validation_fraction is not None:
        if isinstance(validation_fraction, bool) or not isinstance(validation_fraction,
                                                                   numbers.Real):
            raise TypeError(f"validation_fraction must be a number in (0, 1); got "
                            f"{validation_fraction!r}")
        if not 0 < validation_fraction < 1:
            raise ValueError(f"validation_fraction must lie strictly between 0 and 1; got "
                             f"{validation_fraction}")
    opts.validation_fraction = validation_fraction
    for name, flag in (("monitor_training_cost", monitor_training_cost),
                       ("monitor_training_accuracy", monitor_training_accuracy)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False; got {flag!r}")
    opts.monitor_training_cost = bool(monitor_training_cost)
    opts.monitor_training_accuracy = bool(monitor_training_accuracy)
    opts.callbacks = check_callbacks(callbacks)
    return opts


def dropout_rates(dropout, sizes):
    """One rate per weight layer (the output layer's is 0) from a number or a sequence with
    one rate per hidden layer; each rate p must satisfy 0 ≤ p < 1."""
    n_hidden = len(sizes) - 2
    if isinstance(dropout, numbers.Real) and not isinstance(dropout, bool):
        rates = [float(dropout)] * n_hidden
    else:
        try:
            rates = [float(p) for p in dropout]
        except (TypeError, ValueError):
            raise TypeError(f"dropout must be a rate in [0, 1) or a list of {n_hidden} rates, "
                            f"one per hidden layer; got {dropout!r}") from None
        if len(rates) != n_hidden:
            raise ValueError(f"dropout needs one rate per hidden layer ({n_hidden}); got "
                             f"{len(rates)}")
    for i, p in enumerate(rates):
        if not 0 <= p < 1:
            where = "dropout" if isinstance(dropout, numbers.Real) else f"dropout[{i}]"
            raise ValueError(f"{where} must be a rate p with 0 <= p < 1 (the probability of "
                             f"dropping a unit); got {p}")
    if n_hidden == 0 and isinstance(dropout, numbers.Real) and dropout:
        raise ValueError("dropout applies to hidden layers, and this network has none")
    return np.array(rates + [0.0])


def _unit_interval(name, value, default):
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1); got {value!r}")
    if not 0 <= value < 1:
        raise ValueError(f"{name} must lie in [0, 1); got {value}")
    return float(value)


# ---------------------------------------------------------------------------------------
# The training run
# ---------------------------------------------------------------------------------------


def l2_penalty(net, l2, n):
    """network2's regularisation term (λ/2n)·Σ‖w‖² over the weight matrices."""
    if not l2:
        return 0.0
    return 0.5 * (l2 / n) * float(sum(np.sum(w.astype(np.float64) ** 2)
                                      for w in net._weight_views))


def split_validation(net, X, labels, targets, fraction, val_rows=None):
    """Hold out ``fraction`` of the samples, chosen by the network's generator (a random,
    unstratified split), or the rows ``val_rows`` (a resumed run's split): returns the
    training arrays, the validation triple and the validation rows."""
    n = X.shape[0]
    n_val = int(round(fraction * n))
    if n_val < 1 or n_val >= n:
        raise ValueError(f"validation_fraction={fraction} of {n} samples leaves "
                         f"{n - n_val} for training and {n_val} for validation; both "
                         f"need at least one")
    if val_rows is None:
        val = np.sort(net.rng.permutation(n)[:n_val])
    else:
        val = np.asarray(val_rows)
        if (val.shape != (n_val,) or val.dtype.kind not in "iu" or val.size and (
                val.min() < 0 or val.max() >= n or np.any(np.diff(val) <= 0))):
            raise ValueError("the checkpoint's validation split does not fit this data")
    keep = np.ones(n, dtype=bool)
    keep[val] = False
    train = np.flatnonzero(keep)

    def part(rows):
        return (X[rows], labels[rows] if labels.size else labels,
                targets[rows] if targets.shape[0] else targets)
    return part(train), part(val), val


def _settings(net, n_samples, n_val, epochs, batch_size, lr, shuffle, opts):
    """What a checkpointed run was started with, to check that a resumed one matches."""
    stopper = opts.early_stopping
    return {"n_samples": int(n_samples), "n_validation": int(n_val),
            "batch_size": int(batch_size), "lr": float(lr), "shuffle": bool(shuffle),
            "optimizer": opts.optimizer, "hyper": [float(h) for h in opts.hyper],
            "l2": opts.l2, "dropout": [float(p) for p in opts.dropout],
            "lr_schedule": repr(opts.schedule),
            "early_stopping": None if stopper is None else [stopper.patience,
                                                            stopper.min_delta],
            "validation_fraction": opts.validation_fraction,
            "monitor": [opts.monitor_training_cost, opts.monitor_training_accuracy]}


def _numbers(obj):
    """The numeric attributes of a schedule or early stopper (its state between epochs)."""
    return {k: (None if v is None else float(v) if isinstance(v, (float, np.floating))
                else int(v)) for k, v in vars(obj).items()
            if v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool))}


def checkpoint_state(net, settings, epochs_done, stopped, plan, opts, val_rows):
    """A training checkpoint's progress (JSON-able) and arrays, as :func:`engine.io.save`
    stores them next to the model, its optimiser memory and its generator's state."""
    stopper = opts.early_stopping
    progress = {"settings": settings, "epochs_done": int(epochs_done), "stopped": bool(stopped),
                "next_lr": float(plan.lr), "schedule": _numbers(opts.schedule),
                "early_stopping": None if stopper is None else _numbers(stopper)}
    arrays = {}
    if val_rows is not None:
        arrays["validation_rows"] = val_rows
    if stopper is not None and stopper._saved is not None:
        arrays["best_params"], arrays["best_running"] = stopper._saved
    return progress, arrays


def _check_resume(path, progress, settings, history, saved_history):
    """Refuse a checkpoint whose run had other settings or another history (changes
    nothing)."""
    old = progress.get("settings")
    if not isinstance(old, dict):
        raise ValueError(f"resume={str(path)!r}: the checkpoint has no training settings")
    differ = sorted(key for key in set(old) | set(settings) if old.get(key) != settings.get(key))
    if differ:
        detail = "; ".join(f"{key}: checkpoint {old.get(key)!r}, now {settings.get(key)!r}"
                           for key in differ)
        raise ValueError(f"resume={str(path)!r} continues a run with other settings ({detail}). "
                         f"Pass the same data and training options as the checkpointed fit.")
    if set(saved_history) != set(history):
        raise ValueError(f"resume={str(path)!r}: the checkpoint's history records "
                         f"{sorted(saved_history)}, this run would record {sorted(history)}")


def _resume(net, checkpoint, plan, opts):
    """Restore the run's state between epochs from a checked checkpoint's progress; returns
    epochs done and whether it had stopped."""
    progress, arrays = checkpoint
    plan.lr = float(progress["next_lr"])
    vars(opts.schedule).update(progress["schedule"])
    stopper = opts.early_stopping
    if stopper is not None:
        vars(stopper).update(progress["early_stopping"])
        if "best_params" in arrays:
            stopper._saved = (arrays["best_params"].astype(net.dtype),
                              arrays["best_running"].astype(net.dtype))
    return int(progress["epochs_done"]), bool(progress["stopped"])


def sample_weights(sample_weight, class_weight, labels, n, n_out, dtype):
    """``fit``'s ``sample_weight`` times the weights of ``class_weight`` per label, checked,
    as one C-contiguous array of ``dtype`` (None when both are None)."""
    if sample_weight is None and class_weight is None:
        return None
    weights = np.ones(n)
    if sample_weight is not None:
        try:
            weights = np.asarray(sample_weight, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"sample_weight must be an array of numbers; got "
                            f"{type(sample_weight).__name__}") from None
        if weights.shape != (n,):
            raise ValueError(f"sample_weight must have one weight per sample, shape ({n},); "
                             f"got shape {weights.shape}")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError("sample_weight must hold finite, non-negative numbers")
    if class_weight is not None:
        if not labels.size:
            raise ValueError("class_weight applies to class labels; this fit has float "
                             "targets (use sample_weight)")
        if isinstance(class_weight, str) and class_weight == "balanced":
            counts = np.bincount(labels, minlength=n_out)
            present = counts > 0
            per_class = np.zeros(n_out)
            per_class[present] = n / (np.count_nonzero(present) * counts[present])
        elif isinstance(class_weight, dict):
            per_class = np.ones(n_out)
            for label, value in class_weight.items():
                if isinstance(label, (bool, np.bool_)) or not isinstance(
                        label, numbers.Integral) or not 0 <= label < n_out:
                    raise ValueError(f"class_weight keys must be class labels 0..{n_out - 1}; "
                                     f"got {label!r}")
                if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
                        np.isfinite(value) and value >= 0):
                    raise ValueError(f"class_weight[{label}] must be a finite, non-negative "
                                     f"number; got {value!r}")
                per_class[label] = value
        else:
            raise TypeError(f"class_weight must be a dict {{label: weight}} or 'balanced'; "
                            f"got {class_weight!r}")
        weights = weights * per_class[labels]
    if not np.any(weights > 0):
        raise ValueError("sample weights are all zero: at least one sample must have a "
                         "non-zero weight")
    return np.ascontiguousarray(weights, dtype=dtype)


def train_epochs(net, X, labels, targets, epochs, batch_size, lr, shuffle, on_epoch_end,
                 on_progress=None, updates_per_call=None, plan=None, first_epoch=0):
    """The epoch loop every training entry point shares.

    Each epoch's order comes from the network's generator. Without ``on_progress`` all
    mini-batches of an epoch run in one backend call; with it, the epoch runs in chunks of
    ``updates_per_call`` mini-batches (default: about 100 chunks per epoch) and
    ``on_progress(samples_done, n)`` is called between them. A KeyboardInterrupt raised
    during a chunk surfaces after it, at a mini-batch boundary, with the parameters
    consistent. ``on_epoch_end(epoch, mean_cost)`` returning True ends training.

    ``plan`` (:class:`Plan`; None is Nielsen's plain SGD) carries the
    optimiser and dropout to the backend; each epoch then runs at ``plan.lr`` (a
    schedule changes it between epochs), and dropout masks are drawn from the
    network's generator before each backend call.
    """
    net._usable_parameters()
    n = X.shape[0]
    # A mini-batch larger than the data is the whole data, on every path: the same
    # numbers as batch_size=n, and scratch memory for n samples, not batch_size.
    batch_size = min(batch_size, n)
    n_batches = -(-n // batch_size)
    if updates_per_call is None:
        updates_per_call = n_batches if on_progress is None else max(1, n_batches // 100)
    step = updates_per_call * batch_size
    last_finite = Snapshot(net)
    # A backend may keep the fit's data on its device for all epochs (the CUDA one does).
    with net._backend.fit_scope(X, labels, targets):
        for epoch in range(first_epoch, epochs):
            order = (net.rng.permutation(n) if shuffle else np.arange(n)).astype(np.int64)
            rate = lr if plan is None else plan.lr
            last_finite.take()
            total_cost = 0.0
            for start in range(0, n, step):
                stop = min(n, start + step)
                if plan is not None:
                    plan.draw_mask(net.rng, stop - start)
                total_cost += net._backend.train(net, X, labels, targets, order, start,
                                                  stop, batch_size, rate, plan=plan)
                if on_progress is not None:
                    on_progress(stop, n)
            mean_cost = float(total_cost) / n
            if not np.isfinite(mean_cost) or not last_finite.still_finite():
                last_finite.restore()
                raise DivergenceError(
                    f"training diverged in epoch {epoch + 1}: the loss became "
                    f"{mean_cost}. The network keeps the last finite parameters (from "
                    f"the end of epoch {epoch}). Try a smaller learning rate than {rate}.",
                    epoch)
            if on_epoch_end(epoch, mean_cost):
                break


def run(net, X, labels, targets, epochs, batch_size, lr, shuffle, opts, validation=None,
        report=None, on_progress=None, checkpoint=None, resume=None, sample_weight=None,
        updates_per_call=None):
    """Train ``net`` with the validated ``opts``; returns the history dict.

    ``validation`` is a checked ``(X, labels, targets)`` triple or None; ``report(epoch,
    history)`` prints a line per epoch. The order of events after each epoch: record the
    history, report, update the rate, early stopping, callbacks (any of the last three
    may stop training), then the checkpoint.

    ``checkpoint``: a path to save the network with the run's progress to after every
    epoch. ``resume``: ``(path, network, (progress, arrays))`` from
    :meth:`engine.Network._read_checkpoint`; once the checkpoint is found to fit this run,
    ``net`` adopts that network's state and the run continues after the checkpoint's last
    epoch, as the uninterrupted run would have. Nothing on ``net`` changes before every
    check has passed. ``sample_weight``: None or one weight per row of ``X`` in the
    network's dtype (see :class:`Plan`, and :func:`sample_weights`; a mini-batch's sums are
    divided by its size); a held-out validation fraction takes its rows' weights out.
    ``on_progress(samples_done, n)`` is called every ``updates_per_call`` mini-batches
    (see :func:`train_epochs`).
    """
    if net._n_bn and batch_size < 2:
        raise ValueError("batch_size must be at least 2 with batch normalisation (the batch "
                         "statistics of one sample are undefined)")
    plan = Plan(net, opts.optimizer, opts.hyper.copy(), opts.dropout)
    plan.sample_weight = sample_weight  # rows of X; cut to the training rows below
    unsupported = plan.features() | ({"l2"} if opts.l2 else set())
    if net._n_bn:
        unsupported.add("batch_norm")
    unsupported -= set(net._backend.features)
    if unsupported:
        named = [f"optimizer={opts.optimizer!r}" if f == "optimizer" else f
                 for f in sorted(unsupported)]
        raise ValueError(f"backend {net.backend!r} does not support {', '.join(named)}; "
                         f"use 'numba', 'numba-parallel' or 'numpy'")
    n_samples, val_rows = X.shape[0], None
    if opts.validation_fraction is not None or (opts.early_stopping and validation is None):
        fraction = 0.1 if opts.validation_fraction is None else opts.validation_fraction
        stored = None if resume is None else resume[2][1].get("validation_rows")
        (X, labels, targets), validation, val_rows = split_validation(
            net, X, labels, targets, fraction, stored)
        if sample_weight is not None:
            keep = np.ones(n_samples, dtype=bool)
            keep[val_rows] = False
            plan.sample_weight = np.ascontiguousarray(sample_weight[keep])
    n = X.shape[0]
    settings = _settings(net, n_samples, 0 if validation is None else validation[0].shape[0],
                         epochs, batch_size, lr, shuffle, opts)
    if sample_weight is not None:  # a resumed run must weigh the samples alike
        settings["sample_weight"] = [float(np.sum(sample_weight, dtype=np.float64)),
                                     float(np.sum(np.square(sample_weight, dtype=np.float64)))]
    plan.hyper[codes.H_WEIGHT_DECAY] = opts.l2 / n

    history = {"loss": []}
    scheduled = not type(opts.schedule) is Constant
    if scheduled:
        history["lr"] = []
    if opts.monitor_training_cost:
        history["training_cost"] = []
    if opts.monitor_training_accuracy:
        history["training_accuracy"] = []
    if validation is not None:
        history["val_loss"] = []
        if labels.size:
            history["val_accuracy"] = []
    penalty = (lambda: l2_penalty(net, opts.l2, n))
    stopper = opts.early_stopping
    first_epoch, stopped = 0, False
    plan.lr = scheduled_rate(opts.schedule, opts.schedule.start(lr, n), 0)
    if resume is not None:
        path, saved, progress = resume
        _check_resume(path, progress[0], settings, history, saved.history)
        adopt(net, saved)  # every check has passed
    net._adopt_task(labels)
    ensure_optimizer_state(net, opts.optimizer)
    if resume is not None:
        first_epoch, stopped = _resume(net, progress, plan, opts)
        history = {key: list(values) for key, values in net.history.items()}

    def on_epoch_end(epoch, mean_cost):
        history["loss"].append(mean_cost)
        if scheduled:
            history["lr"].append(plan.lr)
        if opts.monitor_training_cost or opts.monitor_training_accuracy:
            cost, correct = net._measure(X, labels, targets)
            if opts.monitor_training_cost:
                history["training_cost"].append(cost + penalty())
            if opts.monitor_training_accuracy:
                history["training_accuracy"].append(correct / n if labels.size else np.nan)
        if validation is not None:
            cost, correct = net._measure(*validation)
            history["val_loss"].append(cost + penalty())
            if "val_accuracy" in history:
                history["val_accuracy"].append(correct / validation[0].shape[0])
        if report is not None:
            report(epoch, history)
        plan.lr = scheduled_rate(opts.schedule, opts.schedule.after_epoch(epoch, history),
                                 epoch + 1)
        stop = stopper is not None and stopper.after_epoch(epoch, history, net)
        for cb in opts.callbacks:
            stop = _call(cb, epoch, history) or stop
        if checkpoint is not None:
            io.save(net, checkpoint, training=checkpoint_state(net, settings, epoch + 1, stop,
                                                            plan, opts, val_rows))
        return stop

    net.best_epoch = net.stopped_epoch = None
    net.history = history
    try:
        if not stopped:
            train_epochs(net, X, labels, targets, epochs, batch_size, lr, shuffle,
                         on_epoch_end, on_progress=on_progress,
                         updates_per_call=updates_per_call, plan=plan,
                         first_epoch=first_epoch)
    except DivergenceError as exc:
        exc.history = history
        raise
    if stopper is not None:
        stopper.restore(net)
        net.best_epoch, net.stopped_epoch = stopper.best_epoch, stopper.stopped_epoch
    return history

"""Options: the checks of everything ``fit`` accepts beyond Nielsen's arguments, and the
sample weights."""

import numbers

import numpy as np

from .. import _validation as check
from ..kernels import codes
from ..state import (DEFAULT_BETA1, DEFAULT_BETA2, DEFAULT_EPS, DEFAULT_MOMENTUM, DEFAULT_RHO,
                     network_hyper)
from .callbacks import EarlyStopping, check_callbacks
from .schedules import schedule


OPTIMIZERS = tuple(codes.OPTIMIZERS)

# Which optimisers read which hyper-parameter (for clear errors about misplaced ones).
_USES = {"momentum": ("momentum", "nesterov", "velocity", "velocity_nesterov"),
         "beta1": ("adam", "adam_folded"), "beta2": ("adam", "adam_folded"),
         "eps": ("adagrad", "rmsprop", "adam", "adam_folded", "adagrad_eps_inside",
                 "rmsprop_eps_inside"), "rho": ("rmsprop", "rmsprop_eps_inside")}


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
        rates = list(check.per_hidden_layer("dropout", dropout, n_hidden, "a rate in [0, 1)",
                                            "rate", convert=float))
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

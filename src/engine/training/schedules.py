"""Learning-rate schedules: the rate of each epoch (changed between epochs only)."""

import numbers

import numpy as np

from .. import _validation as check


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

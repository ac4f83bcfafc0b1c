"""Early stopping and callbacks: what may end training after an epoch."""

import numpy as np

from .. import _validation as check


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


def call_callback(cb, epoch, history):
    hook = getattr(cb, "on_epoch_end", None)
    return bool((hook if callable(hook) else cb)(epoch, history))

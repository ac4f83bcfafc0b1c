"""Training checkpoints: the run's progress saved after every epoch, and its checks on resume."""

import numbers

import numpy as np


def run_settings(net, n_samples, n_val, epochs, batch_size, lr, shuffle, opts):
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


def check_resume(path, progress, settings, history, saved_history):
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


def restore_progress(net, checkpoint, plan, opts):
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

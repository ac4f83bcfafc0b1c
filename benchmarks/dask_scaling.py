"""engine.dask on this machine, side by side in one run: the stream's overhead against the
in-memory fit, and the speed-up of "lbfgs" and "average" with 2 workers against 1.

    python benchmarks/dask_scaling.py                 # 200,000 rows, 3 interleaved repeats
    python benchmarks/dask_scaling.py --memory-gb 1   # the trainer's memory over 1 GB of rows

Workers are processes of one thread and one Numba thread each (engine.dask.
worker_environment). The data (float32, 100 features, 10 classes, a fixed random teacher
network) is made in this process and sent to the clusters once, persisted before timing, so
the timings are training, not data generation. Each repeat runs every contender once, in
turn (interleaved), and the table gives the median wall time, with the CPU seconds spent in
this process (client, scheduler and, for the in-memory fit and the stream, the trainer) and
in the workers; ratios are of medians. The round trip of empty tasks is what each L-BFGS
evaluation and each averaging round pays on top of its compute.
"""

import argparse
import os
import statistics
import threading
import time

import numpy as np


def make_data(n, n_in=100, n_out=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in)).astype(np.float32)
    hidden = np.tanh(X @ rng.standard_normal((n_in, 32)).astype(np.float32) / 10)
    y = np.argmax(hidden @ rng.standard_normal((32, n_out)), axis=1)
    return X, y


def cluster(n_workers):
    from dask.distributed import Client, LocalCluster

    import engine.dask

    local = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                         dashboard_address=None, env=engine.dask.worker_environment(),
                         silence_logs=50)
    return Client(local, set_as_default=False)


def timed(fn, clients):
    """``(wall seconds, CPU seconds of this process, CPU seconds of all workers)`` of a
    call of ``fn``: where the time goes (this process is the client, the scheduler and,
    for the in-memory fit and the stream, the trainer)."""
    def workers():
        return sum(sum(c.run(time.process_time).values()) for c in clients)
    before, cpu, start = workers(), time.process_time(), time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    return wall, time.process_time() - cpu, workers() - before


def round_trip(client, repeats=30):
    """Median seconds of one round of empty tasks, one per worker, submitted and gathered:
    what every L-BFGS evaluation and every averaging round pays on top of its compute."""
    workers = list(client.scheduler_info()["workers"])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        client.gather([client.submit(int, i, pure=False, workers=[w])
                       for i, w in enumerate(workers)])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _gradients(rows, repeats):
    """``repeats`` full-batch losses and gradients of [100, 64, 10] over ``rows`` rows in
    this process, with no Dask around: the compute that "lbfgs" spreads."""
    import engine

    X, y = make_data(rows)
    est = engine.MLPClassifier((64,), solver="lbfgs", max_iter=1, random_state=0).fit(
        X[:1000], y[:1000])
    net = est._net
    plan = est._plan(net, "lbfgs")
    labels, targets = est._kernel_targets(est._label_binarizer.transform(y), net.dtype)
    net._backend.loss_gradient(net, X, labels, targets, plan)
    start = time.perf_counter()
    for _ in range(repeats):
        net._backend.loss_gradient(net, X, labels, targets, plan)
    return time.perf_counter() - start


def machine_ceiling(rows, repeats=10):
    """The same gradients in one process over all rows against two plain processes over
    half each, at once (multiprocessing, no Dask): what two workers can gain here."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        one = pool.apply(_gradients, (rows, repeats))
        two = max(pool.starmap(_gradients, [(rows // 2, repeats)] * 2))
    return one, two


def scaling(args):
    import dask.array as da
    import warnings

    import engine
    import engine.dask

    warnings.simplefilter("ignore")
    X, y = make_data(args.rows)
    clients = {1: cluster(1), 2: cluster(2)}
    rows = args.rows // args.blocks
    data = {}
    for k, client in clients.items():
        Xd = da.from_array(X, chunks=(rows, X.shape[1]))
        yd = da.from_array(y, chunks=rows)
        data[k] = client.persist([Xd, yd])
        engine.dask.warm_workers(client, dtypes=("float32",))

    def sgd():
        return engine.MLPClassifier((64,), max_iter=args.epochs, random_state=0,
                                    shuffle=False, tol=0, n_iter_no_change=10**6)

    def lbfgs():
        return engine.MLPClassifier((64,), solver="lbfgs", max_iter=args.lbfgs_iter,
                                    random_state=0, tol=0)

    contenders = {
        "in-memory fit (adam)": lambda: sgd().fit(X, y),
        "stream, 2 workers compute blocks": lambda: engine.dask.fit(
            sgd(), *data[2], client=clients[2]),
        "lbfgs, 1 worker": lambda: engine.dask.fit(lbfgs(), *data[1], strategy="lbfgs",
                                                   client=clients[1]),
        "lbfgs, 2 workers": lambda: engine.dask.fit(lbfgs(), *data[2], strategy="lbfgs",
                                                    client=clients[2]),
        "average, 1 worker": lambda: engine.dask.fit(sgd(), *data[1], strategy="average",
                                                     client=clients[1]),
        "average, 2 workers": lambda: engine.dask.fit(sgd(), *data[2], strategy="average",
                                                      client=clients[2]),
    }
    for fn in contenders.values():  # compile and warm every path once
        fn()
    times = {name: [] for name in contenders}
    cpu = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, fn in contenders.items():
            wall, client_cpu, worker_cpu = timed(fn, clients.values())
            times[name].append(wall)
            cpu[name].append((client_cpu, worker_cpu))
    median = {name: statistics.median(t) for name, t in times.items()}
    trips = {k: round_trip(client) for k, client in clients.items()}
    print(f"{args.rows:,} rows x {X.shape[1]} features (float32) in {args.blocks} blocks; "
          f"[100, 64, 10]; adam {args.epochs} epochs batch 200; lbfgs {args.lbfgs_iter} "
          f"iterations; median of {args.repeats} interleaved repeats; load before: "
          f"{args.load}")
    print(f"  {'contender':36s} {'wall':>9s}   {'CPU here':>8s} {'workers':>8s}   (each repeat)")
    for name, value in median.items():
        here, workers = (statistics.median(c) for c in zip(*cpu[name]))
        print(f"  {name:36s} {value:7.2f} s   {here:6.2f} s {workers:6.2f} s   "
              f"({', '.join(f'{t:.2f}' for t in times[name])})")
    print("  round trip of empty tasks: " + ", ".join(
        f"{k} worker{'s' if k > 1 else ''} {1000 * t:.1f} ms" for k, t in trips.items()))
    overhead = median["stream, 2 workers compute blocks"] / median["in-memory fit (adam)"] - 1
    print(f"stream overhead vs in-memory fit: {overhead:+.0%} (goal <= 20%)")
    for strategy in ("lbfgs", "average"):
        ratio = median[f"{strategy}, 1 worker"] / median[f"{strategy}, 2 workers"]
        print(f"{strategy}: 2 workers vs 1: {ratio:.2f}x (goal >= 1.6x)")
    for client in clients.values():
        client.close()
    one, two = machine_ceiling(args.rows)
    print(f"machine ceiling, no Dask: 10 full-batch gradients of {args.rows:,} rows in one "
          f"process {one:.2f} s, of half the rows in each of two processes at once "
          f"{two:.2f} s: {one / two:.2f}x")


def peak_rss(fn):
    """``(resident bytes before, peak resident bytes during)`` a call of ``fn``, sampled
    every 5 ms from a thread."""
    import psutil

    process = psutil.Process()
    baseline = peak = process.memory_info().rss
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.005)
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return baseline, peak


def memory(args):
    """The trainer's resident memory while streaming ``memory_gb`` of generated rows."""
    import dask.array as da

    import engine
    import engine.dask

    client = cluster(2)
    n_in, rows = 100, 25_000
    n = int(args.memory_gb * 1e9 // (n_in * 8))
    X = da.random.RandomState(0).standard_normal((n, n_in), chunks=(rows, n_in))
    y = da.random.RandomState(1).randint(0, 10, size=n, chunks=rows)
    net = engine.Network([n_in, 64, 10], output="softmax", cost="cross_entropy", seed=0)
    engine.dask.fit(net, X[:2 * rows], y[:2 * rows], batch_size=200, lr=0.01, client=client)
    start = time.perf_counter()
    baseline, peak = peak_rss(lambda: engine.dask.fit(net, X, y, batch_size=200, lr=0.01,
                                                      client=client))
    seconds = time.perf_counter() - start
    block = rows * n_in * 8
    print(f"streamed {X.nbytes / 1e9:.2f} GB ({n:,} rows, blocks of {block / 1e6:.0f} MB) "
          f"in {seconds:.1f} s: trainer RSS {baseline / 1e6:.0f} MB -> peak "
          f"{peak / 1e6:.0f} MB (+{(peak - baseline) / 1e6:.0f} MB = "
          f"{(peak - baseline) / block:.1f} blocks)")
    client.close()


def main():
    import logging

    import distributed  # noqa: F401  (configures its loggers on import)

    logging.getLogger("distributed").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lbfgs-iter", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-gb", type=float, default=None)
    args = parser.parse_args()
    args.load = "%.2f %.2f %.2f" % os.getloadavg()
    if args.memory_gb:
        memory(args)
    else:
        scaling(args)


if __name__ == "__main__":
    main()

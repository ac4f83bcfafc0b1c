"""engine.dask.fit on a real LocalCluster (two worker processes): the stream equals the
in-memory fit bit for bit for any chunking, L-BFGS summed over workers equals solver="lbfgs"
on one machine, parameter averaging with one worker equals the plain epoch, the trainer's
memory stays bounded, and a worker killed during a round changes nothing (or stops fit with
the model untouched)."""

import copy
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import engine  # noqa: E402
import engine.dask as ed  # noqa: E402

# the estimators' fits stop at max_iter on purpose (a few epochs are enough to compare)
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

CHUNKINGS = [(600,), (200, 200, 200), (97,) * 6 + (18,), (1, 250, 3, 300, 46), (31,) * 19 + (11,)]


@pytest.fixture(autouse=True)
def bounded(time_bound):
    time_bound(180)


def data(n=600, n_in=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in))
    labels = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int64) + (X[:, 3] > 1)
    return X, labels


def dask_pair(X, y, chunks):
    return (da.from_array(X, chunks=(chunks, X.shape[1])),
            da.from_array(y, chunks=(chunks,) + y.shape[1:]))


def network(seed=3):
    return engine.Network([6, 9, 3], activation="tanh", output="softmax",
                          cost="cross_entropy", seed=seed)


NETWORK_FIT = dict(epochs=2, batch_size=32, lr=0.05, shuffle=False, optimizer="adam", l2=0.5,
                   dropout=0.2, lr_schedule="step")


@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_stream_network_equals_in_memory_fit_bit_for_bit(dask_client, chunks):
    X, y = data()
    expected = network()
    expected.fit(X, y, **NETWORK_FIT)
    net = network()
    assert ed.fit(net, *dask_pair(X, y, chunks), **NETWORK_FIT) is net
    # parameters, Adam's memory and the dropout masks' generator: the same bits
    np.testing.assert_array_equal(net._params, expected._params)
    np.testing.assert_array_equal(net._opt_slots, expected._opt_slots)
    assert net.rng.bit_generator.state == expected.rng.bit_generator.state
    # an epoch's cost is summed over more calls: equal to rounding
    np.testing.assert_allclose(net.history["loss"], expected.history["loss"], rtol=1e-12)
    assert net.history["lr"] == expected.history["lr"]


@pytest.mark.parametrize("chunks", CHUNKINGS[1:4])
@pytest.mark.parametrize("kind", ["classifier-sgd", "binary-strings-adam", "regressor-adam"])
def test_stream_estimator_equals_in_memory_fit_bit_for_bit(dask_client, chunks, kind):
    X, labels = data()
    if kind == "classifier-sgd":
        make = lambda: engine.MLPClassifier((7,), solver="sgd", learning_rate="invscaling",  # noqa: E731
                                            max_iter=3, shuffle=False, random_state=0,
                                            batch_size=50)
        y = labels
    elif kind == "binary-strings-adam":
        make = lambda: engine.MLPClassifier((7,), max_iter=3, shuffle=False,  # noqa: E731
                                            random_state=0)
        y = np.array(["no", "yes"])[labels % 2]
    else:
        make = lambda: engine.MLPRegressor(hidden_layer_sizes=(7,), solver="adam", max_iter=3, shuffle=False,  # noqa: E731
                                           random_state=0, alpha=0.01)
        y = np.column_stack([X[:, 0] - X[:, 1], X[:, 2] * 0.5])
    expected = make().fit(X, y)
    est = ed.fit(make(), *dask_pair(X, y, chunks))
    for got, want in zip(est.coefs_ + est.intercepts_, expected.coefs_ + expected.intercepts_):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(est.loss_curve_, expected.loss_curve_, rtol=1e-12)
    assert est.t_ == expected.t_ and est.n_iter_ == expected.n_iter_
    np.testing.assert_array_equal(est.predict(X), expected.predict(X))


def test_stream_fetches_straight_from_local_workers_or_as_the_client_says(dask_client):
    """On one host the blocks come straight from the workers; a client told
    direct_to_workers=False has them relayed by the scheduler: the same bits either way."""
    assert ed._direct_to_workers(dask_client)
    relayed = distributed.Client(dask_client.scheduler.address, direct_to_workers=False,
                                 set_as_default=False)
    try:
        assert not ed._direct_to_workers(relayed)
        X, y = data()
        nets = [network(), network()]
        for net, client in zip(nets, (dask_client, relayed)):
            ed.fit(net, *dask_pair(X, y, (150,) * 4), client=client, **NETWORK_FIT)
        np.testing.assert_array_equal(nets[0]._params, nets[1]._params)
    finally:
        relayed.close()


def test_stream_shuffle_follows_the_documented_order(dask_client):
    """Blocks in an order drawn from the model's generator, then each block's rows in an
    order drawn as it is reached: the same as fitting the rows in that order, unshuffled."""
    X, y = data()
    chunks = (100, 150, 50, 300)
    bounds = np.cumsum((0,) + chunks)
    expected = network(seed=5)
    rng = copy.deepcopy(expected.rng)
    for _ in range(2):
        rows = []
        for block in rng.permutation(len(chunks)):
            lo, hi = bounds[block], bounds[block + 1]
            rows.append(lo + rng.permutation(hi - lo))
        rows = np.concatenate(rows)
        expected.fit(X[rows], y[rows], epochs=1, batch_size=32, lr=0.1, shuffle=False,
                     optimizer="momentum")
    net = network(seed=5)
    ed.fit(net, *dask_pair(X, y, chunks), epochs=2, batch_size=32, lr=0.1, shuffle=True,
           optimizer="momentum")
    np.testing.assert_array_equal(net._params, expected._params)
    assert net.rng.bit_generator.state == rng.bit_generator.state


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_lbfgs_over_workers_equals_one_machine(dask_client, kind):
    """Losses and gradients summed over blocks differ from one sum by rounding only;
    after 25 L-BFGS iterations the parameters agree to 1e-8 relative (float64)."""
    X, labels = data(800)
    if kind == "classifier":
        make = lambda: engine.MLPClassifier((8,), solver="lbfgs", max_iter=25, alpha=1e-3,  # noqa: E731
                                            random_state=1)
        y = labels
    else:
        make = lambda: engine.MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=25, alpha=1e-2,  # noqa: E731
                                           random_state=1)
        y = np.column_stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]])
    expected = make().fit(X, y)
    est = ed.fit(make(), *dask_pair(X, y, (300, 123, 377)), strategy="lbfgs")
    scale = max(np.abs(c).max() for c in expected.coefs_)
    for got, want in zip(est.coefs_ + est.intercepts_, expected.coefs_ + expected.intercepts_):
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-8 * scale)
    np.testing.assert_allclose(est.loss_, expected.loss_, rtol=1e-8)
    assert est.n_iter_ == expected.n_iter_


@pytest.fixture(scope="module")
def one_worker():
    """A cluster of one worker (in this process) for the one-copy case of averaging."""
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address=None, worker_dashboard_address=None,
                                       silence_logs=50)
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


def test_average_with_one_worker_equals_plain_fit(one_worker):
    X, y = data()
    expected = network()
    expected.fit(X, y, **NETWORK_FIT)
    net = network()
    ed.fit(net, *dask_pair(X, y, (97,) * 6 + (18,)), strategy="average", client=one_worker,
           **NETWORK_FIT)
    np.testing.assert_array_equal(net._params, expected._params)
    np.testing.assert_array_equal(net._opt_slots, expected._opt_slots)
    np.testing.assert_array_equal(net._opt_step, expected._opt_step)

    want = engine.MLPClassifier((5,), max_iter=2, shuffle=False, random_state=0).fit(X, y)
    got = ed.fit(engine.MLPClassifier((5,), max_iter=2, shuffle=False, random_state=0),
                     *dask_pair(X, y, (200, 400)), strategy="average", client=one_worker)
    for a, b in zip(got.coefs_, want.coefs_):
        np.testing.assert_array_equal(a, b)


def rounds_of(monkeypatch, net):
    """Records every round of "average": the client's parameters when the round's results
    came back (before they are averaged in), and those results."""
    rounds, gather = [], ed._gather

    def recording(client, futures):
        results = gather(client, futures)
        rounds.append({"params": net._params.copy(), "results": results})
        return results
    monkeypatch.setattr(ed, "_gather", recording)
    return rounds


def assert_learns_as_one_machine(net, single):
    """Held-out accuracy within 5 points of one machine's (and well above chance)."""
    X_test, y_test = data(1000, seed=2)
    assert net.score(X_test, y_test) > single.score(X_test, y_test) - 0.05
    assert net.score(X_test, y_test) > 0.8


def weighted_mean(results):
    n = sum(r["samples"] for r in results)
    return sum(r["samples"] / n * r["params"] for r in results)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_average_every_with_one_worker_equals_plain_fit(one_worker, monkeypatch, optimizer):
    """Rounds of k mini-batches continue where the previous one stopped (across the
    blocks' boundaries, with the optimiser's step count and the dropout generator carried
    on): averaging one copy is the identity, so any k gives plain fit's bits. The worker
    runs in this process, where it is handed the client's own objects: the client's model
    must still change only once a round is back."""
    X, y = data()
    kwargs = dict(NETWORK_FIT, optimizer=optimizer)
    expected = network()
    expected.fit(X, y, **kwargs)
    for every in (1, 3, None):
        net = network()
        start = net._params.copy()
        rounds = rounds_of(monkeypatch, net)
        ed.fit(net, *dask_pair(X, y, (97,) * 6 + (18,)), strategy="average",
               client=one_worker, average_every=every, **kwargs)
        np.testing.assert_array_equal(net._params, expected._params)
        np.testing.assert_array_equal(net._opt_slots, expected._opt_slots)
        np.testing.assert_array_equal(net._opt_step, expected._opt_step)
        assert net.rng.bit_generator.state == expected.rng.bit_generator.state
        np.testing.assert_allclose(net.history["loss"], expected.history["loss"], rtol=1e-12)
        batches = -(-600 // kwargs["batch_size"])
        assert len(rounds) == kwargs["epochs"] * (1 if every is None else -(-batches // every))
        np.testing.assert_array_equal(rounds[0]["params"], start)
        for before, after in zip(rounds, rounds[1:]):
            np.testing.assert_array_equal(after["params"], before["results"][0]["params"])


def test_average_shuffled_with_one_worker_equals_the_stream(one_worker, dask_client):
    """Shuffled, the rounds draw the blocks' and rows' orders as the stream's epoch does:
    a Network (one generator) and an estimator (rows from random_state, dropout masks
    from its network's generator), in rounds of an epoch and of 3 mini-batches."""
    X, y = data()
    kwargs = dict(epochs=2, batch_size=20, lr=0.1, optimizer="nesterov", dropout=0.1)
    streamed = network(seed=9)
    ed.fit(streamed, *dask_pair(X, y, (150,) * 4), client=dask_client, **kwargs)
    make = lambda: engine.MLPClassifier((5,), max_iter=2, random_state=0, batch_size=16,  # noqa: E731
                                        dropout=0.2)
    streamed_est = ed.fit(make(), *dask_pair(X, y, (150,) * 4), client=dask_client)
    for every in (None, 3):
        averaged = network(seed=9)
        ed.fit(averaged, *dask_pair(X, y, (150,) * 4), strategy="average",
               client=one_worker, average_every=every, **kwargs)
        np.testing.assert_array_equal(averaged._params, streamed._params)
        est = ed.fit(make(), *dask_pair(X, y, (150,) * 4), strategy="average",
                     client=one_worker, average_every=every)
        for a, b in zip(est.coefs_ + est.intercepts_,
                        streamed_est.coefs_ + streamed_est.intercepts_):
            np.testing.assert_array_equal(a, b)


def test_average_every_with_two_workers(dask_client, monkeypatch):
    """Two copies of unequal shares (900 and 1100 rows): each round is 5 mini-batches of
    each copy, the client's model becomes the samples-weighted mean of the copies once a
    round is back, the copy that is done sits out the epoch's last rounds, and held-out
    accuracy stays within a few points of one machine's."""
    X, y = data(2000, seed=1)
    kwargs = dict(epochs=3, batch_size=20, lr=0.05, optimizer="adam")
    single = network()
    single.fit(X, y, **kwargs)
    net = network()
    rounds = rounds_of(monkeypatch, net)
    ed.fit(net, *dask_pair(X, y, (900, 500, 600)), strategy="average", average_every=5,
           **kwargs)
    # 45 and 55 mini-batches a copy: 11 rounds an epoch, the last two of one copy
    assert len(rounds) == 11 * kwargs["epochs"]
    assert [len(r["results"]) for r in rounds[:11]] == [2] * 9 + [1] * 2
    assert [r["samples"] for r in rounds[0]["results"]] == [100, 100]
    for before, after in zip(rounds, rounds[1:]):
        np.testing.assert_allclose(after["params"], weighted_mean(before["results"]),
                                   rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(net._params, weighted_mean(rounds[-1]["results"]),
                               rtol=1e-13, atol=1e-15)
    assert_learns_as_one_machine(net, single)


def test_average_every_is_checked(dask_client):
    Xd, yd = dask_pair(*data(), 200)
    for bad, error in ((0, ValueError), (-2, ValueError), (1.5, TypeError),
                       (True, TypeError), ("3", TypeError)):
        with pytest.raises(error, match="average_every must be a positive integer"):
            ed.fit(network(), Xd, yd, strategy="average", average_every=bad)
    with pytest.raises(ValueError, match="average_every applies to strategy='average'"):
        ed.fit(network(), Xd, yd, average_every=2)


def test_average_with_two_workers_learns_as_one_machine(dask_client):
    """Two copies averaged once per epoch: held-out accuracy within a few points of one
    machine's after the same epochs."""
    X, y = data(3000, seed=1)
    kwargs = dict(epochs=8, batch_size=20, lr=0.05, optimizer="adam")
    single = network()
    single.fit(X, y, **kwargs)
    net = network()
    with distributed.get_task_stream(client=dask_client) as stream:
        ed.fit(net, *dask_pair(X, y, 500), strategy="average", **kwargs)
    rounds = [task for task in stream.data if str(task["key"]).startswith("engine-average")]
    assert len(rounds) == 2 * kwargs["epochs"]
    assert len({task["worker"] for task in rounds}) == 2, "the copies trained on one worker"
    assert_learns_as_one_machine(net, single)


def test_stream_memory_stays_bounded(dask_client):
    """160 MB of rows generated by the cluster in 4 MB blocks: the trainer's resident
    memory grows by a few blocks, not by the data."""
    pytest.importorskip("psutil")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    try:
        from benchmarks.dask_scaling import peak_rss
    finally:
        sys.path.pop(0)
    n, n_in, rows = 200_000, 100, 5_000
    X = da.random.RandomState(0).standard_normal((n, n_in), chunks=(rows, n_in))
    y = da.random.RandomState(1).randint(0, 2, size=n, chunks=rows)
    net = engine.Network([n_in, 8, 2], output="softmax", cost="cross_entropy", seed=0)
    ed.fit(net, X[:rows * 2], y[:rows * 2], batch_size=100, lr=0.01)  # compile, allocate
    baseline, peak = peak_rss(lambda: ed.fit(net, X, y, batch_size=100, lr=0.01))
    block = rows * n_in * 8
    assert X.nbytes == 40 * block
    assert peak - baseline < 12 * block, (
        f"trainer grew by {(peak - baseline) / 1e6:.0f} MB for {X.nbytes / 1e6:.0f} MB of "
        f"data in blocks of {block / 1e6:.0f} MB")


# -- faults: a worker process killed in the middle of a computation ----------------------


def _kill_once(block, marker):
    """Kill this worker process the first time any block passes here."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return block
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_always(block):
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize("strategy", ["stream", "average"])
def test_worker_killed_during_a_round_is_recomputed(dask_client, tmp_path, strategy):
    X, y = data()
    kwargs = dict(epochs=2, batch_size=16, lr=0.05, shuffle=False, optimizer="adam")
    expected = network()
    ed.fit(expected, *dask_pair(X, y, 150), strategy=strategy, **kwargs)
    Xd, yd = dask_pair(X, y, 150)
    marker = str(tmp_path / "killed")
    Xd = Xd.map_blocks(_kill_once, marker, dtype=Xd.dtype, meta=np.empty((0, 0)))
    net = network()
    ed.fit(net, Xd, yd, strategy=strategy, **kwargs)
    assert os.path.exists(marker), "no worker was killed"
    np.testing.assert_array_equal(net._params, expected._params)
    dask_client.wait_for_workers(2, timeout=60)


def test_worker_killed_while_training_a_round_is_recomputed(dask_client):
    """SIGKILL a worker process as soon as it is given its copy's round: Dask recomputes
    the lost blocks and reruns the round's task; the averaged model is the same bits."""
    X, y = data(20_000, seed=4)
    kwargs = dict(epochs=3, batch_size=1, lr=0.01, shuffle=False)
    expected = network()
    ed.fit(expected, *dask_pair(X, y, 2500), strategy="average", **kwargs)
    pids = dask_client.run(os.getpid)
    killed, stop = [], threading.Event()

    def kill_in_round():
        while not stop.is_set() and not killed:
            for worker, keys in dask_client.processing().items():
                if worker in pids and any(str(k).startswith("engine-average") for k in keys):
                    os.kill(pids[worker], signal.SIGKILL)
                    killed.append(worker)
                    break
            time.sleep(0.002)
    killer = threading.Thread(target=kill_in_round)
    killer.start()
    try:
        net = network()
        ed.fit(net, *dask_pair(X, y, 2500), strategy="average", **kwargs)
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was killed during a round"
    np.testing.assert_array_equal(net._params, expected._params)
    dask_client.wait_for_workers(2, timeout=60)


def test_worker_lost_for_good_stops_fit_and_leaves_the_model(dask_client):
    X, y = data()
    net = network()
    Xd, yd = dask_pair(X, y, 300)
    ed.fit(net, Xd, yd, epochs=1, batch_size=16, lr=0.05, optimizer="adam")
    before = (net._params.copy(), net._opt_slots.copy(), net._opt_step.copy(),
              copy.deepcopy(net.history))
    with pytest.raises(ed.WorkerLostError, match="allowed-failures"):
        ed.fit(net, Xd.map_blocks(_kill_always, dtype=Xd.dtype, meta=np.empty((0, 0))), yd, strategy="average",
               epochs=1, batch_size=16, lr=0.05, optimizer="adam")
    np.testing.assert_array_equal(net._params, before[0])
    np.testing.assert_array_equal(net._opt_slots, before[1])
    np.testing.assert_array_equal(net._opt_step, before[2])
    assert net.history == before[3]
    dask_client.wait_for_workers(2, timeout=60)


def test_bad_input_is_named(dask_client):
    X, y = data()
    Xd, yd = dask_pair(X, y, 200)
    with pytest.raises(TypeError, match="dask.array.Array"):
        ed.fit(network(), X, y)
    with pytest.raises(ValueError, match="strategy"):
        ed.fit(network(), Xd, yd, strategy="ring")
    with pytest.raises(ValueError, match="early_stopping"):
        ed.fit(network(), Xd, yd, early_stopping=True)
    with pytest.raises(ValueError, match="6 features but the network.s input layer has 7"):
        ed.fit(engine.Network([7, 3]), Xd, yd)
    with pytest.raises(ValueError, match="solver='lbfgs'"):
        ed.fit(engine.MLPClassifier(), Xd, yd, strategy="lbfgs")
    with pytest.raises(ValueError, match="one row per sample"):
        ed.fit(network(), Xd, y[:10])

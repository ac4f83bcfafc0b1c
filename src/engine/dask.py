"""Training beyond one machine on a Dask cluster: :func:`fit`.

Dask does the scheduling, the placement of the data and the transport; this module brings
the compiled kernels to the row blocks of Dask arrays. Three strategies:

``"stream"``
    One trainer (this process) trains on the row blocks as the cluster computes them,
    fetching the next block while it trains on the current one. A mini-batch that
    straddles two blocks is carried over: the rows left after a block's whole mini-batches
    wait for the next block, and each block's whole mini-batches run in one compiled call.
    With ``shuffle=False`` the result equals fitting the concatenated arrays, bit for bit,
    whatever the chunking. With shuffling, each epoch visits the blocks in an order drawn
    from the model's generator and the rows of each block in an order drawn next, as the
    block is reached.
``"lbfgs"``
    Exact data-parallel L-BFGS: every worker computes the full-batch loss and gradient
    of the blocks it holds with the compiled kernel; the client sums them and takes
    SciPy's L-BFGS-B steps (estimators with ``solver="lbfgs"``).
``"average"``
    Data-parallel SGD by parameter averaging: every worker trains a copy on the blocks it
    holds for a round (an epoch, or ``average_every`` mini-batches), then parameters and
    optimiser state are averaged, weighted by the samples each copy saw in the round, and
    sent back out. A round continues the copy's epoch where the previous one stopped (its
    block order, rows, generators); a copy whose blocks are done for the epoch sits out
    the epoch's remaining rounds.

Only parameters travel between rounds; the blocks stay where Dask placed them. The model
on the client changes only once a whole round has come back: a worker lost in a round
makes Dask recompute its part (its retries), or ``fit`` raises with the model as it was
after the last complete round.
"""

import copy
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral

import numpy as np

from . import _validation as check
from . import state, training
from .errors import DivergenceError
from .kernels import codes
from .network import Network

STRATEGIES = ("stream", "lbfgs", "average")

# Network.fit options the strategies honour; the rest are refused by name.
_NETWORK_OPTIONS = {"epochs", "batch_size", "lr", "shuffle", "verbose", "optimizer", "momentum",
                    "beta1", "beta2", "eps", "rho", "l2", "dropout", "lr_schedule",
                    "callbacks"}


class WorkerLostError(RuntimeError):
    """A round could not complete on the cluster (its workers died more often than Dask's
    ``distributed.scheduler.allowed-failures`` allows); the model is as it was after the
    last complete round."""


def worker_environment(numba_threads=1, cache_dir=None):
    """Environment for the engine's worker processes: one Numba thread each (a worker
    runs one task per thread already) and, optionally, a shared compiled-kernel cache.

    Pass it to ``LocalCluster(env=...)``, or export it before ``dask worker``.

    >>> worker_environment()
    {'NUMBA_NUM_THREADS': '1'}
    """
    env = {"NUMBA_NUM_THREADS": str(check.positive_int("numba_threads", numba_threads))}
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    return env


def warm_workers(client, dtypes=("float64", "float32")):
    """Load the compiled kernels on every worker once (from the on-disk cache where it
    holds them, else compiling and writing them), so that no task pays for compilation.
    Returns ``{worker address: seconds spent}``."""
    return client.run(_warm, tuple(dtypes))


def _warm(dtypes):
    import time

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    for dtype in dtypes:
        X = rng.random((8, 3)).astype(dtype)
        for optimizer in ("sgd", "adam"):
            Network([3, 4, 2], dtype=dtype, seed=0).fit(X, np.arange(8) % 2, batch_size=4,
                                                          optimizer=optimizer)
    return time.perf_counter() - start


def fit(model, X, y, *, strategy="stream", client=None, prefetch=2, average_every=None,
        **fit_kwargs):
    """Train ``model`` on Dask arrays, on a Dask cluster.

    Parameters
    ----------
    model : engine.Network, engine.MLPClassifier or engine.MLPRegressor
        For an estimator its parameters rule training (``fit_kwargs`` must be empty); for
        a Network, ``fit_kwargs`` are :meth:`engine.Network.fit`'s (epochs, batch_size,
        lr, shuffle, verbose, the optimiser's, l2, dropout, lr_schedule, callbacks).
    X : dask.array.Array, shape (n_samples, n_features)
        Chunked by rows (a chunking across columns is merged).
    y : dask.array.Array or array-like, shape (n_samples,) or (n_samples, n_outputs)
        The targets, as the model's ``fit`` takes them; rechunked to X's row blocks.
    strategy : {"stream", "lbfgs", "average"}
        See the module's description. "lbfgs" is for estimators with ``solver="lbfgs"``;
        "stream" and "average" for Networks and estimators with ``solver="sgd"`` or
        ``"adam"``.
    client : dask.distributed.Client, optional
        Default: the current client.
    prefetch : int
        "stream": how many blocks are computed ahead of the one in training.
    average_every : int or None
        "average": the mini-batches each copy trains between two averages (None: a
        round is an epoch). Within an epoch each round continues where the previous one
        stopped; a copy whose blocks are done for the epoch sits out its remaining rounds.

    Returns
    -------
    model
        The model, trained (a Network's ``history`` holds the epochs' records).
    """
    import dask.array as da
    from dask.distributed import default_client

    strategy = check.choice("strategy", strategy, STRATEGIES)
    if not isinstance(X, da.Array):
        raise TypeError(f"X must be a dask.array.Array chunked by rows; got "
                        f"{type(X).__name__} (use engine's fit for NumPy arrays, or "
                        f"dask.array.from_array(X, chunks=(rows, -1)))")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {X.shape}")
    if any(np.isnan(c).any() for c in X.chunks):
        raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first")
    if X.shape[0] == 0:
        raise ValueError("X is empty: it has 0 samples")
    X = X.rechunk({1: -1})
    y = _aligned_targets(y, X)
    if client is None:
        try:
            client = default_client()
        except ValueError:
            raise ValueError("engine.dask.fit needs a Dask client: create one "
                             "(dask.distributed.Client(...)) or pass client=") from None
    prefetch = check.positive_int("prefetch", prefetch)
    if average_every is not None:
        if strategy != "average":
            raise ValueError(f"average_every applies to strategy='average'; this fit has "
                             f"strategy={strategy!r}")
        average_every = check.positive_int("average_every", average_every)
    data = _Blocks(client, X, y)
    if isinstance(model, Network):
        driver = _NetworkDriver(model, data, fit_kwargs)
    elif hasattr(model, "_fit_stochastic") and hasattr(model, "_fit_lbfgs"):
        if fit_kwargs:
            raise TypeError(f"fit_kwargs apply to a Network; an estimator takes its "
                            f"parameters (got {', '.join(sorted(fit_kwargs))})")
        driver = _EstimatorDriver(model, data)
    else:
        raise TypeError(f"model must be an engine.Network, engine.MLPClassifier or "
                        f"engine.MLPRegressor; got {type(model).__name__}")
    if strategy == "lbfgs":
        driver.fit_lbfgs()
    else:
        driver.fit_stochastic(_Stream(data, prefetch) if strategy == "stream"
                              else _Average(data, average_every))
    return model


def _aligned_targets(y, X):
    import dask.array as da

    if not isinstance(y, da.Array):
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have one row per sample of X ({X.shape[0]}); got "
                             f"shape {y.shape}")
        return da.from_array(y, chunks=(X.chunks[0],) + tuple((s,) for s in y.shape[1:]))
    if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have shape (n_samples,) or (n_samples, n_outputs) with "
                         f"n_samples = {X.shape[0]}; got {y.shape}")
    return y.rechunk((X.chunks[0],) + ((-1,) if y.ndim == 2 else ()))


# ---------------------------------------------------------------------------------------
# The data: row blocks of (X, y) on the cluster
# ---------------------------------------------------------------------------------------


class _Blocks:
    """The row blocks of X and y as delayed pairs, and their sizes."""

    def __init__(self, client, X, y):
        import dask

        self.client = client
        self.X, self.y = X, y
        self.sizes = np.array(X.chunks[0], dtype=np.int64)
        self.n_samples = int(X.shape[0])
        self.n_features = int(X.shape[1])
        xs, ys = X.to_delayed().ravel(), y.to_delayed().ravel()
        self.pairs = [dask.delayed(_pair, pure=True)(a, b) for a, b in zip(xs, ys)]

    def targets_and_head(self, rows):
        """All of y on the client (targets are small beside X) and X's first ``rows``
        rows, in one request."""
        y, head = self.client.compute([self.y, self.X[:rows]], sync=True)
        return np.asarray(y), np.asarray(head)

    def placed(self, encoder):
        """The blocks as kernel blocks kept on the workers, and their groups: a list of
        block-index lists, one per worker, each a contiguous run of blocks with about the
        same number of rows. The groups depend on the number of workers only, so what
        the strategies compute from them does not depend on where Dask placed the blocks
        (nor on a worker lost and replaced). Dask computes the blocks in one go (it keeps
        neighbouring root tasks on one worker) and runs each group's task where most of
        its blocks sit."""
        import dask

        client = self.client
        workers = sorted(client.scheduler_info()["workers"])
        if not workers:
            raise ValueError("the Dask cluster has no workers")
        ends = np.cumsum(self.sizes)
        share = np.minimum((ends - 1) * len(workers) // max(self.n_samples, 1),
                           len(workers) - 1)
        # a block belongs to the worker whose share of the rows holds its last row
        groups = {}
        for index, group in enumerate(share):
            groups.setdefault(int(group), []).append(index)
        # one graph from the source to each kernel block, so that a lost block is
        # recomputed; each group's blocks are placed on a worker of their own (a hint:
        # another worker takes them if that one is gone)
        blocks = [None] * len(self.pairs)
        for group, indices in groups.items():
            for index in indices:
                block = dask.delayed(_kernel_block, pure=False)(encoder, self.pairs[index])
                blocks[index] = client.compute(block, workers=[workers[group]],
                                               allow_other_workers=True)
        try:
            _wait(blocks)
        except BaseException:
            client.cancel(blocks)
            raise
        return blocks, [indices for _, indices in sorted(groups.items())]


def _pair(a, b):
    return a, b


def _kernel_block(encoder, pair):
    """A block as the kernels take it: ``(X, labels, targets)`` in the model's dtype."""
    X, y = pair
    return encoder(X, y)


class _NetworkEncoder:
    """Checks and converts one block for a Network (its normalisation applied)."""

    def __init__(self, net):
        self.n_in, self.n_out, self.dtype = net.sizes[0], net.sizes[-1], net.dtype
        self.normalization = net.normalization

    def __call__(self, X, y):
        if self.normalization is not None:
            X, y = self.normalization.transform(X), self.normalization.transform_targets(y)
        X = check.features(X, self.n_in, self.dtype)
        labels, targets = check.targets(y, X.shape[0], self.n_out, self.dtype)
        return np.require(X, self.dtype, ["C", "W"]), labels, targets


class _EstimatorEncoder:
    """Checks and converts one block for a fitted-to-be estimator (its label encoding)."""

    def __init__(self, est, dtype):
        self.est, self.dtype = est, dtype

    def __call__(self, X, y):
        from sklearn.utils.validation import check_array

        X = check_array(X, dtype=self.dtype)
        if X.shape[1] != self.est.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but the estimator is expecting "
                             f"{self.est.n_features_in_} features as input")
        y = np.asarray(y)
        classes = getattr(self.est, "classes_", None)
        if self.est.out_activation_ == "softmax" and y.ndim == 1:
            # class indices straight away (the one-hot rows the kernels would reduce to
            # them, without scikit-learn's per-call checks)
            labels = np.searchsorted(classes, y)
            if np.any(labels >= classes.size) or np.any(classes[np.minimum(
                    labels, classes.size - 1)] != y):
                raise ValueError(f"y has labels outside the classes seen in fit "
                                 f"{classes.tolist()}")
            return (np.require(X, self.dtype, ["C", "W"]), labels.astype(np.int64),
                    np.zeros((0, classes.size), self.dtype))
        y = self.est._encode_targets(y)
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        labels, targets = self.est._kernel_targets(y, self.dtype)
        return np.require(X, self.dtype, ["C", "W"]), labels, targets


# ---------------------------------------------------------------------------------------
# Training over consecutive blocks: whole mini-batches per compiled call, a carried rest
# ---------------------------------------------------------------------------------------


class _Carry:
    """Trains a sequence of blocks as if they were one array, at most ``budget``
    mini-batches (None: no limit). The rows left after the previous block's whole
    mini-batches and the first rows of this block make one mini-batch (the only rows
    copied); the rest of the block's whole mini-batches run in one compiled call on the
    block itself, in the order ``rows`` (None: as stored); its last rows wait for the next
    block. A spent budget stops at a mini-batch boundary, never leaving rows carried."""

    def __init__(self, net, plan, batch_size, lr, budget=None):
        self.net, self.plan, self.batch_size, self.lr = net, plan, batch_size, lr
        self.budget = budget
        self.rest = None
        self.total = 0.0
        self.samples = 0

    @property
    def spent(self):
        return self.budget is not None and self.budget <= 0

    def add(self, block, rows=None, start=0):
        """Train ``block`` from its row ``start`` (in the order ``rows``); returns the row
        reached: the block's length once it is done (its last rows maybe carried), less
        where the budget ran out."""
        size, batch = block[0].shape[0], self.batch_size
        if self.rest is not None:
            take = min(size - start, batch - self.rest[0].shape[0])
            picked = _rows(block, rows, start, start + take)
            joined = tuple(np.concatenate([r, b]) if b.shape[0] else b
                           for r, b in zip(self.rest, picked))
            start += take
            if joined[0].shape[0] < batch:
                self.rest = joined
                return size
            self.rest = None
            self._train(joined, None, 0, batch)
            if self.spent:
                return start
        whole = (size - start) // batch
        if self.budget is not None:
            whole = min(whole, self.budget)
        stop = start + whole * batch
        if stop > start:
            self._train(block, rows, start, stop)
        if stop < size and not self.spent:
            self.rest = _rows(block, rows, stop, size)
            return size
        return stop

    def finish(self):
        """Train the last, short mini-batch; returns the summed cost of the pass."""
        if self.rest is not None:
            self._train(self.rest, None, 0, self.rest[0].shape[0])
            self.rest = None
        return self.total

    def _train(self, block, rows, start, stop):
        X, labels, targets = block
        order = np.arange(X.shape[0], dtype=np.int64) if rows is None else rows
        batches = -(-(stop - start) // self.batch_size)
        if self.plan is not None:
            self.plan.draw_mask(self.net.rng, stop - start)
        with np.errstate(over="ignore", invalid="ignore"):
            self.total += self.net._backend.train(self.net, X, labels, targets, order, start,
                                                  stop, self.batch_size, self.lr,
                                                  plan=self.plan)
        self.samples += stop - start
        if self.budget is not None:
            self.budget -= batches


def _rows(block, rows, start, stop):
    """Copies of the block's rows ``start:stop`` in the order ``rows`` (None: as stored)."""
    picked = slice(start, stop) if rows is None else rows[start:stop]
    return tuple(np.ascontiguousarray(a[picked]) if a.shape[0] else a for a in block)


def _train_blocks(net, plan, blocks, batch_size, lr, rng):
    """One pass over ``blocks`` (an iterable of kernel blocks, already in the pass's
    order): ``rng`` None trains the rows in order, else in an order of each block's rows
    drawn from ``rng`` as the block is reached."""
    carry = _Carry(net, plan, batch_size, lr)
    for block in blocks:
        carry.add(block, None if rng is None else rng.permutation(block[0].shape[0]))
    return carry.finish()


# ---------------------------------------------------------------------------------------
# "stream": one trainer, blocks computed by the cluster and fetched ahead
# ---------------------------------------------------------------------------------------


class _Stream:
    """Runs each epoch on this process over blocks the cluster computes."""

    def __init__(self, data, prefetch):
        self.data, self.prefetch = data, prefetch

    def start(self, encoder):
        self.encoder = encoder

    def epoch(self, net, plan, batch_size, lr, shuffle, rng):
        """Train one epoch; returns its summed cost."""
        n_blocks = len(self.data.pairs)
        order = rng.permutation(n_blocks) if shuffle else np.arange(n_blocks)
        return _train_blocks(net, plan, self._fetched(order), batch_size, lr,
                             rng if shuffle else None)

    def _fetched(self, order):
        """The blocks in ``order``, each computed by the cluster and transferred while the
        previous one trains (at most ``prefetch`` computed ahead)."""
        import dask

        client = self.data.client
        direct = _direct_to_workers(client)
        pending = deque()
        queue = iter(order)
        with ThreadPoolExecutor(1, thread_name_prefix="engine-fetch") as fetcher:
            def submit():
                index = next(queue, None)
                if index is not None:
                    # the workers check and convert the block; the trainer only trains
                    future = client.compute(dask.delayed(_kernel_block, pure=False)(
                        self.encoder, self.data.pairs[index]))
                    pending.append((future, fetcher.submit(client.gather, future,
                                                           direct=direct)))
            for _ in range(self.prefetch + 1):
                submit()
            try:
                while pending:
                    future, fetching = pending.popleft()
                    block = _result(fetching)
                    future.release()
                    submit()
                    yield block
            finally:
                for future, fetching in pending:
                    future.cancel()


def _direct_to_workers(client):
    """Whether to fetch blocks straight from the worker that holds them rather than
    relayed by the scheduler (half the copies): as the client was told
    (``Client(direct_to_workers=...)``), else where the scheduler and every worker run on
    one host, which a client that reaches the scheduler reaches too. Across machines the
    workers may sit behind the scheduler, as Dask assumes by default."""
    from distributed.comm import get_address_host

    if client.direct_to_workers is not None:
        return bool(client.direct_to_workers)
    addresses = [client.scheduler.address, *client.scheduler_info()["workers"]]
    return len({get_address_host(address) for address in addresses}) == 1


def _result(fetching):
    from distributed.scheduler import KilledWorker

    try:
        return fetching.result()
    except KilledWorker as exc:
        raise WorkerLostError(f"a block could not be computed: {exc}. Dask retried it on "
                              f"other workers and gave up (distributed.scheduler."
                              f"allowed-failures); the model keeps its last complete "
                              f"epoch") from exc


# ---------------------------------------------------------------------------------------
# "average": a copy per worker on the blocks it holds, averaged each round
# ---------------------------------------------------------------------------------------


class _Average:
    """Parameter averaging over the workers that hold the blocks, in rounds of
    ``every`` mini-batches per copy (None: a round is an epoch)."""

    def __init__(self, data, every):
        self.data, self.every = data, every

    def start(self, encoder):
        self.blocks, self.groups = self.data.placed(encoder)
        self.epochs = self.rounds = 0
        self.token = uuid.uuid4().hex  # task keys unique to this fit

    def epoch(self, net, plan, batch_size, lr, shuffle, rng):
        """Train one epoch in rounds; returns its summed cost. A copy whose blocks are
        done sits out the epoch's remaining rounds."""
        client = self.data.client
        self.epochs += 1
        shared = rng is net.rng
        # the first copy carries the model's own generators, so that with one worker the
        # rounds are the stream's epoch; the others draw from streams of their own
        base = (None if len(self.groups) == 1 else
                int(rng.integers(2**31) if hasattr(rng, "integers") else rng.randint(2**31)))
        passes = {0: _Pass(net.rng, None if shared else rng)}
        for copy_index in range(1, len(self.groups)):
            passes[copy_index] = _Pass(np.random.default_rng([base, self.epochs, copy_index]))
        total = 0.0
        while passes:
            self.rounds += 1
            tasks = [client.submit(
                _train_round, net, plan, [self.blocks[i] for i in self.groups[copy_index]],
                batch_size, lr, shuffle, progress, self.every, pure=False,
                key=f"engine-average-{self.token}-{self.rounds}-{copy_index}")
                for copy_index, progress in passes.items()]
            results = dict(zip(passes, _gather(client, tasks)))
            _average_into(net, [r for r in results.values() if r["samples"]])
            if 0 in results:  # the generators continue from the first copy's
                _adopt_generator(net.rng, results[0]["progress"].net_rng)
                if not shared:
                    _adopt_generator(rng, results[0]["progress"].rng)
            total += sum(r["total"] for r in results.values())
            passes = {i: r["progress"] for i, r in results.items() if not r["progress"].done}
        return total

    def close(self):
        for future in getattr(self, "blocks", ()):
            future.release()


class _Pass:
    """Where a copy stands in its epoch over its blocks, so that a round continues where
    the previous one stopped: the epoch's block order, the block reached and the rows of
    it done, and the generators (the network's, and the one shuffling the rows where it
    is another). ``from_block`` is the shuffling generator as it was when the current
    block was reached, to redraw that block's row order."""

    def __init__(self, net_rng, rng=None):
        self.net_rng, self.rng = net_rng, rng
        self.order = None
        self.position = self.offset = 0
        self.from_block = None
        self.done = False


def _train_round(net, plan, blocks, batch_size, lr, shuffle, progress, budget):
    """A worker's round: train a copy of ``net`` over the next ``budget`` mini-batches
    (None: the rest of the epoch) of its blocks, from where ``progress`` stands."""
    # copies: a worker in the client's process gets the client's own objects
    net, progress = copy.deepcopy(net), copy.deepcopy(progress)
    net.rng = progress.net_rng
    rng = net.rng if progress.rng is None else progress.rng
    if progress.order is None:
        progress.order = (rng.permutation(len(blocks)) if shuffle
                          else np.arange(len(blocks)))
    carry = _Carry(net, plan, batch_size, lr, budget)
    while progress.position < len(progress.order) and not carry.spent:
        block = blocks[progress.order[progress.position]]
        rows = None
        if shuffle:
            if progress.offset == 0:
                progress.from_block = copy.deepcopy(rng)
                rows = rng.permutation(block[0].shape[0])
            else:
                rows = copy.deepcopy(progress.from_block).permutation(block[0].shape[0])
        reached = carry.add(block, rows, progress.offset)
        if reached == block[0].shape[0]:
            progress.position, progress.offset = progress.position + 1, 0
        else:
            progress.offset = reached
    if progress.position == len(progress.order):
        carry.finish()
        progress.done = True
    return dict(state.training_arrays(net), progress=progress, samples=carry.samples,
                total=carry.total)


def _adopt_generator(rng, other):
    """Move ``rng`` (a Generator or RandomState) to ``other``'s state, in place."""
    if hasattr(rng, "bit_generator"):
        rng.bit_generator.state = other.bit_generator.state
    else:
        rng.set_state(other.get_state())


def _average_into(net, results):
    """Weighted average of the copies' parameters, optimiser state and batch-norm running
    statistics into ``net`` (all at once, after the whole round came back); one copy's
    state is taken as it is."""
    if not results:
        return
    n = sum(r["samples"] for r in results)
    shares = [r["samples"] / n for r in results]

    def mean(key):
        if len(results) == 1:
            return results[0][key]
        return sum(s * r[key] for s, r in zip(shares, results))
    for name, live in state.training_arrays(net).items():
        value = mean(name)
        if live.shape == value.shape:
            live[...] = np.round(value) if name == "opt_step" else value


def _gather(client, futures):
    from distributed.scheduler import KilledWorker

    try:
        return client.gather(futures)
    except KilledWorker as exc:
        raise WorkerLostError(f"a round could not complete: {exc}. Dask retried it on other "
                              f"workers and gave up (distributed.scheduler."
                              f"allowed-failures); the model keeps its last complete "
                              f"round") from exc
    finally:
        for future in futures:
            future.release()


def _wait(futures):
    """Wait until ``futures`` are computed on the cluster (their data stays there)."""
    from distributed import wait
    from distributed.scheduler import KilledWorker

    pending = list(futures)
    while pending:  # Dask's wait has no FIRST_EXCEPTION: stop at the first failure
        with futures[0].client.as_current():
            done, not_done = wait(pending, return_when="FIRST_COMPLETED")
        for future in done:
            if future.status != "finished":
                try:
                    future.result()
                except KilledWorker as exc:
                    raise WorkerLostError(
                        f"a block could not be computed: {exc}. Dask retried it on other "
                        f"workers and gave up (distributed.scheduler.allowed-failures)"
                    ) from exc
        pending = list(not_done)


# ---------------------------------------------------------------------------------------
# The drivers: the epoch loop and its records, as Network.fit and the estimators keep them
# ---------------------------------------------------------------------------------------


class _NetworkDriver:
    """Network.fit's loop (options, optimiser memory, schedule, history, callbacks,
    divergence) around a strategy's epochs."""

    def __init__(self, net, data, kwargs):
        unknown = set(kwargs) - _NETWORK_OPTIONS
        if unknown:
            raise ValueError(f"engine.dask.fit does not support {', '.join(sorted(unknown))} "
                             f"for a Network; it takes {', '.join(sorted(_NETWORK_OPTIONS))}")
        if data.n_features != net.sizes[0]:
            raise ValueError(f"X has {data.n_features} features but the network's input "
                             f"layer has {net.sizes[0]}")
        self.net, self.data = net, data
        self.epochs = check.positive_int("epochs", kwargs.get("epochs", 1))
        self.batch_size = check.positive_int("batch_size", kwargs.get("batch_size", 10))
        self.lr = check.positive_float("lr", kwargs.get("lr", 0.1))
        self.shuffle = bool(kwargs.get("shuffle", True))
        self.verbose = kwargs.get("verbose", 0)
        self.opts = training.options(net, **{k: kwargs[k] for k in kwargs if k in (
            "optimizer", "momentum", "beta1", "beta2", "eps", "rho", "l2", "dropout",
            "lr_schedule", "callbacks")})

    def fit_lbfgs(self):
        raise ValueError("strategy='lbfgs' trains estimators with solver='lbfgs' "
                         "(engine.MLPClassifier / MLPRegressor); a Network trains with "
                         "'stream' or 'average'")

    def fit_stochastic(self, strategy):
        net, opts, n = self.net, self.opts, self.data.n_samples
        if net._n_bn and self.batch_size < 2:
            raise ValueError("batch_size must be at least 2 with batch normalisation")
        plan = training.Plan(net, opts.optimizer, opts.hyper.copy(), opts.dropout)
        unsupported = (plan.features() | ({"l2"} if opts.l2 else set())
                       | ({"batch_norm"} if net._n_bn else set()))
        unsupported -= set(net._backend.features)
        if unsupported:
            raise ValueError(f"backend {net.backend!r} does not support "
                             f"{', '.join(sorted(unsupported))}; use 'numba' or 'numpy'")
        plan.hyper[codes.H_WEIGHT_DECAY] = opts.l2 / n
        net._usable_parameters()
        encoder = _NetworkEncoder(net)
        strategy.start(encoder)
        # the task (classification or regression) from the first targets
        head = self.data.client.compute(self.data.y[:min(n, 2)]).result()
        if net.normalization is not None:
            head = net.normalization.transform_targets(head)
        head_labels = check.targets(head, head.shape[0], net.sizes[-1], net.dtype)[0]
        history = {"loss": []}
        scheduled = type(opts.schedule) is not training.Constant
        if scheduled:
            history["lr"] = []
        plan.lr = training.scheduled_rate(opts.schedule, opts.schedule.start(self.lr, n), 0)
        net._adopt_task(head_labels)
        state.ensure_optimizer_state(net, opts.optimizer)
        net.history = history
        try:
            for epoch in range(self.epochs):
                saved, saved_rng = state.Snapshot(net), copy.deepcopy(net.rng)
                saved.take()
                total = strategy.epoch(net, plan, self.batch_size, plan.lr, self.shuffle,
                                       net.rng)
                mean_cost = float(total) / n
                if not np.isfinite(mean_cost) or not np.isfinite(net._params).all():
                    saved.restore()
                    net.rng = saved_rng
                    raise DivergenceError(
                        f"training diverged in epoch {epoch + 1}: the loss became "
                        f"{mean_cost}. The network keeps the parameters from the end of "
                        f"epoch {epoch}. Try a smaller learning rate than {plan.lr}.", epoch)
                history["loss"].append(mean_cost)
                if scheduled:
                    history["lr"].append(plan.lr)
                if self.verbose:
                    print(f"Epoch {epoch + 1}/{self.epochs} - loss: {mean_cost:.4f}",
                          flush=True)
                plan.lr = training.scheduled_rate(
                    opts.schedule, opts.schedule.after_epoch(epoch, history), epoch + 1)
                stop = False
                for cb in opts.callbacks:
                    stop = training.call_callback(cb, epoch, history) or stop
                if stop:
                    break
        finally:
            getattr(strategy, "close", lambda: None)()
        return history


class _EstimatorDriver:
    """The estimators' setup and epoch loop (scikit-learn's bookkeeping: ``loss_curve_``,
    ``t_``, ``invscaling`` and ``adaptive`` rates, the ``tol`` stop) around a strategy's
    epochs, and their L-BFGS with the loss and gradient summed over the workers."""

    def __init__(self, est, data):
        est._validate_params()
        if getattr(est, "early_stopping", False):
            raise ValueError("engine.dask.fit does not support early_stopping=True (its "
                             "validation split would need the rows in memory); use "
                             "early_stopping=False")
        if getattr(est, "class_weight", None) is not None:
            raise ValueError("engine.dask.fit does not support class_weight yet; fit "
                             "without it")
        self.est, self.data = est, data

    def _setup(self):
        """What the estimator's ``_fit`` does before its solver, with y on the client and X
        checked block by block."""
        from sklearn.preprocessing import LabelBinarizer
        from sklearn.utils import check_random_state, column_or_1d
        from sklearn.utils.validation import validate_data

        est, data = self.est, self.data
        hidden = est.hidden_layer_sizes
        hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
        if any(not isinstance(h, Integral) or h <= 0 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        first_pass = not hasattr(est, "coefs_") or not est.warm_start
        y, sample = data.targets_and_head(min(data.n_samples, 2))
        dtype = est._input_dtypes(first_pass)
        validate_data(est, sample, reset=first_pass, dtype=dtype)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if est._is_classifier():
            if first_pass:
                est._label_binarizer = LabelBinarizer().fit(y)
                est.classes_ = est._label_binarizer.classes_
            elif set(np.unique(y)) != set(est.classes_):
                raise ValueError(f"warm_start can only be used where `y` has the same classes "
                                 f"as in the previous call to fit. Previously got "
                                 f"{est.classes_}")
        encoded = est._encode_targets(y[:1])  # (its width is all that is used)
        if encoded.ndim == 1:
            encoded = encoded.reshape(-1, 1)
        est.n_outputs_ = encoded.shape[1]
        layer_units = [data.n_features] + hidden + [est.n_outputs_]
        est._random_state = check_random_state(est.random_state)
        data_dtype = (np.dtype(data.X.dtype) if isinstance(dtype, tuple)
                      and np.dtype(data.X.dtype) in map(np.dtype, dtype) else
                      np.dtype(dtype[0] if isinstance(dtype, tuple) else dtype))
        if first_pass:
            est._initialize(encoded, layer_units, data_dtype)
        net = est._network(layer_units)
        est._push(net)
        return net, _EstimatorEncoder(est, net.dtype)

    def fit_stochastic(self, strategy):
        est = self.est
        if est.solver not in ("sgd", "adam"):
            raise ValueError(f"strategy 'stream' and 'average' train solver='sgd' or 'adam'; "
                             f"this estimator has solver={est.solver!r} (use "
                             f"strategy='lbfgs')")
        net, encoder = self._setup()
        n = self.data.n_samples
        state.set_optimizer_state(net, None)
        est._learning_rate = float(est.learning_rate_init)
        batch_size = (min(200, n) if est.batch_size == "auto"
                      else int(np.clip(est.batch_size, 1, n)))
        plan = est._plan(net, est.solver)
        state.ensure_optimizer_state(net, plan.optimizer)
        strategy.start(encoder)
        adaptive_sgd = est.solver == "sgd"
        est.n_iter_ = 0
        try:
            for _ in range(est.max_iter):
                lr = est._learning_rate if adaptive_sgd else float(est.learning_rate_init)
                plan.lr = lr
                total = strategy.epoch(net, plan, batch_size, lr, est.shuffle,
                                       est._random_state)
                if est._end_epoch(net, total, n, False, None, None, None):
                    break
                est._warn_at_max_iter()
        finally:
            getattr(strategy, "close", lambda: None)()
        _check_finite(est)

    def fit_lbfgs(self):
        est = self.est
        if est.solver != "lbfgs":
            raise ValueError(f"strategy='lbfgs' needs solver='lbfgs'; this estimator has "
                             f"solver={est.solver!r} (use 'stream' or 'average')")
        if est._uses_dropout() or any(est._batch_norm_flags(1 + len(np.atleast_1d(
                est.hidden_layer_sizes)) - 2)):
            raise ValueError("solver='lbfgs' minimises a fixed loss: it does not combine "
                             "with dropout or batch_norm; use solver='adam' or 'sgd'")
        net, encoder = self._setup()
        client, data = self.data.client, self.data
        plan = est._plan(net, "lbfgs")
        alpha = plan.hyper[codes.H_L2_BATCH]
        plan.hyper[codes.H_L2_BATCH] = 0.0  # added once, on the client
        blocks, placement = data.placed(encoder)
        groups = [[blocks[i] for i in indices] for indices in placement]
        n = data.n_samples
        calls = [0]
        token = uuid.uuid4().hex

        def objective():
            calls[0] += 1
            tasks = [client.submit(_block_loss_gradient, net, plan, group, pure=False,
                                   key=f"engine-lbfgs-{token}-{calls[0]}-{i}")
                     for i, group in enumerate(groups)]
            parts = _gather(client, tasks)
            total = sum(p[0] for p in parts)
            flat = sum(p[1] for p in parts)
            if alpha:
                _, weights = net._unflatten(flat, copy=False)
                penalty = 0.0
                for nabla, w in zip(weights, net._weight_views):
                    nabla += alpha * w
                    penalty += float(np.sum(np.square(w, dtype=np.float64)))
                total += 0.5 * alpha * penalty
            return total / n, flat / n

        from threadpoolctl import threadpool_limits

        try:
            # The client's L-BFGS-B steps are vector operations of the parameters' size:
            # one BLAS thread does them, and OpenBLAS's others would spin between its calls
            # on cores the workers need (measured: 1.8 s of a 7 s fit on 2 cores).
            with threadpool_limits(limits=1, user_api="blas"):
                est._minimize_lbfgs(net, objective)
        finally:
            for future in blocks:
                future.release()
        _check_finite(est)


def _block_loss_gradient(net, plan, blocks):
    """Summed cost and summed gradient (flat, like ``net._params``) of a worker's blocks."""
    total, flat = 0.0, np.zeros_like(net._params, dtype=np.float64)
    for X, labels, targets in blocks:
        rows = X.shape[0]
        with np.errstate(over="ignore", invalid="ignore"):
            loss, gradient = net._backend.loss_gradient(net, X, labels, targets, plan)
        total += float(loss) * rows
        flat += gradient * rows
    return total, flat


def _check_finite(est):
    if not all(np.isfinite(w).all() for w in est.coefs_ + est.intercepts_):
        raise ValueError("Solver produced non-finite parameter weights. The input data may "
                         "contain large values and need to be preprocessed.")


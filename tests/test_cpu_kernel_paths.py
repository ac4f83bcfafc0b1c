"""The CPU kernels' alternative paths, each against the NumPy oracle or its NumPy twin.

The kernels choose at run time between paths that must give the same numbers up to
rounding: index lists of non-zero inputs or every input (``config.SPARSE_MAX_DENSITY``),
serial steps or threads (``config.PARALLEL_MIN_WORK``), kernels with or without the
wide-row update path (summed per weight over the mini-batch instead of four samples per
pass over the weights: ``config.COLUMN_UPDATE_MIN_*``, fixture ``row_paths``), one or
several prediction blocks.
Default settings send small test networks down only some of them, so these tests force
each one. Tolerances as in test_cpu_oracle_agreement.py: float64 parameters after an epoch
1e-10 relative (rounding carried over 100+ mini-batches of a contractive map), float32
1e-4; serial and parallel twins bit for bit (they do every sum in the same order).
"""

import inspect
import os
import subprocess
import sys

import numpy as np
import pytest
from numba import njit

import engine
from engine import config
from engine._backends.numba import _parallel_work
from engine.kernels import cpu
from conftest import numba_threads_ran, relative_error

RTOL_EPOCH = {"float64": 1e-10, "float32": 1e-4}


def sparse_task(n=300, n_in=37, n_out=4, zeros=0.7, seed=0):
    """Inputs with a fraction ``zeros`` of exact zeros; n_in not a multiple of 8 so the
    vector compress and its scalar tail both run."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, n_in))
    X[rng.random((n, n_in)) < zeros] = 0.0
    X[::7] = rng.random((X[::7].shape[0], n_in))  # some dense rows among the sparse ones
    return X, rng.integers(0, n_out, n)


# At 0.8 the groups of four sparse rows (a union of about 0.76 of the inputs) take lists
# and the groups with a dense row (every 7th) take every row.
@pytest.mark.parametrize("density", [0.0, 0.8, 1.0], ids=["never-lists", "mixed",
                                                          "always-lists"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("hidden,output,cost", [("sigmoid", "sigmoid", "quadratic"),
                                                ("relu", "softmax", "cross_entropy"),
                                                ("tanh", "identity", "quadratic")])
def test_sparse_and_dense_input_paths_match_oracle(monkeypatch, row_paths, density, dtype,
                                                   hidden, output, cost):
    monkeypatch.setattr(config, "SPARSE_MAX_DENSITY", density)
    X, y = sparse_task()
    if output == "identity":
        y = np.eye(4)[y]
    nets = [engine.Network([37, 19, 9, 4], activation=hidden, output=output, cost=cost,
                           dtype=dtype, init="lecun_normal", backend=b, seed=3)
            for b in ("numpy", "numba")]
    for net in nets:  # batches of 6: a group of four samples and a tail of two
        net.fit(X, y, epochs=1, batch_size=6, lr=0.05)
    assert relative_error(nets[1]._params, nets[0]._params) <= RTOL_EPOCH[dtype]
    expected = nets[0].predict_proba(X)
    assert relative_error(nets[1].predict_proba(X), expected) <= RTOL_EPOCH[dtype]


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("density", [0.0, 1.0], ids=["every-row", "index-lists"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_threaded_steps_equal_serial_bit_for_bit(monkeypatch, row_paths, dtype, density,
                                                 threads):
    """Threads for every step: the forward pass and the update by panels of the weights
    (one per thread, where a layer's vectors divide evenly: with three, [37, 70, 40, 4] has
    layers of one panel and of three), or by rows in blocks of 8, which cut the groups' index
    lists when they are used: the same sums, the same bits."""
    monkeypatch.setattr(config, "SPARSE_MAX_DENSITY", density)
    monkeypatch.setattr(config, "PARALLEL_MIN_WORK", 0)
    monkeypatch.setattr(config, "PARALLEL_ROW_BLOCK", 8)
    monkeypatch.setattr(config, "PARALLEL_PANEL_MIN_BYTES", 0)
    X, y = sparse_task(n=203, zeros=0.5)
    sizes = [37, 70, 40, 4]
    nets = [engine.Network(sizes, activation="relu", output="softmax", cost="cross_entropy",
                           dtype=dtype, backend=b, seed=5)
            for b in ("numba", "numba-parallel")]
    nets[1]._backend._threads = lambda: threads  # the panels' count, whatever the machine
    nets[0].fit(X, y, epochs=2, batch_size=11, lr=0.05)
    with numba_threads_ran():
        nets[1].fit(X, y, epochs=2, batch_size=11, lr=0.05)
    lay = nets[1]._backend._working_layout(nets[1])[0]
    panels = lay[cpu.PAD, 1:] // lay[cpu.PANEL, 1:]
    assert threads in panels
    if threads == 3:  # layers whose vectors do not divide by 3 stay in one panel
        assert 1 in panels
    np.testing.assert_array_equal(nets[1]._params, nets[0]._params)
    np.testing.assert_array_equal(nets[1].predict_proba(X), nets[0].predict_proba(X))
    oracle = engine.Network(sizes, activation="relu", output="softmax",
                            cost="cross_entropy", dtype=dtype, backend="numpy", seed=5)
    oracle.fit(X, y, epochs=2, batch_size=11, lr=0.05)
    assert relative_error(nets[0]._params, oracle._params) <= RTOL_EPOCH[dtype]


@pytest.mark.parametrize("vectors", [1, 1.125, 2, 3])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_row_lengths_that_end_in_single_vectors_match_oracle(monkeypatch, row_paths,
                                                             vectors, dtype):
    """Rows padded to 1, 2 or 3 vectors (1.125 rounds up to 2) leave one, two or three
    vectors after the four-vector chunks of the row loops; every part must be summed and
    updated."""
    monkeypatch.setattr(config, "PAD_BYTES", int(vectors * cpu.VECTOR_BYTES))
    X, y = sparse_task(n=120, zeros=0.6)
    nets = [engine.Network([37, 70, 21, 4], activation="tanh", output="softmax",
                           cost="cross_entropy", dtype=dtype, backend=b, seed=2)
            for b in ("numpy", "numba")]
    widths = nets[1]._backend._working_layout(nets[1])[0][cpu.PAD, 1:] * np.dtype(dtype).itemsize
    assert np.all(widths % cpu.VECTOR_BYTES == 0)
    assert np.any(widths % (4 * cpu.VECTOR_BYTES) != 0)
    for net in nets:
        net.fit(X, y, epochs=1, batch_size=4, lr=0.05)
    assert relative_error(nets[1]._params, nets[0]._params) <= RTOL_EPOCH[dtype]
    expected = nets[0].predict_proba(X)
    assert relative_error(nets[1].predict_proba(X), expected) <= RTOL_EPOCH[dtype]


@pytest.mark.parametrize("backend", ["numba", "numba-parallel"])
def test_prediction_over_many_blocks_matches_oracle(monkeypatch, backend):
    monkeypatch.setattr(config, "PREDICT_BLOCK_ROWS", 16)
    X, _ = sparse_task(n=301)
    nets = [engine.Network([37, 12, 4], backend=b, seed=1) for b in ("numpy", backend)]
    assert relative_error(nets[1].predict_proba(X), nets[0].predict_proba(X)) <= 1e-12


@pytest.mark.parametrize("density", [0.0, 1.0], ids=["every-row", "index-lists"])
def test_input_with_nan_is_not_skipped_as_zero(monkeypatch, density):
    """A NaN input must reach the output (it is not zero), on the index-list path too, and
    only its own sample's (the four samples of a group share one pass)."""
    monkeypatch.setattr(config, "SPARSE_MAX_DENSITY", density)
    net = engine.Network([37, 5, 4], seed=0)
    X = sparse_task(n=5, zeros=0.9)[0][1:]  # four sparse rows (row 0 of the task is dense)
    X[1, 3] = np.nan
    out = net._backend.forward(net, X)[0]  # past the public input check, on purpose
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2, 3]]).all()


def test_nan_input_reaches_the_weights_on_both_row_paths(monkeypatch, row_paths):
    """The update lists a NaN input among the non-zero ones, so its weights become NaN
    (training diverged visibly) rather than skipping it as a zero."""
    monkeypatch.setattr(config, "SPARSE_MAX_DENSITY", 1.0)  # every group takes its list
    X, y = sparse_task(n=20, zeros=0.9)
    X[9, 3] = np.nan  # in the group of rows 8-11, none of them dense
    net = engine.Network([37, 5, 4], seed=0)
    order = np.arange(20, dtype=np.int64)
    net._backend.train(net, X, y.astype(np.int64), np.zeros((0, 4)), order, 0, 20, 20, 0.1)
    assert np.isnan(net.weights[0][:, 3]).all()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_vectorised_exp_is_within_one_ulp_of_numpy(dtype):
    from numba import njit

    @njit
    def exp_all(x, out):
        for i in range(x.size):
            out[i] = cpu._exp_nonpositive(x[i])

    tiny = float(np.finfo(dtype).tiny)
    x = -np.concatenate([np.linspace(0, 120, 200_001), np.geomspace(1e-12, 760, 5_001),
                         [0.0, np.inf, 87.3, 103.9, 708.3, 744.4, 745.2, 800.0]]).astype(dtype)
    out = np.empty_like(x)
    exp_all(x, out)
    expected = np.exp(x.astype(np.float64))
    normal = expected >= tiny
    ulps = np.abs(out[normal] - expected[normal]) / np.spacing(expected[normal].astype(dtype))
    assert ulps.max() <= 1.0
    # subnormal results and underflow to zero: off by at most one subnormal step
    step = np.finfo(dtype).smallest_subnormal
    assert np.all(np.abs(out[~normal] - expected[~normal]) <= step)
    nan = np.array([np.nan], dtype=dtype)
    exp_all(nan, nan)
    assert np.isnan(nan[0])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_union_index_lists_match_flatnonzero(dtype):
    """A group's list: the inputs where any of its four samples is non-zero, ascending
    (NaN counts as non-zero, -0.0 as zero); -1 past the density limit. A group of fewer
    than four repeats its first sample, which must not change the list."""
    from numba import njit

    @njit
    def lists(X, groups, density, out, counts):
        for r in range(groups.shape[0]):
            a = groups[r]
            counts[r] = cpu._union_list(X[a[0]], X[a[1]], X[a[2]], X[a[3]], X.shape[1], out[r],
                                        0, density)

    rng = np.random.default_rng(7)
    X = rng.random((64, 45)).astype(dtype)
    X[rng.random(X.shape) < 0.95] = 0
    X[3, [0, 8, 44]] = [np.nan, -0.0, -2.5]
    X[5] = 1.0  # dense: no list
    groups = np.concatenate([np.arange(64).reshape(16, 4),
                             rng.integers(0, 64, (16, 1)).repeat(4, axis=1),  # one sample
                             [[3, 3, 3, 3], [3, 9, 3, 3], [5, 6, 7, 8]]])
    out = np.full((len(groups), 45 + 8), 999, dtype=np.uint32)
    counts = np.empty(len(groups), dtype=np.int64)
    lists(X, groups, 0.6, out, counts)
    listed = out[-3, :counts[-3]]
    assert counts[-1] == -1 and 0 in listed and 44 in listed and 8 not in listed
    for r, members in enumerate(groups):
        expected = np.flatnonzero((X[members] != 0).any(axis=0))
        if expected.size > 0.6 * 45:
            assert counts[r] == -1
        else:
            assert counts[r] == expected.size
            np.testing.assert_array_equal(out[r, :counts[r]], expected)


@pytest.mark.parametrize("density", [None, 1.0], ids=["default", "index-lists"])
@pytest.mark.parametrize("backend", ["numba", "numba-parallel"])
def test_a_sample_predicts_the_same_bits_in_any_group(monkeypatch, backend, density):
    """The forward pass takes four samples per pass over the union of their non-zero
    inputs; a zero input adds an exact zero and every sum runs in input order, so a row
    predicted alone, or with other neighbours, gives the same bits (with lists for the
    ReLU layers' inputs too when every group takes its list)."""
    if density is not None:
        monkeypatch.setattr(config, "SPARSE_MAX_DENSITY", density)
    X, y = sparse_task(n=67, n_in=120, zeros=0.8)
    net = engine.Network([120, 24, 9, 4], activation="relu", backend=backend, seed=3)
    net.fit(X, y, epochs=1, batch_size=7, lr=0.05)
    together = net.predict_proba(X)
    alone = np.concatenate([net.predict_proba(X[i:i + 1]) for i in range(len(X))])
    shifted = net.predict_proba(X[3:])
    np.testing.assert_array_equal(alone, together)
    np.testing.assert_array_equal(shifted, together[3:])


def test_column_lists_are_sized_only_for_layers_that_use_them():
    """The column path's lists hold batch_size × (widest input of a layer that takes it):
    nothing for Nielsen's net or for small batches, so a full-batch gradient of a large
    X allocates no lists it would never fill."""
    rule = (config.COLUMN_UPDATE_MIN_BATCH, -(-config.COLUMN_UPDATE_MIN_ROW_BYTES // 4))
    wide = cpu.working_layout([784, 1024, 256, 10], config.PAD_BYTES, 4)[0]
    deep = cpu.working_layout([784, 512, 256, 10], config.PAD_BYTES, 4)[0]
    seeds = cpu.working_layout([784, 30, 10], config.PAD_BYTES, 4)[0]
    assert cpu.column_inputs(wide, 128, *rule) == 784
    assert cpu.column_inputs(wide, rule[0] - 1, *rule) == 0
    assert cpu.column_inputs(cpu.working_layout([300, 30, 1200, 10], config.PAD_BYTES, 4)[0], 128,
                             *rule) == 30  # only the 1200-unit layer's rows are wide enough
    assert cpu.column_inputs(deep, 128, *rule) == 0
    assert cpu.column_inputs(seeds, 60_000, *rule) == 0


def test_avx2_build_matches_oracle(tmp_path):
    """The row loops are built for the CPU's vector registers (``cpu.VECTOR_BYTES``: 64
    bytes with AVX-512, else 32), and the tests above run the width of this machine. A
    child process told to compile for an AVX2 CPU (Numba's ``NUMBA_CPU_NAME`` and
    ``NUMBA_CPU_FEATURES``, with its own cache) runs them again on 32-byte vectors, the
    width of most laptops."""
    if cpu.VECTOR_BYTES == 32:
        pytest.skip("this CPU has no AVX-512: the tests above already ran 32-byte vectors")
    env = dict(os.environ, NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES="+avx,+avx2,+fma",
               NUMBA_CACHE_DIR=str(tmp_path))
    child = ("import sys, pytest\n"
             "from engine.kernels import cpu\n"
             "assert cpu.VECTOR_BYTES == 32, cpu.VECTOR_BYTES\n"
             f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', {__file__!r},"
             " '-k', 'not avx2_build']))\n")
    run = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and "failed" not in run.stdout


@pytest.mark.parametrize("sizes,dtype,wide", [
    ([784, 30, 10], "float32", False),   # 128-byte rows: the default fit stays narrow
    ([784, 512, 256, 10], "float32", False),   # 2,048 bytes
    ([784, 512, 10], "float64", True),   # 4,096 bytes
    ([784, 1200, 10], "float32", True),
])
def test_networks_with_a_wide_layer_take_the_wide_kernels(sizes, dtype, wide):
    net = engine.Network(sizes, dtype=dtype, backend="numba")
    backend = net._backend
    assert backend._wide(net)[0] is wide
    called = []
    for key, kernel in list(backend._train_kernels.items()):
        backend._train_kernels[key] = (lambda key, kernel: lambda *args: (
            called.append(key), kernel(*args))[1])(key, kernel)
    X = np.zeros((4, sizes[0]))
    net.fit(X, np.arange(4) % sizes[-1], epochs=1, batch_size=4, lr=0.1)
    assert called == [(False, wide)]  # (features, wide)


def test_big_batches_thread_smaller_steps_with_the_same_bits():
    """From config.PARALLEL_BIG_BATCH samples, steps between PARALLEL_MIN_WORK_BIG_BATCH
    and PARALLEL_MIN_WORK multiply-adds run threaded; they must still equal the serial
    twin bit for bit."""
    X, y = sparse_task(n=256, n_in=400, zeros=0.5)
    nets = [engine.Network([400, 40, 4], activation="relu", output="softmax",
                           cost="cross_entropy", backend=b, seed=4)
            for b in ("numba", "numba-parallel")]
    lay = nets[1]._backend._working_layout(nets[1])[0]
    first_step = config.PARALLEL_BIG_BATCH * 400 * int(lay[cpu.PAD, 1])
    assert config.PARALLEL_MIN_WORK_BIG_BATCH <= first_step < config.PARALLEL_MIN_WORK
    assert _parallel_work(config.PARALLEL_BIG_BATCH) <= first_step  # so that step threads
    assert _parallel_work(config.PARALLEL_BIG_BATCH - 1) > first_step
    nets[0].fit(X, y, epochs=2, batch_size=config.PARALLEL_BIG_BATCH, lr=0.05)
    with numba_threads_ran():
        nets[1].fit(X, y, epochs=2, batch_size=config.PARALLEL_BIG_BATCH, lr=0.05)
    np.testing.assert_array_equal(nets[1]._params, nets[0]._params)


def test_kernels_compile_at_their_own_llvm_level(monkeypatch):
    """The kernels compile at config.COMPILE_OPT_LEVEL (seen from inside the compilation),
    the process keeps its own level, and an explicit NUMBA_OPT wins."""
    from numba import njit
    from numba.core import config as numba_config
    from numba.extending import intrinsic

    seen = []

    @intrinsic
    def level_while_typing(typingctx, x):
        seen.append(int(numba_config.OPT))
        return x(x), lambda context, builder, sig, args: args[0]

    def identity(x):
        return level_while_typing(x)

    monkeypatch.delenv("NUMBA_OPT", raising=False)
    process_level = int(numba_config.OPT)
    monkeypatch.setattr(config, "COMPILE_OPT_LEVEL", 1 if process_level != 1 else 2)
    kernel = cpu._at_opt_level(njit(identity))
    assert kernel(2) == 2
    assert set(seen) == {config.COMPILE_OPT_LEVEL}
    assert int(numba_config.OPT) == process_level

    seen.clear()
    monkeypatch.setenv("NUMBA_OPT", "3")
    assert kernel(2.5) == 2.5  # a new specialisation
    assert set(seen) == {3}


def test_every_prange_of_the_parallel_twins_is_a_parallel_loop():
    """Numba runs a prange loop serially, without a word, when it cannot convert it (a
    conditional expression as its argument is enough): the parallel training twin must
    have as many parallel loops as train_batches has prange calls. Compiled afresh: a twin
    loaded from Numba's cache carries no diagnostics."""
    twin = cpu._variant(cpu.train_batches, "_prange_probe",
                        dict(cpu._JIT, cache=False, parallel=True, _nrt=False),
                        _FEATURES=False, _PANELS=True, **cpu._STEPS[False])
    net = engine.Network([37, 40, 4], backend="numba-parallel", seed=0)
    net._backend._train_kernels[False, False] = twin
    X, y = sparse_task(n=24, zeros=0.5)
    net.fit(X, y, epochs=1, batch_size=8)
    (signature,) = twin.signatures
    loops = twin.get_metadata(signature)["parfor_diagnostics"].initial_parfors
    assert len(loops) == inspect.getsource(cpu.train_batches).count("prange(") == 3


def test_only_large_layers_are_split_in_panels():
    """cpu.working_layout splits a layer's units in panels only where its transposed weights take at
    least panel_min_bytes and its vectors divide evenly."""
    sizes, itemsize = [784, 512, 256, 10], 4
    lay = cpu.working_layout(sizes, config.PAD_BYTES, itemsize, None, 2, 1 << 20)[0]
    pad = lay[cpu.PAD, 1:]
    weight_bytes = np.array(sizes[:-1]) * pad * itemsize  # 1.6 MB, 512 KB, 16 KB
    assert list(pad // lay[cpu.PANEL, 1:]) == [2, 1, 1]
    assert weight_bytes[0] >= 1 << 20 > weight_bytes[1]
    lay = cpu.working_layout(sizes, config.PAD_BYTES, itemsize, None, 2, 0)[0]
    lanes = cpu.VECTOR_BYTES // itemsize
    expected = [2 if (p // lanes) % 2 == 0 else 1 for p in lay[cpu.PAD, 1:]]
    assert list(lay[cpu.PAD, 1:] // lay[cpu.PANEL, 1:]) == expected
    assert 2 in expected


@pytest.mark.parametrize("panels", [1, 2, 3])
def test_weights_in_panels_round_trip(panels):
    """The working layout in panels (cpu.working_layout): unit j's weight from input k at
    T_OFF + (j // P)·n_in·P + k·P + j % P, the bias row after the panels, padding zero;
    and back to the parameters unchanged."""
    net = engine.Network([5, 45, 7], seed=0)  # float64: 45 -> 48 units, 6 vectors
    lay, work_size = cpu.working_layout(net.sizes, config.PAD_BYTES, 8, None, panels)[:2]
    work = np.full(work_size, np.nan)
    params = np.zeros_like(net._params)
    _load_and_store(net._params, lay, work, params)  # the helpers have no Python wrapper
    W, b = net.weights[0], net.biases[0].ravel()
    width, t_off, tb_off = lay[cpu.PANEL, 1], lay[cpu.T_OFF, 1], lay[cpu.TB_OFF, 1]
    assert width == 48 // panels
    for j in range(48):
        for k in range(5):
            at = t_off + (j // width) * 5 * width + k * width + j % width
            assert work[at] == (W[j, k] if j < 45 else 0.0)
        assert work[tb_off + j] == (b[j] if j < 45 else 0.0)
    np.testing.assert_array_equal(params, net._params)


@njit
def _load_and_store(params, lay, work, out):
    cpu._load_work(params, lay, work)
    cpu._store_work(work, lay, out)


@pytest.mark.parametrize("sizes, batch_norm", [([784, 30, 10], (False,)),
                                               ([7, 5, 4, 3], (True, False)),
                                               ([3, 9, 9, 9, 2], (False, True, True))])
def test_working_layout_keeps_the_parameter_layout_of_engine_state(sizes, batch_norm):
    """The flat parameter layout is defined once (engine.state.layout); the kernels' working
    layout copies weights, biases and batch-norm units from those very offsets."""
    from engine import state

    where = state.layout(sizes, batch_norm)
    lay = cpu.working_layout(sizes, config.PAD_BYTES, 8, where.bn_off)[0]
    np.testing.assert_array_equal(lay[cpu.W_OFF, 1:], where.w_off)
    np.testing.assert_array_equal(lay[cpu.B_OFF, 1:], where.b_off)
    np.testing.assert_array_equal(lay[cpu.BN, 1:], where.bn_off)

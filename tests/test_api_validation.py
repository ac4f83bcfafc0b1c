"""The input checks' NaN/inf detection: exact counts, no false alarms, no large temporaries."""

import tracemalloc

import numpy as np
import pytest

import engine
from engine import _validation as check
from engine.normalization import Normalization

BLOCK = check.FINITE_BLOCK
DTYPES = [np.float32, np.float64]
BAD = [np.nan, np.inf, -np.inf]


def reference_count(arr):
    return int(np.count_nonzero(~np.isfinite(arr)))


def positions(n):
    """Flat indices worth poisoning in an array of n > 2 * BLOCK entries: the ends, the
    middle, and both sides of the first two block boundaries."""
    return [0, n - 1, n // 2, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK - 1, 2 * BLOCK]


N_IN = 7
N_ROWS = -(-(2 * BLOCK + 3 * N_IN) // N_IN)  # more than two blocks, not a whole number


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("where", positions(N_ROWS * N_IN))
@pytest.mark.parametrize("bad", BAD)
def test_one_bad_value_anywhere_is_found(dtype, where, bad):
    X = np.random.default_rng(where).random((N_ROWS, N_IN)).astype(dtype)
    X.reshape(-1)[where] = bad
    assert check.count_nonfinite(X) == 1
    with pytest.raises(ValueError, match=r"^X contains 1 NaN or infinite value\(s\)$"):
        check.features(X, N_IN, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_count_is_exact_across_blocks(dtype):
    X = np.ones((N_ROWS, N_IN), dtype=dtype)
    flat = X.reshape(-1)
    where = positions(flat.size)
    flat[where] = [BAD[i % 3] for i in range(len(where))]
    assert check.count_nonfinite(X) == len(where) == reference_count(X)
    net = engine.Network([N_IN, 3, 2], dtype=dtype, seed=0)
    with pytest.raises(ValueError, match=rf"^X contains {len(where)} NaN or infinite value"):
        net.fit(X, np.zeros(N_ROWS, dtype=int), epochs=1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_finite_values_whose_sum_overflows_are_accepted(dtype):
    huge = np.finfo(dtype).max / 2
    X = np.full((N_ROWS, N_IN), huge, dtype=dtype)
    X[N_ROWS // 2:] = -huge  # the halves' sums overflow to +inf and -inf: their sum is NaN
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.isfinite(np.add.reduce(X[: N_ROWS // 2], axis=None))
        assert np.isnan(np.add.reduce(X, axis=None))  # so the exact count must decide
    with np.errstate(all="raise"):  # and it must not trip a user's error settings
        assert check.count_nonfinite(X) == 0
        assert check.features(X, N_IN, dtype) is X
    X[3, 4] = np.nan
    assert check.count_nonfinite(X) == 1


@pytest.mark.parametrize("make", [
    lambda a: a[::-1],
    lambda a: a[:, ::2],
    lambda a: a[::3],
    lambda a: a.T,
    lambda a: a.reshape(-1)[::5],
    lambda a: a.reshape(2, -1)[:, 1:],  # rows longer than a block, not contiguous
], ids=["reversed", "columns", "rows", "transposed (Fortran order)", "strided-1d", "long-rows"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_any_layout_is_counted_in_place(make, dtype):
    rng = np.random.default_rng(1)
    base = rng.random((N_ROWS, 2 * N_IN)).astype(dtype)
    base[rng.random(base.shape) < 1e-3] = np.nan
    base[rng.random(base.shape) < 1e-3] = -np.inf
    view = make(base)
    assert np.shares_memory(view, base) and 0 < reference_count(view) < view.size
    assert check.count_nonfinite(view) == reference_count(view)


@pytest.mark.parametrize("arr,count", [
    (np.arange(10), 0),
    (np.ones(4, dtype=bool), 0),
    (np.empty((0, 3)), 0),
    (np.float32(np.inf), 1),
    (np.array([np.nan], dtype=np.float16), 1),
    (np.full(10, 60000, dtype=np.float16), 0),  # float16 sums overflow at 65504
])
def test_small_and_odd_arrays(arr, count):
    assert check.count_nonfinite(arr) == count


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_check_keeps_no_whole_array_temporary(dtype):
    X = np.random.default_rng(2).random((N_ROWS, N_IN)).astype(dtype)
    assert check.features(X, N_IN, dtype) is X  # right dtype and C order: no copy
    for poison in (False, True):
        if poison:
            X[-1, -1] = np.nan
        tracemalloc.start()
        try:
            check.count_nonfinite(X)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        # The old check made a bool array of X.size bytes; the exact count's buffer is
        # BLOCK bytes, and the fast path none (room left for Python's own small objects).
        assert peak < BLOCK + 64 * 1024 < X.size


def test_target_checks_keep_their_messages():
    net = engine.Network([3, 4, 2], seed=0)
    X = np.zeros((5, 3))
    with pytest.raises(ValueError, match="^y contains NaN or infinite labels$"):
        net.fit(X, np.array([0, 1, np.nan, 0, 1]))
    reg = engine.Network([3, 4, 2], output="identity", seed=0)
    Y = np.zeros((5, 2))
    Y[4, 1] = -np.inf
    with pytest.raises(ValueError, match="^y contains NaN or infinite values$"):
        reg.fit(X, Y)
    Y = np.full((5, 2), np.finfo(np.float32).max / 2, dtype=np.float32)
    labels, rows = check.targets(Y, 5, 2, np.float32)
    assert labels.size == 0 and rows is Y


def test_normalization_checks_keep_their_messages():
    X = np.ones((4, 3))
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match="^X contains NaN or infinite values$"):
        Normalization.from_data(X)
    with pytest.raises(ValueError, match="^y contains NaN or infinite values$"):
        Normalization.from_data(np.ones((4, 3)), np.array([1.0, np.inf, 0, 0]))
    with pytest.raises(ValueError, match="^mean must be finite and scale finite and non-zero$"):
        Normalization([0.0, np.nan], [1.0, 1.0])
    with pytest.raises(ValueError, match="^mean must be finite and scale finite and non-zero$"):
        Normalization([0.0, 0.0], [1.0, np.inf])


def test_normalization_statistics_read_float64_rows_in_place():
    X = np.random.default_rng(3).random((20_000, 50))
    before = X.copy()
    tracemalloc.start()
    try:
        norm = Normalization.from_data(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 10  # no copy of X (nor a boolean temporary of its size)
    np.testing.assert_array_equal(X, before)
    np.testing.assert_allclose(norm.mean, before.mean(axis=0), rtol=1e-12)


# Prediction with the compiled backends makes no separate NaN/inf pass: the kernel flags a
# non-finite first-layer pre-activation and only then are the bad entries counted.

PREDICT_BACKENDS = ["numpy", "numba", "numba-parallel"]


@pytest.mark.parametrize("backend", PREDICT_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", BAD)
def test_predict_and_score_name_bad_inputs_at_any_row_or_column(backend, dtype, bad):
    net = engine.Network([N_IN, 5, 3], dtype=dtype, backend=backend, seed=0)
    X = np.random.default_rng(1).random((600, N_IN)).astype(dtype)  # several row blocks
    X[0, N_IN - 1] = bad
    X[599, 0] = bad
    X[301, 3] = 0.0 * X[301, 3] + bad  # also where the inputs around it are zeros
    X[301, 2] = X[301, 4] = 0
    for call in (net.predict, net.predict_proba, lambda X: net.score(X, np.zeros(600, int))):
        with pytest.raises(ValueError, match=r"^X contains 3 NaN or infinite value\(s\)$"):
            call(X)


@pytest.mark.parametrize("backend", ["numba", "numba-parallel"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_predict_accepts_finite_inputs_whose_preactivations_overflow(backend, dtype):
    net = engine.Network([N_IN, 5, 3], dtype=dtype, backend=backend, seed=0)
    X = np.random.default_rng(2).random((40, N_IN)).astype(dtype)
    X[7] = np.finfo(dtype).max  # z = Σ w·x overflows to ±inf: flagged, then found finite
    a, _, suspicious = net._backend.forward(net, X)
    assert suspicious == 1
    assert np.array_equal(net.predict_proba(X), a, equal_nan=True)  # row 7 may be NaN
    assert net.predict(X).shape == (40,)

"""Input checks that run before any compiled code, so users see a sentence, not a traceback.

Every message names the argument, what was expected and what was given.
"""

import numbers

import numpy as np

# Elements the exact NaN/inf count passes to np.isfinite at a time: its boolean temporary
# stays at 256 KiB (in L2) instead of one byte per element of the whole array. Measured on
# 60,000 × 784: 2**16 to 2**20 run alike, within noise, and as fast as one whole-array call.
FINITE_BLOCK = 1 << 18


def choice(name, value, valid):
    """Check that ``value`` is one of the names in ``valid`` (a dict or a sequence)."""
    if not isinstance(value, str) or value not in valid:
        options = ", ".join(repr(v) for v in valid)
        raise ValueError(f"{name} must be one of {options}; got {value!r}")
    return value


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer; got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer; got {value}")
    return int(value)


def non_negative_float(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a non-negative number; got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative finite number; got {value}")
    return value


def positive_float(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number; got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number; got {value}")
    return value


def per_hidden_layer(name, value, n_hidden, single, noun, convert=None):
    """``value``, a sequence (not a string) with one entry per hidden layer, as a tuple of
    its entries passed through ``convert``. Raises a TypeError saying what ``name`` may be
    (``single`` for all layers, or a list of ``noun``s) when it is no such sequence or an
    entry does not convert, and a ValueError when its length is not ``n_hidden``."""
    try:
        if isinstance(value, str):
            raise TypeError
        entries = tuple(value if convert is None else map(convert, value))
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {single} or a list of {n_hidden} {noun}s, one per "
                        f"hidden layer; got {value!r}") from None
    if len(entries) != n_hidden:
        raise ValueError(f"{name} needs one {noun} per hidden layer ({n_hidden}); got "
                         f"{len(entries)}: {list(entries)!r}")
    return entries


def layer_sizes(sizes):
    try:
        sizes = list(sizes)
    except TypeError:
        raise TypeError(f"sizes must be a list of layer widths such as [784, 30, 10]; "
                        f"got {sizes!r}") from None
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output layer; got {sizes}")
    for i, n in enumerate(sizes):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
            raise ValueError(f"sizes[{i}] must be a positive integer; got {n!r} in {sizes}")
    return [int(n) for n in sizes]


def count_nonfinite(arr):
    """Number of NaN or infinite entries of ``arr`` (0 for integer and bool arrays).

    Allocates nothing in the common case: NumPy's sum reads the array once without a
    temporary, and a finite sum proves every entry finite (NaN and ±inf propagate). Only a
    non-finite sum, from a bad entry or from finite values whose sum overflows (large
    float32 values), pays for the exact count, which checks blocks of ``FINITE_BLOCK``
    entries through one bounded buffer. Any layout is read in place, without a copy.
    """
    arr = np.asarray(arr)
    if arr.dtype.kind != "f" or arr.size == 0:
        return 0
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(arr, axis=None)
    if np.isfinite(total):
        return 0
    if arr.flags.c_contiguous or arr.ndim <= 1:
        blocks, step = arr.reshape(-1), FINITE_BLOCK  # a view: contiguous or 1-D
    else:  # whole leading-axis slices (each one view); a single slice may exceed the block
        blocks, step = arr, max(1, FINITE_BLOCK // (arr.size // arr.shape[0]))
    buf = np.empty(min(blocks.size, max(FINITE_BLOCK, blocks[:1].size)), dtype=bool)
    finite = 0
    for lo in range(0, blocks.shape[0], step):
        chunk = blocks[lo:lo + step]
        out = buf[:chunk.size].reshape(chunk.shape)
        np.isfinite(chunk, out=out)
        finite += int(np.count_nonzero(out))
    return arr.size - finite


def _numeric_array(name, value):
    """An ndarray of real numbers (bool and integers allowed), not objects or strings."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a numeric array; could not convert it: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                    or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be a numeric array; got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real; got dtype {arr.dtype}")
    return arr


def features(X, n_in, dtype, name="X", finite=True):
    """Return ``X`` as a C-contiguous (n_samples, n_in) array of ``dtype``, checked;
    ``finite=False`` leaves out the NaN/inf check for a caller that makes it later
    (see :func:`nonfinite_error`)."""
    arr = _numeric_array(name, X)
    if arr.ndim != 2:
        hint = " (reshape a single sample with X.reshape(1, -1))" if arr.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape "
                         f"{arr.shape}{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has 0 samples")
    if arr.shape[1] != n_in:
        raise ValueError(f"{name} has {arr.shape[1]} features but the network's input layer "
                         f"has {n_in}")
    out = _kernel_ready(arr, dtype)
    if finite:
        nonfinite_error(out, name)
    return out


def _kernel_ready(arr, dtype):
    """``arr`` as the compiled kernels take it: C-contiguous, native ``dtype``, writeable.

    Converting takes care of big-endian and non-contiguous inputs. A read-only array
    (a memory map opened with mode "r", np.frombuffer over bytes, a broadcast view) is
    copied once, as an array of another dtype is: Numba types read-only arrays apart and
    would compile a second set of kernels for them (about 8 s each)."""
    out = np.ascontiguousarray(arr, dtype=dtype)
    return out if out.flags.writeable else out.copy()


def nonfinite_error(X, name="X"):
    """Raise the ValueError for NaN or infinite entries of ``X``, if it has any."""
    bad = count_nonfinite(X)
    if bad:
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s)")


def targets(y, n_samples, n_out, dtype, name="y"):
    """Split ``y`` into class labels or float targets, by the one rule every entry point
    (``fit``, ``SGD``, ``update_mini_batch``, ``backprop``, ``evaluate``, ``score``) shares:

    * shape (n,) with more than one output unit: class labels, whole numbers in
      0..n_out-1 (of any numeric dtype);
    * shape (n, n_out) with more than one output unit, every row one-hot (one 1, the rest
      0, of any numeric dtype, as Nielsen's vectorised targets): the same class labels;
    * any other shape (n, n_out), or (n,) with a single output unit: float targets
      (regression, or outputs trained towards given values).

    Returns ``(labels, target_rows)``: int64 labels of shape (n,) and an empty (0, n_out)
    target array for classification, or an empty labels array and (n, n_out) targets for
    regression.
    """
    arr = _numeric_array(name, y)
    if arr.shape[:1] != (n_samples,):
        raise ValueError(f"{name} has {arr.shape[0] if arr.ndim else 0} samples but X has "
                         f"{n_samples}")
    if arr.ndim == 2 and n_out > 1 and arr.shape[1] == n_out and _one_hot_rows(arr):
        arr = np.argmax(arr, axis=1)
    empty_labels = np.empty(0, dtype=np.int64)
    if arr.ndim == 1 and n_out > 1:
        if np.issubdtype(arr.dtype, np.floating):
            if count_nonfinite(arr):
                raise ValueError(f"{name} contains NaN or infinite labels")
            if not np.all(arr == np.round(arr)):
                raise ValueError(f"{name} holds class labels for a {n_out}-unit output layer, "
                                 f"so it must hold whole numbers; got non-integer values "
                                 f"such as {arr[arr != np.round(arr)][0]}")
        labels = arr.astype(np.int64)
        bad = (labels < 0) | (labels >= n_out)
        if bad.any():
            raise ValueError(f"{name} holds class labels, which must lie in 0..{n_out - 1} "
                             f"for a {n_out}-unit output layer; got {labels[bad][0]}")
        return labels, np.empty((0, n_out), dtype=dtype)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != n_out:
        raise ValueError(f"{name} must be class labels of shape ({n_samples},) or targets of "
                         f"shape ({n_samples}, {n_out}); got shape {arr.shape}")
    rows = _kernel_ready(arr, dtype)
    if count_nonfinite(rows):
        raise ValueError(f"{name} contains NaN or infinite values")
    return empty_labels, rows


def _one_hot_rows(arr):
    """Whether every row of a 2-D numeric array holds one 1 and zeros elsewhere."""
    return bool(np.all((arr == 0) | (arr == 1)) and np.all(np.sum(arr == 1, axis=1) == 1))

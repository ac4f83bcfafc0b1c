"""Numba CPU kernels: forward pass, backpropagation and the mini-batch update loop.

Twin of :mod:`engine.oracle` (the tests compare each kernel with it). Every function here
takes plain arrays and scalars; the Python layer validates inputs and allocates outputs.

Parameter layout contract
-------------------------
All weights and biases live in one flat array ``params`` (float32 or float64). For layer
``l`` (1-based, ``l = 1..L``) with ``n = sizes[l]`` outputs and ``n_in = sizes[l-1]`` inputs:

* ``W_l = params[w_off[l-1] : w_off[l-1] + n*n_in].reshape(n, n_in)`` (row-major, as the
  public ``net.weights[l-1]`` view),
* ``b_l = params[b_off[l-1] : b_off[l-1] + n]``.

Activations of one sample live in one row of scratch: layer ``l`` (``l = 0`` is the input)
occupies columns ``a_off[l] : a_off[l] + sizes[l]``.

Each kernel exists twice, compiled from the same source: serial (``*_serial``) and with
``parallel=True`` (``*_parallel``), where ``prange`` spreads samples (forward, backward) and
output units (gradient and update) over threads. Integer codes from :mod:`.codes` pick the
activation and cost inside the kernel, so one compilation per dtype serves every network.
"""

import types

import numpy as np
from numba import njit, prange

from engine import config

from .codes import CROSS_ENTROPY, RELU, SIGMOID, SOFTMAX, TANH

_JIT = dict(cache=True, fastmath=config.FASTMATH, nogil=True)


@njit(**_JIT)
def _activate_inplace(v, code):
    """Replace pre-activations ``v`` (one sample's layer) by activations, in place."""
    one = v.dtype.type(1)
    if code == SIGMOID:
        for j in range(v.size):
            # the oracle's overflow-free form: e = exp(-|z|) never exceeds 1
            e = np.exp(-abs(v[j]))
            v[j] = one / (one + e) if v[j] >= 0 else e / (one + e)
    elif code == TANH:
        for j in range(v.size):
            v[j] = np.tanh(v[j])
    elif code == RELU:
        for j in range(v.size):
            if v[j] < 0:  # NaN fails the test and stays NaN, as in np.maximum(z, 0)
                v[j] = 0
    elif code == SOFTMAX:
        zmax = v[0]
        for j in range(1, v.size):
            zmax = max(zmax, v[j])
        total = v.dtype.type(0)
        for j in range(v.size):
            v[j] = np.exp(v[j] - zmax)
            total += v[j]
        for j in range(v.size):
            v[j] = v[j] / total
    # IDENTITY: nothing to do


@njit(**_JIT)
def _derivative_times(d, a, code):
    """d ← d ⊙ σ'(z) for an element-wise activation, with σ' written through a = σ(z)."""
    one = d.dtype.type(1)
    if code == SIGMOID:
        for k in range(d.size):
            d[k] *= a[k] * (one - a[k])
    elif code == TANH:
        for k in range(d.size):
            d[k] *= one - a[k] * a[k]
    elif code == RELU:
        for k in range(d.size):
            if not a[k] > 0:
                d[k] = 0


@njit(**_JIT)
def _softplus(x):
    zero = x - x
    return max(x, zero) + np.log1p(np.exp(-abs(x)))


@njit(**_JIT)
def _forward_sample(params, sizes, w_off, b_off, a_off, hidden, output, x, acts, z_out):
    """Feed one sample forward: fills ``acts`` (all layers) and ``z_out`` (output z)."""
    depth = sizes.size - 1
    acts[:sizes[0]] = x
    for layer in range(1, depth + 1):
        n, n_in = sizes[layer], sizes[layer - 1]
        w = params[w_off[layer - 1]:w_off[layer - 1] + n * n_in].reshape((n, n_in))
        b = params[b_off[layer - 1]:b_off[layer - 1] + n]
        a_prev = acts[a_off[layer - 1]:a_off[layer - 1] + n_in]
        z = acts[a_off[layer]:a_off[layer] + n]
        for j in range(n):
            s = w.dtype.type(0)
            for k in range(n_in):
                s += w[j, k] * a_prev[k]
            z[j] = s + b[j]  # dot first, then bias: the oracle's order of rounding
        if layer == depth:
            z_out[:] = z
            _activate_inplace(z, output)
        else:
            _activate_inplace(z, hidden)


@njit(**_JIT)
def _output_delta_and_cost(a, z, label, y, output, cost, delta):
    """Twin of ``oracle.output_delta`` and ``oracle.sample_costs`` for one sample.

    The target is the one-hot vector of ``label`` when ``label >= 0``, else the row ``y``.
    Writes δ into ``delta`` and returns the sample's cost.
    """
    n = a.size
    zero = a.dtype.type(0)
    one = a.dtype.type(1)
    half = a.dtype.type(0.5)
    c = zero
    target_sum = zero  # softmax cross-entropy: δ = a·Σy − y (a − y for one-hot targets)
    if cost == CROSS_ENTROPY and output == SOFTMAX:
        zmax = z[0]
        for j in range(1, n):
            zmax = max(zmax, z[j])
        total = zero
        for j in range(n):
            total += np.exp(z[j] - zmax)
        logsumexp = zmax + np.log(total)
    for j in range(n):
        yj = (one if j == label else zero) if label >= 0 else y[j]
        g = a[j] - yj
        delta[j] = g
        target_sum += yj
        if cost == CROSS_ENTROPY:
            if output == SIGMOID:
                c += yj * _softplus(-z[j]) + (one - yj) * _softplus(z[j])
            else:
                c += yj * (logsumexp - z[j])
        else:
            c += half * g * g
    if cost == CROSS_ENTROPY and output == SOFTMAX and target_sum != one:
        for j in range(n):
            yj = (one if j == label else zero) if label >= 0 else y[j]
            delta[j] = a[j] * target_sum - yj
    if cost != CROSS_ENTROPY:
        if output == SOFTMAX:
            ag = zero
            for j in range(n):
                ag += a[j] * delta[j]
            for j in range(n):
                delta[j] = a[j] * (delta[j] - ag)
        else:
            _derivative_times(delta, a, output)
    return c


def train_batches(params, grads, sizes, w_off, b_off, a_off, hidden, output, cost,
                  X, labels, targets, order, start, stop, batch_size, lr,
                  acts, z_out, delta_a, delta_b, sample_cost):
    """Run the mini-batches ``order[start:stop]`` (in steps of ``batch_size``), in place.

    Layout contract: ``X`` (n, n_in) and ``targets`` (n, n_out) or (0, n_out) in the params'
    dtype; ``labels`` int64 (n,) or (0,) (class labels are used when non-empty); ``order``
    int64 row indices; ``grads`` like ``params``; scratch ``acts`` (batch_size, a_off[-1] +
    sizes[-1]), ``z_out`` (batch_size, n_out), ``delta_a``/``delta_b`` (batch_size,
    max(sizes)), ``sample_cost`` (batch_size,). ``start`` must be a multiple of batch_size
    within the epoch so that chunked calls form the same batches as one call.

    Writes ``params`` (the update), ``grads`` and the scratch. Returns the sum of the samples'
    costs, each measured before its mini-batch's update.
    """
    depth = sizes.size - 1
    n_out = sizes[depth]
    use_labels = labels.size > 0
    total_cost = 0.0
    pos = start
    while pos < stop:
        m = min(batch_size, stop - pos)
        scale = params.dtype.type(lr / m)

        for i in prange(m):
            row = order[pos + i]
            _forward_sample(params, sizes, w_off, b_off, a_off, hidden, output,
                            X[row], acts[i], z_out[i])
            label = labels[row] if use_labels else -1
            y = targets[row] if not use_labels else z_out[i]  # z_out[i] is an unused stand-in
            sample_cost[i] = _output_delta_and_cost(
                acts[i, a_off[depth]:a_off[depth] + n_out], z_out[i], label, y,
                output, cost, delta_a[i, :n_out])
        for i in range(m):
            total_cost += sample_cost[i]

        delta, delta_prev = delta_a, delta_b
        for layer in range(depth, 0, -1):
            n, n_in = sizes[layer], sizes[layer - 1]
            w = params[w_off[layer - 1]:w_off[layer - 1] + n * n_in].reshape((n, n_in))
            b = params[b_off[layer - 1]:b_off[layer - 1] + n]
            lo = a_off[layer - 1]
            if layer > 1:
                # δ^{l-1} = (W^l)ᵀ δ^l ⊙ σ'(z^{l-1}), from the weights before their update
                for i in prange(m):
                    dp = delta_prev[i, :n_in]
                    dp[:] = 0
                    for j in range(n):
                        d = delta[i, j]
                        for k in range(n_in):
                            dp[k] += d * w[j, k]
                    _derivative_times(dp, acts[i, lo:lo + n_in], hidden)
            # ∇W = Σ_i δ_i a_iᵀ, then w ← w − (lr/m)∇W; one row of W per task
            for j in prange(n):
                g = grads[w_off[layer - 1] + j * n_in:w_off[layer - 1] + (j + 1) * n_in]
                g[:] = 0
                gb = w.dtype.type(0)
                for i in range(m):
                    d = delta[i, j]
                    gb += d
                    a_prev = acts[i, lo:lo + n_in]
                    for k in range(n_in):
                        g[k] += d * a_prev[k]
                grads[b_off[layer - 1] + j] = gb
                if lr != 0:  # lr == 0 asks for gradients only (net.backprop)
                    for k in range(n_in):
                        w[j, k] -= scale * g[k]
                    b[j] -= scale * gb
            delta, delta_prev = delta_prev, delta
        pos += m
    return total_cost


def forward_rows(params, sizes, w_off, b_off, a_off, hidden, output, X, out_a, out_z,
                 block_rows):
    """Feed every row of ``X`` forward; writes output activations ``out_a`` and
    pre-activations ``out_z`` (both (n, n_out), params' dtype). Rows are processed in
    blocks of ``block_rows`` (one parallel task each, with its own scratch row)."""
    depth = sizes.size - 1
    n_rows = X.shape[0]
    width = a_off[depth] + sizes[depth]
    n_blocks = (n_rows + block_rows - 1) // block_rows
    for blk in prange(n_blocks):
        scratch = np.empty(width, dtype=params.dtype)
        for r in range(blk * block_rows, min(n_rows, (blk + 1) * block_rows)):
            _forward_sample(params, sizes, w_off, b_off, a_off, hidden, output,
                            X[r], scratch, out_z[r])
            out_a[r] = scratch[a_off[depth]:]


def _compile(func, parallel):
    """Compile ``func`` serially or with ``parallel=True``, each with its own cache entry.

    Numba's on-disk cache is keyed by the function's qualified name and signature, not by
    the ``parallel`` flag, so the parallel twin gets a renamed copy of the function.
    """
    suffix = "_parallel" if parallel else "_serial"
    twin = types.FunctionType(func.__code__, func.__globals__, func.__name__ + suffix,
                              func.__defaults__, func.__closure__)
    twin.__qualname__ = func.__qualname__ + suffix
    twin.__doc__ = func.__doc__
    return njit(parallel=parallel, **_JIT)(twin)


train_batches_serial = _compile(train_batches, parallel=False)
train_batches_parallel = _compile(train_batches, parallel=True)
forward_rows_serial = _compile(forward_rows, parallel=False)
forward_rows_parallel = _compile(forward_rows, parallel=True)

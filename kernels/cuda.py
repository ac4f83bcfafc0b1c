"""CUDA kernels (Numba's CUDA target, from the ``numba-cuda`` package): forward pass,
backpropagation and the mini-batch update, run on the device.

Twin of :mod:`engine.oracle` and of :mod:`.cpu`; the tests compare them. The Python side
(:mod:`engine._backends.cuda`) validates inputs, keeps the device arrays and launches these.
Importing this module imports ``numba.cuda``, so only the CUDA backend imports it.

Two ways to run a range of mini-batches
----------------------------------------
* **tiled** (:func:`tiled`): per mini-batch and layer, one kernel each for the forward
  multiply (bias and activation fused into its epilogue), the back-propagated δ (the σ'
  factor fused) and the gradient (the update ``w ← w − (lr/m)·∇`` fused, the bias handled
  as a column of ones). Each is a shared-memory tiled matrix product. One Python loop
  launches them all for a whole epoch; launches on one stream run in order, so there is
  no host synchronisation between mini-batches. It scales to wide layers and big batches.
* **persistent** (:func:`train_persistent`): one single-block kernel runs every mini-batch
  of the call, with ``syncthreads`` between the steps. For small networks and small
  batches, where the work per mini-batch is a few microseconds and a dozen kernel
  launches per mini-batch would cost more than the arithmetic, one launch per epoch wins.

Layout contract
---------------
``params`` is the flat parameter array of :mod:`.cpu` (``W_l`` row-major at ``w_off[l-1]``,
``b_l`` at ``b_off[l-1]``), float32 or float64; ``grads`` has its shape. Scratch for one
mini-batch of up to ``B`` samples:

* ``acts`` (B, Σ hidden widths): hidden layer ``l`` (1 ≤ l < L) in columns
  ``h_off[l-1] : h_off[l-1] + sizes[l]``. The input layer is never copied: layer 1 reads
  ``X[order[pos + i]]`` in place.
* ``out_a``, ``zout`` (B, n_out): output activations and pre-activations.
* ``delta_a``, ``delta_b`` (B, max(sizes[1:])): δ of the current layer and of the one below.
* ``costs`` (n,): sample ``order[p]``'s cost at position ``p``, measured before its
  mini-batch's update.

Targets are class labels (``use_labels``: ``labels[row]`` is the hot unit) or rows of
``targets``; the unused one is a one-element stand-in. ``one`` is the constant 1 in the
parameters' dtype, passed down so that float32 kernels never widen to float64.
"""

import math
import types

from numba import cuda, uint64

from .codes import CROSS_ENTROPY, RELU, SIGMOID, SOFTMAX, TANH

# Where a layer's input rows come from.
FROM_ACTS = 0   # a hidden layer of the batch: src[i, src_lo + k]
FROM_ORDER = 1  # the data set, shuffled: X[order[pos + i], k]
FROM_ROWS = 2   # the data set, in order (prediction): X[pos + i, k]

_DEVICE = dict(device=True, cache=True)


@cuda.jit(**_DEVICE)
def _activate(z, code, one):
    """σ(z) for an element-wise activation, in the oracle's overflow-free forms.

    Twin: engine.oracle.activate"""
    if code == SIGMOID:
        e = math.exp(-abs(z))  # never exceeds 1, so never overflows
        return one / (one + e) if z >= 0 else e / (one + e)
    if code == TANH:
        return math.tanh(z)
    if code == RELU:
        return one - one if z < 0 else z  # NaN fails the test and stays NaN
    return z  # IDENTITY (softmax works per row, in _softmax_row)


@cuda.jit(**_DEVICE)
def _derivative_times(d, a, code, one):
    """d · σ'(z), with σ' written through a = σ(z) as in ``oracle.activation_prime``.

    Twin: engine.oracle.activation_prime"""
    if code == SIGMOID:
        return d * (a * (one - a))
    if code == TANH:
        return d * (one - a * a)
    if code == RELU:
        return d if a > 0 else one - one
    return d


@cuda.jit(**_DEVICE)
def _softplus(x, one):
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|), without overflow.

    Twin: engine.oracle.softplus"""
    return max(x, one - one) + math.log1p(math.exp(-abs(x)))


@cuda.jit(**_DEVICE)
def _softmax_row(out_a, zout, i, n, one):
    """out_a[i] = softmax(zout[i]); returns log Σ exp(z − max z) + max z (log-sum-exp).

    Twin: engine.oracle.softmax, engine.oracle.sample_costs"""
    zmax = zout[i, 0]
    for j in range(1, n):
        zmax = max(zmax, zout[i, j])
    total = one - one
    for j in range(n):
        e = math.exp(zout[i, j] - zmax)
        out_a[i, j] = e
        total += e
    for j in range(n):
        out_a[i, j] = out_a[i, j] / total
    return zmax + math.log(total)


@cuda.jit(**_DEVICE)
def _output_row(out_a, zout, delta, i, n, label, targets, trow, output, cost, one):
    """δ and cost of sample ``i``. Applies the softmax first when the output layer is
    softmax (the forward kernels leave z there). Writes δ into ``delta[i, :n]`` and returns
    the sample's cost. The target is the one-hot vector of ``label`` when ``label >= 0``,
    else ``targets[trow]``.

    Twin: engine.oracle.output_delta, engine.oracle.sample_costs
    """
    zero = one - one
    half = one / (one + one)
    logsumexp = zero
    if output == SOFTMAX:
        logsumexp = _softmax_row(out_a, zout, i, n, one)
    c = zero
    target_sum = zero
    for j in range(n):
        yj = (one if j == label else zero) if label >= 0 else targets[trow, j]
        g = out_a[i, j] - yj
        delta[i, j] = g
        target_sum += yj
        if cost == CROSS_ENTROPY:
            if output == SIGMOID:
                c += yj * _softplus(-zout[i, j], one) + (one - yj) * _softplus(zout[i, j], one)
            else:
                c += yj * (logsumexp - zout[i, j])
        else:
            c += half * g * g
    if cost == CROSS_ENTROPY and output == SOFTMAX and target_sum != one:
        # Softmax cross-entropy is exactly δ = a·Σy − y; a − y only when Σy = 1.
        for j in range(n):
            yj = (one if j == label else zero) if label >= 0 else targets[trow, j]
            delta[i, j] = out_a[i, j] * target_sum - yj
    if cost != CROSS_ENTROPY:
        # Cross-entropy with its canonical output needs no Jacobian: δ = a − y.
        if output == SOFTMAX:
            ag = zero
            for j in range(n):
                ag += out_a[i, j] * delta[i, j]
            for j in range(n):
                delta[i, j] = out_a[i, j] * (delta[i, j] - ag)
        else:
            for j in range(n):
                delta[i, j] = _derivative_times(delta[i, j], out_a[i, j], output, one)
    return c


@cuda.jit(**_DEVICE)
def _layer_input(src, src_lo, X, order, pos, mode, i, k):
    """Element (i, k) of a layer's input rows (see FROM_ACTS, FROM_ORDER, FROM_ROWS).

    Twin: none (index helper)"""
    if mode == FROM_ACTS:
        return src[i, src_lo + k]
    if mode == FROM_ORDER:
        return X[order[pos + i], k]
    return X[pos + i, k]


@cuda.jit(cache=True)
def output_layer(out_a, zout, delta, m, n, labels, targets, use_labels, order, pos,
                 output, cost, costs):
    """One thread per sample of the batch: softmax if any, cost into ``costs[pos + i]``,
    δ of the output layer into ``delta``.

    Twin: engine.oracle.output_delta, engine.oracle.sample_costs"""
    i = cuda.grid(1)
    if i < m:
        one = out_a.dtype.type(1)
        row = order[pos + i]
        label = labels[row] if use_labels else -1
        costs[pos + i] = _output_row(out_a, zout, delta, i, n, label, targets,
                                     0 if use_labels else row, output, cost, one)


@cuda.jit(cache=True)
def softmax_rows(out_a, zout, m, n):
    """Prediction: out_a[i] = softmax(zout[i]) for the first ``m`` rows, one thread each.

    Twin: engine.oracle.softmax"""
    i = cuda.grid(1)
    if i < m:
        _softmax_row(out_a, zout, i, n, out_a.dtype.type(1))


# ---------------------------------------------------------------------------------------
# Tiled kernels: one launch per step per layer
# ---------------------------------------------------------------------------------------

_TILED = {}


def tiled(tile):
    """The tiled kernels for ``tile × tile`` thread blocks (built once per tile size).

    The tile is a compile-time constant (it fixes the loop trips and the offsets into
    shared memory), so each size is its own closure; Numba's cache keys closures by the
    captured values. Launch each kernel with ``shared_bytes(itemsize)`` bytes of dynamic
    shared memory: ``kernel[grid, (tile, tile), 0, tiled(tile).shared_bytes(itemsize)]``.
    """
    tile = int(tile)
    if tile not in _TILED:
        _TILED[tile] = _build_tiled(tile)
    return _TILED[tile]


def _build_tiled(T):
    # One padding column: reading a tile down a column then hits distinct memory banks.
    T1 = T + 1
    # Each kernel stages two T × T1 tiles, row-major, in the block's dynamic shared memory:
    # the first at element 0, the second at element TILE. Dynamic rather than static
    # (``cuda.shared.array((T, T1))``) shared memory because Numba's CUDA simulator creates
    # a static shared array lazily, in whichever thread of a launch reaches the call first,
    # with an unlocked check-then-store; two threads that reach it together can each get an
    # array of their own, and the block then computes with uninitialised memory. That was
    # the tiled kernels' intermittent mismatch under the simulator. The simulator allocates
    # dynamic shared memory once per launch, before any thread runs; on a GPU the two are
    # the same memory. Indices into it are cast to uint64: Numba then skips negative-index
    # wraparound, which against the array's run-time length (the launch's shared bytes)
    # costs a compare and select per load and, hoisted out of the loop, doubles the
    # registers (ptxas, sm_90: 72 instead of 40 for forward_layer in float64).
    TILE = T * T1

    @cuda.jit(cache=True)
    def forward_layer(src, src_lo, X, order, pos, mode, params, w_off, b_off, n, n_in, m,
                      code, dst, dst_lo, zout, last):
        """Z = A Wᵀ + b for ``m`` rows, then dst[i, dst_lo + j] = σ(Z[i, j]).

        Block (bx, by) computes rows ``bx·T …`` and units ``by·T …``; thread (ty, tx)
        owns Z[bx·T + ty, by·T + tx]. When ``last``, Z is also kept in ``zout`` and a
        softmax output is left as z for :func:`output_layer` to normalise per row.

        Twin: engine.oracle.forward, engine.oracle.forward_training
        """
        tiles = cuda.shared.array(0, dtype=params.dtype)  # a_tile, then w_tile
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        own = ty * T1 + tx  # this thread's element [ty, tx] of either tile
        i = cuda.blockIdx.x * T + ty
        j0 = cuda.blockIdx.y * T
        j = j0 + tx
        one = params.dtype.type(1)
        zero = one - one
        acc = zero
        for k0 in range(0, n_in, T):
            # Padding is zero in both operands, so it adds exact zeros to stored outputs.
            k = k0 + tx
            tiles[uint64(own)] = (_layer_input(src, src_lo, X, order, pos, mode, i, k)
                                  if i < m and k < n_in else zero)
            tiles[uint64(TILE + own)] = (params[w_off + (j0 + ty) * n_in + k]
                                         if j0 + ty < n and k < n_in else zero)
            cuda.syncthreads()
            for kk in range(T):  # a_tile[ty, kk] * w_tile[tx, kk]
                acc += tiles[uint64(ty * T1 + kk)] * tiles[uint64(TILE + tx * T1 + kk)]
            cuda.syncthreads()
        if i < m and j < n:
            z = acc + params[b_off + j]  # dot first, then bias: the oracle's rounding order
            if last:
                zout[i, j] = z
            dst[i, dst_lo + j] = z if code == SOFTMAX else _activate(z, code, one)

    @cuda.jit(cache=True)
    def backprop_delta(delta, params, w_off, n, n_in, m, acts, lo, code, delta_prev):
        """δ^{l-1} = (δ^l W^l) ⊙ σ'(z^{l-1}), from the weights before their update.

        Thread (ty, tx) of block (bx, by) owns δ^{l-1}[bx·T + ty, by·T + tx].

        Twin: engine.oracle.gradients
        """
        tiles = cuda.shared.array(0, dtype=params.dtype)  # d_tile, then w_tile
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        own = ty * T1 + tx
        i = cuda.blockIdx.x * T + ty
        k0 = cuda.blockIdx.y * T
        k = k0 + tx
        one = params.dtype.type(1)
        zero = one - one
        acc = zero
        for j0 in range(0, n, T):
            tiles[uint64(own)] = delta[i, j0 + tx] if i < m and j0 + tx < n else zero
            tiles[uint64(TILE + own)] = (params[w_off + (j0 + ty) * n_in + k]
                                         if j0 + ty < n and k < n_in else zero)
            cuda.syncthreads()
            for jj in range(T):  # d_tile[ty, jj] * w_tile[jj, tx]
                acc += tiles[uint64(ty * T1 + jj)] * tiles[uint64(TILE + jj * T1 + tx)]
            cuda.syncthreads()
        if i < m and k < n_in:
            delta_prev[i, k] = _derivative_times(acc, acts[i, lo + k], code, one)

    @cuda.jit(cache=True)
    def gradient_update(delta, src, src_lo, X, order, pos, mode, params, grads, w_off, b_off,
                        n, n_in, m, scale, update):
        """[∇W | ∇b] = δᵀ [A | 1] summed over the ``m`` samples, then, when ``update``,
        ``w ← w − scale·∇w`` (scale = lr/m) in the same thread.

        Thread (ty, tx) of block (bx, by) owns unit j = bx·T + ty and input k = by·T + tx;
        k == n_in is the bias.

        Twin: engine.oracle.gradients, engine.oracle.update_mini_batch
        """
        tiles = cuda.shared.array(0, dtype=params.dtype)  # d_tile, then a_tile
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        own = ty * T1 + tx
        j0 = cuda.blockIdx.x * T
        j = j0 + ty
        k = cuda.blockIdx.y * T + tx
        one = params.dtype.type(1)
        zero = one - one
        acc = zero
        for i0 in range(0, m, T):
            i = i0 + ty
            tiles[uint64(own)] = delta[i, j0 + tx] if i < m and j0 + tx < n else zero
            if i < m and k < n_in:
                tiles[uint64(TILE + own)] = _layer_input(src, src_lo, X, order, pos, mode, i,
                                                         k)
            else:
                tiles[uint64(TILE + own)] = one if i < m and k == n_in else zero
            cuda.syncthreads()
            for ii in range(T):  # d_tile[ii, ty] * a_tile[ii, tx]
                acc += tiles[uint64(ii * T1 + ty)] * tiles[uint64(TILE + ii * T1 + tx)]
            cuda.syncthreads()
        if j < n and k <= n_in:
            at = w_off + j * n_in + k if k < n_in else b_off + j
            grads[at] = acc
            if update:
                params[at] -= params.dtype.type(scale) * acc

    def shared_bytes(itemsize):
        """Dynamic shared memory each kernel's block needs, for elements of ``itemsize``."""
        return 2 * TILE * int(itemsize)

    return types.SimpleNamespace(tile=T, shared_bytes=shared_bytes,
                                 forward_layer=forward_layer,
                                 backprop_delta=backprop_delta,
                                 gradient_update=gradient_update)


# ---------------------------------------------------------------------------------------
# Persistent kernel: one launch runs every mini-batch of the call
# ---------------------------------------------------------------------------------------


@cuda.jit(cache=True)
def train_persistent(X, labels, targets, use_labels, order, start, stop, batch_size, lr,
                     params, grads, sizes, w_off, b_off, h_off, hidden, output, cost,
                     acts, out_a, zout, delta_a, delta_b, costs):
    """Run the mini-batches ``order[start:stop]`` (in steps of ``batch_size``) in one block.

    Launch with one block; any number of threads works (each step strides over its
    outputs). Every thread takes every loop trip and meets every ``syncthreads``. ``lr``
    of 0 computes the gradients (in ``grads``, for the last mini-batch) without updating.

    Twin: engine.oracle.train_epoch, engine.oracle.update_mini_batch
    """
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    one = params.dtype.type(1)
    zero = one - one
    depth = sizes.size - 1
    n_out = sizes[depth]
    pos = start
    while pos < stop:
        m = min(batch_size, stop - pos)
        scale = params.dtype.type(lr / m)

        # Forward. Thread t computes Z[i, j] for idx = t, t + nt, … with the sample fastest,
        # so neighbouring threads share a row of W (a broadcast) and read distinct rows
        # of the input.
        for layer in range(1, depth + 1):
            n = sizes[layer]
            n_in = sizes[layer - 1]
            wo = w_off[layer - 1]
            bo = b_off[layer - 1]
            for idx in range(tid, m * n, nt):
                j = idx // m
                i = idx - j * m
                s = zero
                if layer == 1:
                    row = order[pos + i]
                    for k in range(n_in):
                        s += X[row, k] * params[wo + j * n_in + k]
                else:
                    lo = h_off[layer - 2]
                    for k in range(n_in):
                        s += acts[i, lo + k] * params[wo + j * n_in + k]
                z = s + params[bo + j]
                if layer == depth:
                    zout[i, j] = z
                    out_a[i, j] = z if output == SOFTMAX else _activate(z, output, one)
                else:
                    acts[i, h_off[layer - 1] + j] = _activate(z, hidden, one)
            cuda.syncthreads()

        for i in range(tid, m, nt):
            row = order[pos + i]
            label = labels[row] if use_labels else -1
            costs[pos + i] = _output_row(out_a, zout, delta_a, i, n_out, label, targets,
                                         0 if use_labels else row, output, cost, one)
        cuda.syncthreads()

        # Backward, layer by layer: δ of the layer below first (it needs W before the
        # update), then the gradient and update of this layer.
        delta = delta_a
        delta_prev = delta_b
        for layer in range(depth, 0, -1):
            n = sizes[layer]
            n_in = sizes[layer - 1]
            wo = w_off[layer - 1]
            bo = b_off[layer - 1]
            if layer > 1:
                lo = h_off[layer - 2]
                for idx in range(tid, m * n_in, nt):
                    i = idx // n_in
                    k = idx - i * n_in
                    s = zero
                    for j in range(n):
                        s += delta[i, j] * params[wo + j * n_in + k]
                    delta_prev[i, k] = _derivative_times(s, acts[i, lo + k], hidden, one)
                cuda.syncthreads()
            # [∇W | ∇b] = δᵀ [A | 1]; the input index is fastest, so reads of A and
            # writes of W are contiguous across threads.
            width = n_in + 1
            for idx in range(tid, n * width, nt):
                j = idx // width
                k = idx - j * width
                g = zero
                if k == n_in:
                    for i in range(m):
                        g += delta[i, j]
                    at = bo + j
                elif layer == 1:
                    for i in range(m):
                        g += delta[i, j] * X[order[pos + i], k]
                    at = wo + j * n_in + k
                else:
                    lo = h_off[layer - 2]
                    for i in range(m):
                        g += delta[i, j] * acts[i, lo + k]
                    at = wo + j * n_in + k
                grads[at] = g
                if lr != 0:
                    params[at] -= scale * g
            cuda.syncthreads()
            delta, delta_prev = delta_prev, delta
        pos += m

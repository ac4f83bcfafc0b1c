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

Batch normalisation's γ and β follow the weights and biases at the end of ``params``: with
``n_bn = bn_running.shape[1]`` normalised units in all, unit ``u`` (``bn_off[l-1] + j`` for
unit ``j`` of layer ``l``; ``bn_off[l-1] == -1`` for a layer without it) has γ at
``params[params.size - 2*n_bn + u]`` and β at ``params[params.size - n_bn + u]``;
``bn_running[0, u]``/``bn_running[1, u]`` are its running mean and variance. Optimiser
memory is laid out like ``params``, one row per slot (``opt_state[s, k]`` for ``params[k]``).

Each kernel exists twice, compiled from the same source: serial (``*_serial``) and with
``parallel=True`` (``*_parallel``), where ``prange`` spreads samples (forward, backward) and
output units (gradient and update) over threads. Integer codes from :mod:`.codes` pick the
activation, cost and optimiser inside the kernel, and training features arrive as plain
arrays (empty when unused), so one compilation per dtype serves every network.
"""

import types

import numpy as np
from numba import njit, prange

from engine import config

from .codes import (ADAGRAD, ADAM, CROSS_ENTROPY, H_BETA1, H_BETA2, H_BN_EPS, H_BN_MOMENTUM,
                    H_EPS, H_MOMENTUM, H_RHO, H_WEIGHT_DECAY, IDENTITY, MOMENTUM, NESTEROV,
                    RELU, RMSPROP, SGD, SIGMOID, SOFTMAX, TANH)

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
def _affine(w, b, a_prev, z, with_bias):
    """z ← W·a_prev + b for one sample (no bias for a batch-normalised layer)."""
    n, n_in = w.shape
    for j in range(n):
        s = w.dtype.type(0)
        for k in range(n_in):
            s += w[j, k] * a_prev[k]
        z[j] = s + b[j] if with_bias else s  # dot first, then bias: the oracle's rounding


@njit(**_JIT)
def _forward_sample(params, sizes, w_off, b_off, a_off, hidden, output, x, acts, z_out,
                    bn_off, bn_running, bn_eps):
    """Feed one sample forward: fills ``acts`` (all layers) and ``z_out`` (output z).
    Batch-normalised layers use the running statistics (prediction mode)."""
    depth = sizes.size - 1
    acts[:sizes[0]] = x
    for layer in range(1, depth + 1):
        n, n_in = sizes[layer], sizes[layer - 1]
        w = params[w_off[layer - 1]:w_off[layer - 1] + n * n_in].reshape((n, n_in))
        b = params[b_off[layer - 1]:b_off[layer - 1] + n]
        a_prev = acts[a_off[layer - 1]:a_off[layer - 1] + n_in]
        z = acts[a_off[layer]:a_off[layer] + n]
        _affine(w, b, a_prev, z, bn_off[layer - 1] < 0)
        if bn_off[layer - 1] >= 0:
            _batch_norm_inference(z, params, bn_off[layer - 1], bn_running, bn_eps)
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


@njit(**_JIT)
def _apply_update(params, grads, state, lo, hi, m, lr, decay, code, hyper, step):
    """One optimiser step on ``params[lo:hi]`` from the summed gradient ``grads[lo:hi]`` of
    ``m`` samples; twin of ``oracle.Optimizer.update``. ``decay`` is λ/n for weights, 0 for
    everything else; ``state[s, lo:hi]`` is slot ``s``; ``step`` counts updates (Adam's t).
    """
    p = params[lo:hi]
    g_sum = grads[lo:hi]
    if code == SGD:
        _sgd_step(p, g_sum, m, lr, decay)
    elif code == MOMENTUM or code == NESTEROV:
        _momentum_step(p, g_sum, state[0, lo:hi], m, lr, decay, hyper[H_MOMENTUM],
                       code == NESTEROV)
    elif code == ADAGRAD:
        _adagrad_step(p, g_sum, state[0, lo:hi], m, lr, decay, hyper[H_EPS])
    elif code == RMSPROP:
        _rmsprop_step(p, g_sum, state[0, lo:hi], m, lr, decay, hyper[H_RHO], hyper[H_EPS])
    elif code == ADAM:
        _adam_step(p, g_sum, state[0, lo:hi], state[1, lo:hi], m, lr, decay, hyper[H_BETA1],
                   hyper[H_BETA2], hyper[H_EPS], step)


@njit(**_JIT)
def _sgd_step(p, g_sum, m, lr, decay):
    """network.py's rule, with network2's decay: p ← (1 − lr·λ/n)·p − (lr/m)·Σ∇."""
    t = p.dtype.type
    scale = t(lr / m)
    if decay != 0:
        keep = t(1 - lr * decay)
        for k in range(p.size):
            p[k] = keep * p[k] - scale * g_sum[k]
    else:
        for k in range(p.size):
            p[k] -= scale * g_sum[k]


@njit(**_JIT)
def _momentum_step(p, g_sum, buf, m, lr, decay, momentum, nesterov):
    """b ← μ·b + g; p ← p − lr·b (or − lr·(g + μ·b), Nesterov), g = Σ∇/m (+ λ/n·p)."""
    t = p.dtype.type
    mt, wd, rate, mu = t(m), t(decay), t(lr), t(momentum)
    for k in range(p.size):
        g = g_sum[k] / mt
        if decay != 0:
            g += wd * p[k]
        b = mu * buf[k] + g
        buf[k] = b
        p[k] -= rate * (g + mu * b if nesterov else b)


@njit(**_JIT)
def _adagrad_step(p, g_sum, total, m, lr, decay, eps):
    """s ← s + g²; p ← p − lr·g/(√s + ε)."""
    t = p.dtype.type
    mt, wd, rate, e = t(m), t(decay), t(lr), t(eps)
    for k in range(p.size):
        g = g_sum[k] / mt
        if decay != 0:
            g += wd * p[k]
        s = total[k] + g * g
        total[k] = s
        p[k] -= rate * (g / (np.sqrt(s) + e))


@njit(**_JIT)
def _rmsprop_step(p, g_sum, square_avg, m, lr, decay, rho, eps):
    """v ← ρ·v + (1 − ρ)·g²; p ← p − lr·g/(√v + ε)."""
    t = p.dtype.type
    mt, wd, rate, e, r, rest = t(m), t(decay), t(lr), t(eps), t(rho), t(1 - rho)
    for k in range(p.size):
        g = g_sum[k] / mt
        if decay != 0:
            g += wd * p[k]
        v = r * square_avg[k] + rest * (g * g)
        square_avg[k] = v
        p[k] -= rate * (g / (np.sqrt(v) + e))


@njit(**_JIT)
def _adam_step(p, g_sum, exp_avg, exp_avg_sq, m, lr, decay, beta1, beta2, eps, step):
    """Adam at step t, arranged as torch computes it: m ← β1·m + (1 − β1)·g,
    v ← β2·v + (1 − β2)·g², p ← p − (lr/(1 − β1ᵗ))·m/(√v/√(1 − β2ᵗ) + ε)."""
    t = p.dtype.type
    mt, wd, e = t(m), t(decay), t(eps)
    b1, rest1, b2, rest2 = t(beta1), t(1 - beta1), t(beta2), t(1 - beta2)
    step_size = t(lr / (1 - beta1 ** step))
    root2 = t((1 - beta2 ** step) ** 0.5)
    for k in range(p.size):
        g = g_sum[k] / mt
        if decay != 0:
            g += wd * p[k]
        m1 = b1 * exp_avg[k] + rest1 * g
        v = b2 * exp_avg_sq[k] + rest2 * (g * g)
        exp_avg[k] = m1
        exp_avg_sq[k] = v
        p[k] -= step_size * (m1 / (np.sqrt(v) / root2 + e))


@njit(**_JIT)
def _dropout_forward(a, h, keep, scale):
    """Inverted dropout of one sample's hidden layer (twin of ``h * D`` in the oracle):
    h ← a (σ' is written through it), then a ← a·d, d = ``scale`` = 1/(1 − p) where
    ``keep`` is 1, else 0."""
    zero = a.dtype.type(0)
    for k in range(a.size):
        h[k] = a[k]
        a[k] = a[k] * (scale if keep[k] else zero)


@njit(**_JIT)
def _activate_hidden(z, hidden, h, use_dropout, drop_mask, row, col, scale):
    """A hidden layer of one sample, after its affine step (and batch norm): σ, then
    inverted dropout with keep mask ``drop_mask[row, col:col + z.size]`` when in use."""
    _activate_inplace(z, hidden)
    if use_dropout:
        _dropout_forward(z, h, drop_mask[row, col:col + z.size], scale)


@njit(**_JIT)
def _dropout_backward(d, keep, scale):
    """δ ← δ ⊙ D: a dropped unit passes no gradient back; a kept one passes it scaled."""
    zero = d.dtype.type(0)
    for k in range(d.size):
        d[k] = d[k] * (scale if keep[k] else zero)


@njit(**_JIT)
def _batch_norm_unit(acts, col, m, params, u, bn_running, bn_zhat, bn_inv_std, eps,
                     momentum, update_running):
    """Training-mode batch norm of normalised unit ``u`` (twin of
    ``oracle.batch_norm_training`` and ``update_running_statistics``): column ``col`` of
    ``acts[:m]`` holds z and becomes y = γ·ẑ + β; keeps ẑ and 1/√(σ²_B + ε) for the
    backward pass."""
    t = acts.dtype.type
    n_bn = bn_running.shape[1]
    base = params.size - 2 * n_bn
    mean = t(0)
    for i in range(m):
        mean += acts[i, col]
    mean = mean / t(m)
    var = t(0)
    for i in range(m):
        d = acts[i, col] - mean
        var += d * d
    var = var / t(m)  # biased, to normalise with
    inv_std = t(1) / np.sqrt(var + t(eps))
    bn_inv_std[u] = inv_std
    gamma, beta = params[base + u], params[base + n_bn + u]
    for i in range(m):
        z_hat = (acts[i, col] - mean) * inv_std
        bn_zhat[i, u] = z_hat
        acts[i, col] = gamma * z_hat + beta
    if update_running and m > 1:  # unbiased variance for the running average, as torch
        keep, mom = t(1 - momentum), t(momentum)
        bn_running[0, u] = keep * bn_running[0, u] + mom * mean
        bn_running[1, u] = keep * bn_running[1, u] + mom * (var * t(m) / t(m - 1))


@njit(**_JIT)
def _batch_norm_unit_backward(delta, k, m, params, u, bn_running, bn_zhat, bn_inv_std, grads):
    """Back through normalised unit ``u`` (twin of ``oracle.batch_norm_backward``):
    ``delta[:m, k]`` holds ∂C/∂y and becomes ∂C/∂z; writes ∂C/∂γ and ∂C/∂β to ``grads``."""
    t = delta.dtype.type
    n_bn = bn_running.shape[1]
    base = params.size - 2 * n_bn
    dgamma = t(0)
    dbeta = t(0)
    for i in range(m):
        dgamma += delta[i, k] * bn_zhat[i, u]
        dbeta += delta[i, k]
    grads[base + u] = dgamma
    grads[base + n_bn + u] = dbeta
    mt = t(m)
    c = params[base + u] * bn_inv_std[u] / mt
    for i in range(m):
        delta[i, k] = c * (mt * delta[i, k] - dbeta - bn_zhat[i, u] * dgamma)


@njit(**_JIT)
def _batch_norm_inference(z, params, u0, bn_running, eps):
    """Prediction-mode batch norm of one sample's layer (units ``u0 …``), from the running
    statistics (twin of ``oracle.batch_norm_inference``)."""
    t = z.dtype.type
    n_bn = bn_running.shape[1]
    base = params.size - 2 * n_bn
    for j in range(z.size):
        u = u0 + j
        inv_std = t(1) / np.sqrt(bn_running[1, u] + t(eps))
        z[j] = params[base + u] * ((z[j] - bn_running[0, u]) * inv_std) + params[base + n_bn + u]


def train_batches(params, grads, sizes, w_off, b_off, a_off, hidden, output, cost,
                  X, labels, targets, order, start, stop, batch_size, lr,
                  acts, z_out, delta_a, delta_b, sample_cost,
                  opt_code, hyper, opt_state, opt_step, drop_mask, drop_scale, pre_drop,
                  bn_off, bn_running, bn_zhat, bn_inv_std):
    """Run the mini-batches ``order[start:stop]`` (in steps of ``batch_size``), in place.

    Layout contract: ``X`` (n, n_in) and ``targets`` (n, n_out) or (0, n_out) in the params'
    dtype; ``labels`` int64 (n,) or (0,) (class labels are used when non-empty); ``order``
    int64 row indices; ``grads`` like ``params``; scratch ``acts`` and ``pre_drop``
    (batch_size, a_off[-1] + sizes[-1]), ``z_out`` (batch_size, n_out), ``delta_a``/
    ``delta_b`` (batch_size, max(sizes)), ``sample_cost`` (batch_size,), ``bn_zhat``
    (batch_size, n_bn), ``bn_inv_std`` (n_bn,). ``start`` must be a multiple of batch_size
    within the epoch so that chunked calls form the same batches as one call.

    Training features (all plain arrays; empty ones switch a feature off):

    * ``opt_code`` (:data:`.codes.OPTIMIZERS`), ``hyper`` float64 (``codes.H_*``),
      ``opt_state`` (n_slots, params.size) and ``opt_step`` int64 (1,), incremented per
      update: the optimiser (see ``_apply_update``).
    * ``drop_mask`` uint8 (stop − start, hidden units) or (0, 0): row ``i`` is the keep mask
      of sample ``order[start + i]``, columns ``a_off[l] − sizes[0] …`` for hidden layer l;
      ``drop_scale`` (depth,) params' dtype: 1/(1 − p) per layer.
    * ``bn_off``, ``bn_running``: batch normalisation (see the module's layout contract).

    The forward pass goes layer by layer across the batch, as batch statistics need every
    sample's z (measured as fast as going sample by sample, without batch norm).

    Writes ``params`` (the update), ``grads``, the optimiser state, running statistics and
    the scratch. ``lr == 0`` computes the summed gradients (training mode) without updating
    anything. Returns the sum of the samples' costs, each measured before its mini-batch's
    update.
    """
    depth = sizes.size - 1
    n_out = sizes[depth]
    use_labels = labels.size > 0
    use_dropout = drop_mask.shape[0] > 0
    training = lr != 0  # lr == 0 asks for gradients only (net.backprop)
    decay = hyper[H_WEIGHT_DECAY]
    total_cost = 0.0
    pos = start
    while pos < stop:
        m = min(batch_size, stop - pos)
        if training:
            opt_step[0] += 1
        step = opt_step[0]

        for layer in range(1, depth + 1):
            n, n_in = sizes[layer], sizes[layer - 1]
            w = params[w_off[layer - 1]:w_off[layer - 1] + n * n_in].reshape((n, n_in))
            b = params[b_off[layer - 1]:b_off[layer - 1] + n]
            lo, hi = a_off[layer - 1], a_off[layer]
            u0 = bn_off[layer - 1]
            normalised = u0 >= 0
            for i in prange(m):
                z = acts[i, hi:hi + n]
                if layer == 1:
                    acts[i, :n_in] = X[order[pos + i]]
                _affine(w, b, acts[i, lo:lo + n_in], z, not normalised)
                if layer == depth:
                    z_out[i] = z
                    _activate_inplace(z, output)
                    row = order[pos + i]
                    label = labels[row] if use_labels else -1
                    y = targets[row] if not use_labels else z_out[i]  # unused stand-in
                    sample_cost[i] = _output_delta_and_cost(z, z_out[i], label, y, output,
                                                            cost, delta_a[i, :n_out])
                elif not normalised:
                    _activate_hidden(z, hidden, pre_drop[i, hi:hi + n], use_dropout,
                                     drop_mask, pos - start + i, hi - sizes[0],
                                     drop_scale[layer - 1])
            if normalised:
                # O(m·n) work, serial: spares compiling two more parallel regions
                for j in range(n):
                    _batch_norm_unit(acts, hi + j, m, params, u0 + j, bn_running, bn_zhat,
                                     bn_inv_std, hyper[H_BN_EPS], hyper[H_BN_MOMENTUM],
                                     training)
                for i in range(m):
                    _activate_hidden(acts[i, hi:hi + n], hidden, pre_drop[i, hi:hi + n],
                                     use_dropout, drop_mask, pos - start + i, hi - sizes[0],
                                     drop_scale[layer - 1])
        for i in range(m):
            total_cost += sample_cost[i]

        delta, delta_prev = delta_a, delta_b
        for layer in range(depth, 0, -1):
            n, n_in = sizes[layer], sizes[layer - 1]
            w = params[w_off[layer - 1]:w_off[layer - 1] + n * n_in].reshape((n, n_in))
            lo = a_off[layer - 1]
            if layer > 1:
                # δ^{l-1} = (W^l)ᵀ δ^l ⊙ D ⊙ σ'(z^{l-1}), from the weights before their update
                for i in prange(m):
                    dp = delta_prev[i, :n_in]
                    dp[:] = 0
                    for j in range(n):
                        d = delta[i, j]
                        for k in range(n_in):
                            dp[k] += d * w[j, k]
                    if use_dropout:
                        col = lo - sizes[0]
                        _dropout_backward(dp, drop_mask[pos - start + i, col:col + n_in],
                                          drop_scale[layer - 2])
                        _derivative_times(dp, pre_drop[i, lo:lo + n_in], hidden)
                    else:
                        _derivative_times(dp, acts[i, lo:lo + n_in], hidden)
                u0 = bn_off[layer - 2]
                if u0 >= 0:  # through the batch norm of layer l − 1 (serial: O(m·n) work)
                    for k in range(n_in):
                        _batch_norm_unit_backward(delta_prev, k, m, params, u0 + k, bn_running,
                                                  bn_zhat, bn_inv_std, grads)
                    n_bn = bn_running.shape[1]
                    for part in range(2 if training else 0):  # update γ, then β
                        first = params.size - (2 - part) * n_bn + u0
                        _apply_update(params, grads, opt_state, first, first + n_in, m, lr,
                                      0.0, opt_code, hyper, step)
            # ∇W = Σ_i δ_i a_iᵀ, then the optimiser's step; one row of W per task
            with_bias = bn_off[layer - 1] < 0
            fast_sgd = opt_code == SGD and decay == 0
            for j in prange(n):
                w_lo = w_off[layer - 1] + j * n_in
                g = grads[w_lo:w_lo + n_in]
                g[:] = 0
                gb = w.dtype.type(0)
                for i in range(m):
                    d = delta[i, j]
                    gb += d
                    a_prev = acts[i, lo:lo + n_in]
                    for k in range(n_in):
                        g[k] += d * a_prev[k]
                grads[b_off[layer - 1] + j] = gb if with_bias else w.dtype.type(0)
                if training and fast_sgd:
                    # The seeds' rule, inline: through _apply_update it measured 5-15% slower
                    # ([784, 30, 10], batch 10), and it is the default.
                    scale = w.dtype.type(lr / m)
                    for k in range(n_in):
                        w[j, k] -= scale * g[k]
                    if with_bias:
                        params[b_off[layer - 1] + j] -= scale * gb
                elif training:
                    _apply_update(params, grads, opt_state, w_lo, w_lo + n_in, m, lr, decay,
                                  opt_code, hyper, step)
            if training and with_bias and not fast_sgd:  # the layer's biases in one call
                _apply_update(params, grads, opt_state, b_off[layer - 1], b_off[layer - 1] + n,
                              m, lr, 0.0, opt_code, hyper, step)
            delta, delta_prev = delta_prev, delta
        pos += m
    return total_cost


def forward_rows(params, sizes, w_off, b_off, a_off, hidden, output, X, out_a, out_z,
                 block_rows, bn_off, bn_running, bn_eps):
    """Feed every row of ``X`` forward; writes output activations ``out_a`` and
    pre-activations ``out_z`` (both (n, n_out), params' dtype). Rows are processed in
    blocks of ``block_rows`` (one parallel task each, with its own scratch row).
    Batch-normalised layers use their running statistics."""
    depth = sizes.size - 1
    n_rows = X.shape[0]
    width = a_off[depth] + sizes[depth]
    n_blocks = (n_rows + block_rows - 1) // block_rows
    for blk in prange(n_blocks):
        scratch = np.empty(width, dtype=params.dtype)
        for r in range(blk * block_rows, min(n_rows, (blk + 1) * block_rows)):
            _forward_sample(params, sizes, w_off, b_off, a_off, hidden, output,
                            X[r], scratch, out_z[r], bn_off, bn_running, bn_eps)
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

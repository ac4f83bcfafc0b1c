"""Training features inside a layer: inverted dropout and batch normalisation (training,
backward and prediction modes). O(batch × units) work per mini-batch, serial in both
twins."""

import numpy as np

from .cache import jit
from .elementwise import _activate
from .layout import A_OFF, BN, BN_AFTER, SIZE, _mask_column
from .options import _HELPER


@jit(**_HELPER)
def _dropout_rows(layer, m, lay, acts, pre_drop, drop_mask, mask_row, scale):
    """Inverted dropout of ``layer``'s outputs for samples 0..m-1 (twin of ``h * D`` in the
    oracle): keeps h = σ(z) in ``pre_drop`` for σ', then a ← h·D, D = ``scale`` where the
    keep mask (row ``mask_row + i``) is 1, else 0.

    Twin: engine.oracle.dropout_multipliers, engine.oracle.forward_training"""
    n, a_off = lay[SIZE, layer], lay[A_OFF, layer]
    col = _mask_column(lay, layer)
    zero = acts.dtype.type(0)
    # after a batch norm that follows the activation, pre_drop keeps h for σ' instead (and
    # the batch norm's output needs no σ')
    keep_h = not lay[BN_AFTER, layer]
    for i in range(m):
        a = acts[i, a_off:a_off + n]
        h = pre_drop[i, a_off:a_off + n]
        keep = drop_mask[mask_row + i, col:col + n]
        for k in range(n):
            if keep_h:
                h[k] = a[k]
            a[k] = a[k] * (scale if keep[k] else zero)


@jit(**_HELPER)
def _batch_norm_layer(layer, m, lay, acts, work, bn_running, bn_zhat, bn_inv_std, eps,
                      momentum, unbiased, update_running, code, pre):
    """Training-mode batch norm of ``layer`` with its running statistics, then its
    activation: column by column of ``acts[:m]``, z becomes y = γ·ẑ + β, then σ(y); keeps ẑ
    and 1/√(σ²_B + ε) for the backward pass. The running variance averages the unbiased
    batch variance (torch) or, ``unbiased`` false, the biased one (Keras). Where it follows
    the activation (``BN_AFTER``), ``acts`` holds h = σ(z + b), which is kept in ``pre``
    (for σ' in the backward pass) before it is normalised, and ``code`` is the identity.

    Twin: engine.oracle.batch_norm_training, engine.oracle.update_running_statistics"""
    t = acts.dtype.type
    n, a_off, u0 = lay[SIZE, layer], lay[A_OFF, layer], lay[BN, layer]
    n_bn = bn_running.shape[1]
    base = work.size - 2 * n_bn
    if lay[BN_AFTER, layer]:
        for i in range(m):
            for j in range(a_off, a_off + n):
                pre[i, j] = acts[i, j]
    for j in range(n):
        col, u = a_off + j, u0 + j
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
        gamma, beta = work[base + u], work[base + n_bn + u]
        for i in range(m):
            z_hat = (acts[i, col] - mean) * inv_std
            bn_zhat[i, u] = z_hat
            acts[i, col] = gamma * z_hat + beta
        if update_running and (m > 1 or not unbiased):
            keep, mom = t(1 - momentum), t(momentum)
            bn_running[0, u] = keep * bn_running[0, u] + mom * mean
            batch_var = var * t(m) / t(m - 1) if unbiased else var
            bn_running[1, u] = keep * bn_running[1, u] + mom * batch_var
    for i in range(m):
        _activate(acts[i, a_off:a_off + n], n, code)


@jit(**_HELPER)
def _batch_norm_backward(layer, m, lay, deltas, work, bn_running, bn_zhat, bn_inv_std, gwork):
    """Back through ``layer``'s batch norm:
    ``deltas[:m]`` holds ∂C/∂y in the layer's columns and becomes ∂C/∂z; writes ∂C/∂γ and
    ∂C/∂β into the tail of ``gwork``.

    Twin: engine.oracle.batch_norm_backward"""
    t = deltas.dtype.type
    n, a_off, u0 = lay[SIZE, layer], lay[A_OFF, layer], lay[BN, layer]
    n_bn = bn_running.shape[1]
    base = work.size - 2 * n_bn
    mt = t(m)
    for j in range(n):
        col, u = a_off + j, u0 + j
        dgamma = t(0)
        dbeta = t(0)
        for i in range(m):
            dgamma += deltas[i, col] * bn_zhat[i, u]
            dbeta += deltas[i, col]
        gwork[base + u] = dgamma
        gwork[base + n_bn + u] = dbeta
        c = work[base + u] * bn_inv_std[u] / mt
        for i in range(m):
            deltas[i, col] = c * (mt * deltas[i, col] - dbeta - bn_zhat[i, u] * dgamma)


@jit(**_HELPER)
def _batch_norm_inference(layer, m, lay, acts, work, bn_running, eps, code):
    """Prediction-mode batch norm of ``layer`` from the running statistics, then its
    activation, for samples 0..m-1.

    Twin: engine.oracle.batch_norm_inference"""
    t = acts.dtype.type
    n, a_off, u0 = lay[SIZE, layer], lay[A_OFF, layer], lay[BN, layer]
    n_bn = bn_running.shape[1]
    base = work.size - 2 * n_bn
    for i in range(m):
        z = acts[i, a_off:a_off + n]
        for j in range(n):
            u = u0 + j
            inv_std = t(1) / np.sqrt(bn_running[1, u] + t(eps))
            z[j] = work[base + u] * ((z[j] - bn_running[0, u]) * inv_std) + work[base + n_bn + u]
        _activate(z, n, code)

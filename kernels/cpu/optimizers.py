"""The optimisers' update rules over the working layout (O(parameters) work per
mini-batch, serial in both twins), and scikit-learn's per-batch L2 penalty."""

import numpy as np

from ..codes import (ADAGRAD, ADAGRAD_EPS_INSIDE, ADAM, ADAM_FOLDED, H_BETA1, H_BETA2, H_EPS,
                     H_L2_BATCH, H_MOMENTUM, H_RHO, H_WEIGHT_DECAY, MOMENTUM, NESTEROV,
                     RMSPROP, RMSPROP_EPS_INSIDE, SGD, VELOCITY, VELOCITY_NESTEROV)
from .cache import jit
from .layout import BN, BN_AFTER, PAD, SIZE, T_OFF, TB_OFF
from .options import _HELPER


@jit(**_HELPER)
def _sum_squared_weights(work, lay):
    """Σ w² over every weight matrix in the working layout (padding columns are zero), in
    float64: scikit-learn's L2 penalty of a mini-batch (``codes.H_L2_BATCH``).

    Twin: engine.oracle.update_mini_batch"""
    total = 0.0
    for layer in range(1, lay.shape[1]):
        t_off = lay[T_OFF, layer]
        # a slice, so that LLVM sees one plain loop to vectorise (6x faster than indexing
        # with offsets read from ``lay``)
        weights = work[t_off:t_off + lay[SIZE, layer - 1] * lay[PAD, layer]]
        for k in range(weights.size):
            w = np.float64(weights[k])
            total += w * w
    return total


@jit(**_HELPER)
def _optimizer_step(work, gwork, opt_work, lay, m, lr, code, hyper, step):
    """One optimiser step on every parameter in the working layout from the summed
    gradients in ``gwork`` of a mini-batch whose sums are divided by ``m`` (its size, or
    its total sample weight): the weights with network2's L2 decay and scikit-learn's
    per-batch α·w/m (``codes.H_L2_BATCH``), then the biases (not of a layer normalised
    before its activation, which has none), then batch norm's γ and β. Padding entries have
    zero gradient and stay zero.

    Twin: engine.oracle.Optimizer.update, engine.oracle.update_mini_batch"""
    decay = hyper[H_WEIGHT_DECAY] + hyper[H_L2_BATCH] / m
    for layer in range(1, lay.shape[1]):
        n_in, pad = lay[SIZE, layer - 1], lay[PAD, layer]
        t_off, tb_off = lay[T_OFF, layer], lay[TB_OFF, layer]
        _apply_update(work, gwork, opt_work, t_off, t_off + n_in * pad, m, lr, decay, code,
                      hyper, step)
        if lay[BN, layer] < 0 or lay[BN_AFTER, layer]:
            _apply_update(work, gwork, opt_work, tb_off, tb_off + pad, m, lr, 0.0, code, hyper,
                          step)
    n_tail = work.size - lay[TB_OFF, lay.shape[1] - 1] - lay[PAD, lay.shape[1] - 1]
    if n_tail > 0:
        _apply_update(work, gwork, opt_work, work.size - n_tail, work.size, m, lr, 0.0, code,
                      hyper, step)


@jit(**_HELPER)
def _apply_update(params, grads, state, lo, hi, m, lr, decay, code, hyper, step):
    """One optimiser step on ``params[lo:hi]`` from the summed gradient ``grads[lo:hi]`` of
    ``m`` samples. ``decay`` is λ/n for weights, 0 for everything else; ``state[s, lo:hi]``
    is slot ``s``; ``step`` counts updates (Adam's t).

    Twin: engine.oracle.Optimizer.update
    """
    p = params[lo:hi]
    g_sum = grads[lo:hi]
    if code == SGD:
        _sgd_step(p, g_sum, m, lr, decay)
    elif code == MOMENTUM or code == NESTEROV:
        _momentum_step(p, g_sum, state[0, lo:hi], m, lr, decay, hyper[H_MOMENTUM],
                       code == NESTEROV)
    elif code == ADAGRAD or code == ADAGRAD_EPS_INSIDE:
        _adagrad_step(p, g_sum, state[0, lo:hi], m, lr, decay, hyper[H_EPS],
                      code == ADAGRAD_EPS_INSIDE)
    elif code == RMSPROP or code == RMSPROP_EPS_INSIDE:
        _rmsprop_step(p, g_sum, state[0, lo:hi], m, lr, decay, hyper[H_RHO], hyper[H_EPS],
                      code == RMSPROP_EPS_INSIDE)
    elif code == ADAM or code == ADAM_FOLDED:
        _adam_step(p, g_sum, state[0, lo:hi], state[1, lo:hi], m, lr, decay, hyper[H_BETA1],
                   hyper[H_BETA2], hyper[H_EPS], step, code == ADAM_FOLDED)
    elif code == VELOCITY or code == VELOCITY_NESTEROV:
        _velocity_step(p, g_sum, state[0, lo:hi], m, lr, decay, hyper[H_MOMENTUM],
                       code == VELOCITY_NESTEROV)


@jit(**_HELPER)
def _sgd_step(p, g_sum, m, lr, decay):
    """network.py's rule, with network2's decay: p ← (1 − lr·λ/n)·p − (lr/m)·Σ∇.

    Twin: engine.oracle.sgd_update"""
    t = p.dtype.type
    scale = t(lr / m)
    if decay != 0:
        keep = t(1 - lr * decay)
        for k in range(p.size):
            p[k] = keep * p[k] - scale * g_sum[k]
    else:
        for k in range(p.size):
            p[k] -= scale * g_sum[k]


@jit(**_HELPER)
def _momentum_step(p, g_sum, buf, m, lr, decay, momentum, nesterov):
    """b ← μ·b + g; p ← p − lr·b (or − lr·(g + μ·b), Nesterov), g = Σ∇/m (+ λ/n·p).

    Twin: engine.oracle.momentum_update"""
    t = p.dtype.type
    mt, wd, rate, mu = t(m), t(decay), t(lr), t(momentum)
    for k in range(p.size):
        g = g_sum[k] / mt
        if decay != 0:
            g += wd * p[k]
        b = mu * buf[k] + g
        buf[k] = b
        p[k] -= rate * (g + mu * b if nesterov else b)


@jit(**_HELPER)
def _adagrad_step(p, g_sum, total, m, lr, decay, eps, eps_inside):
    """s ← s + g²; p ← p − lr·g/(√s + ε) (torch), or with ``eps_inside``
    p ← p − lr·g/√(s + ε) (Keras).

    Twin: engine.oracle.adagrad_update"""
    t = p.dtype.type
    mt, wd, rate, e = t(m), t(decay), t(lr), t(eps)
    for k in range(p.size):
        g = g_sum[k] / mt
        if decay != 0:
            g += wd * p[k]
        s = total[k] + g * g
        total[k] = s
        if eps_inside:
            p[k] -= (rate * g) / np.sqrt(s + e)
        else:
            p[k] -= rate * (g / (np.sqrt(s) + e))


@jit(**_HELPER)
def _rmsprop_step(p, g_sum, square_avg, m, lr, decay, rho, eps, eps_inside):
    """v ← ρ·v + (1 − ρ)·g²; p ← p − lr·g/(√v + ε) (torch), or with ``eps_inside``
    p ← p − lr·g/√(v + ε) (Keras).

    Twin: engine.oracle.rmsprop_update"""
    t = p.dtype.type
    mt, wd, rate, e, r, rest = t(m), t(decay), t(lr), t(eps), t(rho), t(1 - rho)
    for k in range(p.size):
        g = g_sum[k] / mt
        if decay != 0:
            g += wd * p[k]
        v = r * square_avg[k] + rest * (g * g)
        square_avg[k] = v
        if eps_inside:
            p[k] -= (rate * g) / np.sqrt(v + e)
        else:
            p[k] -= rate * (g / (np.sqrt(v) + e))


@jit(**_HELPER)
def _adam_step(p, g_sum, exp_avg, exp_avg_sq, m, lr, decay, beta1, beta2, eps, step,
               folded):
    """Adam at step t: m ← β1·m + (1 − β1)·g, v ← β2·v + (1 − β2)·g², then as torch
    computes it, p ← p − (lr/(1 − β1ᵗ))·m/(√v/√(1 − β2ᵗ) + ε) (twin of
    ``oracle.adam_update``), or ``folded`` as scikit-learn and Keras do,
    p ← p − lr_t·m/(√v + ε) with lr_t = lr·√(1 − β2ᵗ)/(1 − β1ᵗ) (twin of
    ``oracle.adam_folded_update``; dividing by a root of exactly 1 changes no bit).

    Twin: engine.oracle.adam_update, engine.oracle.adam_folded_update"""
    t = p.dtype.type
    mt, wd, e = t(m), t(decay), t(eps)
    b1, rest1, b2, rest2 = t(beta1), t(1 - beta1), t(beta2), t(1 - beta2)
    if folded:
        step_size = t(lr * np.sqrt(1 - beta2 ** step) / (1 - beta1 ** step))
        root2 = t(1)
    else:
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


@jit(**_HELPER)
def _velocity_step(p, g_sum, velocity, m, lr, decay, momentum, nesterov):
    """v ← μ·v − lr·g; p ← p + v, or p ← p + μ·v − lr·g (Nesterov), g = Σ∇/m
    (+ decay·p).

    Twin: engine.oracle.velocity_update"""
    t = p.dtype.type
    mt, wd, rate, mu = t(m), t(decay), t(lr), t(momentum)
    for k in range(p.size):
        g = g_sum[k] / mt
        if decay != 0:
            g += wd * p[k]
        v = mu * velocity[k] - rate * g
        velocity[k] = v
        p[k] += mu * v - rate * g if nesterov else v

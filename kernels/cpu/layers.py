"""One layer, a range of samples or of rows: the forward pass, back-propagated errors, the
weight update and the output errors.

These run the hot loops. Every loop over j runs along a padded row of whole vectors; rows
of the weights are indexed in place (a view per row would cost two atomic reference-count
updates). They are compiled with noalias arguments: no array that one of them writes
overlaps another of its array arguments.
"""

import numpy as np

from .cache import jit
from .elementwise import _activate, _derivative_times, _output_delta_and_cost
from .groups import _group_inputs, _group_rows, _list_in_column, _union_list
from .layout import A_OFF, PAD, PANEL, SIZE, T_OFF, TB_OFF, U_OFF, _mask_column
from .options import _HELPER_LEAF, _INLINE
from .rows import _columns_update, _rows_axpy4, _rows_dot4, _rows_dot_back

_WIDE = True  # replaced by a constant in each compiled variant (see variants._variant)

# The steps of :func:`_forward_layer` (bits of its ``steps``): one call does them all group
# by group; numba-parallel with weights in panels runs each as its own threaded loop.
LISTS, SUMS, FINISH = 1, 2, 4
ALL_STEPS = LISTS | SUMS | FINISH


@jit(**_HELPER_LEAF)
def _forward_layer(layer, i0, i1, p0, p1, steps, lay, work, X, order, pos, acts, z_out, idx,
                   union_len, all_idx, density, code, with_bias):
    """Samples i0..i1-1 (i0 a multiple of 4) of ``layer``, in groups of four, the
    ``steps``:

    * ``LISTS``: the union of the group's non-zero inputs, to ``idx[g // 4]`` from the
      layer's ``U_OFF``, its length to ``union_len[g // 4, layer]`` (-1 when more than
      ``density`` of the inputs are in it: then every row);
    * ``SUMS``: for the units of panels p0..p1-1 (see :func:`working_layout`), the pre-activations
      z = b + Σ_k a_k·Wt[k] (without b for a batch-normalised layer), one pass over the
      listed rows for the group;
    * ``FINISH``: activations in place; for the output layer, z also in z_out.

    Each sum adds its rows in ascending order and a zero input adds an exact zero (0·w: NaN
    only if w is not finite, that is after training has diverged), so a sample's sums
    depend neither on its group nor on its unit's panel, and threaded calls (one group,
    or one panel, each) give the serial bits. The update visits the rows that the lists
    name. A group of fewer than four repeats its first sample, whose sums are then stored
    twice.

    Returns, for the first layer's ``FINISH``, how many of the samples had a NaN or
    infinite pre-activation (else 0): every NaN or ±inf input is in the sum, so the count
    is 0 only for finite inputs, and prediction needs no separate pass over X.

    Twin: engine.oracle.forward, engine.oracle.forward_training"""
    n_in, n, pad, width = (lay[SIZE, layer - 1], lay[SIZE, layer], lay[PAD, layer],
                           lay[PANEL, layer])
    t_off, tb_off = lay[T_OFF, layer], lay[TB_OFF, layer]
    a_off, u_off = lay[A_OFF, layer], lay[U_OFF, layer]
    last = layer == lay.shape[1] - 1
    suspicious = 0
    zero = work.dtype.type(0)
    for g in range(i0, i1, 4):
        n_real = min(4, i1 - g)
        a0, a1, a2, a3 = _group_inputs(layer, g, n_real, lay, X, order, pos, acts)
        if steps & LISTS:
            union_len[g // 4, layer] = _union_list(a0, a1, a2, a3, n_in, idx[g // 4], u_off,
                                             density)
        if steps & SUMS:
            rows, _, count = _group_rows(idx, union_len, all_idx, g, layer, u_off, n_in, 0, n_in)
            for p in range(p0, p1):
                c = p * width
                lo, hi = a_off + c, a_off + c + width
                for i in range(g, g + n_real):
                    z = acts[i, lo:hi]
                    for j in range(width):
                        z[j] = work[tb_off + c + j] if with_bias else zero
                z0 = acts[g, lo:hi]
                z1 = acts[g + 1, lo:hi] if n_real > 1 else z0
                z2 = acts[g + 2, lo:hi] if n_real > 2 else z0
                z3 = acts[g + 3, lo:hi] if n_real > 3 else z0
                _rows_dot4(z0, z1, z2, z3, work[t_off + c * n_in:t_off + (c + width) * n_in],
                           width, rows, a0, a1, a2, a3, count)
        if steps & FINISH:
            for i in range(g, g + n_real):
                z = acts[i, a_off:a_off + pad]
                if layer == 1:
                    probe = zero
                    for j in range(pad):
                        probe += z[j] * zero  # NaN exactly when some z[j] is NaN or ±inf
                    suspicious += probe != probe
                if last:
                    zo = z_out[i]
                    for j in range(pad):
                        zo[j] = z[j]
                _activate(z, n, code)
    return suspicious


@jit(**_HELPER_LEAF)
def _backprop_layer(layer, i0, i1, panel, lay, work, acts, deltas, code, pre_drop, drop_mask,
                    mask_row, scale):
    """Samples i0..i1-1 (i0 a multiple of 4): δ^{layer-1} = (W^layer)ᵀ δ^layer ⊙ D ⊙ σ'(z),
    four samples per pass over the weights. Without dropout (an empty ``drop_mask``) σ' is
    written through ``acts``; with it, D is the keep mask (row ``mask_row + i``) times
    ``scale`` and σ' is written through the activations before dropout, ``pre_drop``.

    Twin: engine.oracle.gradients"""
    n_in, pad = lay[SIZE, layer - 1], lay[PAD, layer]
    t_off, a_off, p_off = lay[T_OFF, layer], lay[A_OFF, layer], lay[A_OFF, layer - 1]
    w_rows = work[t_off:t_off + n_in * pad]
    zero = work.dtype.type(0)
    for i in range(i0, i1, 4):
        _rows_dot_back(deltas, w_rows, pad, panel, n_in, i, min(4, i1 - i), a_off, p_off)
    if drop_mask.shape[0] == 0:
        for i in range(i0, i1):
            _derivative_times(deltas[i, p_off:p_off + n_in], acts[i, p_off:p_off + n_in], n_in,
                              code)
        return
    col = _mask_column(lay, layer - 1)
    for i in range(i0, i1):
        d = deltas[i, p_off:p_off + n_in]
        keep = drop_mask[mask_row + i, col:col + n_in]
        for k in range(n_in):
            d[k] = d[k] * (scale if keep[k] else zero)
        _derivative_times(d, pre_drop[i, p_off:p_off + n_in], n_in, code)


@jit(**_HELPER_LEAF)
def _update_by_samples(layer, k0, k1, p0, p1, m, coef, lay, tgt, X, order, pos, acts, deltas,
                       idx, union_len, all_idx):
    """Rows k0..k1-1 of panels p0..p1-1 of layer's transposed weights in ``tgt`` (see
    :func:`working_layout`): += coef·Σ_i a_i[k]·δ_i, four samples per pass over the rows (small
    mini-batches or layers: see :func:`_update_layer`).

    A group whose inputs are sparse visits the rows of the union of its index lists
    (made by the forward pass), any other group every row. Each element receives its
    samples' shares one after another in sample order (:func:`_rows_axpy4`), whatever
    the grouping, the row range or the panel, so splitting rows or panels over threads
    changes no result.

    Twin: engine.oracle.gradients, engine.oracle.update_mini_batch"""
    n_in, width = lay[SIZE, layer - 1], lay[PANEL, layer]
    t_off, a_off, u_off = lay[T_OFF, layer], lay[A_OFF, layer], lay[U_OFF, layer]
    zero = tgt.dtype.type(0)
    for p in range(p0, p1):
        c = p * width
        w_rows = tgt[t_off + c * n_in:t_off + (c + width) * n_in]
        d_lo, d_hi = a_off + c, a_off + c + width
        for g in range(0, m, 4):
            n_real = min(4, m - g)
            a0, a1, a2, a3 = _group_inputs(layer, g, n_real, lay, X, order, pos, acts)
            d0 = deltas[g, d_lo:d_hi]
            d1 = deltas[g + 1, d_lo:d_hi] if n_real > 1 else d0
            d2 = deltas[g + 2, d_lo:d_hi] if n_real > 2 else d0
            d3 = deltas[g + 3, d_lo:d_hi] if n_real > 3 else d0
            ids, lo, hi = _group_rows(idx, union_len, all_idx, g, layer, u_off, n_in, k0, k1)
            _rows_axpy4(w_rows, width, ids, lo, hi, a0, a1, a2, a3, coef,
                        coef if n_real > 1 else zero, coef if n_real > 2 else zero,
                        coef if n_real > 3 else zero, d0, d1, d2, d3)


@jit(**_HELPER_LEAF)
def _update_by_columns(layer, k0, k1, m, coef, lay, tgt, X, order, pos, acts, deltas, idx,
                       union_len, all_idx, col_count, col_who, col_val):
    """Rows k0..k1-1 of layer's transposed weights in ``tgt``: += coef·Σ_i a_i[k]·δ_i,
    each weight's sum gathered in registers (large mini-batches and layers: see
    :func:`_update_layer`).

    First lists the mini-batch's non-zero inputs k0..k1-1 column by column: input k's are
    the ``col_count[k]`` entries from ``k·m`` of ``col_who`` (the sample, ascending) and
    ``col_val`` (the value), taken on the rows of each group's union list (or all rows).
    Each element sums the samples in the same order whatever the row range, so splitting
    rows over threads changes no result. Every panel (see :func:`working_layout`) in turn.

    Twin: engine.oracle.gradients, engine.oracle.update_mini_batch"""
    n_in, pad, width = lay[SIZE, layer - 1], lay[PAD, layer], lay[PANEL, layer]
    t_off, a_off, u_off = lay[T_OFF, layer], lay[A_OFF, layer], lay[U_OFF, layer]
    for k in range(k0, k1):
        col_count[k] = 0
    for g in range(0, m, 4):
        n_real = min(4, m - g)
        a0, a1, a2, a3 = _group_inputs(layer, g, n_real, lay, X, order, pos, acts)
        ids, lo, hi = _group_rows(idx, union_len, all_idx, g, layer, u_off, n_in, k0, k1)
        for t in range(lo, hi):
            k = np.int64(ids[t])
            _list_in_column(k, g, a0[k], m, col_count, col_who, col_val)
            if n_real > 1:
                _list_in_column(k, g + 1, a1[k], m, col_count, col_who, col_val)
            if n_real > 2:
                _list_in_column(k, g + 2, a2[k], m, col_count, col_who, col_val)
            if n_real > 3:
                _list_in_column(k, g + 3, a3[k], m, col_count, col_who, col_val)
    for c in range(0, pad, width):
        _columns_update(tgt[t_off + c * n_in:t_off + (c + width) * n_in], width, k0, k1,
                        col_count, m, col_who, col_val, deltas, a_off + c, coef)


def _update_layer(by_columns, layer, k0, k1, p0, p1, m, coef, lay, tgt, X, order, pos, acts,
                  deltas, idx, union_len, all_idx, col_count, col_who, col_val, with_bias):
    """Rows k0..k1-1 of panels p0..p1-1 (see :func:`working_layout`) of layer's transposed weights in
    ``tgt``, and the panels' part of the bias with the last rows: += coef·Σ_i a_i[k]·δ_i.
    ``by_columns`` picks the path in the wide variant: the mini-batch's sums gathered per
    weight (:func:`_update_by_columns`, every panel) or four samples at a time
    (:func:`_update_by_samples`, the only path of the narrow variant); see
    ``config.COLUMN_UPDATE_MIN_BATCH``.

    Twin: engine.oracle.gradients, engine.oracle.update_mini_batch"""
    n_in, width = lay[SIZE, layer - 1], lay[PANEL, layer]
    if k1 == n_in and with_bias:
        tb_off, a_off = lay[TB_OFF, layer], lay[A_OFF, layer]
        c0, c1 = p0 * width, p1 * width
        bias = tgt[tb_off + c0:tb_off + c1]
        for i in range(m):
            d = deltas[i, a_off + c0:a_off + c1]
            for j in range(c1 - c0):
                bias[j] += coef * d[j]
    if _WIDE:  # a compile-time constant: see variants._variant
        if by_columns:
            _update_by_columns(layer, k0, k1, m, coef, lay, tgt, X, order, pos, acts, deltas,
                               idx, union_len, all_idx, col_count, col_who, col_val)
            return
    _update_by_samples(layer, k0, k1, p0, p1, m, coef, lay, tgt, X, order, pos, acts, deltas,
                       idx, union_len, all_idx)


@jit(**_INLINE)
def _output_layer(i0, i1, lay, acts, z_out, deltas, labels, targets, order, pos, output,
                  cost, sample_cost):
    """Output errors δ^L and costs of samples i0..i1-1.

    Twin: engine.oracle.output_delta, engine.oracle.sample_costs"""
    depth = lay.shape[1] - 1
    n_out, a_off = lay[SIZE, depth], lay[A_OFF, depth]
    for i in range(i0, i1):
        row = order[pos + i]
        label = labels[row] if labels.size > 0 else -1
        zo = z_out[i, :n_out]
        y = targets[row] if labels.size == 0 else zo  # zo: an unused stand-in
        sample_cost[i] = _output_delta_and_cost(acts[i, a_off:a_off + n_out], zo, label, y,
                                                output, cost, deltas[i, a_off:a_off + n_out])

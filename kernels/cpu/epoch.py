"""The training kernel: a range of mini-batches of an epoch in one compiled call (forward
pass, costs, back-propagation, update), compiled into its variants by :mod:`.variants`."""

import numpy as np
from numba import prange

from ..codes import (H_BN_EPS, H_BN_MOMENTUM, H_BN_UNBIASED, H_COST_SCALE, H_L2_BATCH,
                     H_WEIGHT_DECAY, H_WEIGHT_TOTAL, IDENTITY, SGD)
from .dropout_batchnorm import _batch_norm_backward, _batch_norm_layer, _dropout_rows
from .elementwise import _derivative_times
from .layers import (ALL_STEPS, FINISH, LISTS, SUMS, _backprop_layer, _forward_layer,
                     _output_layer, _update_layer)
from .layout import A_OFF, ACT, BN, BN_AFTER, PAD, PANEL, SIZE, _load_work, _store_work
from .optimizers import _optimizer_step, _sum_squared_weights

_FEATURES = True  # replaced by a constant in each compiled twin (see variants._compile)
_PANELS = True  # likewise: False in the serial twins, whose layers are one panel each


def train_batches(params, grads, lay, cost, X, labels, targets, sample_weight, order,
                  start, stop, batch_size, lr, work, gwork, acts, z_out, deltas, idx, union_len,
                  sample_cost, col_count, col_who, col_val, all_idx, density,
                  parallel_work, row_block, column_batch, wide_pad,
                  opt_code, hyper, opt_state, opt_work, opt_step, drop_mask, drop_scale,
                  pre_drop, bn_running, bn_zhat, bn_inv_std):
    """Run the mini-batches ``order[start:stop]`` (in steps of ``batch_size``), in place.

    Layout contract: ``lay`` from :func:`working_layout` (its ``ACT`` row: each layer's activation,
    the output layer's with ``cost`` for δ^L); ``X`` (n, n_in) and ``targets`` (n, n_out)
    or (0, n_out) in the params' dtype; ``labels`` int64 (n,) or (0,) (class labels are
    used when non-empty); ``order`` int64 row indices; ``grads`` like ``params``. Scratch:
    ``work`` and ``gwork`` (work_size,), ``acts`` and ``deltas`` (batch_size, act_width),
    ``z_out`` (batch_size, P_L), ``idx`` uint32 (groups, idx_width) and ``union_len`` int64
    (groups, L + 1) with groups = ⌈batch_size / 4⌉ (see :func:`_forward_layer`),
    ``sample_cost`` (batch_size,), ``col_count`` int64 (n_in) and ``col_who`` uint32 and
    ``col_val`` (batch_size · n_in), n_in the largest input width of a layer that takes
    the column path (see :func:`column_inputs`; may be empty), ``all_idx`` uint32
    ``arange(max(sizes))``. None of these arrays may overlap.
    ``start`` must be a multiple of batch_size within the epoch so that chunked calls form
    the same batches as one call.
    ``density``: see the package's docstring; ``parallel_work``: multiply-adds from which a
    step uses threads; ``row_block``: rows of a weight matrix per thread task in the
    update; ``wide_pad``: the padded layer width (units) from which the wide variant's
    update takes the column path, ``column_batch`` the smallest mini-batch for it
    (:func:`_update_layer`).

    Training features (plain arrays; empty ones switch a feature off):

    * ``opt_code`` (:data:`.codes.OPTIMIZERS`), ``hyper`` float64 (``codes.H_*``, including
      L2's λ/n and scikit-learn's per-batch rules), ``opt_state`` (n_slots, params.size)
      with scratch ``opt_work`` (n_slots, work_size), and ``opt_step`` int64 (1,),
      incremented per update.
    * ``sample_weight`` (n,) in the params' dtype, or (0,): the weight sᵢ of row i of X
      multiplies its cost and output error δ^L (so every gradient); a mini-batch's sums
      are divided by its size m, or by Σsᵢ where ``hyper[H_WEIGHT_TOTAL]`` is set.
    * ``drop_mask`` uint8 (stop − start, hidden units) or (0, 0): row ``i`` is the keep mask
      of sample ``order[start + i]``, hidden layers' units in order; ``drop_scale``
      (depth,): 1/(1 − p) per layer; scratch ``pre_drop`` like ``acts`` (or (0, 0)).
    * Batch normalisation: ``lay``'s ``BN`` and ``BN_AFTER`` rows (after the activation it
      needs ``pre_drop`` for σ'); ``bn_running`` (2, n_bn) running mean and
      variance; scratch ``bn_zhat`` (batch_size, n_bn) and ``bn_inv_std`` (n_bn,).

    The seeds' SGD (no optimiser memory, L2 or batch norm) adds each sample's share of the
    update straight into the weights. Otherwise each mini-batch's summed gradients gather
    in ``gwork`` and one optimiser pass follows.

    Writes ``params`` (the update), the optimiser state, running statistics and the scratch.
    With ``lr == 0`` nothing is updated and ``grads`` receives the summed gradients of the
    (last) mini-batch instead (training mode: batch statistics, the dropout mask). Returns
    the sum over mini-batches of m times the batch's cost, measured before its update:
    without the features above, the sum of the samples' costs.

    Twin: engine.oracle.train_epoch, engine.oracle.update_mini_batch
    """
    depth = lay.shape[1] - 1
    n_bn = bn_running.shape[1]
    _load_work(params, lay, work)
    for s in range(opt_state.shape[0]):
        _load_work(opt_state[s], lay, opt_work[s])
    gradient_only = lr == 0
    gather = gradient_only
    use_dropout = weighted = False
    l2_batch, cost_scale = 0.0, 1.0
    if _FEATURES:  # a compile-time constant: see variants._compile
        weighted = sample_weight.shape[0] > 0
        l2_batch, cost_scale = hyper[H_L2_BATCH], hyper[H_COST_SCALE]
        gather = (gradient_only or opt_code != SGD or hyper[H_WEIGHT_DECAY] != 0 or n_bn > 0
                  or weighted or l2_batch != 0)
        use_dropout = drop_mask.shape[0] > 0
    tgt = gwork if gather else work
    for i in range(deltas.shape[0]):  # the padding of every δ row must stay zero
        for j in range(deltas.shape[1]):
            deltas[i, j] = 0
    total_cost = 0.0
    i_0 = np.int64(0)  # a literal 0 as an argument would compile a second specialisation
    lists, sums, finish, all_steps = (np.int64(LISTS), np.int64(SUMS), np.int64(FINISH),
                                      np.int64(ALL_STEPS))
    pos = start
    while pos < stop:
        m = min(batch_size, stop - pos)
        quads = (m + 3) // 4  # parallel tasks take four samples each
        coef = params.dtype.type(1) if gather else params.dtype.type(-lr / m)
        if gather:
            for j in range(gwork.size):
                gwork[j] = 0

        for layer in range(1, depth + 1):
            normalised = after = False
            if _FEATURES:
                normalised = lay[BN, layer] >= 0
                after = normalised and lay[BN_AFTER, layer] != 0
            # batch norm before the activation: z without bias, σ after normalising
            code = IDENTITY if normalised and not after else lay[ACT, layer]
            with_bias = not normalised or after
            pad = lay[PAD, layer]
            panels = pad // lay[PANEL, layer]
            threads = m * lay[SIZE, layer - 1] * pad >= parallel_work
            if threads:
                # A layer in panels takes three threaded steps: index lists and activations
                # by samples, the sums by panels, so each thread reads only the panel of the
                # weights that it updates (below), which stays in its core's cache. One
                # parallel loop serves every step: each costs its own compilation.
                split = _PANELS and panels > 1
                for step in range(3 if split else 1):
                    by_panels = split and step == 1
                    todo = (lists, sums, finish)[step] if split else all_steps
                    # (a conditional expression as prange's argument makes Numba run the
                    # loop serially)
                    n_tasks = panels if by_panels else quads
                    for t in prange(n_tasks):
                        task = np.int64(t)  # prange's index is unsigned: another signature
                        i_lo = i_0 if by_panels else 4 * task
                        i_hi = m if by_panels else min(m, 4 * task + 4)
                        p_lo = task if by_panels else i_0
                        p_hi = task + 1 if by_panels else (i_0 if split else panels)
                        _forward_layer(layer, i_lo, i_hi, p_lo, p_hi, todo, lay, work, X, order,
                                       pos, acts, z_out, idx, union_len, all_idx, density, code,
                                       with_bias)
            else:
                _forward_layer(layer, i_0, m, i_0, panels, all_steps, lay, work, X, order, pos,
                               acts, z_out, idx, union_len, all_idx, density, code, with_bias)
            if _FEATURES:
                if normalised:
                    _batch_norm_layer(layer, m, lay, acts, work, bn_running, bn_zhat,
                                      bn_inv_std, hyper[H_BN_EPS], hyper[H_BN_MOMENTUM],
                                      hyper[H_BN_UNBIASED] != 0, not gradient_only,
                                      IDENTITY if after else lay[ACT, layer], pre_drop)
                if use_dropout and layer < depth:
                    _dropout_rows(layer, m, lay, acts, pre_drop, drop_mask, pos - start,
                                  drop_scale[layer - 1])
        _output_layer(i_0, m, lay, acts, z_out, deltas, labels, targets, order, pos,
                      lay[ACT, depth], cost, sample_cost)
        denominator = float(m)  # of the batch's summed gradients and costs
        if _FEATURES and weighted:
            n_out, o_off = lay[SIZE, depth], lay[A_OFF, depth]
            weight_sum = 0.0
            for i in range(m):
                s_i = sample_weight[order[pos + i]]
                weight_sum += float(s_i)
                sample_cost[i] *= s_i
                for j in range(o_off, o_off + n_out):
                    deltas[i, j] *= s_i
            if hyper[H_WEIGHT_TOTAL] != 0:
                denominator = weight_sum
        batch_cost = 0.0
        for i in range(m):
            batch_cost += sample_cost[i]
        if _FEATURES:
            batch_cost = batch_cost * cost_scale * (m / denominator)
            if l2_batch != 0:  # of the weights before this batch's update
                batch_cost += 0.5 * l2_batch * _sum_squared_weights(work, lay) * (
                    m / denominator)
        total_cost += batch_cost

        for layer in range(depth, 0, -1):
            pad = lay[PAD, layer]
            panels = pad // lay[PANEL, layer]
            threads = m * lay[SIZE, layer - 1] * pad >= parallel_work
            if layer > 1:
                # δ^{l-1} from the weights before their update
                scale = drop_scale[layer - 2]
                below = lay[ACT, layer - 1]  # σ' of the layer δ goes down to
                below_after = False
                if _FEATURES:  # σ' comes after its batch norm's backward pass
                    below_after = lay[BN, layer - 1] >= 0 and lay[BN_AFTER, layer - 1] != 0
                code_below = IDENTITY if below_after else below
                if _PANELS:
                    panel = lay[PANEL, layer]
                else:  # one panel: _rows_dot_back compiles its plain loop alone
                    panel = None
                if threads:
                    for q in prange(quads):
                        _backprop_layer(layer, 4 * q, min(m, 4 * q + 4), panel, lay, work,
                                        acts, deltas, code_below, pre_drop, drop_mask,
                                        pos - start, scale)
                else:
                    _backprop_layer(layer, i_0, m, panel, lay, work, acts, deltas, code_below,
                                    pre_drop, drop_mask, pos - start, scale)
                if _FEATURES and lay[BN, layer - 1] >= 0:
                    _batch_norm_backward(layer - 1, m, lay, deltas, work, bn_running, bn_zhat,
                                         bn_inv_std, gwork)
                    if below_after:
                        n_below, b_off = lay[SIZE, layer - 1], lay[A_OFF, layer - 1]
                        for i in range(m):
                            _derivative_times(deltas[i, b_off:b_off + n_below],
                                              pre_drop[i, b_off:b_off + n_below], n_below,
                                              below)
            n_in = lay[SIZE, layer - 1]
            with_bias = lay[BN, layer] < 0 or lay[BN_AFTER, layer] != 0
            by_columns = m >= column_batch and pad >= wide_pad
            # by panels (see the forward pass), or by blocks of rows; one parallel loop
            by_panels = _PANELS and threads and panels > 1 and not by_columns
            if by_panels or (threads and n_in > row_block):
                n_tasks = panels if by_panels else -(-n_in // row_block)
                for t in prange(n_tasks):
                    task = np.int64(t)
                    k_lo = i_0 if by_panels else task * row_block
                    k_hi = n_in if by_panels else min(n_in, (task + 1) * row_block)
                    p_lo = task if by_panels else i_0
                    p_hi = task + 1 if by_panels else panels
                    _update_layer(by_columns, layer, k_lo, k_hi, p_lo, p_hi, m, coef, lay, tgt,
                                  X, order, pos, acts, deltas, idx, union_len, all_idx, col_count,
                                  col_who, col_val, with_bias)
            else:
                _update_layer(by_columns, layer, i_0, n_in, i_0, panels, m, coef, lay, tgt, X,
                              order, pos, acts, deltas, idx, union_len, all_idx, col_count, col_who,
                              col_val, with_bias)
        if not gradient_only:
            opt_step[0] += 1
        if _FEATURES and gather and not gradient_only:
            _optimizer_step(work, gwork, opt_work, lay, denominator, lr, opt_code, hyper,
                            opt_step[0])
        pos += m
    if gradient_only:
        _store_work(gwork, lay, grads)
    else:
        _store_work(work, lay, params)
        for s in range(opt_state.shape[0]):
            _store_work(opt_work[s], lay, opt_state[s])
    return total_cost

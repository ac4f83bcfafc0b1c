"""The prediction kernel: every row of X forward, in blocks of rows that run in parallel
(compiled serially and in parallel by :mod:`.variants`)."""

import numpy as np
from numba import prange

from ..codes import IDENTITY
from .dropout_batchnorm import _batch_norm_inference
from .layers import ALL_STEPS, _forward_layer
from .layout import A_OFF, ACT, BN, BN_AFTER, PAD, PANEL, SIZE, _load_work


def forward_rows(params, lay, X, out_a, out_z, work, rows, acts, z_out, idx, union_len, suspicious,
                 density, all_idx, bn_running, bn_eps):
    """Feed every row of ``X`` forward; writes output activations ``out_a`` and
    pre-activations ``out_z`` (both (n, n_out), params' dtype) and returns how many rows
    had a NaN or infinite first-layer pre-activation (see :func:`_forward_layer`; counted
    per scratch slot in ``suspicious``, int64 (slots,), since a reduction across threads
    would need Numba's runtime).
    Batch-normalised layers use their running statistics ``bn_running`` (see
    :func:`train_batches`).

    Rows go in blocks of ``acts.shape[1]``, one parallel task each, ``acts.shape[0]``
    blocks at a time (one scratch slot per task): ``acts`` (slots, block, act_width),
    ``z_out`` (slots, block, P_L), ``idx`` uint32 (slots, groups, idx_width) and ``union_len``
    int64 (slots, groups, L + 1) with groups = ⌈block / 4⌉; ``work`` (work_size,); ``rows``
    int64 ``arange(n)``. Each layer's activation comes from ``lay``'s ``ACT`` row.

    Twin: engine.oracle.feedforward"""
    _load_work(params, lay, work)
    depth = lay.shape[1] - 1
    n_out, a_off = lay[SIZE, depth], lay[A_OFF, depth]
    n_rows = X.shape[0]
    slots, block = acts.shape[0], acts.shape[1]
    n_blocks = (n_rows + block - 1) // block
    i_0, all_steps = np.int64(0), np.int64(ALL_STEPS)
    for s in range(slots):
        suspicious[s] = 0
    for first in range(0, n_blocks, slots):
        for s in prange(min(slots, n_blocks - first)):
            lo = (first + s) * block
            m = min(n_rows, lo + block) - lo
            for layer in range(1, depth + 1):
                normalised = lay[BN, layer] >= 0
                after = normalised and lay[BN_AFTER, layer] != 0
                code = IDENTITY if normalised and not after else lay[ACT, layer]
                suspicious[s] += _forward_layer(
                    layer, i_0, m, i_0, lay[PAD, layer] // lay[PANEL, layer], all_steps, lay,
                    work, X, rows, lo, acts[s], z_out[s], idx[s], union_len[s], all_idx, density,
                    code, not normalised or after)
                if normalised:
                    _batch_norm_inference(layer, m, lay, acts[s], work, bn_running, bn_eps,
                                          IDENTITY if after else lay[ACT, layer])
            for i in range(m):
                for j in range(n_out):
                    out_a[lo + i, j] = acts[s, i, a_off + j]
                    out_z[lo + i, j] = z_out[s, i, j]
    total = 0
    for s in range(slots):
        total += suspicious[s]
    return total

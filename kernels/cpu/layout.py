"""The working layout (see the package's docstring): :func:`working_layout` computes every offset
into one int64 array, ``lay``, one column per layer; the compiled conversions copy the
parameters into that layout and back."""

import numpy as np

from ..codes import IDENTITY
from .cache import jit
from .options import _HELPER, _INLINE
from .vectors import VECTOR_BYTES


# Rows of the layout array ``lay`` (columns are layers 0..L; see working_layout()).
SIZE, PAD, W_OFF, B_OFF, T_OFF, TB_OFF, A_OFF, BN, U_OFF, PANEL, ACT, BN_AFTER = range(12)


def working_layout(sizes, pad_bytes, itemsize, bn_off=None, panels=1, panel_min_bytes=0,
         activations=None, bn_after=None):
    """Working layout of the kernels for a network with layer widths ``sizes`` and
    parameters of ``itemsize`` bytes, each layer's row of units padded to a multiple of
    ``pad_bytes`` rounded up to whole vectors of :data:`VECTOR_BYTES` (the row loops work
    in vectors); ``bn_off[l - 1]`` is the first batch-normalised unit of layer ``l`` or -1
    (default: no batch normalisation). ``panels``: how many threads share the units of a
    layer whose transposed weights take at least ``panel_min_bytes`` (the parallel twins),
    see below. ``activations[l - 1]``: the code (:mod:`.codes`) of layer ``l``'s
    activation, the output layer's last (default: identity everywhere); each layer's is
    read from ``lay`` inside the one compiled kernel, so any combination runs without a
    new specialisation. ``bn_after[l - 1]`` true: layer ``l``'s batch normalisation follows
    its activation (Keras' ``Dense(n, activation=...), BatchNormalization()``: the layer
    keeps its bias) instead of preceding it (default: it precedes it everywhere).

    Returns ``(lay, work_size, act_width, idx_width)``: the int64 layout array (rows
    ``SIZE, PAD, W_OFF, B_OFF, T_OFF, TB_OFF, A_OFF, BN, U_OFF, PANEL, ACT, BN_AFTER``, one
    column per layer;
    ``U_OFF``: where a group of four samples keeps, in its row of ``idx``, the union of
    their input index lists to the layer, with 8 spare entries, see
    :func:`_pack8_union`; ``PANEL``: the panel width, below; ``ACT``: the activation code;
    ``BN_AFTER``: 1 where batch normalisation follows the activation)
    and the lengths a caller
    allocates: ``work`` (flat, the parameters' dtype; batch normalisation's γ and β follow
    the layers, as in ``params``), one sample's activation row, and one group's row of
    index lists.

    A layer's transposed weights are stored in panels of ``PANEL`` units (whole vectors):
    panel p holds units [p·PANEL, (p + 1)·PANEL) of every input row, its rows contiguous,
    and the bias row follows the panels. One panel is the whole padded row; with
    ``panels`` > 1 (for a layer of at least ``panel_min_bytes`` whose row's vectors divide
    evenly) each thread of the parallel twins computes and updates its own panel, in a
    block of memory that no other thread writes. The serial twins are compiled for one
    panel per layer.
    """
    sizes = [int(n) for n in sizes]
    lanes = VECTOR_BYTES // int(itemsize)
    pad_units = lanes * max(1, -(-int(pad_bytes) // VECTOR_BYTES))
    depth = len(sizes) - 1
    lay = np.zeros((12, depth + 1), dtype=np.int64)
    lay[SIZE] = sizes
    lay[ACT] = IDENTITY
    if activations is not None:
        if len(activations) != depth:
            raise ValueError(f"activations needs one code per layer ({depth}); got "
                             f"{len(activations)}")
        lay[ACT, 1:] = activations
    if bn_after is not None:
        lay[BN_AFTER, 1:] = [bool(flag) for flag in bn_after]
    lay[BN] = -1
    n_bn = 0
    if bn_off is not None:
        lay[BN, 1:] = bn_off
        n_bn = sum(sizes[layer] for layer in range(1, depth + 1) if bn_off[layer - 1] >= 0)
    p_off = t_off = a_off = i_off = 0
    for layer in range(1, depth + 1):
        n_in, n = sizes[layer - 1], sizes[layer]
        pad = -(-n // pad_units) * pad_units
        lay[PAD, layer] = pad
        split = (panels > 1 and (pad // lanes) % panels == 0
                 and n_in * pad * itemsize >= panel_min_bytes)
        lay[PANEL, layer] = pad // panels if split else pad
        lay[W_OFF, layer] = p_off
        lay[B_OFF, layer] = p_off + n * n_in
        p_off += n * n_in + n
        lay[T_OFF, layer] = t_off
        lay[TB_OFF, layer] = t_off + n_in * pad
        t_off += (n_in + 1) * pad
        lay[A_OFF, layer] = a_off
        a_off += pad
        lay[U_OFF, layer] = i_off
        i_off += sizes[layer - 1] + 8
    return lay, t_off + 2 * n_bn, a_off, i_off


def column_inputs(lay, batch_size, column_batch, wide_pad):
    """The largest input width among the layers whose update takes the column path
    (:func:`_update_layer`) at mini-batches of ``batch_size`` (0 when none does): the
    column lists of :func:`train_batches` hold ``batch_size`` times this many entries."""
    if batch_size < column_batch:
        return 0
    depth = lay.shape[1] - 1
    return max((int(lay[SIZE, layer - 1]) for layer in range(1, depth + 1)
                if lay[PAD, layer] >= wide_pad), default=0)


# -- parameters <-> working layout ---------------------------------------------------------


@jit(**_INLINE)
def _layer_params(lay):
    """Number of weights and biases (``params`` holds batch norm's γ and β after them).

    Twin: none (layout arithmetic)"""
    depth = lay.shape[1] - 1
    return lay[B_OFF, depth] + lay[SIZE, depth]


@jit(**_HELPER)
def _load_work(params, lay, work):
    """``work`` ← ``params`` in the working layout (transposed, zero padding columns).

    Twin: none (layout conversion)"""
    zero = work.dtype.type(0)
    for layer in range(1, lay.shape[1]):
        n_in, n, pad = lay[SIZE, layer - 1], lay[SIZE, layer], lay[PAD, layer]
        w_off, b_off, tb_off = lay[W_OFF, layer], lay[B_OFF, layer], lay[TB_OFF, layer]
        for j in range(pad):
            column = work[_column_start(lay, layer, j):tb_off:lay[PANEL, layer]][:n_in]
            if j < n:
                w = params[w_off + j * n_in:w_off + (j + 1) * n_in]
                for k in range(n_in):
                    column[k] = w[k]
                work[tb_off + j] = params[b_off + j]
            else:
                for k in range(n_in):
                    column[k] = zero
                work[tb_off + j] = zero
    _copy_tail(params, work, params.size - _layer_params(lay))


@jit(**_HELPER)
def _store_work(work, lay, params):
    """``params`` ← ``work`` (inverse of :func:`_load_work`).

    Twin: none (layout conversion)"""
    for layer in range(1, lay.shape[1]):
        n_in, n = lay[SIZE, layer - 1], lay[SIZE, layer]
        w_off, b_off, tb_off = lay[W_OFF, layer], lay[B_OFF, layer], lay[TB_OFF, layer]
        for j in range(n):
            column = work[_column_start(lay, layer, j):tb_off:lay[PANEL, layer]][:n_in]
            w = params[w_off + j * n_in:w_off + (j + 1) * n_in]
            for k in range(n_in):
                w[k] = column[k]
            params[b_off + j] = work[tb_off + j]
    _copy_tail(work, params, params.size - _layer_params(lay))


@jit(**_INLINE)
def _column_start(lay, layer, j):
    """Where unit j's weight from input 0 is in the working layout (see :func:`working_layout`);
    its weight from input k is ``PANEL``·k further on.

    Twin: none (layout arithmetic)"""
    n_in, width = lay[SIZE, layer - 1], lay[PANEL, layer]
    return lay[T_OFF, layer] + (j // width) * n_in * width + j % width


@jit(**_INLINE)
def _copy_tail(src, dst, n_tail):
    """Batch normalisation's γ and β: the last ``n_tail`` entries in both layouts.

    Twin: none (layout conversion)"""
    for k in range(n_tail):
        dst[dst.size - n_tail + k] = src[src.size - n_tail + k]


@jit(**_INLINE)
def _mask_column(lay, layer):
    """First column of hidden ``layer``'s units in a dropout mask row (hidden layers in
    order, unpadded).

    Twin: none (index helper)"""
    col = 0
    for q in range(1, layer):
        col += lay[SIZE, q]
    return col

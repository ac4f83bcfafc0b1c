"""Numba CPU kernels: forward pass, backpropagation and the mini-batch update loop.

Twin of :mod:`engine.oracle` (the tests compare each kernel with it). Every function here
takes plain arrays and scalars; the Python layer validates inputs and allocates outputs.

Parameter layout contract
-------------------------
All weights and biases live in one flat array ``params`` (float32 or float64). For layer
``l`` (1-based, ``l = 1..L``) with ``n = sizes[l]`` outputs and ``n_in = sizes[l-1]`` inputs:

* ``W_l = params[w_off[l] : w_off[l] + n*n_in].reshape(n, n_in)`` (row-major, as the
  public ``net.weights[l-1]`` view),
* ``b_l = params[b_off[l] : b_off[l] + n]``.

Working layout
--------------
A kernel call first copies the parameters into ``work``, where layer ``l`` is stored
transposed and padded: ``Wt_l`` with shape ``(n_in + 1, P_l)``, the weights of input ``k``
in row ``k`` and the bias in the last row (``P_l`` is ``n`` rounded up to a whole number
of ``config.PAD_BYTES``, itself rounded up to whole vectors of :data:`VECTOR_BYTES`; the
padding columns are zero). Every inner loop then runs along a contiguous row of whole
vectors, whatever the layer sizes, and one input unit's weights are one row, so a group of
samples whose inputs are mostly zero touches only the rows of the inputs where one of them
is non-zero (in the forward pass and in the update). Training writes the updated parameters back at the end of the call.

All offsets travel in one int64 array ``lay`` (see :func:`plan`), one column per layer.

Groups of four samples and sparse inputs
----------------------------------------
The forward pass and the update take a mini-batch four samples at a time: each row of a
layer's weights is loaded (and, in the update, stored) once for the four. For each group
and layer the kernel lists the inputs where any of the four samples is non-zero (eight
inputs per vector compare). If at most ``density`` of them are listed it visits those rows
only; otherwise every row. A sample with a zero input adds an exact zero, and every sum
adds its terms in ascending input order, so a sample's results do not depend on its group,
and skipping zero inputs changes the result by rounding only against the oracle (which
sums in its own order). ``density`` comes from ``config.SPARSE_MAX_DENSITY``.

Serial and parallel twins
-------------------------
Each kernel is compiled from the same source serially (``*_serial``) and with
``parallel=True`` (``*_parallel``), for each of the variants below (``TRAIN``).
The parallel twin spreads a mini-batch's groups of samples (forward pass, backpropagated
errors) and blocks of weight rows (the update) over threads when a step has at least
``parallel_work`` multiply-adds; smaller steps run serially in both twins, because
starting threads would cost more than the step. Both twins do every sum in the same order,
so they give identical results. Integer codes from :mod:`.codes` pick the activation and
cost inside the kernel, so one compilation per dtype serves every network.

Narrow and wide variants
------------------------
Layers whose padded rows are wide (``config.COLUMN_UPDATE_MIN_ROW_BYTES``) have one more
update path: from ``config.COLUMN_UPDATE_MIN_BATCH`` samples it sums each weight's share
over the mini-batch before adding it. It is compiled only into the wide variant of the
training kernels (``TRAIN``), which the Python layer calls for networks that have such a
layer.
"""

import os
import types

import numpy as np
from llvmlite import ir
from numba import njit, prange, types as nbtypes
from numba.core import cgutils, config as numba_config
from numba.core.codegen import get_host_cpu_features
from numba.core.compiler_lock import global_compiler_lock
from numba.extending import intrinsic, overload

from engine import config

from .codes import (ADAGRAD, ADAM, ADAM_FOLDED, CROSS_ENTROPY, H_BETA1, H_BETA2, H_BN_EPS,
                    H_BN_MOMENTUM, H_BN_UNBIASED, H_COST_SCALE, H_EPS, H_L2_BATCH, H_MOMENTUM,
                    H_RHO, H_WEIGHT_DECAY, H_WEIGHT_TOTAL, IDENTITY, MOMENTUM, NESTEROV, RELU,
                    RMSPROP, SGD, SIGMOID, SOFTMAX, TANH, VELOCITY, VELOCITY_NESTEROV,
                    ADAGRAD_EPS_INSIDE, RMSPROP_EPS_INSIDE)

# error_model="numpy": a float division by zero gives inf/NaN like NumPy instead of a
# Python exception; the exception check would also stop loops from vectorising.
_JIT = dict(cache=True, fastmath=config.FASTMATH, nogil=True, error_model="numpy")


def _no_alias_pipeline():
    """A Numba pipeline that marks a function's array arguments ``noalias`` (C's
    ``restrict``), or None where this Numba lacks the hook.

    LLVM cannot tell that two array arguments never overlap, so before each vectorised
    loop that stores through one and loads through another it emits a run-time overlap
    check and a scalar fallback. For rows of a few dozen units that check costs as much as
    the arithmetic. Numba uses the same flag for its own parallel loop bodies.
    """
    try:
        from numba.core.compiler import CompilerBase, DefaultPassBuilder
        from numba.core.compiler import Flags
    except ImportError:  # pragma: no cover - other Numba layouts
        return None
    if "noalias" not in getattr(Flags, "options", {}):  # pragma: no cover
        return None

    class NoAliasCompiler(CompilerBase):
        def define_pipelines(self):
            self.state.flags.noalias = True
            return [DefaultPassBuilder.define_nopython_pipeline(self.state)]

    return NoAliasCompiler


_NO_ALIAS = _no_alias_pipeline()
_LEAF = dict(_JIT, pipeline_class=_NO_ALIAS) if _NO_ALIAS is not None else _JIT
# Every helper below the two kernels runs without Numba's reference counting (_nrt=False):
# each array view would otherwise cost two atomic updates, which took a sixth of an epoch.
# They allocate nothing and return no new arrays (the kernels keep everything alive).
_HELPER = dict(_JIT, _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True)
# The per-layer helpers with the hot loops also get noalias arguments. Their contract: no
# array argument they write overlaps another of their array arguments (arrays that are
# only read may share memory).
_HELPER_LEAF = dict(_LEAF, _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True)
# Compile time (a first fit compiles every helper it reaches): helpers are only called from
# compiled code, so they get no CPython or cfunc wrapper (calling one from Python would
# crash). Each separately compiled helper also costs a fixed amount of work, and its code
# is optimised and turned into machine code again inside every caller, so the small or
# single-caller ones are inlined at Numba's IR level instead (_INLINE). Not inlined: the
# noalias leaves, helpers with many call sites, and those whose inlining lets LLVM reorder
# a sum (_output_delta_and_cost, _softplus, _derivative_times: the cost would change in
# the last bits).
_INLINE = dict(_HELPER, inline="always")

_FEATURES = True  # replaced by a constant in each compiled twin (see _compile)
_WIDE = True  # likewise (see _variant)
_PANELS = True  # likewise: False in the serial twins, whose layers are one panel each

# Rows of the layout array ``lay`` (columns are layers 0..L; see plan()).
SIZE, PAD, W_OFF, B_OFF, T_OFF, TB_OFF, A_OFF, BN, U_OFF, PANEL, ACT, BN_AFTER = range(12)


def plan(sizes, pad_bytes, itemsize, bn_off=None, panels=1, panel_min_bytes=0,
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


def _left_pack_table():
    """Row m lists the positions of the set bits of the byte m, in order (rest zero)."""
    table = np.zeros((256, 8), dtype=np.uint8)
    for mask in range(256):
        lanes = [b for b in range(8) if mask >> b & 1]
        table[mask, :len(lanes)] = lanes
    return table


_LEFT_PACK = _left_pack_table()


@intrinsic
def _pack8_union(typingctx, a0, a1, a2, a3, k, table, out, at):
    """Write the indices k..k+7 where any of ``a0..a3`` is non-zero (NaN included) to
    ``out[at:]``; return their count.

    Eight entries of ``out`` are always written (those past the count are junk), so ``out``
    needs 8 spare entries. Vector compares give an 8-bit mask; ``table[mask]`` holds the
    positions of its set bits, so the indices are ``k + table[mask]``, stored as one
    vector: no branch, whatever the pattern of zeros (a scalar loop costs about 5
    instructions per input).

    Twin: none (index lists of non-zero inputs)"""
    inputs = (a0, a1, a2, a3)
    if not (all(x == a0 for x in inputs) and isinstance(a0, nbtypes.Array) and a0.ndim == 1
            and a0.layout == "C" and isinstance(a0.dtype, nbtypes.Float)
            and isinstance(out, nbtypes.Array) and out.dtype == nbtypes.uint32
            and isinstance(table, nbtypes.Array) and table.dtype == nbtypes.uint8):
        return None

    def codegen(context, builder, signature, args):
        a_type, table_type, out_type = signature.args[0], signature.args[5], signature.args[6]
        i64, i32, i8 = ir.IntType(64), ir.IntType(32), ir.IntType(8)
        k = context.cast(builder, args[4], signature.args[4], nbtypes.intp)
        lut = context.make_array(table_type)(context, builder, args[5])
        dest = context.make_array(out_type)(context, builder, args[6])
        at = context.cast(builder, args[7], signature.args[7], nbtypes.intp)
        element = context.get_data_type(a_type.dtype)
        item = context.get_abi_sizeof(element)
        eight = ir.VectorType(element, 8)
        mask = None
        for a in range(4):
            array = context.make_array(a_type)(context, builder, args[a])
            src = cgutils.get_item_pointer(context, builder, a_type, array, [k],
                                           wraparound=False)
            values = builder.load(builder.bitcast(src, eight.as_pointer()), align=item)
            nonzero = builder.fcmp_unordered("!=", values, ir.Constant(eight, None))  # NaN
            bits = builder.bitcast(nonzero, i8)
            mask = bits if mask is None else builder.or_(mask, bits)
        row = builder.zext(mask, i64)
        lanes_ptr = cgutils.get_item_pointer(context, builder, table_type, lut,
                                             [row, ir.Constant(i64, 0)], wraparound=False)
        lanes = builder.load(builder.bitcast(lanes_ptr, ir.VectorType(i8, 8).as_pointer()),
                             align=1)
        base = builder.insert_element(ir.Constant(ir.VectorType(i32, 8), None),
                                      builder.trunc(k, i32), ir.Constant(i32, 0))
        base = builder.shuffle_vector(base, ir.Constant(ir.VectorType(i32, 8), None),
                                      ir.Constant(ir.VectorType(i32, 8), None))
        indices = builder.add(builder.zext(lanes, ir.VectorType(i32, 8)), base)
        dst = cgutils.get_item_pointer(context, builder, out_type, dest, [at], wraparound=False)
        builder.store(indices, builder.bitcast(dst, ir.VectorType(i32, 8).as_pointer()),
                      align=4)
        popcount = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i8, [i8]),
                                                  "llvm.ctpop.i8")
        return builder.zext(builder.call(popcount, [mask]), i64)

    return nbtypes.int64(a0, a1, a2, a3, k, table, out, at), codegen


# -- explicit vector loops over weight rows ---------------------------------------------------
# The loops that run once per (group of four samples, input unit): a row of weights into
# the samples' sums (forward pass) and the row's share of the update, and the loop over
# weight rows of back-propagation. LLVM vectorises the plain loops, but over a runtime row
# length: every row then pays for trip-count checks and remainders, and the sums go through
# memory between rows. Written here with whole vector registers, the sums stay in registers
# over all rows and a row costs little more than its loads, FMAs and stores (about 1.5x
# faster per row, measured on [784, 30, 10]'s rows). Contract for all: the
# arrays are contiguous 1-D (or a contiguous row) of one float dtype, ``ids`` uint32, and
# the row width a multiple of one vector (VECTOR_BYTES: plan() pads rows to that).

_I64 = ir.IntType(64)


def _host_vector_bytes():
    """Bytes in one vector register of the CPU Numba compiles for: 64 where it has
    AVX-512, else 32 (AVX2; narrower CPUs split a 32-byte vector in two). On an Emerald
    Rapids core (two 64-byte FMA units) the deep network's forward passes and updates ran
    1.4-1.5 times faster with 64-byte vectors; the seeds' 30-unit rows, bound by loading
    rows from L2, ran the same. Numba's on-disk cache is keyed by the CPU and its features,
    so code built for one width never runs on a CPU that wants the other."""
    features = numba_config.CPU_FEATURES
    if features is None:  # as Numba's CPU target: NUMBA_ENABLE_AVX=0 drops AVX-512 too
        features = get_host_cpu_features()
    return 64 if "+avx512f" in features.split(",") else 32


VECTOR_BYTES = _host_vector_bytes()
# vectors per chunk of columns when four samples share a pass over the weights
# (_rows_dot4, _rows_axpy4)
_GROUP_VECTORS = 4 if VECTOR_BYTES == 64 else 2


def _vector_type(context, dtype):
    """(lanes, LLVM vector type) of one register (VECTOR_BYTES) of ``dtype``."""
    element = context.get_data_type(dtype)
    lanes = VECTOR_BYTES // context.get_abi_sizeof(element)
    return lanes, ir.VectorType(element, lanes)


def _row_kit(context, builder, dtype):
    """Closures shared by the row loops: load/store a vector at an element offset,
    multiply-add, broadcast. The multiply-add is ``llvm.fmuladd``: one fused instruction
    where the CPU has FMA (as ``fastmath`` "contract" gives the plain loops), a multiply and
    an add where it has not, rather than a slow exact software fma."""
    lanes, vt = _vector_type(context, dtype)
    item = VECTOR_BYTES // lanes
    fma = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vt, [vt, vt, vt]),
        f"llvm.fmuladd.v{lanes}f{8 * item}")

    def load(base, offset):
        return builder.load(builder.bitcast(builder.gep(base, [offset]), vt.as_pointer()),
                            align=item)

    def store(value, base, offset):
        builder.store(value, builder.bitcast(builder.gep(base, [offset]), vt.as_pointer()),
                      align=item)

    def splat(value):
        v = builder.insert_element(ir.Constant(vt, None), value, ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(v, ir.Constant(vt, None),
                                      ir.Constant(ir.VectorType(ir.IntType(32), lanes), None))

    def fused(a, b, c):
        return builder.call(fma, [a, b, c])

    return lanes, vt, load, store, splat, fused


def _over_chunks(builder, width, lanes, chunk, most=4):
    """Call ``chunk(first column, vectors)`` over a row of ``width`` elements: chunks of
    ``most`` vectors (4 or 2), then the rest as a chunk of two and one of one, so a short
    row (the seeds' 30 units: two 64-byte vectors) takes one pass."""
    step = ir.Constant(_I64, most * lanes)
    full = builder.mul(builder.udiv(width, step), step)
    with cgutils.for_range_slice(builder, ir.Constant(_I64, 0), full, step) as (col, _):
        chunk(col, most)
    rest = builder.udiv(builder.sub(width, full), ir.Constant(_I64, lanes))
    if most > 2:  # with chunks of two, at most one vector is left
        with builder.if_then(builder.icmp_unsigned(">=", rest, ir.Constant(_I64, 2))):
            chunk(full, 2)
    with builder.if_then(builder.trunc(rest, ir.IntType(1))):  # odd: the last vector
        chunk(builder.sub(width, ir.Constant(_I64, lanes)), 1)


def _float_arrays_ok(arrays):
    dtypes = {a.dtype for a in arrays}
    return (all(isinstance(a, nbtypes.Array) for a in arrays) and len(dtypes) == 1
            and next(iter(dtypes)) in (nbtypes.float32, nbtypes.float64))


def _rows_signature_ok(float_arrays, ids):
    return (_float_arrays_ok(float_arrays) and isinstance(ids, nbtypes.Array)
            and ids.dtype == nbtypes.uint32)


@intrinsic
def _rows_dot4(typingctx, z0, z1, z2, z3, wt, width, ids, a0, a1, a2, a3, count):
    """For four samples s at once, over one index list (the union of theirs):
    ``z_s[:width] += Σ_{t < count} a_s[k]·wt[k·width : (k + 1)·width]``, ``k = ids[t]``,
    added row after row in list order (one accumulator per sample and vector).

    Each weight row is loaded once for the four samples, so a layer whose weights do not
    stay in L1 is read from L2 a quarter as often; a sample that has a zero at k adds an
    exact zero. Chunks of four vectors with 64-byte registers
    (16 sums and 4 weights in 32 registers), two with 32-byte ones (16 registers), then
    the rest of the row.

    Twin: none (LLVM row primitive; _forward_layer names the twin)"""
    zs, inputs = (z0, z1, z2, z3), (a0, a1, a2, a3)
    if not _rows_signature_ok(zs + (wt,) + inputs, ids):
        return None

    def codegen(context, builder, sig, args):
        lanes, vt, load, store, splat, fused = _row_kit(context, builder, sig.args[0].dtype)
        z_ptr = [context.make_array(sig.args[a])(context, builder, args[a]).data
                 for a in range(4)]
        w_ptr, ids_ptr = (context.make_array(sig.args[a])(context, builder, args[a]).data
                          for a in (4, 6))
        x_ptr = [context.make_array(sig.args[a])(context, builder, args[a]).data
                 for a in range(7, 11)]
        width = context.cast(builder, args[5], sig.args[5], nbtypes.int64)
        count = context.cast(builder, args[11], sig.args[11], nbtypes.int64)
        acc = [[cgutils.alloca_once(builder, vt) for _ in range(_GROUP_VECTORS)]
               for _ in range(4)]

        def chunk(col, n_vec):
            offsets = [builder.add(col, ir.Constant(_I64, u * lanes)) for u in range(n_vec)]
            for q in range(4):
                for u in range(n_vec):
                    builder.store(load(z_ptr[q], offsets[u]), acc[q][u])
            with cgutils.for_range(builder, count) as loop:
                k = builder.zext(builder.load(builder.gep(ids_ptr, [loop.index])), _I64)
                start = builder.mul(k, width)
                w = [load(w_ptr, builder.add(start, off)) for off in offsets]
                for q in range(4):
                    x = splat(builder.load(builder.gep(x_ptr[q], [k])))
                    for u in range(n_vec):
                        builder.store(fused(x, w[u], builder.load(acc[q][u])), acc[q][u])
            for q in range(4):
                for u in range(n_vec):
                    store(builder.load(acc[q][u]), z_ptr[q], offsets[u])

        _over_chunks(builder, width, lanes, chunk, _GROUP_VECTORS)
        return context.get_dummy_value()

    return nbtypes.void(z0, z1, z2, z3, wt, width, ids, a0, a1, a2, a3, count), codegen


@intrinsic
def _rows_axpy4(typingctx, wt, width, ids, t0, t1, a0, a1, a2, a3, c0, c1, c2, c3,
                d0, d1, d2, d3):
    """For four samples s at once: ``wt[k·width : (k + 1)·width] += a_s[k]·(c_s·d_s)``,
    sample after sample, for ``k = ids[t]``, t in [t0, t1) (the union of the four samples'
    non-zero inputs, or all rows).

    Each row is read and written once for the four samples, with their scaled δ in
    registers, so a layer whose rows live in L2 moves a quarter of the data. Every element
    receives ``fma(a_s[k], c_s·d_s, w)`` for s = 0, 1, 2, 3 in turn, the order of four
    passes of one sample each, and a sample with a zero at k (or a coefficient of 0: a
    group of fewer than four) adds an exact zero while its δ and inputs are finite. (After
    training has diverged, a non-finite δ or activation makes 0·δ or 0·a NaN, so NaN then
    reaches the rows of the whole group, not only the sample's own.) The coefficient scales δ, not a_s[k]:
    a scalar product would need a shuffle to broadcast it, and shuffles share a port with
    the 64-byte FMAs (the row then cost twice as long); a_s[k] is broadcast straight from
    memory. Chunks of :data:`_GROUP_VECTORS` vectors (four δ and one weight vector each in
    the registers).

    Twin: none (LLVM row primitive; _update_by_samples names the twin)"""
    inputs, deltas = (a0, a1, a2, a3), (d0, d1, d2, d3)
    if not _rows_signature_ok((wt,) + inputs + deltas, ids):
        return None

    def codegen(context, builder, sig, args):
        dtype = sig.args[0].dtype
        lanes, vt, load, store, splat, fused = _row_kit(context, builder, dtype)
        w_ptr, ids_ptr = (context.make_array(sig.args[a])(context, builder, args[a]).data
                          for a in (0, 2))
        x_ptr = [context.make_array(sig.args[a])(context, builder, args[a]).data
                 for a in range(5, 9)]
        d_ptr = [context.make_array(sig.args[a])(context, builder, args[a]).data
                 for a in range(13, 17)]
        width, t0, t1 = (context.cast(builder, args[a], sig.args[a], nbtypes.int64)
                         for a in (1, 3, 4))
        coefs = [context.cast(builder, args[a], sig.args[a], dtype) for a in range(9, 13)]

        def chunk(col, n_vec):
            offsets = [builder.add(col, ir.Constant(_I64, u * lanes)) for u in range(n_vec)]
            cd = [[builder.fmul(splat(coefs[q]), load(d_ptr[q], off)) for off in offsets]
                  for q in range(4)]
            with cgutils.for_range_slice(builder, t0, t1, ir.Constant(_I64, 1)) as (t, _):
                k = builder.zext(builder.load(builder.gep(ids_ptr, [t])), _I64)
                start = builder.mul(k, width)
                x = [splat(builder.load(builder.gep(x_ptr[q], [k]))) for q in range(4)]
                for u in range(n_vec):
                    at = builder.add(start, offsets[u])
                    w = load(w_ptr, at)
                    for q in range(4):
                        w = fused(x[q], cd[q][u], w)
                    store(w, w_ptr, at)

        _over_chunks(builder, width, lanes, chunk, _GROUP_VECTORS)
        return context.get_dummy_value()

    return nbtypes.void(wt, width, ids, t0, t1, a0, a1, a2, a3, c0, c1, c2, c3,
                        d0, d1, d2, d3), codegen


@intrinsic
def _columns_update(typingctx, wt, width, k0, k1, counts, bucket, who, vals, d, d_off, coef):
    """``wt[k·width : (k + 1)·width] += coef·Σ_{p} vals[p]·d[who[p], d_off : d_off + width]``
    over ``p`` in ``[k·bucket, k·bucket + counts[k])``, for each row k in [k0, k1): the
    update of a weight matrix from a mini-batch whose inputs are listed column by column
    (see :func:`_update_by_columns`).

    Columns outermost, four vectors at a time: the δ of a whole mini-batch for those
    columns stays in L1 while every row is visited, the sums gather in registers (two sets,
    even and odd p) and each weight is read and written once per mini-batch.

    Twin: none (LLVM row primitive; _update_by_columns names the twin)"""
    if not (_rows_signature_ok((wt, vals, d), who) and d.ndim == 2
            and isinstance(counts, nbtypes.Array) and counts.dtype == nbtypes.int64):
        return None

    def codegen(context, builder, sig, args):
        lanes, vt, load, store, splat, fused = _row_kit(context, builder, sig.args[0].dtype)
        w_ptr, s_ptr, who_ptr, v_ptr = (
            context.make_array(sig.args[a])(context, builder, args[a]).data for a in (0, 4, 6, 7))
        d_arr = context.make_array(sig.args[8])(context, builder, args[8])
        d_ptr = d_arr.data
        item = ir.Constant(_I64, VECTOR_BYTES // lanes)
        d_stride = builder.udiv(cgutils.unpack_tuple(builder, d_arr.strides, 2)[0], item)
        width, k0, k1, bucket, d_off = (
            context.cast(builder, args[a], sig.args[a], nbtypes.int64) for a in (1, 2, 3, 5, 9))
        coef = splat(context.cast(builder, args[10], sig.args[10], sig.args[0].dtype))
        acc = [cgutils.alloca_once(builder, vt) for _ in range(8)]  # promoted to registers
        one = ir.Constant(_I64, 1)

        def add_sample(p, first_acc, n_vec, col):
            i = builder.zext(builder.load(builder.gep(who_ptr, [p])), _I64)
            x = splat(builder.load(builder.gep(v_ptr, [p])))
            start = builder.add(builder.mul(i, d_stride), builder.add(d_off, col))
            for u in range(n_vec):
                dv = load(d_ptr, builder.add(start, ir.Constant(_I64, u * lanes)))
                a = acc[first_acc + u]
                builder.store(fused(x, dv, builder.load(a)), a)

        def chunk(col, n_vec):
            with cgutils.for_range_slice(builder, k0, k1, one) as (k, _):
                p0 = builder.mul(k, bucket)
                n = builder.load(builder.gep(s_ptr, [k]))
                p1 = builder.add(p0, n)
                with builder.if_then(builder.icmp_signed(">", n, ir.Constant(_I64, 0))):
                    for a in acc:
                        builder.store(ir.Constant(vt, None), a)
                    with cgutils.for_range(builder, builder.lshr(n, one)) as loop:
                        p = builder.add(p0, builder.shl(loop.index, one))
                        add_sample(p, 0, n_vec, col)
                        add_sample(builder.add(p, one), 4, n_vec, col)
                    with builder.if_then(builder.trunc(n, ir.IntType(1))):  # odd count
                        add_sample(builder.sub(p1, one), 0, n_vec, col)
                    row = builder.add(builder.mul(k, width), col)
                    for u in range(n_vec):
                        total = builder.fadd(builder.load(acc[u]), builder.load(acc[4 + u]))
                        at = builder.add(row, ir.Constant(_I64, u * lanes))
                        store(fused(coef, total, load(w_ptr, at)), w_ptr, at)

        _over_chunks(builder, width, lanes, chunk)
        return context.get_dummy_value()

    return nbtypes.void(wt, width, k0, k1, counts, bucket, who, vals, d, d_off, coef), codegen


def _horizontal_sums(builder, vectors, lanes):
    """The lane sums of each vector, in order, as scalars. Pairs of vectors are folded
    into one (first halves of each lane group next to the second halves, then one add), so
    n sums cost about three instructions per vector rather than a shuffle tree each; a
    fixed order, so the result does not depend on the caller."""
    i32 = ir.IntType(32)

    def shuffle(a, b, picks):
        return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(i32, len(picks)),
                                                        picks))

    assert len(vectors) in (1, 2, 4, 8)
    group = lanes  # lanes per vector's partial sums
    while len(vectors) > 1 and group > 1:
        half = group // 2
        groups = lanes // group
        first = [g * group + u for g in range(groups) for u in range(half)]
        second = [g * group + half + u for g in range(groups) for u in range(half)]
        folded = []
        for a, b in zip(vectors[0::2], vectors[1::2]):
            low = shuffle(a, b, first + [lanes + x for x in first])
            high = shuffle(a, b, second + [lanes + x for x in second])
            folded.append(builder.fadd(low, high))
        vectors = folded
        group = half
    sums = []
    for v in vectors:
        width, g = lanes, group
        while g > 1:
            half = g // 2
            first = [q * g + u for q in range(width // g) for u in range(half)]
            second = [q * g + half + u for q in range(width // g) for u in range(half)]
            v = builder.fadd(shuffle(v, v, first), shuffle(v, v, second))
            width, g = width // 2, half
        sums.extend(builder.extract_element(v, ir.Constant(i32, q)) for q in range(width))
    return sums


@intrinsic
def _rows_dot_back(typingctx, deltas, wt, width, panel, n_rows, i, n_samples, d_off, p_off):
    """Back-propagation's sums ``deltas[i + s, p_off + k] = Σ_{j < width} Wt[k, j] ·
    deltas[i + s, d_off + j]`` for samples s < n_samples (1 to 4) and rows k < n_rows, the
    weights ``wt`` in panels of ``panel`` columns (see :func:`plan`: Wt[k, j] is
    ``wt[p·n_rows·panel + k·panel + j − p·panel]``, p = j // panel), added in column order
    whatever the panels. ``panel`` None: one panel (the serial twins), compiled without the
    loop over panels.

    Four samples share each pass over the weights, two rows at a time: eight sums in
    registers, each with one multiply-add per vector of the row, so the weights are loaded
    once per four samples and the multiply-adds never wait on each other; the eight
    horizontal sums are formed together at the end. Fewer samples (a mini-batch's tail) go
    one at a time, four rows at a time. ``deltas`` is 2-D and C-contiguous; the two ranges
    of a row must not overlap.

    Twin: none (LLVM row primitive; _backprop_layer names the twin)"""
    if not (_float_arrays_ok((wt, deltas)) and deltas.ndim == 2 and deltas.layout == "C"
            and wt.ndim == 1
            and isinstance(panel, (nbtypes.Integer, nbtypes.NoneType))):
        return None
    one_panel = isinstance(panel, nbtypes.NoneType)

    def codegen(context, builder, sig, args):
        lanes, vt, load, _, _, fused = _row_kit(context, builder, sig.args[0].dtype)
        d_arr = context.make_array(sig.args[0])(context, builder, args[0])
        d_ptr = d_arr.data
        w_ptr = context.make_array(sig.args[1])(context, builder, args[1]).data
        item = ir.Constant(_I64, VECTOR_BYTES // lanes)
        stride = builder.udiv(cgutils.unpack_tuple(builder, d_arr.strides, 2)[0], item)
        width, n_rows, i, n_samples, d_off, p_off = (
            context.cast(builder, args[a], sig.args[a], nbtypes.int64)
            for a in (2, 4, 5, 6, 7, 8))
        panel = width if one_panel else context.cast(builder, args[3], sig.args[3],
                                                     nbtypes.int64)
        acc = [cgutils.alloca_once(builder, vt) for _ in range(8)]  # promoted to registers
        n_panels = builder.udiv(width, panel)
        n_vec = builder.udiv(panel, ir.Constant(_I64, lanes))
        panel_size = builder.mul(n_rows, panel)

        def const(v):
            return ir.Constant(_I64, v)

        def block(k, n_k, s, n_s):
            """Rows k..k+n_k-1 times samples i+s..i+s+n_s-1 (n_k·n_s ≤ 8)."""
            for a in acc[:n_k * n_s]:
                builder.store(ir.Constant(vt, None), a)
            rows = [builder.mul(builder.add(k, const(r)), panel) for r in range(n_k)]
            samples = [builder.mul(builder.add(i, builder.add(s, const(q))), stride)
                       for q in range(n_s)]

            def vectors(count, w_base, d_base):
                with cgutils.for_range(builder, count) as loop:
                    col = builder.mul(loop.index, const(lanes))
                    w = [load(w_ptr, builder.add(w_base, builder.add(r, col))) for r in rows]
                    d = [load(d_ptr, builder.add(q, builder.add(d_base, col))) for q in samples]
                    for r in range(n_k):
                        for q in range(n_s):
                            a = acc[r * n_s + q]
                            builder.store(fused(w[r], d[q], builder.load(a)), a)

            if one_panel:
                vectors(n_vec, const(0), d_off)
                return store_sums(k, n_k, samples, n_s)
            # a loop nest costs short rows half as much again: one panel takes one loop
            with builder.if_else(builder.icmp_signed("==", n_panels, const(1))) as (one, many):
                with one:
                    vectors(n_vec, const(0), d_off)
                with many:
                    with cgutils.for_range(builder, n_panels) as outer:
                        vectors(n_vec, builder.mul(outer.index, panel_size),
                                builder.add(d_off, builder.mul(outer.index, panel)))
            store_sums(k, n_k, samples, n_s)

        def store_sums(k, n_k, samples, n_s):
            sums = _horizontal_sums(builder, [builder.load(a) for a in acc[:n_k * n_s]],
                                    lanes)
            for r in range(n_k):
                for q in range(n_s):
                    at = builder.add(samples[q], builder.add(p_off, builder.add(k, const(r))))
                    builder.store(sums[r * n_s + q], builder.gep(d_ptr, [at]))

        def rows_in_steps(s, n_k, n_s):
            whole = builder.udiv(n_rows, const(n_k))
            with cgutils.for_range(builder, whole) as loop:
                block(builder.mul(loop.index, const(n_k)), n_k, s, n_s)
            with cgutils.for_range_slice(builder, builder.mul(whole, const(n_k)), n_rows,
                                         const(1)) as (k, _):
                block(k, 1, s, n_s)

        with builder.if_else(builder.icmp_signed("==", n_samples, const(4))) as (four, fewer):
            with four:
                rows_in_steps(const(0), 2, 4)
            with fewer:
                with cgutils.for_range(builder, n_samples) as loop:
                    rows_in_steps(loop.index, 4, 1)
        return context.get_dummy_value()

    return nbtypes.void(deltas, wt, width, panel, n_rows, i, n_samples, d_off, p_off), codegen


@intrinsic
def _exp2i(typingctx, n):
    """2**n for a float ``n`` holding a whole number in the normal exponent range (built
    from its bits: a shift and a bit-cast, which vectorise, where ``ldexp`` is a call).

    Twin: none (bit-level 2**n for _exp_nonpositive)"""
    if not isinstance(n, nbtypes.Float):
        return None

    def codegen(context, builder, signature, args):
        if signature.args[0] == nbtypes.float32:
            bits, bias, shift, floating = ir.IntType(32), 127, 23, ir.FloatType()
        else:
            bits, bias, shift, floating = ir.IntType(64), 1023, 52, ir.DoubleType()
        k = builder.fptosi(args[0], bits)
        word = builder.shl(builder.add(k, ir.Constant(bits, bias)), ir.Constant(bits, shift))
        return builder.bitcast(word, floating)

    return n(n), codegen


def _exp_nonpositive(x):
    """exp(x) for x ≤ 0 (NaN stays NaN); the compiled version below vectorises."""
    return np.exp(x)


_EXP64 = [1.0 / np.prod(np.arange(1, k + 1, dtype=np.float64)) for k in range(14)]
_EXP32 = [np.float32(c) for c in _EXP64[:8]]


# Only "contract" (fused multiply-add): reassociation could undo the two-part reduction
# x − n·ln2_hi − n·ln2_lo that keeps r exact.
@overload(_exp_nonpositive, jit_options=dict(fastmath={"contract"}, error_model="numpy"))
def _exp_nonpositive_impl(x):
    """exp(x) = 2**n · e**r with n = round(x / ln 2), |r| ≤ ln2 / 2 and e**r from its Taylor
    polynomial (degree 13 for float64, 7 for float32): within 1 ulp of the libm result.
    2**n is applied in two halves so that results down to the subnormals come out right;
    below the smallest subnormal the result is 0 as in libm.

    Twin: none (libm's exp, which the oracle calls as np.exp)"""
    if x == nbtypes.float64:
        c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13 = _EXP64

        def impl(x):
            x = -745.2 if x < -745.2 else x  # a NaN fails the test and stays
            n = np.floor(x * 1.4426950408889634 + 0.5)
            r = (x - n * 0.6931471803691238) - n * 1.9082149292705877e-10
            p = ((((((c13 * r + c12) * r + c11) * r + c10) * r + c9) * r + c8) * r + c7) * r
            p = ((((((p + c6) * r + c5) * r + c4) * r + c3) * r + c2) * r + c1) * r + c0
            half = np.floor(n * 0.5)
            return p * _exp2i(half) * _exp2i(n - half)
        return impl
    if x == nbtypes.float32:
        c0, c1, c2, c3, c4, c5, c6, c7 = _EXP32
        lowest, log2e, half_ = np.float32(-104.0), np.float32(1.4426950408889634), np.float32(0.5)
        ln2_hi, ln2_lo = np.float32(0.693359375), np.float32(-2.12194440e-4)

        def impl(x):
            x = lowest if x < lowest else x
            n = np.floor(x * log2e + half_)
            r = (x - n * ln2_hi) - n * ln2_lo
            p = ((((((c7 * r + c6) * r + c5) * r + c4) * r + c3) * r + c2) * r + c1) * r + c0
            half = np.floor(n * half_)
            return p * _exp2i(half) * _exp2i(n - half)
        return impl
    return None


# -- parameters <-> working layout ---------------------------------------------------------


@njit(**_INLINE)
def _layer_params(lay):
    """Number of weights and biases (``params`` holds batch norm's γ and β after them).

    Twin: none (layout arithmetic)"""
    depth = lay.shape[1] - 1
    return lay[B_OFF, depth] + lay[SIZE, depth]


@njit(**_HELPER)
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


@njit(**_HELPER)
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


@njit(**_INLINE)
def _column_start(lay, layer, j):
    """Where unit j's weight from input 0 is in the working layout (see :func:`plan`);
    its weight from input k is ``PANEL``·k further on.

    Twin: none (layout arithmetic)"""
    n_in, width = lay[SIZE, layer - 1], lay[PANEL, layer]
    return lay[T_OFF, layer] + (j // width) * n_in * width + j % width


@njit(**_INLINE)
def _copy_tail(src, dst, n_tail):
    """Batch normalisation's γ and β: the last ``n_tail`` entries in both layouts.

    Twin: none (layout conversion)"""
    for k in range(n_tail):
        dst[dst.size - n_tail + k] = src[src.size - n_tail + k]


# -- element-wise pieces ---------------------------------------------------------------------


@njit(**_INLINE)
def _activate(v, n, code):
    """Replace the pre-activations ``v[:n]`` (one sample's layer) by activations. Sigmoid
    runs over all of ``v``, which may extend past n over padding (a row of the working
    layout: whole vectors; a padding unit's activation is never read). Over n = 30 of a
    32-wide row LLVM vectorised part of the loop and computed the rest one unit at a
    time: 131 cycles per float32 sample against 67 over the whole row (float64: 228
    against 180).

    Twin: engine.oracle.activate"""
    one = v.dtype.type(1)
    if code == SIGMOID:
        for j in range(v.size):
            # the oracle's overflow-free form: e = exp(-|z|) never exceeds 1
            e = _exp_nonpositive(-abs(v[j]))
            r = one / (one + e)
            v[j] = r if v[j] >= 0 else e * r
    elif code == TANH:
        for j in range(n):
            v[j] = np.tanh(v[j])
    elif code == RELU:
        for j in range(n):
            if v[j] < 0:  # NaN fails the test and stays NaN, as in np.maximum(z, 0)
                v[j] = 0
    elif code == SOFTMAX:
        zmax = v[0]
        for j in range(1, n):
            zmax = max(zmax, v[j])
        total = v.dtype.type(0)
        for j in range(n):
            v[j] = _exp_nonpositive(v[j] - zmax)
            total += v[j]
        inv = one / total
        for j in range(n):
            v[j] = v[j] * inv
    # IDENTITY: nothing to do


@njit(**_HELPER)
def _derivative_times(d, a, n, code):
    """d[:n] ← d ⊙ σ'(z) for an element-wise activation, σ' written through a = σ(z).

    Twin: engine.oracle.activation_prime"""
    one = d.dtype.type(1)
    if code == SIGMOID:
        for k in range(n):
            d[k] *= a[k] * (one - a[k])
    elif code == TANH:
        for k in range(n):
            d[k] *= one - a[k] * a[k]
    elif code == RELU:
        for k in range(n):
            if not a[k] > 0:
                d[k] = 0


@njit(**_HELPER)
def _softplus(x):
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|), without overflow.

    Twin: engine.oracle.softplus"""
    zero = x - x
    return max(x, zero) + np.log1p(_exp_nonpositive(-abs(x)))


@njit(**_HELPER)
def _output_delta_and_cost(a, z, label, y, output, cost, delta):
    """δ and cost of one sample. The target is the one-hot vector of ``label`` when
    ``label >= 0``, else the row ``y``. Writes δ into ``delta`` and returns the sample's
    cost.

    Twin: engine.oracle.output_delta, engine.oracle.sample_costs
    """
    n = a.size
    zero = a.dtype.type(0)
    one = a.dtype.type(1)
    half = a.dtype.type(0.5)
    c = zero
    target_sum = zero  # softmax cross-entropy: δ = a·Σy − y (a − y for one-hot targets)
    logsumexp = zero
    if cost == CROSS_ENTROPY and output == SOFTMAX:
        zmax = z[0]
        for j in range(1, n):
            zmax = max(zmax, z[j])
        total = zero
        for j in range(n):
            total += _exp_nonpositive(z[j] - zmax)
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
            _derivative_times(delta, a, n, output)
    return c


# -- the dense pieces: whole-vector loops along rows of the working layout -------------------


@njit(**_INLINE)
def _input_row(X, order, pos, i, acts, lay, layer):
    """Where sample ``i``'s input to ``layer`` is: ``(array, row, first column)`` (its row
    of X, or the previous layer's output in ``acts``).

    Twin: none (index helper)"""
    if layer == 1:
        return X, order[pos + i], 0
    return acts, i, lay[A_OFF, layer - 1]


# -- one layer, a range of samples or of rows -------------------------------------------------
# These run the hot loops. Every loop over j runs along a padded row of whole vectors; rows
# of the weights are indexed in place (a view per row would cost two atomic reference-count
# updates). They are compiled with noalias arguments: no array that one of them writes
# overlaps another of its array arguments.


@njit(**_INLINE)
def _group_inputs(layer, g, n_real, lay, X, order, pos, acts):
    """The inputs to ``layer`` of samples g..g+3; where the group has only ``n_real`` < 4
    samples, the missing ones repeat sample g's (callers give them a zero coefficient or
    discard their result).

    Twin: none (grouping helper)"""
    n_in = lay[SIZE, layer - 1]
    src, row, col = _input_row(X, order, pos, g, acts, lay, layer)
    a0 = src[row, col:col + n_in]
    a1 = a2 = a3 = a0
    if n_real > 1:
        src, row, col = _input_row(X, order, pos, g + 1, acts, lay, layer)
        a1 = src[row, col:col + n_in]
    if n_real > 2:
        src, row, col = _input_row(X, order, pos, g + 2, acts, lay, layer)
        a2 = src[row, col:col + n_in]
    if n_real > 3:
        src, row, col = _input_row(X, order, pos, g + 3, acts, lay, layer)
        a3 = src[row, col:col + n_in]
    return a0, a1, a2, a3


@njit(**_INLINE)
def _union_list(a0, a1, a2, a3, n_in, ids, at, density):
    """Indices of the inputs where any of ``a0..a3`` is non-zero (NaN included) into
    ``ids[at:]`` (8 spare entries after them), and their count; -1 when more than
    ``density`` of the inputs are listed.

    Twin: none (index lists of non-zero inputs)"""
    count = 0
    whole = n_in - n_in % 8
    for k in range(0, whole, 8):
        count += _pack8_union(a0, a1, a2, a3, k, _LEFT_PACK, ids, at + count)
    for k in range(whole, n_in):
        ids[at + count] = k  # branch-free: overwritten unless one of them is non-zero
        count += (a0[k] != 0) | (a1[k] != 0) | (a2[k] != 0) | (a3[k] != 0)
    return count if count <= density * n_in else -1


@njit(**_INLINE)
def _first_at_least(ids, count, k):
    """The first position of the ascending ``ids[:count]`` whose entry is at least ``k``
    (bisection: a thread's block of rows is a short stretch of a list).

    Twin: none (index helper)"""
    lo, hi = 0, count
    while lo < hi:
        mid = (lo + hi) >> 1
        if ids[mid] < k:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(**_INLINE)
def _group_rows(idx, nnz, all_idx, g, layer, u_off, n_in, k0, k1):
    """The rows k0..k1-1 that the group starting at sample g visits in ``layer``:
    ``(ids, lo, hi)`` with the rows ``ids[lo:hi]``, from the group's union list (made by
    the forward pass) or, for a dense group (-1), every row.

    Twin: none (grouping helper)"""
    union = nnz[g // 4, layer]
    ids = idx[g // 4, u_off:u_off + n_in]
    lo, hi = k0, k1
    if union < 0:
        ids = all_idx
    else:
        lo = _first_at_least(ids, union, k0)
        hi = _first_at_least(ids, union, k1)
    return ids, lo, hi


# The steps of :func:`_forward_layer` (bits of its ``steps``): one call does them all group
# by group; numba-parallel with weights in panels runs each as its own threaded loop.
LISTS, SUMS, FINISH = 1, 2, 4
ALL_STEPS = LISTS | SUMS | FINISH


@njit(**_HELPER_LEAF)
def _forward_layer(layer, i0, i1, p0, p1, steps, lay, work, X, order, pos, acts, z_out, idx,
                   nnz, all_idx, density, code, with_bias):
    """Samples i0..i1-1 (i0 a multiple of 4) of ``layer``, in groups of four, the
    ``steps``:

    * ``LISTS``: the union of the group's non-zero inputs, to ``idx[g // 4]`` from the
      layer's ``U_OFF``, its length to ``nnz[g // 4, layer]`` (-1 when more than
      ``density`` of the inputs are in it: then every row);
    * ``SUMS``: for the units of panels p0..p1-1 (see :func:`plan`), the pre-activations
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
            nnz[g // 4, layer] = _union_list(a0, a1, a2, a3, n_in, idx[g // 4], u_off,
                                             density)
        if steps & SUMS:
            rows, _, count = _group_rows(idx, nnz, all_idx, g, layer, u_off, n_in, 0, n_in)
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


@njit(**_HELPER_LEAF)
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


@njit(**_HELPER_LEAF)
def _update_by_samples(layer, k0, k1, p0, p1, m, coef, lay, tgt, X, order, pos, acts, deltas,
                       idx, nnz, all_idx):
    """Rows k0..k1-1 of panels p0..p1-1 of layer's transposed weights in ``tgt`` (see
    :func:`plan`): += coef·Σ_i a_i[k]·δ_i, four samples per pass over the rows (small
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
            ids, lo, hi = _group_rows(idx, nnz, all_idx, g, layer, u_off, n_in, k0, k1)
            _rows_axpy4(w_rows, width, ids, lo, hi, a0, a1, a2, a3, coef,
                        coef if n_real > 1 else zero, coef if n_real > 2 else zero,
                        coef if n_real > 3 else zero, d0, d1, d2, d3)


@njit(**_INLINE)
def _list_in_column(k, i, v, m, col_count, col_who, col_val):
    """Append sample ``i``'s input ``v`` to column k's list, if it is non-zero (NaN counts
    as non-zero: it must propagate).

    Twin: none (index lists of non-zero inputs)"""
    p = k * m + col_count[k]
    col_who[p] = i  # branch-free: overwritten unless v is kept
    col_val[p] = v
    col_count[k] += v != 0


@njit(**_HELPER_LEAF)
def _update_by_columns(layer, k0, k1, m, coef, lay, tgt, X, order, pos, acts, deltas, idx,
                       nnz, all_idx, col_count, col_who, col_val):
    """Rows k0..k1-1 of layer's transposed weights in ``tgt``: += coef·Σ_i a_i[k]·δ_i,
    each weight's sum gathered in registers (large mini-batches and layers: see
    :func:`_update_layer`).

    First lists the mini-batch's non-zero inputs k0..k1-1 column by column: input k's are
    the ``col_count[k]`` entries from ``k·m`` of ``col_who`` (the sample, ascending) and
    ``col_val`` (the value), taken on the rows of each group's union list (or all rows).
    Each element sums the samples in the same order whatever the row range, so splitting
    rows over threads changes no result. Every panel (see :func:`plan`) in turn.

    Twin: engine.oracle.gradients, engine.oracle.update_mini_batch"""
    n_in, pad, width = lay[SIZE, layer - 1], lay[PAD, layer], lay[PANEL, layer]
    t_off, a_off, u_off = lay[T_OFF, layer], lay[A_OFF, layer], lay[U_OFF, layer]
    for k in range(k0, k1):
        col_count[k] = 0
    for g in range(0, m, 4):
        n_real = min(4, m - g)
        a0, a1, a2, a3 = _group_inputs(layer, g, n_real, lay, X, order, pos, acts)
        ids, lo, hi = _group_rows(idx, nnz, all_idx, g, layer, u_off, n_in, k0, k1)
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
                  deltas, idx, nnz, all_idx, col_count, col_who, col_val, with_bias):
    """Rows k0..k1-1 of panels p0..p1-1 (see :func:`plan`) of layer's transposed weights in
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
    if _WIDE:  # a compile-time constant: see _variant
        if by_columns:
            _update_by_columns(layer, k0, k1, m, coef, lay, tgt, X, order, pos, acts, deltas,
                               idx, nnz, all_idx, col_count, col_who, col_val)
            return
    _update_by_samples(layer, k0, k1, p0, p1, m, coef, lay, tgt, X, order, pos, acts, deltas,
                       idx, nnz, all_idx)


@njit(**_INLINE)
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


# -- training features: dropout, batch normalisation, optimisers ------------------------------
# O(batch × units) or O(parameters) work per mini-batch, serial in both twins.


@njit(**_INLINE)
def _mask_column(lay, layer):
    """First column of hidden ``layer``'s units in a dropout mask row (hidden layers in
    order, unpadded).

    Twin: none (index helper)"""
    col = 0
    for q in range(1, layer):
        col += lay[SIZE, q]
    return col


@njit(**_HELPER)
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


@njit(**_HELPER)
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


@njit(**_HELPER)
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


@njit(**_HELPER)
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


@njit(**_HELPER)
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


@njit(**_HELPER)
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


@njit(**_HELPER)
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


@njit(**_HELPER)
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


@njit(**_HELPER)
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


@njit(**_HELPER)
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


@njit(**_HELPER)
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


@njit(**_HELPER)
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


@njit(**_HELPER)
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


# -- the kernels ---------------------------------------------------------------------------------


def train_batches(params, grads, lay, cost, X, labels, targets, sample_weight, order,
                  start, stop, batch_size, lr, work, gwork, acts, z_out, deltas, idx, nnz,
                  sample_cost, col_count, col_who, col_val, all_idx, density,
                  parallel_work, row_block, column_batch, wide_pad,
                  opt_code, hyper, opt_state, opt_work, opt_step, drop_mask, drop_scale,
                  pre_drop, bn_running, bn_zhat, bn_inv_std):
    """Run the mini-batches ``order[start:stop]`` (in steps of ``batch_size``), in place.

    Layout contract: ``lay`` from :func:`plan` (its ``ACT`` row: each layer's activation,
    the output layer's with ``cost`` for δ^L); ``X`` (n, n_in) and ``targets`` (n, n_out)
    or (0, n_out) in the params' dtype; ``labels`` int64 (n,) or (0,) (class labels are
    used when non-empty); ``order`` int64 row indices; ``grads`` like ``params``. Scratch:
    ``work`` and ``gwork`` (work_size,), ``acts`` and ``deltas`` (batch_size, act_width),
    ``z_out`` (batch_size, P_L), ``idx`` uint32 (groups, idx_width) and ``nnz`` int64
    (groups, L + 1) with groups = ⌈batch_size / 4⌉ (see :func:`_forward_layer`),
    ``sample_cost`` (batch_size,), ``col_count`` int64 (n_in) and ``col_who`` uint32 and
    ``col_val`` (batch_size · n_in), n_in the largest input width of a layer that takes
    the column path (see :func:`column_inputs`; may be empty), ``all_idx`` uint32
    ``arange(max(sizes))``. None of these arrays may overlap.
    ``start`` must be a multiple of batch_size within the epoch so that chunked calls form
    the same batches as one call.
    ``density``: see the module docstring; ``parallel_work``: multiply-adds from which a
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
    if _FEATURES:  # a compile-time constant: see _compile
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
                                       pos, acts, z_out, idx, nnz, all_idx, density, code,
                                       with_bias)
            else:
                _forward_layer(layer, i_0, m, i_0, panels, all_steps, lay, work, X, order, pos,
                               acts, z_out, idx, nnz, all_idx, density, code, with_bias)
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
                                  X, order, pos, acts, deltas, idx, nnz, all_idx, col_count,
                                  col_who, col_val, with_bias)
            else:
                _update_layer(by_columns, layer, i_0, n_in, i_0, panels, m, coef, lay, tgt, X,
                              order, pos, acts, deltas, idx, nnz, all_idx, col_count, col_who,
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


def forward_rows(params, lay, X, out_a, out_z, work, rows, acts, z_out, idx, nnz, suspicious,
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
    ``z_out`` (slots, block, P_L), ``idx`` uint32 (slots, groups, idx_width) and ``nnz``
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
                    work, X, rows, lo, acts[s], z_out[s], idx[s], nnz[s], all_idx, density,
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


def _variant(func, suffix, options, **constants):
    """``func`` compiled with ``options``, with the module globals ``constants`` replaced
    (compile-time constants: Numba drops the branches they switch off before typing
    them), under its own name ``func.__name__ + suffix``: Numba's on-disk cache is keyed
    by the function's qualified name and signature, not by its globals or flags."""
    namespace = dict(func.__globals__, **constants)
    twin = types.FunctionType(func.__code__, namespace, func.__name__ + suffix,
                              func.__defaults__, func.__closure__)
    twin.__qualname__ = func.__qualname__ + suffix
    twin.__doc__ = func.__doc__
    return njit(**options)(twin)


# Narrow and wide variants of the update step. The column update (the mini-batch's sums
# gathered per weight) pays only for layers of at least config.COLUMN_UPDATE_MIN_ROW_BYTES;
# a network without such a layer (the seeds' [784, 30, 10]) runs kernels compiled without
# it, so its first fit does not pay for its compilation (about 0.6 s).
_STEPS = {wide: dict(_update_layer=_variant(_update_layer, "_" + name, _INLINE, _WIDE=wide))
          for wide, name in ((False, "narrow"), (True, "wide"))}


def _at_opt_level(dispatcher):
    """``dispatcher``, made to compile new specialisations (and the helpers they call for
    the first time) with LLVM at ``config.COMPILE_OPT_LEVEL`` instead of Numba's process-wide
    ``NUMBA_OPT``, unless the user has set that variable. Numba reads its level each time it
    builds a pass manager, so the level is switched around the compilation alone, under
    Numba's compiler lock: other code compiled in the process keeps its own level."""
    compile_for_args = getattr(dispatcher, "_compile_for_args", None)  # on new types
    if compile_for_args is None:  # another Numba: its own level, nothing else changes
        return dispatcher
    opt_level = getattr(numba_config, "_OptLevel", int)

    def compile_at_level(*args, **kws):
        if "NUMBA_OPT" in os.environ:
            return compile_for_args(*args, **kws)
        with global_compiler_lock:
            saved = numba_config.OPT
            numba_config.OPT = opt_level(config.COMPILE_OPT_LEVEL)
            try:
                return compile_for_args(*args, **kws)
            finally:
                numba_config.OPT = saved

    dispatcher._compile_for_args = compile_at_level
    return dispatcher


def _compile(func, parallel, features=True, wide=False):
    """Compile ``func`` serially or with ``parallel=True``, each with its own cache entry;
    ``features=False`` compiles it without the training features (the global ``_FEATURES``
    is a compile-time constant); ``wide`` calls the wide variant of the update step."""
    suffix = (("_parallel" if parallel else "_serial") + ("" if features else "_plain")
              + ("_wide" if wide else ""))
    # No reference counting (the kernels allocate nothing; the caller keeps every array
    # alive) and no cfunc wrapper (they are only called from Python): less to compile.
    return _at_opt_level(_variant(func, suffix, dict(_JIT, parallel=parallel,
                                                     no_cfunc_wrapper=True, _nrt=False),
                                  _FEATURES=features, _PANELS=parallel, **_STEPS[wide]))


# The seeds' SGD (with or without progress chunks) runs the plain twins: the optimiser, L2,
# dropout and batch-norm code costs about 6 s of compilation that a default fit never needs.
# Each twin compiles on its first call only.
TRAIN = {(parallel, features, wide): _compile(train_batches, parallel, features, wide)
         for parallel in (False, True) for features in (False, True) for wide in (False, True)}
FORWARD = {parallel: _compile(forward_rows, parallel) for parallel in (False, True)}

"""Explicit vector loops over weight rows, written in LLVM IR with whole vector registers.

The loops that run once per (group of four samples, input unit): a row of weights into
the samples' sums (forward pass) and the row's share of the update, and the loop over
weight rows of back-propagation. LLVM vectorises the plain loops, but over a runtime row
length: every row then pays for trip-count checks and remainders, and the sums go through
memory between rows. Written here with whole vector registers, the sums stay in registers
over all rows and a row costs little more than its loads, FMAs and stores (about 1.5x
faster per row, measured on [784, 30, 10]'s rows). Contract for all: the
arrays are contiguous 1-D (or a contiguous row) of one float dtype, ``ids`` uint32, and
the row width a multiple of one vector (VECTOR_BYTES: working_layout() pads rows to that).
"""

from llvmlite import ir
from numba import types as nbtypes
from numba.core import cgutils
from numba.extending import intrinsic

from .vectors import (_GROUP_VECTORS, _I64, VECTOR_BYTES, _float_arrays_ok, _horizontal_sums,
                      _over_chunks, _row_kit, _rows_signature_ok)


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


@intrinsic
def _rows_dot_back(typingctx, deltas, wt, width, panel, n_rows, i, n_samples, d_off, p_off):
    """Back-propagation's sums ``deltas[i + s, p_off + k] = Σ_{j < width} Wt[k, j] ·
    deltas[i + s, d_off + j]`` for samples s < n_samples (1 to 4) and rows k < n_rows, the
    weights ``wt`` in panels of ``panel`` columns (see :func:`working_layout`: Wt[k, j] is
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

"""LLVM building blocks of the row primitives (:mod:`.rows`): the width of the CPU's
vector registers, a kit of vector loads, stores and multiply-adds, a row cut into chunks of
whole vectors, horizontal sums, and the left-pack that lists a group's non-zero inputs
eight at a time (:func:`_pack8_union`)."""

import numpy as np
from llvmlite import ir
from numba import types as nbtypes
from numba.core import cgutils, config as numba_config
from numba.core.codegen import get_host_cpu_features
from numba.extending import intrinsic


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

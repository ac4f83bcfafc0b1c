"""Element-wise maths: a vectorisable exp, the activations and their derivatives, and one
sample's output error δ and cost."""

import numpy as np
from llvmlite import ir
from numba import types as nbtypes
from numba.extending import intrinsic, overload

from ..codes import CROSS_ENTROPY, RELU, SIGMOID, SOFTMAX, TANH
from .cache import jit
from .options import _HELPER, _INLINE


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


# -- element-wise pieces ---------------------------------------------------------------------


@jit(**_INLINE)
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


@jit(**_HELPER)
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


@jit(**_HELPER)
def _softplus(x):
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|), without overflow.

    Twin: engine.oracle.softplus"""
    zero = x - x
    return max(x, zero) + np.log1p(_exp_nonpositive(-abs(x)))


@jit(**_HELPER)
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

"""Groups of four samples: where their inputs are, the union of their non-zero inputs
(see "Groups of four samples and sparse inputs" in the package's docstring), the rows a
group visits, and the column lists of the update that sums per weight."""

from .cache import jit
from .layout import A_OFF, SIZE
from .options import _INLINE
from .vectors import _LEFT_PACK, _pack8_union


@jit(**_INLINE)
def _input_row(X, order, pos, i, acts, lay, layer):
    """Where sample ``i``'s input to ``layer`` is: ``(array, row, first column)`` (its row
    of X, or the previous layer's output in ``acts``).

    Twin: none (index helper)"""
    if layer == 1:
        return X, order[pos + i], 0
    return acts, i, lay[A_OFF, layer - 1]


@jit(**_INLINE)
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


@jit(**_INLINE)
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


@jit(**_INLINE)
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


@jit(**_INLINE)
def _group_rows(idx, union_len, all_idx, g, layer, u_off, n_in, k0, k1):
    """The rows k0..k1-1 that the group starting at sample g visits in ``layer``:
    ``(ids, lo, hi)`` with the rows ``ids[lo:hi]``, from the group's union list (made by
    the forward pass) or, for a dense group (-1), every row.

    Twin: none (grouping helper)"""
    union = union_len[g // 4, layer]
    ids = idx[g // 4, u_off:u_off + n_in]
    lo, hi = k0, k1
    if union < 0:
        ids = all_idx
    else:
        lo = _first_at_least(ids, union, k0)
        hi = _first_at_least(ids, union, k1)
    return ids, lo, hi


@jit(**_INLINE)
def _list_in_column(k, i, v, m, col_count, col_who, col_val):
    """Append sample ``i``'s input ``v`` to column k's list, if it is non-zero (NaN counts
    as non-zero: it must propagate).

    Twin: none (index lists of non-zero inputs)"""
    p = k * m + col_count[k]
    col_who[p] = i  # branch-free: overwritten unless v is kept
    col_val[p] = v
    col_count[k] += v != 0

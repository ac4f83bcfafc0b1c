"""The Numba options every compiled function of the package takes, named once.

Each is a dict of ``njit`` keywords, given to :func:`.cache.jit` (which puts the package's
disk cache in place of ``cache=True``'s own). Fixed when this module is imported: the
``fastmath`` flags come from ``config.FASTMATH``.
"""

from engine import config


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

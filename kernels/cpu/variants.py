"""Compilation: each kernel compiled serially and in parallel, with and without the
training features, narrow and wide (see "Serial and parallel twins" and "Narrow and wide
variants" in the package's docstring), each variant under its own name and cache entry and
at ``config.COMPILE_OPT_LEVEL``."""

import os
import types

from numba.core import config as numba_config
from numba.core.compiler_lock import global_compiler_lock

from engine import config

from .cache import jit
from .epoch import train_batches
from .layers import _update_layer
from .options import _INLINE, _JIT
from .predict import forward_rows


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
    return jit(**options)(twin)


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

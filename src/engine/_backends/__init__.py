"""Execution targets behind :class:`engine.Network`: the :class:`Backend` protocol and the
factory, :func:`create`. One module per backend: :mod:`.numpy` (the oracle), :mod:`.numba`
(the compiled CPU kernels, serial and parallel) and :mod:`.cuda` (the GPU kernels).

A backend trains a range of mini-batches in place on the network's flat parameter array and
feeds batches forward. The network owns the parameters (and the optimiser's memory and
batch-norm statistics, :mod:`engine.state`); backends own only scratch space.
"""

from .protocol import FEATURES, NAMES, Backend, one_hot  # noqa: F401  (the package's API)


def create(name):
    """A new backend object for ``name`` (one of :data:`NAMES`)."""
    if name == "numpy":
        from .numpy import NumpyBackend

        return NumpyBackend()
    if name in ("numba", "numba-parallel"):
        # The kernels module loads on first use, so that `import engine` stays quick.
        from .numba import NumbaBackend

        return NumbaBackend(parallel=name == "numba-parallel")
    if name == "cuda":
        from .cuda import CudaBackend  # needs numba-cuda and a GPU or the simulator

        return CudaBackend()
    raise ValueError(f"backend must be one of {list(NAMES)}; got {name!r}")


def available():
    """Which backends can run here: ``{name: True or a reason string}``."""
    from .cuda import availability  # imports numba.cuda only when asked

    return {"numpy": True, "numba": True, "numba-parallel": True, "cuda": availability()}

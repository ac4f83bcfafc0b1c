"""engine: train fully connected neural networks fast, with Numba, checked against NumPy.

>>> import engine
>>> net = engine.Network([784, 30, 10])          # Nielsen's network
>>> history = net.fit(X, y, epochs=30, batch_size=10, lr=3.0)  # doctest: +SKIP

Keras' workflow: ``engine.Sequential`` with ``engine.layers`` and ``engine.optimizers``.
"""

from . import layers, optimizers
from .errors import DivergenceError
from .io import load
from .network import Network
from .sequential import Sequential

__version__ = "0.1.0"


def backends():
    """Which backends can run here: ``{name: True or a reason string}``."""
    from .cuda_backend import availability  # imports numba.cuda only when asked

    return {"numpy": True, "numba": True, "numba-parallel": True, "cuda": availability()}


__all__ = ["Network", "Sequential", "DivergenceError", "backends", "layers", "load",
           "optimizers", "__version__"]

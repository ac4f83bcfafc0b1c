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


def __getattr__(name):
    # The scikit-learn estimators load scikit-learn (and SciPy) on first use, so that
    # `import engine` stays quick for code that never touches them.
    if name in ("MLPClassifier", "MLPRegressor"):
        from . import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


__all__ = ["Network", "Sequential", "DivergenceError", "MLPClassifier", "MLPRegressor",
           "backends", "layers", "load", "optimizers", "__version__"]

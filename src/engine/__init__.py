"""engine: train fully connected neural networks fast, with Numba, checked against NumPy.

>>> import engine
>>> net = engine.Network([784, 30, 10])          # Nielsen's network
>>> history = net.fit(X, y, epochs=30, batch_size=10, lr=3.0)  # doctest: +SKIP

Keras' workflow: ``engine.Sequential`` with ``engine.layers`` and ``engine.optimizers``.
"""

from . import layers, optimizers
from ._backends import available as backends
from ._version import __version__
from .errors import DivergenceError
from .loading import load
from .network import Network
from .sequential import Sequential


def __getattr__(name):
    # The scikit-learn estimators load scikit-learn (and SciPy) on first use, so that
    # `import engine` stays quick for code that never touches them.
    if name in ("MLPClassifier", "MLPRegressor"):
        from . import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


__all__ = ["Network", "Sequential", "DivergenceError", "MLPClassifier", "MLPRegressor",
           "backends", "layers", "load", "optimizers", "__version__"]

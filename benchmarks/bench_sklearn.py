"""asv suite: ``engine.MLPClassifier`` with scikit-learn's defaults, ``fit`` and ``predict``.

Each ``setup`` fits once on a few hundred rows first, so Numba compiles (or loads its
cache) before anything is timed. ``compare.py``'s drop-in row times the same estimator
against scikit-learn's on 48,000 images.
"""

import warnings

import engine

from .common import images

ROWS = 10_000


class TimeMLPClassifier:
    """``engine.MLPClassifier()`` ([784, 100, 10] ReLU, Adam, batch 200): one epoch of
    ``fit`` on 10,000 MNIST images (``max_iter=1``), and ``predict`` of them."""

    params = (["numba", "numba-parallel"], ["float32", "float64"])
    param_names = ["backend", "dtype"]
    timeout = 600
    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0

    def setup(self, backend, dtype):
        from sklearn.exceptions import ConvergenceWarning

        self.X, self.y, _ = images(ROWS, dtype)
        self.model = engine.MLPClassifier(max_iter=1, backend=backend, random_state=0)
        warnings.simplefilter("ignore", ConvergenceWarning)  # one epoch never converges
        self.model.fit(self.X[:400], self.y[:400])

    def time_fit(self, backend, dtype):
        self.model.fit(self.X, self.y)

    def time_predict(self, backend, dtype):
        self.model.predict(self.X)

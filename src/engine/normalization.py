"""Column scaling learned from training data, kept with the model.

A :class:`Normalization` attached to a network (``net.normalization = ...``) makes the array
API take raw rows: :meth:`~engine.Network.fit`, :meth:`~engine.Network.predict_proba`,
:meth:`~engine.Network.predict` and :meth:`~engine.Network.score` scale inputs (and regression
targets) on the way in, and :meth:`~engine.Network.predict` maps regression outputs back to
the targets' units. :func:`engine.io.save` stores the statistics in the model file, so a
loaded model predicts correctly on new raw rows. Nielsen's API (``feedforward``, ``backprop``,
``SGD``, ``evaluate``) works on the network's own scale and never applies it.
"""

import numpy as np

from . import _validation as check


class Normalization:
    """Affine scaling per column: ``x' = (x − mean) / scale`` (and likewise for targets).

    Parameters
    ----------
    mean, scale : array, shape (n_features,)
        Statistics of the training inputs. ``scale`` must be finite and non-zero.
    target_mean, target_scale : array, shape (n_targets,), optional
        Statistics of regression targets; ``None`` leaves targets (e.g. class labels) alone.

    Examples
    --------
    >>> X = np.array([[0.0, 10.0], [2.0, 30.0]])
    >>> norm = Normalization.from_data(X)
    >>> norm.transform(X)
    array([[-0.5, -0.5],
           [ 0.5,  0.5]])
    """

    def __init__(self, mean, scale, target_mean=None, target_scale=None):
        self.mean, self.scale = _pair("mean", mean, "scale", scale)
        if (target_mean is None) != (target_scale is None):
            raise ValueError("target_mean and target_scale must be given together")
        if target_mean is None:
            self.target_mean = self.target_scale = None
        else:
            self.target_mean, self.target_scale = _pair("target_mean", target_mean,
                                                        "target_scale", target_scale)

    @classmethod
    def from_data(cls, X, y=None):
        """Statistics as the NumPy regression course computes them: ``mean`` and
        ``max − min`` of each column of the training data.

        Parameters
        ----------
        X : array, shape (n_samples, n_features)
        y : array, shape (n_samples,) or (n_samples, n_targets), optional
            Regression targets to scale as well. Leave out for class labels.

        A constant column has range 0; its scale is set to 1 so it maps to 0 rather than
        dividing by zero.
        """
        X = _rows("X", X)
        stats = [X.mean(axis=0), _range(X)]
        if y is not None:
            Y = _rows("y", y)
            if Y.shape[0] != X.shape[0]:
                raise ValueError(f"y has {Y.shape[0]} samples but X has {X.shape[0]}")
            stats += [Y.mean(axis=0), _range(Y)]
        return cls(*stats)

    @property
    def n_features(self):
        return self.mean.size

    @property
    def n_targets(self):
        return None if self.target_mean is None else self.target_mean.size

    def transform(self, X):
        """Scale raw input rows; returns a new float64 array."""
        X = check.features(X, self.n_features, np.float64)
        return (X - self.mean) / self.scale

    def transform_targets(self, y):
        """Scale raw regression targets (same shape back); class labels pass through."""
        if self.target_mean is None:
            return y
        Y = check._numeric_array("y", y).astype(np.float64, copy=False)
        if Y.ndim == 1 and self.n_targets == 1:
            return (Y - self.target_mean[0]) / self.target_scale[0]
        return (Y - self.target_mean) / self.target_scale

    def inverse_targets(self, out):
        """Map network outputs back to the targets' units."""
        if self.target_mean is None:
            return out
        if out.ndim == 1 and self.n_targets == 1:
            return out * self.target_scale[0] + self.target_mean[0]
        return out * self.target_scale + self.target_mean

    def arrays(self):
        """The statistics by name (the fields :func:`engine.io.save` stores)."""
        names = ["mean", "scale"] + (["target_mean", "target_scale"]
                                     if self.target_mean is not None else [])
        return {name: getattr(self, name) for name in names}

    def __eq__(self, other):
        if not isinstance(other, Normalization):
            return NotImplemented
        mine, theirs = self.arrays(), other.arrays()
        return mine.keys() == theirs.keys() and all(
            np.array_equal(mine[k], theirs[k]) for k in mine)

    def __repr__(self):
        targets = "" if self.target_mean is None else f", n_targets={self.n_targets}"
        return f"Normalization(n_features={self.n_features}{targets})"


def _rows(name, value):
    arr = check._numeric_array(name, value).astype(np.float64, copy=False)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array of rows; got shape {arr.shape}")
    if check.count_nonfinite(arr):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _range(A):
    spread = A.max(axis=0) - A.min(axis=0)
    return np.where(spread == 0, 1.0, spread)


def _pair(mean_name, mean, scale_name, scale):
    m = check._numeric_array(mean_name, mean).astype(np.float64)
    s = check._numeric_array(scale_name, scale).astype(np.float64)
    if m.ndim != 1 or m.size == 0 or s.shape != m.shape:
        raise ValueError(f"{mean_name} and {scale_name} must be 1-D arrays of the same "
                         f"non-zero length; got shapes {m.shape} and {s.shape}")
    if check.count_nonfinite(m) or check.count_nonfinite(s) or not np.all(s != 0):
        raise ValueError(f"{mean_name} must be finite and {scale_name} finite and non-zero")
    return m, s

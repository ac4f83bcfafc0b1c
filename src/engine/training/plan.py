"""What a backend needs for one call: the :class:`Plan` (plain arrays and integer codes)."""

import numpy as np

from ..kernels import codes
from ..state import default_hyper


class Plan:
    """Everything a backend's ``train`` needs beyond the data and the network.

    Attributes
    ----------
    optimizer : str
        Name in :data:`OPTIMIZERS`; ``code`` is its integer code for the kernels.
    hyper : float64 array, shape (codes.N_HYPER,)
        Hyper-parameters at the positions ``codes.H_*`` (μ, β1, β2, ε, ρ, λ/n, batch-norm
        momentum and ε).
    dropout : float array, shape (depth,)
        Dropout rate per weight layer's output (the last, the output layer, is 0).
    mask : uint8 array (rows, hidden units) or None
        Keep (1) / drop (0) for each sample of the current call (rows follow
        ``order[start:stop]``) and each hidden unit (columns: hidden layers in order).
        Drawn by :meth:`draw_mask` from the network's generator before each backend call,
        so every backend sees the same masks.
    sample_weight : array (n_samples,) of the network's dtype, or None
        Weight of each row of the training data (indexed like ``X``, not like the
        order): it multiplies the sample's cost and gradient. ``hyper[codes.H_WEIGHT_TOTAL]``
        says what a mini-batch's weighted sums are divided by.
    """

    def __init__(self, net, optimizer="sgd", hyper=None, dropout=None):
        self.optimizer = optimizer
        self.code = codes.OPTIMIZERS[optimizer]
        self.hyper = default_hyper() if hyper is None else hyper
        depth = len(net.sizes) - 1
        self.dropout = np.zeros(depth) if dropout is None else np.asarray(dropout, float)
        self.drop_scale = np.array([1.0 / (1.0 - p) for p in self.dropout], dtype=net.dtype)
        self._column_rates = np.concatenate(
            [np.full(n, p) for n, p in zip(net.sizes[1:-1], self.dropout[:-1])] or [[]])
        self.mask = None
        self.lr = None
        self.sample_weight = None

    @property
    def uses_dropout(self):
        return bool(np.any(self.dropout > 0))

    def draw_mask(self, rng, rows):
        """Draw the keep mask for the next ``rows`` samples: unit kept when u ≥ p,
        u ~ U[0, 1) (probability 1 − p). Drawing in chunks consumes the generator exactly
        as one draw of all rows would, so chunked epochs see the same masks."""
        if not self.uses_dropout:
            self.mask = None
        else:
            self.mask = (rng.random((rows, self._column_rates.size))
                         >= self._column_rates).astype(np.uint8)
        return self.mask

    def features(self):
        """Names of the non-default features this plan asks of a backend."""
        used = set()
        if self.optimizer != "sgd":
            used.add("optimizer")
        if self.hyper[codes.H_WEIGHT_DECAY]:
            used.add("l2")
        if self.uses_dropout:
            used.add("dropout")
        if self.sample_weight is not None:
            used.add("sample_weight")
        if self.hyper[codes.H_L2_BATCH] or self.hyper[codes.H_COST_SCALE] != 1:
            used.add("batch_rules")
        return used

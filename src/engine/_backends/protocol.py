"""The backend protocol: what the network, the training loop and the front ends ask of a
backend, and what every backend shares."""

import contextlib

import numpy as np

# What a backend may support beyond Nielsen's plain SGD: "optimizer", "l2", "dropout",
# "batch_norm", "sample_weight" and "batch_rules" (scikit-learn's per-batch L2 and cost
# scale, see kernels/codes.py). The training loop refuses what a backend lacks, by name.
FEATURES = ("optimizer", "l2", "dropout", "batch_norm", "sample_weight", "batch_rules")

NAMES = ("numpy", "numba", "numba-parallel", "cuda")


class Backend:
    """What the network, the training loop and the front ends ask of a backend.

    Attributes
    ----------
    name : str
        The name ``Network(backend=...)`` takes.
    features : tuple of str
        The :data:`FEATURES` it implements.
    full_batch_gradient : bool
        Whether :meth:`loss_gradient` is implemented (``solver="lbfgs"`` needs it).
    flags_nonfinite : bool
        Whether :meth:`forward` counts rows whose first-layer pre-activations are not finite;
        the network then skips its own pass over the inputs and looks only when one is.
    """

    name = None
    features = ()
    full_batch_gradient = False
    flags_nonfinite = False

    def fit_scope(self, X, labels, targets):
        """A context the epoch loop enters around all epochs of one fit: a backend may
        keep the fit's data where it computes (the CUDA one uploads it once)."""
        return contextlib.nullcontext()

    def train(self, net, X, labels, targets, order, start, stop, batch_size, lr, plan=None):
        """Train on the mini-batches of rows ``order[start:stop]`` in place on the network's
        state; returns the summed cost of their samples (each taken before its mini-batch's
        update). ``plan``: an :class:`engine.training.Plan`, or None for Nielsen's plain SGD
        without touching the optimiser's memory. ``lr == 0`` computes the summed gradients
        without updating."""
        raise NotImplementedError

    def forward(self, net, X):
        """Prediction mode: ``(a, z, suspicious)``, the output layer's activations and
        pre-activations for rows ``X``, and (where :attr:`flags_nonfinite`) how many rows
        had a non-finite first-layer pre-activation, else None."""
        raise NotImplementedError

    def gradient(self, net, X, labels, targets):
        """The summed gradient of the cost of rows ``X``, as ``(nabla_b, nabla_w)`` lists."""
        raise NotImplementedError

    def loss_gradient(self, net, X, labels, targets, plan):
        """The cost of all of ``X`` as one mini-batch under ``plan``'s rules, and its
        gradient laid out like the parameters (L-BFGS's objective)."""
        raise ValueError(f"backend={self.name!r} does not compute full-batch gradients "
                         f"(solver='lbfgs'); use 'numba', 'numba-parallel' or 'numpy'")


def one_hot(labels, n_out, dtype):
    rows = np.zeros((labels.size, n_out), dtype=dtype)
    rows[np.arange(labels.size), labels] = 1
    return rows

"""Execution targets behind :class:`engine.Network`: one small class per backend.

A backend trains a range of mini-batches in place on the network's flat parameter array and
feeds batches forward. The network owns the parameters; backends own only scratch space.
"""

import numpy as np

from . import config, oracle


def one_hot(labels, n_out, dtype):
    rows = np.zeros((labels.size, n_out), dtype=dtype)
    rows[np.arange(labels.size), labels] = 1
    return rows


class NumpyBackend:
    """The oracle itself, as a backend: readable, vectorised per mini-batch, not compiled."""

    name = "numpy"

    def train(self, net, X, labels, targets, order, start, stop, batch_size, lr):
        Y = one_hot(labels, net.sizes[-1], X.dtype) if labels.size else targets
        # Overflow while diverging is reported by the network as a DivergenceError.
        with np.errstate(over="ignore", invalid="ignore"):
            return oracle.train_epoch(net._weight_views, net._bias_views, X, Y,
                                      order[start:stop], batch_size, lr,
                                      net.activation, net.output, net.cost)

    def forward(self, net, X):
        return oracle.feedforward(net._weight_views, net._bias_views, X,
                                  net.activation, net.output)

    def gradient(self, net, X, labels, targets):
        Y = one_hot(labels, net.sizes[-1], X.dtype) if labels.size else targets
        nabla_b, nabla_w, _ = oracle.backprop(net._weight_views, net._bias_views, X, Y,
                                              net.activation, net.output, net.cost)
        return nabla_b, nabla_w


class NumbaBackend:
    """Compiled CPU kernels; ``parallel=True`` uses the ``prange`` twins."""

    def __init__(self, parallel=False):
        # Imported here so that `import engine` does not pay for loading the kernels module
        # until a compiled backend is first used.
        from .kernels import cpu

        self.parallel = parallel
        self.name = "numba-parallel" if parallel else "numba"
        self._train = cpu.train_batches_parallel if parallel else cpu.train_batches_serial
        self._forward = cpu.forward_rows_parallel if parallel else cpu.forward_rows_serial
        self._scratch_key = None

    def _scratch(self, net, batch_size):
        key = (batch_size, tuple(net.sizes), net.dtype)
        if key != self._scratch_key:
            width = int(net._a_off[-1]) + net.sizes[-1]
            widest = max(net.sizes)
            self._buffers = (
                np.empty_like(net._params),                       # grads
                np.empty((batch_size, width), net.dtype),         # acts
                np.empty((batch_size, net.sizes[-1]), net.dtype),  # z_out
                np.empty((batch_size, widest), net.dtype),        # delta_a
                np.empty((batch_size, widest), net.dtype),        # delta_b
                np.empty(batch_size, net.dtype),                  # sample_cost
            )
            self._scratch_key = key
        return self._buffers

    def train(self, net, X, labels, targets, order, start, stop, batch_size, lr):
        grads, acts, z_out, delta_a, delta_b, sample_cost = self._scratch(net, batch_size)
        return self._train(net._params, grads, net._sizes, net._w_off, net._b_off, net._a_off,
                           net._codes[0], net._codes[1], net._codes[2],
                           X, labels, targets, order, start, stop, batch_size, float(lr),
                           acts, z_out, delta_a, delta_b, sample_cost)

    def forward(self, net, X):
        n_out = net.sizes[-1]
        out_a = np.empty((X.shape[0], n_out), net.dtype)
        out_z = np.empty((X.shape[0], n_out), net.dtype)
        self._forward(net._params, net._sizes, net._w_off, net._b_off, net._a_off,
                      net._codes[0], net._codes[1], X, out_a, out_z, config.PREDICT_BLOCK_ROWS)
        return out_a, out_z

    def gradient(self, net, X, labels, targets):
        # lr = 0 makes the training kernel compute the summed gradients without updating.
        order = np.arange(X.shape[0], dtype=np.int64)
        self.train(net, X, labels, targets, order, 0, X.shape[0], X.shape[0], 0.0)
        grads = self._buffers[0]
        return net._unflatten(grads)


def _cuda_backend():
    from .cuda_backend import CudaBackend  # optional: needs numba-cuda and a GPU or the simulator
    return CudaBackend()


FACTORIES = {
    "numpy": NumpyBackend,
    "numba": lambda: NumbaBackend(parallel=False),
    "numba-parallel": lambda: NumbaBackend(parallel=True),
}


def create(name):
    if name == "cuda":
        return _cuda_backend()
    return FACTORIES[name]()


NAMES = ("numpy", "numba", "numba-parallel", "cuda")

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
        from numba import get_num_threads

        from .kernels import cpu

        self._cpu = cpu
        self._threads = get_num_threads
        self.parallel = parallel
        self.name = "numba-parallel" if parallel else "numba"
        self._train = cpu.train_batches_parallel if parallel else cpu.train_batches_serial
        self._forward = cpu.forward_rows_parallel if parallel else cpu.forward_rows_serial
        self._plan_key = None
        self._scratch_key = None

    def _plan(self, net):
        """The kernels' working layout for this network (cached per shape and dtype)."""
        key = (tuple(net.sizes), net.dtype)
        if key != self._plan_key:
            pad_units = max(1, config.PAD_BYTES // net.dtype.itemsize)
            self._layout = self._cpu.plan(net.sizes, pad_units)
            self._all_idx = np.arange(max(net.sizes), dtype=np.uint32)
            self._plan_key = key
        return self._layout

    def _scratch(self, net, batch_size):
        lay, work_size, act_width, idx_width = self._plan(net)
        key = (batch_size, tuple(net.sizes), net.dtype)
        if key != self._scratch_key:
            depth = len(net.sizes) - 1
            self._buffers = (
                np.empty_like(net._params),                                  # grads
                np.empty(work_size, net.dtype),                              # work
                np.empty(work_size, net.dtype),                              # gwork
                np.empty((batch_size, act_width), net.dtype),                # acts
                np.empty((batch_size, int(lay[self._cpu.PAD, depth])), net.dtype),  # z_out
                np.zeros((batch_size, act_width), net.dtype),                # deltas
                np.empty((batch_size, idx_width + 8), np.uint32),                 # idx
                np.empty((batch_size, depth + 1), np.int64),                 # nnz
                np.empty(batch_size, net.dtype),                             # sample_cost
            )
            self._scratch_key = key
        return self._buffers

    def train(self, net, X, labels, targets, order, start, stop, batch_size, lr):
        lay = self._plan(net)[0]
        buffers = self._scratch(net, batch_size)
        grads = buffers[0]
        return self._train(net._params, grads, lay, net._codes[0], net._codes[1],
                           net._codes[2], X, labels, targets, order, start, stop, batch_size,
                           float(lr), *buffers[1:], self._all_idx,
                           float(config.SPARSE_MAX_DENSITY), int(config.PARALLEL_MIN_WORK),
                           int(config.PARALLEL_ROW_BLOCK))

    def forward(self, net, X):
        # Scratch is allocated per call: several threads may predict with one network.
        lay, work_size, act_width, idx_width = self._plan(net)
        depth = len(net.sizes) - 1
        n_rows, n_out = X.shape[0], net.sizes[-1]
        block = min(config.PREDICT_BLOCK_ROWS, n_rows)
        n_blocks = -(-n_rows // block)
        slots = min(n_blocks, 4 * self._threads()) if self.parallel else 1
        out_a = np.empty((n_rows, n_out), net.dtype)
        out_z = np.empty((n_rows, n_out), net.dtype)
        self._forward(net._params, lay, net._codes[0], net._codes[1], X, out_a, out_z,
                      np.empty(work_size, net.dtype), np.arange(n_rows, dtype=np.int64),
                      np.empty((slots, block, act_width), net.dtype),
                      np.empty((slots, block, int(lay[self._cpu.PAD, depth])), net.dtype),
                      np.empty((slots, block, idx_width + 8), np.uint32),
                      np.empty((slots, block, depth + 1), np.int64),
                      float(config.SPARSE_MAX_DENSITY), self._all_idx)
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

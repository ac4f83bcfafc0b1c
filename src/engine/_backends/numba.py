"""The ``"numba"`` and ``"numba-parallel"`` backends: the compiled CPU kernels
(:mod:`engine.kernels.cpu`), with the scratch space and working layout they need."""

import threading

import numpy as np

from .. import config, state
from ..kernels import codes
from .protocol import FEATURES, Backend


class NumbaBackend(Backend):
    """Compiled CPU kernels; ``parallel=True`` uses the ``prange`` twins."""

    features = FEATURES
    full_batch_gradient = True
    flags_nonfinite = True

    def __init__(self, parallel=False):
        # Imported here so that `import engine` does not pay for loading the kernels module
        # until a compiled backend is first used.
        from numba import get_num_threads

        from ..kernels import cpu

        self._cpu = cpu
        self._threads = get_num_threads
        self.parallel = parallel
        self.name = "numba-parallel" if parallel else "numba"
        # (features, wide) -> training kernel (see cpu._compile)
        self._train_kernels = {key[1:]: _serialised(kernel) if parallel else kernel
                               for key, kernel in cpu.TRAIN.items() if key[0] == parallel}
        self._forward_kernel = (_serialised(cpu.FORWARD[parallel]) if parallel
                                else cpu.FORWARD[parallel])
        self._layout_key = None
        self._scratch_key = None

    def _working_layout(self, net):
        """The kernels' working layout for this network (cached per shape and dtype)."""
        # numba-parallel gives each thread a panel of a large layer's weights (cpu.working_layout)
        panels = self._threads() if self.parallel else 1
        panel_min_bytes = int(config.PARALLEL_PANEL_MIN_BYTES)
        activations = net._layer_codes
        key = (tuple(net.sizes), net.dtype, tuple(net._bn_off), panels, panel_min_bytes,
               activations, net._bn_after)
        if key != self._layout_key:
            self._layout = self._cpu.working_layout(net.sizes, config.PAD_BYTES, net.dtype.itemsize,
                                          net._bn_off, panels, panel_min_bytes, activations,
                                          net._bn_after)
            self._all_idx = np.arange(max(net.sizes), dtype=np.uint32)
            self._layout_key = key
        return self._layout

    def _wide(self, net):
        """Whether the network has a layer wide enough for the column update (the wide
        kernel variant), and the width in units from which it applies
        (config.COLUMN_UPDATE_MIN_ROW_BYTES)."""
        units = -(-int(config.COLUMN_UPDATE_MIN_ROW_BYTES) // net.dtype.itemsize)
        return bool(np.any(self._working_layout(net)[0][self._cpu.PAD, 1:] >= units)), units

    def _scratch(self, net, batch_size, dropout, column_rule):
        lay, work_size, act_width, idx_width = self._working_layout(net)
        key = (batch_size, self._layout_key, dropout, column_rule)  # (the plan's key: layout)
        if key != self._scratch_key:
            columns = self._cpu.column_inputs(lay, batch_size, *column_rule)
            depth = len(net.sizes) - 1
            groups = -(-batch_size // 4)  # the kernels take samples four at a time
            self._buffers = (
                np.empty_like(net._params),                                  # grads
                _aligned_empty(work_size, net.dtype),                        # work
                _aligned_empty(work_size, net.dtype),                        # gwork
                _aligned_empty((batch_size, act_width), net.dtype),          # acts
                _aligned_empty((batch_size, int(lay[self._cpu.PAD, depth])), net.dtype),
                _aligned_empty((batch_size, act_width), net.dtype),          # deltas
                np.empty((groups, idx_width), np.uint32),                    # idx
                np.empty((groups, depth + 1), np.int64),                     # union_len
                np.empty(batch_size, net.dtype),                             # sample_cost
                np.empty(columns, np.int64),                                 # col_count
                np.empty(batch_size * columns, np.uint32),                   # col_who
                np.empty(batch_size * columns, net.dtype),                   # col_val
            )
            # before dropout, or before a batch norm that follows the activation (σ')
            keep = dropout or any(net._bn_after)
            self._pre_drop = _aligned_empty((batch_size, act_width) if keep else (0, 0),
                                            net.dtype)
            self._bn_zhat = np.empty((batch_size, net._n_bn), net.dtype)
            self._bn_inv_std = np.empty(net._n_bn, net.dtype)
            self._scratch_key = key
        return self._buffers

    def train(self, net, X, labels, targets, order, start, stop, batch_size, lr, plan=None):
        lay, work_size = self._working_layout(net)[:2]
        if plan is None:  # Nielsen's plain SGD; the network's optimiser memory is left alone
            code, hyper = codes.SGD, state.network_hyper(net)
            opt_state = np.zeros((0, net._params.size), net.dtype)
            opt_step = np.zeros(1, np.int64)
            drop_mask = _NO_MASK
            drop_scale = np.ones(len(net.sizes) - 1, net.dtype)
            sample_weight = np.zeros(0, net.dtype)
        else:
            state.ensure_optimizer_state(net, plan.optimizer)
            code, hyper = plan.code, plan.hyper
            opt_state, opt_step = net._opt_slots, net._opt_step
            drop_mask = _NO_MASK if plan.mask is None else plan.mask
            drop_scale = plan.drop_scale
            sample_weight = (np.zeros(0, net.dtype) if plan.sample_weight is None
                             else plan.sample_weight)
        # mini-batch size and padded layer width (units) from which the update sums per
        # weight over the mini-batch (config.COLUMN_UPDATE_MIN_*)
        wide, wide_units = self._wide(net)
        column_rule = (int(config.COLUMN_UPDATE_MIN_BATCH), wide_units)
        buffers = self._scratch(net, batch_size, drop_mask.shape[0] > 0, column_rule)
        opt_work = _aligned_empty((opt_state.shape[0], work_size), net.dtype)
        plain = (code == codes.SGD and not hyper[codes.H_WEIGHT_DECAY]
                 and not hyper[codes.H_L2_BATCH] and hyper[codes.H_COST_SCALE] == 1
                 and drop_mask.shape[0] == 0 and not net._n_bn and sample_weight.size == 0)
        kernel = self._train_kernels[not plain, wide]
        return kernel(net._params, buffers[0], lay, net._codes[2], X, labels, targets,
                      sample_weight, order, start, stop, batch_size, float(lr), *buffers[1:],
                      self._all_idx,
                      float(config.SPARSE_MAX_DENSITY), _parallel_work(batch_size),
                      int(config.PARALLEL_ROW_BLOCK), *column_rule,
                      code, hyper, opt_state, opt_work, opt_step, drop_mask, drop_scale,
                      self._pre_drop, net._bn_running, self._bn_zhat, self._bn_inv_std)

    def forward(self, net, X):
        """``(a, z, suspicious)``: the forward pass, and how many rows had a NaN or
        infinite first-layer pre-activation (from a bad input, or an overflow)."""
        # Scratch is allocated per call: several threads may predict with one network.
        lay, work_size, act_width, idx_width = self._working_layout(net)
        depth = len(net.sizes) - 1
        n_rows, n_out = X.shape[0], net.sizes[-1]
        block = min(config.PREDICT_BLOCK_ROWS, n_rows)
        n_blocks = -(-n_rows // block)
        slots = min(n_blocks, 4 * self._threads()) if self.parallel else 1
        out_a = np.empty((n_rows, n_out), net.dtype)
        out_z = np.empty((n_rows, n_out), net.dtype)
        groups = -(-block // 4)
        suspicious = self._forward_kernel(
            net._params, lay, X, out_a, out_z,
            _aligned_empty(work_size, net.dtype), np.arange(n_rows, dtype=np.int64),
            _aligned_empty((slots, block, act_width), net.dtype),
            _aligned_empty((slots, block, int(lay[self._cpu.PAD, depth])), net.dtype),
            np.empty((slots, groups, idx_width), np.uint32),
            np.empty((slots, groups, depth + 1), np.int64), np.empty(slots, np.int64),
            float(config.SPARSE_MAX_DENSITY), self._all_idx, net._bn_running,
            float(net._bn_eps))
        return out_a, out_z, suspicious

    def loss_gradient(self, net, X, labels, targets, plan):
        """See :meth:`NumpyBackend.loss_gradient`: one kernel call over all of X with
        lr = 0 (summed gradients, no update); the L2 term's gradient α·W is added here."""
        n = X.shape[0]
        total = self.train(net, X, labels, targets, np.arange(n, dtype=np.int64), 0, n, n,
                           0.0, plan=plan)
        flat = self._buffers[0].copy()
        alpha = plan.hyper[codes.H_L2_BATCH]
        if alpha:
            _, weights = net._unflatten(flat, copy=False)
            for nabla, w in zip(weights, net._weight_views):
                nabla += alpha * w
        weight_total = plan.sample_weight is not None and plan.hyper[codes.H_WEIGHT_TOTAL]
        flat /= float(np.sum(plan.sample_weight, dtype=np.float64)) if weight_total else n
        return total / n, flat

    def gradient(self, net, X, labels, targets):
        # lr = 0 makes the training kernel compute the summed gradients without updating.
        order = np.arange(X.shape[0], dtype=np.int64)
        self.train(net, X, labels, targets, order, 0, X.shape[0], X.shape[0], 0.0)
        grads = self._buffers[0]
        return net._unflatten(grads)


_NO_MASK = np.zeros((0, 0), np.uint8)
_PARALLEL_LOCK = threading.Lock()
_SAFE_LAYER = []  # [True] once the threading layer in use is known to be thread-safe


def _serialised(kernel):
    """``kernel`` (a parallel twin) behind a process-wide lock where Numba's threading
    layer is not thread-safe.

    Numba's "tbb" and "omp" layers run parallel regions launched from several Python
    threads side by side; "workqueue" (chosen when neither TBB nor an OpenMP runtime is
    installed, or by NUMBA_THREADING_LAYER=workqueue) aborts the process when two threads
    enter one. So numba-parallel's kernels take one lock unless the layer in use is known
    to be tbb or omp (it is known once the first parallel kernel has run). Serial kernels
    start no threads and are not wrapped."""
    def call(*args):
        if _thread_safe_layer():
            return kernel(*args)
        with _PARALLEL_LOCK:
            return kernel(*args)
    return call


def _thread_safe_layer():
    if not _SAFE_LAYER:
        import numba

        try:
            layer = numba.threading_layer()
        except ValueError:  # no parallel kernel has run yet: the layer is not chosen
            return False
        if layer not in ("tbb", "omp"):
            return False
        _SAFE_LAYER.append(True)
    return True


def _parallel_work(batch_size):
    """Multiply-adds from which a step of mini-batches of ``batch_size`` uses threads."""
    if batch_size < config.PARALLEL_BIG_BATCH:
        return int(config.PARALLEL_MIN_WORK)
    return int(min(config.PARALLEL_MIN_WORK, config.PARALLEL_MIN_WORK_BIG_BATCH))


def _aligned_empty(shape, dtype):
    """An uninitialised C-contiguous array whose start is on a cache-line boundary (64
    bytes). NumPy's large allocations start 16 bytes into a page, which makes every
    64-byte vector load of the kernels' padded rows straddle two cache lines."""
    dtype = np.dtype(dtype)
    n_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(n_bytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + n_bytes].view(dtype).reshape(shape)

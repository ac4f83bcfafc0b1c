"""The CUDA backend, ``Network(..., backend="cuda")``: training and prediction on an NVIDIA
GPU through Numba's CUDA target (the ``numba-cuda`` package: ``pip install "engine[cuda]"``).

Nothing here imports ``numba.cuda`` until it is asked to, so ``import engine`` works on a
machine without the package or a GPU; choosing ``backend="cuda"`` there raises a
``RuntimeError`` that says why. With ``NUMBA_ENABLE_CUDASIM=1`` in the environment before
``numba.cuda`` is first imported, the backend runs on Numba's CUDA simulator instead (very
slow; the test suite uses it to check the kernels where no GPU exists).

What stays on the device
------------------------
The parameters and gradients live on the device between calls and are uploaded again only
when the host copy changed (the user assigned weights, say). Inside a ``fit`` (see
:meth:`CudaBackend.fit_scope`) the data set is uploaded once, the shuffled order once per
epoch, and nothing per mini-batch. After every ``train`` call the parameters are copied
back, so ``net.weights`` is always current between calls (epoch callbacks, progress bars,
an interrupt). The kernels are in :mod:`engine.kernels.cuda`; how an epoch is launched
(one persistent kernel, or tiled kernels per layer) is chosen by :meth:`CudaBackend.strategy`.
"""

import contextlib
import importlib.util
import types
import warnings

import numpy as np

from .. import config
from ..kernels import codes
from .protocol import Backend

INSTALL_HINT = 'pip install "engine[cuda]"'


def availability():
    """Whether ``backend="cuda"`` can run here.

    Returns
    -------
    True or str
        True with a CUDA GPU (or Numba's CUDA simulator, ``NUMBA_ENABLE_CUDASIM=1``), else a
        sentence saying what is missing.
    """
    if importlib.util.find_spec("numba_cuda") is None:
        return f"the numba-cuda package is not installed ({INSTALL_HINT})"
    try:
        from numba import cuda
    except Exception as exc:  # a broken CUDA installation: report it, never crash
        return f"numba.cuda failed to import: {exc}"
    if _simulated(cuda):
        return True
    try:
        found = cuda.is_available()
    except Exception as exc:
        return f"the CUDA driver failed to initialise: {exc}"
    if not found:
        return ("no CUDA GPU was found (numba.cuda.is_available() is False); set "
                "NUMBA_ENABLE_CUDASIM=1 to run on Numba's slow CUDA simulator instead")
    return True


def device_description():
    """One line naming the device ``backend="cuda"`` would use, or why there is none."""
    reason = availability()
    if reason is not True:
        return f"none: {reason}"
    from numba import cuda
    if _simulated(cuda):
        return "Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1; slow, for testing)"
    device = cuda.get_current_device()
    name = device.name.decode() if isinstance(device.name, bytes) else device.name
    major, minor = device.compute_capability
    return f"{name} (compute capability {major}.{minor})"


def _simulated(cuda):
    return bool(cuda.config.ENABLE_CUDASIM)


def _blocks(count, per_block):
    return (count + per_block - 1) // per_block


class CudaBackend(Backend):
    """Train and predict on a CUDA GPU; the same protocol as the CPU backends.

    Raises
    ------
    RuntimeError
        When neither a GPU nor the simulator is available (the message says why).
    """

    name = "cuda"
    # Training features beyond Nielsen's plain SGD that the kernels implement (see
    # engine._backends.FEATURES): none yet; the training loop refuses them by name.
    features = ()

    def __init__(self):
        reason = availability()
        if reason is not True:
            raise RuntimeError(f"backend='cuda' cannot run here: {reason}. "
                               f"backend='numba' runs on the CPU.")
        from numba import cuda

        from ..kernels import cuda as kernels

        self._cuda = cuda
        self._kernels = kernels
        self._net_params = None   # the network's flat array whose values the device holds
        self._params_seen = None  # host copy of what the device holds, to notice edits
        self._d_params = self._d_grads = self._d_layout = None
        self._train_scratch = self._predict_scratch = None
        self._fit = None          # device copies of one fit's arrays (see fit_scope)
        self._no_index = cuda.to_device(np.zeros(1, dtype=np.int64))

    # -- the backend protocol -------------------------------------------------------------

    def train(self, net, X, labels, targets, order, start, stop, batch_size, lr, plan=None):
        """Run mini-batches ``order[start:stop]`` on the device; returns the summed cost.

        ``lr == 0`` computes the last mini-batch's summed gradients without updating.
        ``plan`` (:class:`engine.training.Plan`) may only ask for Nielsen's plain SGD.
        """
        self._refuse_unsupported(net)
        used = set() if plan is None else plan.features()
        if used:
            raise ValueError(f"backend='cuda' does not support {', '.join(sorted(used))} yet; "
                             f"use backend='numba' or 'numba-parallel'")
        if stop <= start:
            return 0.0
        data = self._device_data(X, labels, targets)
        d_order = self._device_order(order)
        self._device_params(net)
        scratch = self._scratch(net, batch_size, training=True)
        try:
            with _quiet_launches():
                if self.strategy(net, batch_size) == "persistent":
                    self._train_persistent(net, data, d_order, start, stop, batch_size, lr,
                                           scratch)
                else:
                    self._train_tiled(net, data, d_order, start, stop, batch_size, lr,
                                      scratch)
            # The two copies back are this call's only synchronisation with the device.
            costs = data.costs[start:stop].copy_to_host()
            self._d_params.copy_to_host(net._params)
        except BaseException:
            # Interrupted part-way (Ctrl-C between launches): the host still holds the
            # parameters from before this call, a mini-batch boundary. Forget the device's
            # half-updated copy so that the next call uploads the host's again.
            self._params_seen = None
            raise
        self._params_seen[...] = net._params
        return float(np.sum(costs, dtype=np.float64))

    def forward(self, net, X):
        """Output activations and pre-activations for the rows of ``X`` (host arrays);
        the inputs were checked for finiteness by the network (no flags here)."""
        self._refuse_unsupported(net)
        self._device_params(net)
        d_X = self._device_rows(X)
        n_rows, n_out = X.shape[0], net.sizes[-1]
        rows = max(1, min(n_rows, int(config.CUDA_PREDICT_ROWS)))
        scratch = self._scratch(net, rows, training=False)
        out_a = np.empty((n_rows, n_out), dtype=net.dtype)
        out_z = np.empty((n_rows, n_out), dtype=net.dtype)
        kernels = self._kernels
        with _quiet_launches():
            for first in range(0, n_rows, rows):
                m = min(rows, n_rows - first)
                self._forward_layers(net, d_X, self._no_index, first, kernels.FROM_ROWS, m,
                                     scratch)
                if net._codes[1] == codes.SOFTMAX:
                    threads = min(int(config.CUDA_ROW_THREADS), m)
                    kernels.softmax_rows[_blocks(m, threads), threads](
                        scratch.out_a, scratch.zout, m, n_out)
                scratch.out_a[:m].copy_to_host(out_a[first:first + m])
                scratch.zout[:m].copy_to_host(out_z[first:first + m])
        return out_a, out_z, None

    def gradient(self, net, X, labels, targets):
        """Summed gradients over the rows of ``X``: ``(nabla_b, nabla_w)`` host lists."""
        n = X.shape[0]
        self.train(net, X, labels, targets, np.arange(n, dtype=np.int64), 0, n, n, 0.0)
        return net._unflatten(self._d_grads.copy_to_host())

    @contextlib.contextmanager
    def fit_scope(self, X, labels, targets):
        """Keep one fit's data on the device: uploaded here once, freed on leaving.

        ``engine.training.train_epochs`` enters this around its epochs. Inside, ``train`` finds
        these arrays by identity (they are the same objects every epoch), the epoch's
        order is uploaded on its first use, and a validation set passed to ``forward`` is
        uploaded once. Outside a fit every call uploads what it needs, so editing an
        array in place between two fits is always seen.
        """
        # Holding the host arrays keeps their identities from being reused while we look.
        self._fit = types.SimpleNamespace(X=X, labels=labels, targets=targets,
                                          data=self._upload(X, labels, targets),
                                          order=None, rows={})
        try:
            yield
        finally:
            self._fit = None

    def strategy(self, net, batch_size):
        """``"persistent"`` or ``"tiled"``: how :meth:`train` launches the kernels.

        ``config.CUDA_STRATEGY`` decides; ``"auto"`` picks the persistent kernel (one
        single-block launch per call) while ``batch_size`` × weights is at most
        ``config.CUDA_PERSISTENT_MAX_WORK``, where the arithmetic of a mini-batch is too
        small to fill a GPU and launch overhead would dominate, and the tiled kernels
        (spread over the whole GPU, 3 launches per layer per mini-batch) beyond.
        """
        choice = config.CUDA_STRATEGY
        if choice == "auto":
            weights = sum(a * b for a, b in zip(net.sizes[:-1], net.sizes[1:]))
            return ("persistent" if batch_size * weights <= config.CUDA_PERSISTENT_MAX_WORK
                    else "tiled")
        if choice not in ("persistent", "tiled"):
            raise ValueError(f"engine.config.CUDA_STRATEGY must be 'auto', 'persistent' or "
                             f"'tiled'; got {choice!r}")
        return choice

    # -- device state ---------------------------------------------------------------------

    def _refuse_unsupported(self, net):
        """Refuse, naming it, anything of the network the kernels do not implement.

        Training features the kernels lack (optimisers, L2, dropout) are refused by
        ``train``; batch normalisation changes the network itself, so it is refused here,
        for prediction too.
        """
        hidden, output, cost = net._codes
        if hidden is None:
            raise ValueError(f"backend='cuda' runs one activation for every hidden layer; this "
                             f"network has one per layer ({list(net.activation)}). Use "
                             f"backend='numba', 'numba-parallel' or 'numpy'")
        if hidden not in codes.ACTIVATIONS.values() or output not in codes.OUTPUTS.values():
            raise ValueError(f"backend='cuda' has no kernel for activation "
                             f"{net.activation!r} with output {net.output!r}")
        if cost not in codes.COSTS.values():
            raise ValueError(f"backend='cuda' has no kernel for cost {net.cost!r}")
        if getattr(net, "_n_bn", 0):
            raise ValueError("backend='cuda' does not support batch normalisation "
                             "(batch_norm=True) yet; use backend='numba' or 'numba-parallel'")

    def _device_params(self, net):
        """Upload the parameters unless the device already holds exactly these values."""
        if (self._net_params is not net._params or self._params_seen is None
                or not np.array_equal(self._params_seen, net._params, equal_nan=True)):
            cuda = self._cuda
            self._d_params = cuda.to_device(net._params)
            self._d_grads = cuda.device_array_like(net._params)
            self._d_layout = self._layout(net)
            self._params_seen = net._params.copy()
            self._net_params = net._params

    def _layout(self, net):
        """Layer sizes and offsets as device arrays, for the persistent kernel."""
        hidden = net.sizes[1:-1]
        h_off = np.concatenate([[0], np.cumsum(hidden[:-1])]) if hidden else np.zeros(1)
        to_device = self._cuda.to_device
        return types.SimpleNamespace(
            sizes=to_device(net._sizes), w_off=to_device(net._w_off),
            b_off=to_device(net._b_off), h_off=to_device(h_off.astype(np.int64)),
            w_off_list=[int(v) for v in net._w_off], b_off_list=[int(v) for v in net._b_off],
            h_off_list=[int(v) for v in h_off])

    def _upload(self, X, labels, targets):
        cuda = self._cuda
        use_labels = labels.size > 0
        # The unused target kind gets a one-element stand-in: kernels never read it.
        if use_labels:
            targets = np.zeros((1, targets.shape[1]), dtype=X.dtype)
        else:
            labels = np.zeros(1, dtype=np.int64)
        return types.SimpleNamespace(
            X=cuda.to_device(X), labels=cuda.to_device(np.ascontiguousarray(labels, np.int64)),
            targets=cuda.to_device(np.ascontiguousarray(targets, X.dtype)),
            use_labels=bool(use_labels), costs=cuda.device_array(X.shape[0], dtype=X.dtype))

    def _device_data(self, X, labels, targets):
        fit = self._fit
        if (fit is not None and fit.X is X and fit.labels is labels
                and fit.targets is targets):
            return fit.data
        return self._upload(X, labels, targets)

    def _device_order(self, order):
        fit = self._fit
        if fit is not None and fit.order is not None and fit.order[0] is order:
            return fit.order[1]
        d_order = self._cuda.to_device(np.ascontiguousarray(order, dtype=np.int64))
        if fit is not None:
            fit.order = (order, d_order)  # holding `order` keeps its identity unique
        return d_order

    def _device_rows(self, X):
        fit = self._fit
        if fit is None:
            return self._cuda.to_device(X)
        if fit.X is X:
            return fit.data.X
        held = fit.rows.get(id(X))
        if held is not None and held[0] is X:
            return held[1]
        d_X = self._cuda.to_device(X)
        fit.rows[id(X)] = (X, d_X)
        return d_X

    def _scratch(self, net, batch_size, training):
        """Per-mini-batch device scratch, kept while the shapes stay the same."""
        key = (batch_size, tuple(net.sizes), net.dtype)
        held = self._train_scratch if training else self._predict_scratch
        if held is not None and held.key == key:
            return held
        cuda, dtype = self._cuda, net.dtype
        n_out = net.sizes[-1]
        widest = max(net.sizes[1:])
        scratch = types.SimpleNamespace(
            key=key,
            acts=cuda.device_array((batch_size, max(1, sum(net.sizes[1:-1]))), dtype),
            out_a=cuda.device_array((batch_size, n_out), dtype),
            zout=cuda.device_array((batch_size, n_out), dtype))
        if training:
            scratch.delta_a = cuda.device_array((batch_size, widest), dtype)
            scratch.delta_b = cuda.device_array((batch_size, widest), dtype)
            self._train_scratch = scratch
        else:
            self._predict_scratch = scratch
        return scratch

    # -- launching ------------------------------------------------------------------------

    def _train_persistent(self, net, data, d_order, start, stop, batch_size, lr, s):
        # At most 512: the float64 kernel needs 118 registers a thread (ptxas, sm_90), and
        # 1024 of them would not fit one block's 65,536 registers.
        threads = max(1, min(int(config.CUDA_PERSISTENT_THREADS), 512))
        layout = self._d_layout
        hidden, output, cost = net._codes
        self._kernels.train_persistent[1, threads](
            data.X, data.labels, data.targets, data.use_labels, d_order, start, stop,
            batch_size, float(lr), self._d_params, self._d_grads, layout.sizes,
            layout.w_off, layout.b_off, layout.h_off, hidden, output, cost,
            s.acts, s.out_a, s.zout, s.delta_a, s.delta_b, data.costs)

    def _forward_layers(self, net, d_X, d_order, pos, mode, m, s):
        """Launch the forward kernels of every layer for ``m`` rows starting at ``pos``."""
        tiled = self._kernels.tiled(config.CUDA_TILE)
        T = tiled.tile
        smem = tiled.shared_bytes(net.dtype.itemsize)
        layout = self._d_layout
        depth = len(net.sizes) - 1
        hidden, output, _ = net._codes
        for layer in range(1, depth + 1):
            n, n_in = net.sizes[layer], net.sizes[layer - 1]
            last = layer == depth
            tiled.forward_layer[(_blocks(m, T), _blocks(n, T)), (T, T), 0, smem](
                s.acts, 0 if layer == 1 else layout.h_off_list[layer - 2], d_X, d_order, pos,
                mode if layer == 1 else self._kernels.FROM_ACTS, self._d_params,
                layout.w_off_list[layer - 1], layout.b_off_list[layer - 1], n, n_in, m,
                output if last else hidden, s.out_a if last else s.acts,
                0 if last else layout.h_off_list[layer - 1], s.zout, last)

    def _train_tiled(self, net, data, d_order, start, stop, batch_size, lr, s):
        kernels = self._kernels
        tiled = kernels.tiled(config.CUDA_TILE)
        T = tiled.tile
        smem = tiled.shared_bytes(net.dtype.itemsize)
        layout = self._d_layout
        depth = len(net.sizes) - 1
        hidden, output, cost = net._codes
        n_out = net.sizes[-1]
        update = lr != 0
        pos = start
        # No host synchronisation in this loop: launches queue on one stream and run in
        # order, so each mini-batch sees the previous one's update.
        while pos < stop:
            m = min(batch_size, stop - pos)
            self._forward_layers(net, data.X, d_order, pos, kernels.FROM_ORDER, m, s)
            threads = min(int(config.CUDA_ROW_THREADS), m)
            kernels.output_layer[_blocks(m, threads), threads](
                s.out_a, s.zout, s.delta_a, m, n_out, data.labels, data.targets,
                data.use_labels, d_order, pos, output, cost, data.costs)
            delta, delta_prev = s.delta_a, s.delta_b
            for layer in range(depth, 0, -1):
                n, n_in = net.sizes[layer], net.sizes[layer - 1]
                w_off, b_off = layout.w_off_list[layer - 1], layout.b_off_list[layer - 1]
                lo = 0 if layer == 1 else layout.h_off_list[layer - 2]
                if layer > 1:  # before this layer's update: it needs the old weights
                    tiled.backprop_delta[(_blocks(m, T), _blocks(n_in, T)), (T, T), 0, smem](
                        delta, self._d_params, w_off, n, n_in, m, s.acts, lo, hidden,
                        delta_prev)
                tiled.gradient_update[(_blocks(n, T), _blocks(n_in + 1, T)), (T, T), 0, smem](
                    delta, s.acts, lo, data.X, d_order, pos,
                    kernels.FROM_ORDER if layer == 1 else kernels.FROM_ACTS,
                    self._d_params, self._d_grads, w_off, b_off, n, n_in, m, lr / m, update)
                delta, delta_prev = delta_prev, delta
            pos += m


@contextlib.contextmanager
def _quiet_launches():
    """Small grids are deliberate here (one block for the persistent kernel, few for
    batches of ten), so Numba's low-occupancy warning would only be noise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Grid size \d+ will likely result in GPU")
        yield

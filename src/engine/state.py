"""A network's state, in one place: where each parameter lives in the flat array, what
training changes (parameters, optimiser memory and step, batch-norm running statistics),
and the constants the kernels read beside it (the hyper-parameter array).

:class:`engine.Network` owns the arrays; the training loop, the backends and the file
format read and write them through the names and functions here, so the list of training
state is spelled once (:data:`TRAINING_STATE`).
"""

import numbers
from typing import NamedTuple

import numpy as np

from . import _validation as check
from . import config
from .kernels import codes

# The arrays of a network that training changes, by attribute name: the flat parameters
# (weights, biases, batch-norm γ and β), the optimiser's slots and step count, and the
# batch-norm running mean and variance. Snapshots, divergence rollback and data-parallel
# averaging all work on exactly these.
TRAINING_STATE = ("_params", "_opt_slots", "_opt_step", "_bn_running")


class ParameterLayout(NamedTuple):
    """Where each layer's parameters live in the one flat array (see :func:`layout`)."""

    w_off: np.ndarray    # first weight of each layer (row-major (n_out, n_in) block)
    b_off: np.ndarray    # first bias of each layer
    bn_off: np.ndarray   # first batch-normalised unit of each layer, -1 where none
    n_bn: int            # batch-normalised units in all (γ of each, then β of each)
    size: int            # length of the flat array: weights and biases, then 2·n_bn


def layout(sizes, batch_norm):
    """The flat parameter layout of a network with layer widths ``sizes`` and one
    batch-norm flag per hidden layer: layer by layer its weights (row-major) then its
    biases, and after all layers batch normalisation's γ of every normalised unit, then
    their β. The kernels' working layout starts from the same offsets."""
    w_off, b_off, offset = [], [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w_off.append(offset)
        offset += n_out * n_in
        b_off.append(offset)
        offset += n_out
    bn_off, n_bn = [], 0
    for layer, n_out in enumerate(sizes[1:]):
        normalised = layer < len(batch_norm) and batch_norm[layer]
        bn_off.append(n_bn if normalised else -1)
        n_bn += n_out if normalised else 0
    return ParameterLayout(np.asarray(w_off, dtype=np.int64), np.asarray(b_off, dtype=np.int64),
                           np.asarray(bn_off, dtype=np.int64), n_bn, offset + 2 * n_bn)


def adopt(net, saved):
    """``net`` takes over ``saved``'s state (parameters, batch-norm statistics, optimiser
    memory, generator, history, normalisation, task): the last step of an entry point that
    replaces state, once everything it needs has been checked."""
    net._sync_parameters()
    net._params[...] = saved._params
    net._bn_running[...] = saved._bn_running
    set_optimizer_state(net, optimizer_state(saved))
    net.rng = saved.rng
    net.history = saved.history
    net.normalization = saved.normalization
    net._task = saved._task


def training_arrays(net):
    """The network's training state by name (:data:`TRAINING_STATE`, without the leading
    underscore: ``params``, ``opt_slots``, ``opt_step``, ``bn_running``); the arrays
    themselves, not copies."""
    return {name.lstrip("_"): getattr(net, name) for name in TRAINING_STATE}


class Snapshot:
    """The training state (:data:`TRAINING_STATE`) of a network, kept at the start of each
    epoch so that a diverged epoch can be undone; its buffers are reused epoch after epoch."""

    def __init__(self, net):
        self.net = net
        self.saved = None

    def _arrays(self):
        return [getattr(self.net, name) for name in TRAINING_STATE]

    def take(self):
        arrays = self._arrays()
        if self.saved is None or any(s.shape != a.shape for s, a in zip(self.saved, arrays)):
            self.saved = [a.copy() for a in arrays]
        else:
            for s, a in zip(self.saved, arrays):
                s[...] = a

    def still_finite(self):
        return all(np.isfinite(a).all() for a in self._arrays())

    def restore(self):
        for live, saved in zip(self._arrays(), self.saved):
            if live.shape == saved.shape:
                live[...] = saved


# ---------------------------------------------------------------------------------------
# The hyper-parameter array the kernels read (indices in kernels/codes.py)
# ---------------------------------------------------------------------------------------

# Defaults where torch.optim has them (momentum has none in torch; 0.9 is the usual choice).
DEFAULT_MOMENTUM = 0.9
DEFAULT_BETA1, DEFAULT_BETA2 = 0.9, 0.999
DEFAULT_RHO = 0.99                      # torch.optim.RMSprop's alpha
DEFAULT_EPS = {"adagrad": 1e-10, "rmsprop": 1e-8, "adam": 1e-8, "adam_folded": 1e-8,
               "adagrad_eps_inside": 1e-7, "rmsprop_eps_inside": 1e-7}  # the last: Keras'



def network_hyper(net, weight_decay=0.0):
    """:func:`default_hyper` with the network's batch-normalisation rule (torch's, or Keras'
    for :class:`engine.Sequential` models: see ``Network._set_batch_norm_rule``)."""
    hyper = default_hyper(weight_decay)
    hyper[codes.H_BN_MOMENTUM] = net._bn_momentum
    hyper[codes.H_BN_EPS] = net._bn_eps
    hyper[codes.H_BN_UNBIASED] = float(net._bn_unbiased)
    return hyper


def default_hyper(weight_decay=0.0):
    hyper = np.zeros(codes.N_HYPER)
    hyper[codes.H_MOMENTUM] = DEFAULT_MOMENTUM
    hyper[codes.H_BETA1], hyper[codes.H_BETA2] = DEFAULT_BETA1, DEFAULT_BETA2
    hyper[codes.H_EPS] = 1e-8
    hyper[codes.H_RHO] = DEFAULT_RHO
    hyper[codes.H_WEIGHT_DECAY] = weight_decay
    hyper[codes.H_BN_MOMENTUM] = config.BN_MOMENTUM
    hyper[codes.H_BN_EPS] = config.BN_EPS
    hyper[codes.H_COST_SCALE] = 1.0
    hyper[codes.H_BN_UNBIASED] = 1.0
    return hyper


def hyper_dict(hyper):
    """The oracle's view of a hyper-parameter array."""
    return {"momentum": float(hyper[codes.H_MOMENTUM]), "beta1": float(hyper[codes.H_BETA1]),
            "beta2": float(hyper[codes.H_BETA2]), "eps": float(hyper[codes.H_EPS]),
            "rho": float(hyper[codes.H_RHO]),
            "weight_decay": float(hyper[codes.H_WEIGHT_DECAY])}


def batch_rules(hyper):
    """The oracle's per-mini-batch rules (``oracle.update_mini_batch``'s keywords) from a
    hyper-parameter array."""
    return {"weight_total": bool(hyper[codes.H_WEIGHT_TOTAL]),
            "l2_batch": float(hyper[codes.H_L2_BATCH]),
            "cost_scale": float(hyper[codes.H_COST_SCALE])}


# ---------------------------------------------------------------------------------------
# Optimiser state on the network (save/load stores it; training resumes from it)
# ---------------------------------------------------------------------------------------


def ensure_optimizer_state(net, name):
    """Keep the network's optimiser memory if it belongs to ``name``, else start afresh
    (zeros, step 0), as a new ``torch.optim`` optimiser would."""
    n_slots = len(codes.SLOTS[name])
    slots = net._opt_slots
    if net._opt_name != name or slots.shape != (n_slots, net._params.size) \
            or slots.dtype != net.dtype:
        net._opt_name = name
        net._opt_slots = np.zeros((n_slots, net._params.size), dtype=net.dtype)
        net._opt_step = np.zeros(1, dtype=np.int64)


def optimizer_state(net):
    """``{"optimizer": name, "step": int, <slot name>: flat array, ...}`` (copies).

    Slot names are torch's (``momentum_buffer``, ``sum``, ``square_avg``, ``exp_avg``,
    ``exp_avg_sq``); each array is laid out like ``net._params`` (weights and biases,
    then batch-norm γ and β)."""
    state = {"optimizer": net._opt_name, "step": int(net._opt_step[0])}
    for row, slot in enumerate(codes.SLOTS[net._opt_name]):
        state[slot] = net._opt_slots[row].copy()
    return state


def set_optimizer_state(net, state):
    """Adopt a dict from :func:`optimizer_state` (or None to reset to plain SGD)."""
    if state is None:
        net._opt_name = "sgd"
        net._opt_slots = np.zeros((0, net._params.size), dtype=net.dtype)
        net._opt_step = np.zeros(1, dtype=np.int64)
        return
    if not isinstance(state, dict):
        raise TypeError(f"optimizer state must be a dict from _optimizer_state(); got "
                        f"{type(state).__name__}")
    name = check.choice("optimizer state 'optimizer'", state.get("optimizer"), codes.SLOTS)
    step = state.get("step")
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"optimizer state 'step' must be a non-negative integer; got {step!r}")
    rows = []
    for slot in codes.SLOTS[name]:
        if slot not in state:
            raise ValueError(f"optimizer state for {name!r} needs {slot!r}")
        arr = np.asarray(state[slot])
        if arr.shape != net._params.shape:
            raise ValueError(f"optimizer state {slot!r} must have shape {net._params.shape}; "
                             f"got {arr.shape}")
        rows.append(arr)
    net._opt_name = name
    net._opt_slots = (np.array(rows, dtype=net.dtype) if rows
                      else np.zeros((0, net._params.size), dtype=net.dtype))
    net._opt_step = np.array([step], dtype=np.int64)



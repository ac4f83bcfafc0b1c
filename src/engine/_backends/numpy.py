"""The ``"numpy"`` backend: the oracle (:mod:`engine.oracle`) itself, behind the backend
protocol, so that every fast path can be run against it through the same network."""

import numpy as np

from .. import oracle, state
from ..kernels import codes
from .protocol import FEATURES, Backend, one_hot


class NumpyBackend(Backend):
    """The oracle itself, as a backend: readable, vectorised per mini-batch, not compiled."""

    name = "numpy"
    features = FEATURES
    full_batch_gradient = True

    def train(self, net, X, labels, targets, order, start, stop, batch_size, lr, plan=None):
        Y = one_hot(labels, net.sizes[-1], X.dtype) if labels.size else targets
        hyper = state.network_hyper(net) if plan is None else plan.hyper
        optimizer = dropout = sample_weight = None
        rules = state.batch_rules(hyper)
        if plan is not None:
            sample_weight = plan.sample_weight
            state.ensure_optimizer_state(net, plan.optimizer)
            per_slot = [net._oracle_views(row) for row in net._opt_slots]
            slots = [list(views) for views in zip(*per_slot)] if per_slot else None
            if slots is None:
                slots = [[] for _ in net._oracle_views(net._params)]
            optimizer = oracle.Optimizer(plan.optimizer, state.hyper_dict(hyper), slots,
                                         net._opt_step)
            dropout = self._dropout(net, plan)
        # Overflow while diverging is reported by the network as a DivergenceError.
        with np.errstate(over="ignore", invalid="ignore"):
            return oracle.train_epoch(net._weight_views, net._bias_views, X, Y,
                                      order[start:stop], batch_size, lr,
                                      net.activation, net.output, net.cost, optimizer,
                                      self._batch_norm(net, hyper), dropout, sample_weight,
                                      **rules)

    @staticmethod
    def _batch_norm(net, hyper):
        if not net._n_bn:
            return None
        return net._bn_views(eps=hyper[codes.H_BN_EPS], momentum=hyper[codes.H_BN_MOMENTUM],
                             unbiased=bool(hyper[codes.H_BN_UNBIASED]))

    @staticmethod
    def _dropout(net, plan):
        """The plan's keep mask as the oracle's per-layer multipliers (None: no dropout)."""
        if plan.mask is None:
            return None
        layers, column = [], 0
        for n, rate in zip(net.sizes[1:], plan.dropout):
            if rate > 0:
                layers.append(oracle.dropout_multipliers(plan.mask[:, column:column + n],
                                                         rate, net.dtype))
            else:
                layers.append(None)
            column += n
        return layers

    def loss_gradient(self, net, X, labels, targets, plan):
        """The cost of all of X as one mini-batch under ``plan``'s rules (sample weights,
        per-batch L2, cost scale; no dropout or batch norm), and its gradient as a flat
        array laid out like ``net._params``: L-BFGS's objective."""
        Y = one_hot(labels, net.sizes[-1], X.dtype) if labels.size else targets
        recorder = _GradientRecorder()
        cost = oracle.update_mini_batch(net._weight_views, net._bias_views, X, Y, 0.0,
                                        net.activation, net.output, net.cost, recorder,
                                        sample_weight=plan.sample_weight,
                                        **state.batch_rules(plan.hyper))
        flat = np.zeros_like(net._params)
        for view, nabla in zip(net._oracle_views(flat), recorder.nablas):
            view[...] = nabla / recorder.m
        return cost, flat

    def forward(self, net, X):
        a, z = oracle.feedforward(net._weight_views, net._bias_views, X,
                                  net.activation, net.output,
                                  self._batch_norm(net, state.network_hyper(net)))
        return a, z, None

    def gradient(self, net, X, labels, targets):
        Y = one_hot(labels, net.sizes[-1], X.dtype) if labels.size else targets
        nabla_b, nabla_w, _ = oracle.backprop(net._weight_views, net._bias_views, X, Y,
                                              net.activation, net.output, net.cost,
                                              self._batch_norm(net, state.network_hyper(net)))
        return nabla_b, nabla_w


class _GradientRecorder:
    """Stands in for an ``oracle.Optimizer``: keeps the summed gradients and their divisor
    instead of stepping."""

    def update(self, params, nablas, decays, m, lr):
        self.nablas, self.m = nablas, m

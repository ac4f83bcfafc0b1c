"""Keras' optimisers for :class:`engine.Sequential`, with Keras' update rules and defaults.

Each object names the engine's update rule that computes Keras' arithmetic (see
:mod:`engine.training` and :mod:`engine.kernels.codes`), g the mean gradient of the
mini-batch:

=========================================  ===============================================
Keras                                      update (Keras' own order of operations)
=========================================  ===============================================
``SGD(learning_rate=0.01)``                p ← p − lr·g
``SGD(momentum=μ, nesterov=False)``        v ← μ·v − lr·g; p ← p + v
``SGD(momentum=μ, nesterov=True)``         v ← μ·v − lr·g; p ← p + μ·v − lr·g
``Adam(0.001, 0.9, 0.999, 1e-7)``          m ← β1·m + (1 − β1)·g, v ← β2·v + (1 − β2)·g²,
                                           p ← p − lr_t·m/(√v + ε),
                                           lr_t = lr·√(1 − β2ᵗ)/(1 − β1ᵗ)
``RMSprop(0.001, rho=0.9, epsilon=1e-7)``  v ← ρ·v + (1 − ρ)·g²; p ← p − lr·g/√(v + ε)
``Adagrad(0.001, 0.1, epsilon=1e-7)``      s ← s + g² (s starts at 0.1); p ← p − lr·g/√(s + ε)
=========================================  ===============================================

Keras' RMSprop and Adagrad add ε under the square root, torch's outside it; the engine
has both (``"rmsprop"``/``"adagrad"`` for :meth:`engine.Network.fit`, torch's).
"""

import numbers

from . import _validation as check


class Optimizer:
    """Base class: ``learning_rate`` and the engine rule's name and hyper-parameters."""

    rule = None  # the engine's optimizer name (engine.training.OPTIMIZERS)

    def __init__(self, learning_rate):
        self.learning_rate = check.positive_float("learning_rate", learning_rate)

    def engine_options(self):
        """Keyword arguments for :func:`engine.training.options`: the rule and its
        hyper-parameters."""
        return {"optimizer": self.rule}

    def initial_slot_value(self):
        """The value the optimiser's memory starts at (Keras' Adagrad: 0.1)."""
        return 0.0

    def get_config(self):
        return {"name": type(self).__name__, **{k: v for k, v in vars(self).items()}}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def _rate(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1); got {value!r}")
    if not 0 <= value < 1:
        raise ValueError(f"{name} must lie in [0, 1); got {value}")
    return float(value)


class SGD(Optimizer):
    """``keras.optimizers.SGD``: plain, with momentum (Keras' velocity form), or Nesterov."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        super().__init__(learning_rate)
        self.momentum = _rate("momentum", momentum)
        if not isinstance(nesterov, bool):
            raise TypeError(f"nesterov must be True or False; got {nesterov!r}")
        self.nesterov = nesterov

    @property
    def rule(self):
        if self.nesterov:
            return "velocity_nesterov"
        return "velocity" if self.momentum else "sgd"

    def engine_options(self):
        if self.rule == "sgd":
            return {"optimizer": "sgd"}
        return {"optimizer": self.rule, "momentum": self.momentum}


class Adam(Optimizer):
    """``keras.optimizers.Adam`` (without ``amsgrad``): the bias correction folded into the
    step size, ε added to √v."""

    rule = "adam_folded"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(learning_rate)
        self.beta_1 = _rate("beta_1", beta_1)
        self.beta_2 = _rate("beta_2", beta_2)
        self.epsilon = check.positive_float("epsilon", epsilon)

    def engine_options(self):
        return {"optimizer": self.rule, "beta1": self.beta_1, "beta2": self.beta_2,
                "eps": self.epsilon}


class RMSprop(Optimizer):
    """``keras.optimizers.RMSprop`` (without momentum or ``centered``): ε under the root."""

    rule = "rmsprop_eps_inside"

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-7):
        super().__init__(learning_rate)
        self.rho = _rate("rho", rho)
        self.epsilon = check.positive_float("epsilon", epsilon)

    def engine_options(self):
        return {"optimizer": self.rule, "rho": self.rho, "eps": self.epsilon}


class Adagrad(Optimizer):
    """``keras.optimizers.Adagrad``: the accumulator starts at
    ``initial_accumulator_value``; ε under the root."""

    rule = "adagrad_eps_inside"

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7):
        super().__init__(learning_rate)
        self.initial_accumulator_value = check.non_negative_float(
            "initial_accumulator_value", initial_accumulator_value)
        self.epsilon = check.positive_float("epsilon", epsilon)

    def engine_options(self):
        return {"optimizer": self.rule, "eps": self.epsilon}

    def initial_slot_value(self):
        return self.initial_accumulator_value


_BY_NAME = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop, "adagrad": Adagrad}


def get(identifier):
    """An optimiser from a name (``"adam"``, as Keras spells them, any case) with Keras'
    defaults, or the optimiser object itself."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"optimizer must be one of {', '.join(map(repr, _BY_NAME))} or an "
                     f"engine.optimizers object such as SGD(learning_rate=0.01, "
                     f"momentum=0.9); got {identifier!r}")


def from_config(config):
    """The optimiser :meth:`Optimizer.get_config` describes (for saved models)."""
    config = dict(config)
    cls = {c.__name__: c for c in _BY_NAME.values()}.get(config.pop("name", None))
    if cls is None:
        raise ValueError(f"unknown optimizer config {config!r}")
    return cls(**config)

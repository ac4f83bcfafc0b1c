"""Keras' layers for :class:`engine.Sequential`: descriptions that the model maps onto the
engine's layers (an affine step, optional batch normalisation, an activation, optional
dropout), with Keras' argument names, defaults and meanings.

A ``Dense`` layer and what follows it up to the next ``Dense`` layer (``Activation``,
``BatchNormalization`` in either order, then ``Dropout``) become one layer of the engine's
network: ``Dense(256, activation="tanh"), BatchNormalization()`` normalises the
activations, ``Dense(256), BatchNormalization(), Activation("tanh")`` the affine output.
"""

import numbers

from . import _validation as check
from .initializers import SCHEMES

# Keras' activation names -> the engine's
ACTIVATIONS = {None: "identity", "linear": "identity", "sigmoid": "sigmoid", "tanh": "tanh",
               "relu": "relu", "softmax": "softmax"}
KERNEL_INITIALIZERS = tuple(s for s in SCHEMES if s != "standard_normal")
BIAS_INITIALIZERS = ("zeros", "ones")


def _activation(value):
    if value not in ACTIVATIONS:
        names = ", ".join(repr(k) for k in ACTIVATIONS)
        raise ValueError(f"activation must be one of {names}; got {value!r}")
    return value


class Layer:
    """Base class: a name (Keras-style, numbered per model when not given)."""

    def __init__(self, name=None):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string; got {name!r}")
        self.name = name

    def get_config(self):
        config = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return {"class_name": type(self).__name__, "config": config}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config()["config"].items()
                         if v is not None)
        return f"{type(self).__name__}({args})"


class Input(Layer):
    """``keras.Input(shape)``: the number of input features, ``(n,)``."""

    def __init__(self, shape, name=None):
        super().__init__(name)
        if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
            shape = (shape,)
        try:
            shape = tuple(shape)
        except TypeError:
            raise TypeError(f"shape must be a tuple such as (784,); got {shape!r}") from None
        if len(shape) != 1:
            raise ValueError(f"the engine's networks take flat feature vectors: shape must be "
                             f"(n_features,); got {shape!r} (flatten the inputs first)")
        self.shape = (check.positive_int("shape[0]", shape[0]),)


class Dense(Layer):
    """``keras.layers.Dense``: ``activation(x @ kernel + bias)``."""

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", name=None):
        super().__init__(name)
        self.units = check.positive_int("units", units)
        self.activation = _activation(activation)
        if not isinstance(use_bias, bool):
            raise TypeError(f"use_bias must be True or False; got {use_bias!r}")
        self.use_bias = use_bias
        self.kernel_initializer = check.choice("kernel_initializer", kernel_initializer,
                                               KERNEL_INITIALIZERS)
        self.bias_initializer = check.choice("bias_initializer", bias_initializer,
                                             BIAS_INITIALIZERS)


class Activation(Layer):
    """``keras.layers.Activation``: the activation of the ``Dense`` layer before it (which
    has none of its own), after its batch normalisation if one comes between them."""

    def __init__(self, activation, name=None):
        super().__init__(name)
        self.activation = _activation(activation)


class Dropout(Layer):
    """``keras.layers.Dropout(rate)``: inverted dropout of the previous layer's outputs while
    training (masks from the model's seed, not Keras' generator)."""

    def __init__(self, rate, name=None):
        super().__init__(name)
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
            raise ValueError(f"rate must be a number in [0, 1); got {rate!r}")
        self.rate = float(rate)


class BatchNormalization(Layer):
    """``keras.layers.BatchNormalization`` with Keras' meanings: ``momentum`` is the weight
    of the old moving average (moving ← momentum·moving + (1 − momentum)·batch value, the
    opposite of torch's), the moving variance averages the biased batch variance, and
    ``epsilon`` is added to the variance."""

    def __init__(self, momentum=0.99, epsilon=0.001, name=None):
        super().__init__(name)
        if (isinstance(momentum, bool) or not isinstance(momentum, numbers.Real)
                or not 0 <= momentum < 1):
            raise ValueError(f"momentum must be a number in [0, 1); got {momentum!r}")
        self.momentum = float(momentum)
        self.epsilon = check.positive_float("epsilon", epsilon)


CLASSES = {cls.__name__: cls for cls in (Input, Dense, Activation, Dropout, BatchNormalization)}


def from_config(config):
    """The layer :meth:`Layer.get_config` describes (for saved models)."""
    cls = CLASSES.get(config.get("class_name")) if isinstance(config, dict) else None
    if cls is None or not isinstance(config.get("config"), dict):
        raise ValueError(f"unknown layer config {config!r}")
    return cls(**config["config"])

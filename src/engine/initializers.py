"""Weight initialisation schemes, by the names Nielsen and Keras use.

Every scheme draws float64 numbers from the network's one ``numpy.random.Generator`` (biases
layer by layer, then weights layer by layer, the order of Nielsen's ``Network.__init__``), so a
seed gives the same starting point in float32 and float64 up to rounding.

* ``standard_normal``: weights and biases N(0, 1), Nielsen's ``network.py``.
* ``lecun_normal``: weights N(0, 1/n_in), biases N(0, 1), network2's
  ``default_weight_initializer``.
* ``glorot_normal`` / ``glorot_uniform``: Var = 2/(n_in+n_out); biases zero (Keras).
* ``he_normal`` / ``he_uniform``: Var = 2/n_in; biases zero (Keras).

The ``*_normal`` schemes draw from an untruncated normal, like ``torch.nn.init``; Keras
truncates at two standard deviations. Uniform schemes draw from U(−limit, limit) with
limit = √(3·Var).
"""

import numpy as np


def _weight_std(name, n_in, n_out):
    if name == "standard_normal":
        return 1.0
    if name == "lecun_normal":
        return np.sqrt(1.0 / n_in)
    if name.startswith("glorot"):
        return np.sqrt(2.0 / (n_in + n_out))
    return np.sqrt(2.0 / n_in)  # he_*


SCHEMES = ("standard_normal", "lecun_normal", "glorot_normal", "glorot_uniform",
           "he_normal", "he_uniform")


def initial_parameters(name, sizes, rng):
    """Return ``(biases, weights)``: lists of float64 arrays shaped (n_out, 1), (n_out, n_in)."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    if name in ("standard_normal", "lecun_normal"):
        biases = [rng.standard_normal((n_out, 1)) for _, n_out in pairs]
    else:
        biases = [np.zeros((n_out, 1)) for _, n_out in pairs]
    weights = []
    for n_in, n_out in pairs:
        std = _weight_std(name, n_in, n_out)
        if name.endswith("uniform"):
            limit = np.sqrt(3.0) * std
            weights.append(rng.uniform(-limit, limit, size=(n_out, n_in)))
        else:
            weights.append(std * rng.standard_normal((n_out, n_in)))
    return biases, weights

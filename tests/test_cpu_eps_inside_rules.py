"""Keras' RMSprop and Adagrad (ε under the square root: optimizer="rmsprop_eps_inside",
"adagrad_eps_inside") in the compiled kernels against the NumPy oracle.

The oracle's rules are checked against hand-worked updates in test_oracle_training.py.
Tolerances as in test_cpu_oracle_agreement.py: float64 parameters after epochs of 20+
mini-batches 1e-10 relative, float32 1e-4; the parallel twin equals the serial one.
"""

import numpy as np
import pytest

import engine
from engine import state

RTOL = {"float64": 1e-10, "float32": 1e-4}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer,start", [("rmsprop_eps_inside", 0.0),
                                             ("adagrad_eps_inside", 0.1)])
def test_eps_inside_rules_match_oracle(threaded, dtype, optimizer, start):
    """Two epochs with L2 and a batch-normalised layer; Adagrad's accumulator starts at
    0.1, as Keras' does (the memory a fit continues from); numba-parallel threads every
    step (conftest.threaded)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(150, 7)), rng.integers(0, 3, 150)
    nets = []
    for backend in ("numpy", "numba", "numba-parallel"):
        net = engine.Network([7, 6, 5, 3], activation=["relu", "tanh"], output="softmax",
                             cost="cross_entropy", init="lecun_normal", dtype=dtype,
                             backend=backend, seed=4, batch_norm=[True, False])
        state.ensure_optimizer_state(net, optimizer)
        net._opt_slots[...] = start
        with threaded(backend):
            net.fit(X, y, epochs=2, batch_size=7, lr=0.01, optimizer=optimizer, eps=1e-7,
                    l2=0.5)
        nets.append(net)
    reference = nets[0]
    for net in nets[1:]:
        scale = np.max(np.abs(reference._params))
        assert np.max(np.abs(net._params - reference._params)) / scale <= RTOL[dtype]
        assert np.max(np.abs(net._opt_slots - reference._opt_slots)) <= RTOL[dtype] * max(
            1.0, np.max(np.abs(reference._opt_slots)))
    np.testing.assert_array_equal(nets[2]._params, nets[1]._params)
    assert reference._opt_slots.min() >= start  # the accumulator only grows

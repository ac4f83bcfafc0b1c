"""engine.Sequential against Keras itself (Keras 3 on PyTorch), on the same numbers.

Each case builds the same model in Keras and in the engine, gives both the engine's
initial weights (``set_weights``), trains one epoch with ``shuffle=False`` and compares
``get_weights()``, ``evaluate()`` and ``predict()``. The engine runs twice: on the NumPy
oracle (``backend="numpy"``, the float64 reference) and on the compiled kernels.

Tolerances, and where they come from:

* Keras against the NumPy reference: ``KERAS_TOL`` = 1e-6 of max(1, the largest magnitude)
  of each compared array. Keras on PyTorch is not a float64 computation to the last bits:
  its type promotion (``keras.src.backend.common.dtypes.result_type``) makes two float64
  operands float32, so ``keras.ops.matmul``, and with it every Dense layer, multiplies in
  float32 (6e-7 absolute error on products of order 3, against 2e-15 for torch.matmul in
  float64). Measured with this module's cases (float64, 48 samples, batches of 8, one
  epoch): weights within 1.6e-7 (batch-norm cases; 1e-9 to 1e-8 otherwise), evaluate(),
  predict() and fit's loss within 1.5e-7; a single forward pass already differs by 4e-8.
  A wrong rule differs by far more (torch's ε placement in Adam or RMSprop, the unbiased
  moving variance, a missing ½ in the squared error: 1e-5 and up).
* The kernels against the NumPy reference: 1e-10 relative, the engine's oracle tolerance
  for an epoch of float64 updates.
"""

import os

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "torch"
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":
    pytest.skip(f"Keras runs on {keras.backend.backend()!r} here; these tests compare with "
                f"Keras on PyTorch (KERAS_BACKEND=torch)", allow_module_level=True)

import engine  # noqa: E402
from engine import layers, optimizers  # noqa: E402

KERAS_TOL = 1e-6
KERNEL_RTOL = 1e-10
N, N_IN, BATCH = 48, 6, 8


def difference(actual, expected):
    """max|actual − expected| / max(1, max|expected|)."""
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(expected))))
    return float(np.max(np.abs(np.asarray(actual) - expected))) / scale


def keras_layer(layer):
    kind = type(layer).__name__
    if kind == "Dense":
        return keras.layers.Dense(layer.units, activation=layer.activation,
                                  use_bias=layer.use_bias, dtype="float64")
    if kind == "BatchNormalization":
        return keras.layers.BatchNormalization(momentum=layer.momentum,
                                               epsilon=layer.epsilon, dtype="float64")
    return keras.layers.Activation(layer.activation, dtype="float64")


def keras_optimizer(opt):
    config = {k: v for k, v in vars(opt).items()}
    return getattr(keras.optimizers, type(opt).__name__)(**config)


def task(loss, n_out):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(N, N_IN))
    labels = rng.integers(0, n_out, N)
    if loss == "sparse_categorical_crossentropy":
        return X, labels
    if loss == "categorical_crossentropy":
        return X, np.eye(n_out)[labels]
    if loss == "binary_crossentropy":
        return X, (rng.random((N, n_out)) < 0.5).astype(np.float64)
    return X, rng.normal(size=(N, n_out))


CASES = {
    "nesterov-per-layer-activations": (
        lambda: [layers.Dense(8, activation="relu"), layers.Dense(7, activation="tanh"),
                 layers.Dense(5, activation="sigmoid"), layers.Dense(3, activation="softmax")],
        lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
        "sparse_categorical_crossentropy"),
    "adam-defaults": (
        lambda: [layers.Dense(8, activation="tanh"), layers.Dense(3, activation="softmax")],
        lambda: optimizers.Adam(), "categorical_crossentropy"),
    "mse-momentum": (
        lambda: [layers.Dense(8, activation="sigmoid"), layers.Dense(2)],
        lambda: optimizers.SGD(learning_rate=0.05, momentum=0.5), "mse"),
    "binary-rmsprop": (
        lambda: [layers.Dense(8, activation="relu"), layers.Dense(2, activation="sigmoid")],
        lambda: optimizers.RMSprop(), "binary_crossentropy"),
    "batch-norm-adagrad": (
        lambda: [layers.Dense(8), layers.BatchNormalization(), layers.Activation("relu"),
                 layers.Dense(6, use_bias=False), layers.BatchNormalization(),
                 layers.Activation("tanh"), layers.Dense(3, activation="softmax")],
        lambda: optimizers.Adagrad(learning_rate=0.05), "sparse_categorical_crossentropy"),
    "batch-norm-after-activation": (
        lambda: [layers.Dense(8, activation="tanh"), layers.BatchNormalization(),
                 layers.Dense(6, activation="relu"), layers.Dense(3, activation="softmax")],
        lambda: optimizers.SGD(learning_rate=0.1), "sparse_categorical_crossentropy"),
    "batch-norm-mse": (
        lambda: [layers.Dense(8), layers.BatchNormalization(momentum=0.9, epsilon=0.01),
                 layers.Activation("sigmoid"), layers.Dense(2)],
        lambda: optimizers.SGD(learning_rate=0.1), "mean_squared_error"),
}


@pytest.fixture(scope="module")
def keras_float64():
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx("float32")


@pytest.mark.parametrize("case", list(CASES))
def test_one_epoch_agrees_with_keras(keras_float64, case):
    make_layers, make_optimizer, loss = CASES[case]
    n_out = make_layers()[-1].units
    X, y = task(loss, n_out)
    results = {}
    for backend in ("numpy", "numba"):
        model = engine.Sequential([layers.Input((N_IN,)), *make_layers()], dtype="float64",
                                  backend=backend, seed=3)
        model.compile(optimizer=make_optimizer(), loss=loss)
        start = model.get_weights()
        history = model.fit(X, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        results[backend] = (model.get_weights(), model.evaluate(X, y, verbose=0),
                            model.predict(X, verbose=0), history.history["loss"][0])

    reference = keras.Sequential([keras.Input((N_IN,), dtype="float64"),
                                  *[keras_layer(layer) for layer in make_layers()]])
    reference.compile(optimizer=keras_optimizer(make_optimizer()), loss=loss)
    reference.set_weights(start)
    history = reference.fit(X, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    theirs = (reference.get_weights(), reference.evaluate(X, y, verbose=0),
              reference.predict(X, verbose=0), history.history["loss"][0])

    weights, loss_value, predictions, fit_loss = results["numpy"]
    assert len(theirs[0]) == len(weights)
    for i, (w_keras, w_ref) in enumerate(zip(theirs[0], weights)):
        assert w_keras.shape == w_ref.shape
        assert difference(w_keras, w_ref) <= KERAS_TOL, f"weights[{i}]"
    assert difference(theirs[1], loss_value) <= KERAS_TOL
    assert difference(theirs[2], predictions) <= KERAS_TOL
    assert difference(theirs[3], fit_loss) <= KERAS_TOL

    compiled = results["numba"]
    for w_fast, w_ref in zip(compiled[0], weights):
        scale = max(float(np.max(np.abs(w_ref))), 1e-30)
        assert float(np.max(np.abs(w_fast - w_ref))) / scale <= KERNEL_RTOL
    assert compiled[1] == pytest.approx(loss_value, rel=KERNEL_RTOL)
    np.testing.assert_allclose(compiled[2], predictions, rtol=KERNEL_RTOL, atol=1e-15)

"""engine.Sequential: Keras' workflow mapped onto the engine's network and kernels.

These check the mapping itself without Keras (tests/test_api_keras_agreement.py compares with
Keras): a Sequential model trains exactly as the engine network it describes, Keras' loss
and batch-norm definitions hold on hand-computed numbers, and the workflow's pieces (fit's
options, callbacks, weights, summary, files, errors) behave as Keras users expect.
Tolerances: float64 1e-12 relative where both sides do the same arithmetic in another
arrangement (a loss scale applied to the error or to the rate: a few ulps per step).
"""

import numpy as np
import pytest

import engine
from conftest import relative_error
from engine import layers, optimizers


def data(n=60, n_in=6, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_in)), rng.integers(0, n_out, n)


def model(*hidden, n_in=6, dtype="float64", backend="numba", seed=0):
    return engine.Sequential([layers.Input((n_in,)), *hidden], dtype=dtype, backend=backend,
                             seed=seed)


def mlp(output="softmax", units=3, **kwargs):
    return model(layers.Dense(8, activation="relu"), layers.Dense(5, activation="tanh"),
                 layers.Dense(units, activation=output), **kwargs)


def test_sequential_trains_as_the_network_it_describes():
    """Sparse categorical cross-entropy with SGD is the engine's softmax cross-entropy with
    per-layer activations and Nielsen's update: the same bits."""
    X, y = data()
    m = mlp()
    m.compile(optimizer=optimizers.SGD(learning_rate=0.05),
              loss="sparse_categorical_crossentropy")
    net = engine.Network([6, 8, 5, 3], activation=["relu", "tanh"], output="softmax",
                         cost="cross_entropy", seed=1)
    net._params[...] = m.network._params
    h = m.fit(X, y, batch_size=7, epochs=2, shuffle=False, verbose=0)
    h_net = net.fit(X, y, batch_size=7, epochs=2, lr=0.05, shuffle=False)
    np.testing.assert_array_equal(m.network._params, net._params)
    assert h.history["loss"] == h_net["loss"]
    kernel, bias = m.get_weights()[:2]
    np.testing.assert_array_equal(kernel, net.weights[0].T)
    np.testing.assert_array_equal(bias, net.biases[0][:, 0])


@pytest.mark.parametrize("loss,output,scale", [("mse", "linear", 2 / 3),
                                               ("mean_squared_error", "sigmoid", 2 / 3),
                                               ("binary_crossentropy", "sigmoid", 1 / 3)])
def test_keras_losses_are_the_mean_over_outputs(loss, output, scale):
    """Keras' mse is mean((a − y)²) over the outputs (the engine's ½‖a − y‖² times 2/n_out),
    binary cross-entropy the mean of the units' (times 1/n_out): evaluate() against NumPy,
    and one full-batch SGD step equals the engine's with the rate times that factor."""
    X, labels = data()
    Y = np.eye(3)[labels] * 0.8 + 0.1
    m = mlp(output=output)
    m.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss=loss)
    a = m.predict(X, verbose=0)
    if loss == "binary_crossentropy":
        expected = np.mean(-Y * np.log(a) - (1 - Y) * np.log(1 - a))
    else:
        expected = np.mean((a - Y) ** 2)
    assert m.evaluate(X, Y, verbose=0) == pytest.approx(expected, rel=1e-12)
    net = engine.Network([6, 8, 5, 3], activation=["relu", "tanh"],
                         output="identity" if output == "linear" else output,
                         cost="cross_entropy" if loss == "binary_crossentropy" else "quadratic",
                         seed=1)
    net._params[...] = m.network._params
    h = m.fit(X, Y, batch_size=60, epochs=1, shuffle=False, verbose=0)
    net.fit(X, Y, batch_size=60, epochs=1, lr=0.1 * scale, shuffle=False)
    assert relative_error(m.network._params, net._params) <= 1e-12
    assert h.history["loss"][0] == pytest.approx(expected, rel=1e-12)


def test_batch_normalization_keeps_keras_moving_statistics():
    """Keras' rule: moving ← momentum·moving + (1 − momentum)·batch value, with the biased
    batch variance, and epsilon in prediction; a Dense bias before it is folded into the
    moving mean (Keras measures the mean after adding it)."""
    X, y = data()
    m = model(layers.Dense(4), layers.BatchNormalization(momentum=0.9, epsilon=0.01),
              layers.Activation("relu"), layers.Dense(3, activation="softmax"))
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    weights = m.get_weights()
    weights[1] = np.array([0.5, -1.0, 2.0, 0.0])  # the Dense bias before batch norm
    m.set_weights(weights)
    z = X @ weights[0] + weights[1]
    m.fit(X, y, batch_size=60, epochs=1, shuffle=False, verbose=0)
    after = m.get_weights()
    np.testing.assert_allclose(after[1], weights[1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(after[4], 0.1 * z.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(after[5], 0.9 + 0.1 * z.var(axis=0), rtol=1e-12)
    kernel, bias, gamma, beta, mean, var, k2, b2 = after
    h = np.maximum(gamma * (X @ kernel + bias - mean) / np.sqrt(var + 0.01) + beta, 0)
    logits = h @ k2 + b2
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    assert relative_error(m.predict(X, verbose=0), expected) <= 1e-12


def test_validation_split_holds_out_the_last_samples():
    X, y = data(n=50)
    m = mlp()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(X, y, batch_size=8, epochs=2, validation_split=0.2, verbose=0)
    assert sorted(h.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    val_loss, val_accuracy = m.evaluate(X[40:], y[40:], verbose=0)
    assert h.history["val_loss"][-1] == val_loss
    assert h.history["val_accuracy"][-1] == val_accuracy
    assert h.history["accuracy"][-1] == m.evaluate(X[:40], y[:40], verbose=0)[1]


def test_categorical_and_binary_accuracy():
    X, labels = data()
    Y = np.eye(3)[labels]
    m = mlp()
    m.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    accuracy = np.mean(np.argmax(m.predict(X, verbose=0), axis=1) == labels)
    assert m.evaluate(X, Y, verbose=0)[1] == accuracy
    b = mlp(output="sigmoid", units=1)
    b.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    target = (labels > 0).astype(float)
    expected = np.mean((b.predict(X, verbose=0)[:, 0] > 0.5) == target)
    assert b.evaluate(X, target, return_dict=True, verbose=0)["accuracy"] == expected


def test_keras_style_callbacks_see_logs_and_can_stop_training():
    X, y = data()
    seen = []

    class StopAfterTwo:
        def on_epoch_end(self, epoch, logs):
            seen.append((epoch, sorted(logs)))
            if epoch == 1:
                self.model.stop_training = True

    m = mlp()
    m.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    h = m.fit(X, y, epochs=5, validation_data=(X, y), callbacks=[StopAfterTwo()],
              verbose=0)
    assert len(h.history["loss"]) == 2 and h.epoch == [0, 1]
    assert seen == [(e, ["accuracy", "loss", "val_accuracy", "val_loss"]) for e in (0, 1)]


def test_weights_round_trip_in_keras_order_and_shapes():
    m = model(layers.Dense(7, activation="sigmoid"), layers.Dropout(0.3),
              layers.Dense(4, use_bias=False), layers.BatchNormalization(),
              layers.Activation("tanh"), layers.Dense(2, activation="softmax"))
    shapes = [w.shape for w in m.get_weights()]
    assert shapes == [(6, 7), (7,), (7, 4), (4,), (4,), (4,), (4,), (4, 2), (2,)]
    new = [np.full(s, 0.1 * (i + 1)) for i, s in enumerate(shapes)]
    m.set_weights(new)
    for got, want in zip(m.get_weights(), new):
        np.testing.assert_array_equal(got, want)
    assert m.count_params() == 6 * 7 + 7 + 7 * 4 + 4 * 4 + 4 * 2 + 2
    with pytest.raises(ValueError, match=r"weights\[2\] must have shape \(7, 4\)"):
        m.set_weights(new[:2] + [np.zeros((4, 7))] + new[3:])
    with pytest.raises(ValueError, match="needs 9 arrays; got 8"):
        m.set_weights(new[:-1])


def test_summary_of_the_issues_model(capsys):
    m = engine.Sequential([layers.Input((784,)), layers.Dense(512, activation="relu"),
                           layers.Dropout(0.2), layers.Dense(256),
                           layers.BatchNormalization(), layers.Activation("tanh"),
                           layers.Dense(10, activation="softmax")])
    m.summary()
    out = capsys.readouterr().out
    total = 784 * 512 + 512 + 512 * 256 + 256 + 4 * 256 + 256 * 10 + 10
    assert m.count_params() == total
    assert f"Total params: {total:,}" in out
    assert f"Non-trainable params: {2 * 256:,}" in out
    assert "dense_1 (Dense)" in out and "(None, 256)" in out and "401,920" in out


def test_progress_output_per_epoch(capsys):
    X, y = data()
    m = mlp()
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(X, y, batch_size=10, epochs=2, verbose=1)
    out = capsys.readouterr().out
    assert out.count("Epoch 1/2") == 1 and out.count("Epoch 2/2") == 1
    assert len([line for line in out.splitlines() if line.startswith("6/6 [") and
                "- loss: " in line and "- accuracy: " in line]) == 2
    m.fit(X, y, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""


def test_save_and_load_continue_training_identically(tmp_path):
    X, y = data()
    m = model(layers.Dense(8), layers.BatchNormalization(), layers.Activation("relu"),
              layers.Dropout(0.2), layers.Dense(3, activation="softmax"))
    m.compile(optimizer=optimizers.Adagrad(learning_rate=0.05),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(X, y, batch_size=16, epochs=1, verbose=0)
    loaded = engine.load(m.save(tmp_path / "model.npz"))
    assert isinstance(loaded, engine.Sequential)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in m.layers]
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), m.predict(X, verbose=0))
    for model_ in (m, loaded):
        model_.fit(X, y, batch_size=16, epochs=1, verbose=0)
    for a, b in zip(loaded.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_optimizers_by_name_take_keras_defaults():
    assert vars(optimizers.get("adam")) == dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                                                epsilon=1e-7)
    assert vars(optimizers.get("RMSprop")) == dict(learning_rate=0.001, rho=0.9, epsilon=1e-7)
    assert vars(optimizers.get("adagrad")) == dict(learning_rate=0.001,
                                                   initial_accumulator_value=0.1, epsilon=1e-7)
    assert vars(optimizers.get("sgd")) == dict(learning_rate=0.01, momentum=0.0,
                                               nesterov=False)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        optimizers.get("adamw")


@pytest.mark.parametrize("stack,match", [
    ([layers.Dense(4, activation="tanh"), layers.BatchNormalization(), layers.Activation("relu"),
      layers.Dense(2)], "must follow a Dense layer without activation"),
    ([layers.Dense(4), layers.Dropout(0.1), layers.BatchNormalization(), layers.Dense(2)],
     "before any Dropout"),
    ([layers.Dense(4, activation="softmax"), layers.Dense(2)], "softmax is for the output"),
    ([layers.Dropout(0.5), layers.Dense(2)], "comes before any Dense layer"),
    ([layers.Dense(4), layers.Dense(2), layers.Dropout(0.1)], "the output layer"),
    ([layers.Dense(4, use_bias=False), layers.Dense(2)], "use_bias=False"),
])
def test_stacks_the_engine_cannot_run_are_refused_by_name(stack, match):
    with pytest.raises(ValueError, match=match):
        model(*stack).build()


def test_compile_and_fit_errors_name_the_problem():
    X, y = data()
    m = mlp()
    with pytest.raises(RuntimeError, match="compile"):
        m.fit(X, y)
    with pytest.raises(ValueError, match="'sigmoid' output"):
        m.compile(optimizer="sgd", loss="binary_crossentropy")
    with pytest.raises(ValueError, match="loss must be one of"):
        m.compile(optimizer="sgd", loss="hinge")
    m.compile(optimizer="sgd", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match=r"targets of shape \(60, 3\)"):
        m.fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features"):
        m.predict(X[:, :5])

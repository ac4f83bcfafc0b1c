"""Nothing lost: an entry point that replaces state either succeeds or leaves the network as
it was; paths that cannot be written fail before training; one rule names model files."""

import json

import numpy as np
import pytest

import engine
from engine import cli
from conftest import make_classification


def _state(net):
    """Everything training or resuming may replace, as comparable values."""
    return (net._params.tobytes(), net._bn_running.tobytes(), net._opt_name,
            net._opt_slots.tobytes(), int(net._opt_step[0]),
            json.dumps(net.rng.bit_generator.state), json.dumps(net.history),
            net._task, net.normalization, net.best_epoch)


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory):
    """A checkpoint of 2 epochs of a [4, 6, 3] network (numpy backend: no compilation)."""
    X, y = make_classification(60, 4, 3, seed=1)
    path = tmp_path_factory.mktemp("ck") / "ck.npz"
    engine.Network([4, 6, 3], backend="numpy", seed=7).fit(
        X, y, epochs=2, batch_size=10, lr=0.5, checkpoint=path, validation_data=(X, y))
    return X, y, path


def _fresh():
    return engine.Network([4, 6, 3], backend="numpy", seed=3)


@pytest.mark.parametrize("change,message", [
    (dict(batch_size=32), "batch_size: checkpoint 10, now 32"),
    (dict(X="nan"), "NaN"),
    (dict(validation="bad"), "validation y"),
    (dict(validation="none"), "n_validation: checkpoint 60, now 0"),
    (dict(lr_schedule="broken"), "learning rate"),
])
def test_a_refused_resume_leaves_the_network_as_it_was(checkpointed, change, message):
    X, y, path = checkpointed
    net = _fresh()
    net.fit(X, y, epochs=1, batch_size=10, lr=0.5)  # some state of its own
    before = _state(net)
    X_in = X.copy()
    if change.get("X") == "nan":
        X_in[3, 1] = np.nan
    validation = (X, y)
    if change.get("validation") == "bad":
        validation = (X, y + 10)
    elif change.get("validation") == "none":
        validation = None

    class Broken(engine.training.Constant):
        def start(self, lr, n_samples):
            return -1.0

    schedule = Broken() if change.get("lr_schedule") else "constant"
    with pytest.raises(ValueError, match=message):
        net.fit(X_in, y, epochs=3, batch_size=change.get("batch_size", 10), lr=0.5,
                resume=path, validation_data=validation, lr_schedule=schedule)
    assert _state(net) == before


def test_resume_finds_the_file_checkpoint_wrote(tmp_path):
    """checkpoint="run2" writes run2.npz; resume="run2" and engine.load("run2") find it."""
    X, y = make_classification(40, 4, 3, seed=2)
    first = _fresh()
    first.fit(X, y, epochs=1, batch_size=10, lr=0.5, checkpoint=tmp_path / "run2")
    assert (tmp_path / "run2.npz").is_file() and not (tmp_path / "run2").exists()
    whole = _fresh()
    whole.fit(X, y, epochs=2, batch_size=10, lr=0.5)
    resumed = _fresh()
    resumed.fit(X, y, epochs=2, batch_size=10, lr=0.5, resume=tmp_path / "run2")
    np.testing.assert_array_equal(resumed._params, whole._params)
    assert engine.load(tmp_path / "run2", backend="numpy").history["loss"] == \
        first.history["loss"]


@pytest.mark.parametrize("where", ["missing folder", "folder", "under a file"])
def test_an_unwritable_checkpoint_fails_before_training(tmp_path, where):
    X, y = make_classification(40, 4, 3, seed=2)
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "taken.npz").mkdir()
    path = {"missing folder": tmp_path / "nowhere" / "ck.npz",
            "folder": tmp_path / "taken.npz",
            "under a file": tmp_path / "a_file" / "ck.npz"}[where]
    net = _fresh()
    before = _state(net)
    calls = []
    with pytest.raises(OSError, match="cannot save a model to .*ck.npz|taken.npz"):
        net.fit(X, y, epochs=2, batch_size=10, lr=0.5, checkpoint=path,
                callbacks=[lambda epoch, history: calls.append(epoch)])
    assert calls == [] and _state(net) == before


def test_weights_and_biases_are_adopted_together_or_not_at_all():
    net = _fresh()
    before = _state(net)
    net.weights[0] = np.ones_like(net.weights[0])
    net.biases[1] = np.full(3, np.nan)
    with pytest.raises(ValueError, match=r"biases\[1\] must hold finite numbers"):
        net.predict(np.zeros((1, 4)))
    assert _state(net) == before  # the good weights[0] was not written either
    with pytest.raises(ValueError, match=r"weights\[1\] must have shape"):
        net.weights = [np.zeros((6, 4)), np.zeros((2, 6))]
    assert _state(net) == before


def test_command_line_resume_with_other_settings_and_unwritable_out(tmp_path, private_places,
                                                                    capsys):
    common = ["train", "--data", "mnist-sample", "--limit", "60", "--no-progress",
              "--backend", "numpy", "--sizes", "784,10"]
    ck = tmp_path / "ck"
    assert cli.main(common + ["--epochs", "1", "--out", str(tmp_path / "a"),
                              "--checkpoint", str(ck)]) == 0
    assert (tmp_path / "ck.npz").is_file()
    # --checkpoint ck finds ck.npz (the name rule) and refuses other settings.
    assert cli.main(common + ["--epochs", "2", "--lr", "1.0", "--out", str(tmp_path / "b"),
                              "--checkpoint", str(ck), "--resume"]) == 1
    assert "other settings" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert cli.main(common + ["--epochs", "1", "--out", str(tmp_path / "c"),
                              "--checkpoint", str(tmp_path / "file" / "ck")]) == 1
    err = capsys.readouterr()
    assert "cannot save a model to" in err.err and "Epoch 0" not in err.out


def test_command_line_error_mid_run_saves_what_was_trained(tmp_path, private_places, capsys):
    """Training diverges in a later epoch: the command reports it in one line, exits 1 and
    still writes the model of the complete epochs and the history."""
    out = tmp_path / "run"
    status = cli.main(["train", "--data", "housing", "--epochs", "50", "--lr", "40",
                       "--no-progress", "--backend", "numpy", "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "diverged" in lines[0] and "Saved the model" in lines[0]
    record = json.loads((out / "history.json").read_text())
    net = engine.load(out / "model.npz", backend="numpy")
    assert record["error"].startswith("DivergenceError")
    assert len(net.history["loss"]) == record["epochs_completed"] >= 1
    assert np.isfinite(net._params).all()

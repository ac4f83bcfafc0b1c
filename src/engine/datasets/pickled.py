"""Nielsen's ``mnist.pkl.gz``, read by an unpickler that builds NumPy arrays of plain numbers
and nothing else, in memory bounded by what the file holds."""

import codecs
import gzip
import io
import math
import pickle
import pickletools
from pathlib import Path

import numpy as np

from ._common import _READ_CHUNK, PARTS, DataFormatError, _is_gzip

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

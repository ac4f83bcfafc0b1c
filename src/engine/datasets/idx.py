"""IDX files (the format of the original MNIST files), plain or gzip-compressed, read in
memory bounded by what the file holds."""

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .. import config
from ._common import _READ_CHUNK, DataFormatError, _is_gzip

_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


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

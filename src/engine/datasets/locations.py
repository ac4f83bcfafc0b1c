"""Where MNIST's files live on this machine: the search order of :func:`find_mnist` and the
per-user cache folder."""

import os
import sys
from pathlib import Path

from ._common import PARTS, _check_parts

_PICKLE_NAMES = ("mnist.pkl.gz", "mnist.pkl")


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

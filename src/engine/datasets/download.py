"""Downloading MNIST's IDX files from public mirrors, checked against their MD5 sums, and the
message that says what to put where when that is impossible."""

import hashlib
import os
import urllib.request
from pathlib import Path

from ._common import _READ_CHUNK, PARTS, DataNotFoundError, _check_parts
from .locations import _idx_file, _search_folders, _stems, cache_dir

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

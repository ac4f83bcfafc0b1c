"""Models on disk, the file format: :func:`save` writes one network per ``.npz`` file and
:func:`read` checks one and returns its contents (:func:`engine.load` builds the model).

File layout (format version 3)
------------------------------
An ordinary NumPy ``.npz`` archive, written without pickles, so ``numpy.load(path,
allow_pickle=False)`` opens it anywhere:

``metadata``
    A 0-d string array holding a JSON object: ``format`` (``"engine.network"``),
    ``format_version`` (3), ``engine_version``, ``sizes``, ``activation`` (a name, or one
    per hidden layer), ``output``,
    ``cost``, ``init``, ``dtype``, ``task`` (``"classification"``, ``"regression"`` or
    null), ``normalization`` (null, or the list of statistics stored below), ``history``
    (the per-epoch lists of :attr:`engine.Network.history`), and since version 2
    ``batch_norm`` (one flag per hidden layer), ``optimizer`` (``{"name", "step"}``: the
    optimiser whose memory is stored below), ``rng_state`` (the network generator's
    ``bit_generator.state``, so that shuffling and dropout continue where they stopped)
    and ``training`` (null, or a training checkpoint's progress: see
    :mod:`engine.training`); since version 3 ``sequential`` (null, or the layers and
    compile settings of an :class:`engine.Sequential` model, which :func:`engine.load` returns).
``weights_0`` … ``weights_{L-1}``, ``biases_0`` … ``biases_{L-1}``
    Shapes ``(sizes[l+1], sizes[l])`` and ``(sizes[l+1], 1)``, in the model's dtype.
``normalization_mean``, ``normalization_scale`` (and ``normalization_target_mean``,
``normalization_target_scale`` for regression targets)
    float64 statistics of :class:`engine.normalization.Normalization`, present when the
    model has one.
``batch_norm_params``, ``batch_norm_running``
    Batch normalisation's γ then β of every normalised unit, and their running mean and
    variance (shape ``(2, units)``), in the model's dtype; present when it has any.
``optimizer_<slot>``
    The optimiser's memory, one flat array per slot named as in ``torch.optim``
    (``momentum_buffer``, ``sum``, ``square_avg``, ``exp_avg``, ``exp_avg_sq``), laid out
    like the parameters (weights and biases layer by layer, then γ and β).
``training_<name>``
    Arrays a training checkpoint needs (early stopping's best parameters).

Version 1 and 2 files (without the later fields) still load.

Files are written atomically by :func:`atomic_write`: to a temporary file in the same folder,
flushed to disk, then renamed over the target, so a crash, Ctrl-C or SIGKILL never leaves a
half-written model: the file holds the previous model or the new one. A process killed while
writing leaves its temporary file (``.{name}.{host}-{pid}-{random}.tmp``) behind; the next save
to the same path removes it. Loading checks every field and shape and raises
:class:`ModelFileError` naming the file and the problem.
A later engine that stores more bumps ``format_version``; this one
refuses such files with a message saying so rather than guessing.
"""

import hashlib
import json
import math
import numbers
import os
import re
import secrets
import socket
import time
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import config
from ._version import __version__
from .initializers import SCHEMES
from .kernels import codes

FORMAT = "engine.network"
FORMAT_VERSION = 3
_TASKS = (None, "classification", "regression")
_META_KEYS_V1 = {"format", "format_version", "engine_version", "sizes", "activation",
                 "output", "cost", "init", "dtype", "task", "normalization", "history"}
_META_KEYS = {1: _META_KEYS_V1,
              2: _META_KEYS_V1 | {"batch_norm", "optimizer", "rng_state", "training"}}
_META_KEYS[3] = _META_KEYS[2] | {"sequential"}
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class ModelRecord(NamedTuple):
    """What :func:`read` found in a model file, checked."""

    path: Path
    meta: dict
    arrays: dict

    def training_arrays(self):
        """A checkpoint's arrays (``training_<name>`` members) by ``<name>``."""
        return {name[len("training_"):]: arr for name, arr in self.arrays.items()
                if name.startswith("training_")}


class ModelFileError(ValueError):
    """A model file is missing pieces, damaged, or from a newer engine; the message names the
    file and the problem."""


def save(net, path, training=None, sequential=None):
    """Write ``net`` to ``path`` as an ``.npz`` model file, atomically.

    The previous file at ``path``, if any, stays intact until the new one is complete
    (see :func:`atomic_write`).

    Parameters
    ----------
    net : engine.Network
    path : str or os.PathLike
        Target file; ``.npz`` is appended when the name has another suffix (as
        :func:`numpy.savez` does). The folder must exist.
    training : (dict, dict of arrays), optional
        A training checkpoint's progress (JSON-able) and arrays (see
        :func:`engine.training.checkpoint_state`).
    sequential : dict, optional
        The layers and compile settings of the :class:`engine.Sequential` model that runs
        on ``net`` (its ``get_config()``); :func:`engine.load` then returns that model.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        If ``net.history`` holds something other than lists of numbers.
    """
    path = model_path(path)
    net._sync_parameters()
    arrays = {}
    for layer, (w, b) in enumerate(zip(net.weights, net.biases)):
        arrays[f"weights_{layer}"] = w
        arrays[f"biases_{layer}"] = b
    norm = net.normalization
    if norm is not None:
        for name, values in norm.arrays().items():
            arrays[f"normalization_{name}"] = values
    if net._n_bn:
        arrays["batch_norm_params"] = net._params[net._params.size - 2 * net._n_bn:]
        arrays["batch_norm_running"] = net._bn_running
    optimizer = net._optimizer_state()
    for slot in codes.SLOTS[optimizer["optimizer"]]:
        arrays[f"optimizer_{slot}"] = optimizer[slot]
    progress = None
    if training is not None:
        progress, extra = training
        for name, values in extra.items():
            arrays[f"training_{name}"] = values
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "engine_version": __version__,
        "sizes": list(net.sizes), "output": net.output,
        "activation": (net.activation if isinstance(net.activation, str)
                       else list(net.activation)),
        "cost": net.cost, "init": net.init, "dtype": net.dtype.name, "task": net._task,
        "normalization": None if norm is None else list(norm.arrays()),
        "history": _history_for_json(net.history),
        "batch_norm": list(net.batch_norm),
        "optimizer": {"name": optimizer["optimizer"], "step": optimizer["step"]},
        "rng_state": net.rng.bit_generator.state,
        "training": progress,
        "sequential": sequential,
    }
    arrays["metadata"] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: _write_npz(f, arrays))
    return path


def read(path):
    """Read and check a model file written by :func:`save`: the file format only
    (:func:`engine.load` builds the model from what this returns).

    Parameters
    ----------
    path : str or os.PathLike
        The file; a name without ``.npz`` that names no file means the file :func:`save`
        wrote for it, ``path + ".npz"`` (:func:`model_path`).

    Returns
    -------
    ModelRecord
        The file's path, its metadata (every field checked, older versions' missing
        fields filled in) and its arrays by member name (names and shapes checked against
        the metadata).

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ModelFileError
        If the file is not a model file, is damaged, misses or has unexpected fields or
        shapes, or comes from a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        path = model_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    # Memory in proportion to what the file honestly holds: the metadata first, then every
    # member's name, and every array's header against the shapes the metadata declare,
    # before any other member is decompressed or the network is allocated.
    with _Archive(path) as archive:
        meta = _metadata(path, {"metadata": archive.array("metadata")}
                         if "metadata" in archive.members else {})
        sizes = meta["sizes"]
        expected = {"metadata"} | {f"{kind}_{layer}" for layer in range(len(sizes) - 1)
                                   for kind in ("weights", "biases")}
        expected |= {f"normalization_{name}" for name in meta["normalization"] or ()}
        if any(meta["batch_norm"]):
            expected |= {"batch_norm_params", "batch_norm_running"}
        expected |= {f"optimizer_{slot}" for slot in codes.SLOTS[meta["optimizer"]["name"]]}
        expected |= {name for name in archive.members if name.startswith("training_")}
        if set(archive.members) != expected:
            missing = sorted(expected - set(archive.members))
            extra = sorted(set(archive.members) - expected)
            raise ModelFileError(f"{path}: arrays do not match the metadata (missing: "
                                 f"{missing or 'none'}; unexpected: {extra or 'none'})")
        dtype = np.dtype(meta["dtype"])
        for name, shape in _parameter_shapes(meta).items():
            found_dtype, found_shape = archive.header(name)
            if found_shape != shape or found_dtype != dtype:
                raise ModelFileError(f"{path}: {name} should be {dtype.name} of shape {shape}; "
                                     f"found {found_dtype} of shape {found_shape}")
        for name in expected - {"metadata"}:
            archive.header(name)  # each one's declared size against its member's
        arrays = {name: archive.array(name) for name in expected - {"metadata"}}
    return ModelRecord(path, meta, arrays)


def model_path(path):
    """The file a model or checkpoint named ``path`` is written to: ``path`` itself when it
    ends in ``.npz``, else ``path + ".npz"`` (as :func:`numpy.savez` names it). The one
    rule for names: :func:`save`, :func:`read`, ``fit(checkpoint=, resume=)`` and the
    command line's ``--checkpoint`` all follow it."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def writable(path):
    """Check, before any work is done, that a model can be saved to ``path`` (named by
    :func:`model_path`): its folder exists and takes a new file, and ``path`` is no
    folder. Returns the file's path; raises an :class:`OSError` naming it otherwise.

    The check creates and removes a temporary file as :func:`atomic_write` does, so it
    asks the file system itself (permissions, read-only mounts, a full quota's refusal
    to create files) rather than guessing from mode bits."""
    path = model_path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot save a model to {path}: it is a folder")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot save a model to {path}: the folder {path.parent} "
                                f"does not exist")
    probe = path.with_name(f".{path.name}.{_host_tag()}-{os.getpid()}-"
                           f"{secrets.token_hex(4)}.tmp")
    try:
        open(probe, "xb").close()
    except OSError as exc:
        raise type(exc)(f"cannot save a model to {path}: {exc.strerror or exc}") from None
    probe.unlink(missing_ok=True)
    return path


def _history_for_json(history):
    if not isinstance(history, dict):
        raise ValueError(f"net.history must be a dict of per-epoch lists; got "
                         f"{type(history).__name__}")
    out = {}
    for key, values in history.items():
        if not isinstance(key, str) or not isinstance(values, (list, tuple, np.ndarray)):
            raise ValueError(f"net.history[{key!r}] must be a list of numbers under a string key")
        row = []
        for v in values:
            if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real)):
                raise ValueError(f"net.history[{key!r}] holds {v!r}; only numbers can be saved")
            row.append(None if v is None else float(v) if not isinstance(v, numbers.Integral)
                       else int(v))
        out[key] = row
    return out


def _write_npz(f, arrays):
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)


# Temporary files of atomic_write: ".{target}.{host}-{pid}-{random}.tmp" in the target's folder.
_TEMP_REST = re.compile(r"(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-[0-9a-f]{8}\.tmp")
#: Seconds after which any leftover temporary file of :func:`atomic_write` counts as stale,
#: whoever wrote it (no save takes a day).
STALE_TEMP_AGE = 24 * 3600


def atomic_write(path, write, *, fsync=True):
    """Replace the file at ``path`` with what ``write`` writes, all at once.

    ``write(f)`` gets a binary file object open on a new temporary file in the same folder,
    named ``.{name}.{host}-{pid}-{random}.tmp``. When it returns, the data are flushed and
    fsync'ed, the temporary file is renamed over ``path`` with :func:`os.replace` (atomic on
    POSIX and Windows within one folder) and the folder is fsync'ed, so the rename itself
    survives a power cut. Until the rename, ``path`` keeps its previous content: readers,
    and a process that dies at any moment, see the old file or the new one, never part of
    either.

    If ``write`` raises (Ctrl-C included) the temporary file is removed and ``path`` is left
    as it was. A process killed outright (SIGKILL, OOM killer, power cut) cannot remove its
    temporary file, so each ``atomic_write`` ends by removing the leftovers for the same
    ``path`` whose writer is gone: those from this host whose process no longer exists
    (POSIX), and any older than :data:`STALE_TEMP_AGE`. Temporary files of writers still
    running are left alone, so concurrent writers never break each other; the last rename
    wins.

    Parameters
    ----------
    path : str or os.PathLike
        The file to create or replace; its folder must exist. Its permissions become those
        of a new file (the umask applies), not the replaced file's.
    write : callable
        Called once as ``write(f)``; its return value is ignored.
    fsync : bool
        Flush the file and the folder to the disk (default). ``False`` is faster for
        frequent writes and keeps the all-or-nothing replacement if the program dies, but
        after an operating-system crash or power cut the file may hold the old data, the
        new, or (on some file systems) nothing.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        # "x": a name only this call uses, created with the usual umask.
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_folder(path.parent)
    _remove_stale_temps(path)
    return path


def _host_tag():
    return hashlib.blake2s(socket.gethostname().encode(), digest_size=4).hexdigest()


def _remove_stale_temps(path):
    """Best effort: a leftover that cannot be removed now is tried again next time."""
    prefix, host, now = f".{path.name}.", _host_tag(), time.time()
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        match = _TEMP_REST.fullmatch(entry.name[len(prefix):])
        if match is None:
            continue
        try:
            stale = now - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP_AGE or (
                match["host"] == host and _process_gone(int(match["pid"])))
            if stale:
                os.unlink(entry.path)
        except OSError:
            pass


def _process_gone(pid):
    """True only when ``pid`` certainly names no running process on this host."""
    if os.name != "posix" or pid <= 0:
        return False  # on Windows os.kill(pid, 0) would terminate the process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, under another user
        return False
    return False


def _fsync_folder(folder):
    """Make the rename itself durable where the platform allows it (POSIX)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _parameter_shapes(meta):
    """The shape of every parameter-sized array the metadata declare (weights, biases,
    batch normalisation, optimiser slots), from the metadata alone."""
    sizes = meta["sizes"]
    shapes = {}
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"weights_{layer}"] = (n_out, n_in)
        shapes[f"biases_{layer}"] = (n_out, 1)
    n_bn = sum(n for n, flag in zip(sizes[1:-1], meta["batch_norm"]) if flag)
    if n_bn:
        shapes["batch_norm_params"] = (2 * n_bn,)
        shapes["batch_norm_running"] = (2, n_bn)
    n_params = sum(n_out * (n_in + 1) for n_in, n_out in zip(sizes[:-1], sizes[1:])) + 2 * n_bn
    for slot in codes.SLOTS[meta["optimizer"]["name"]]:
        shapes[f"optimizer_{slot}"] = (n_params,)
    return shapes


class _Archive:
    """The ``.npy`` members of a model file, read one at a time and only on request.

    Opening reads the zip's directory alone. Every member must be a ``.npy`` array; the
    bytes the members declare, decompressed, may be at most
    :data:`engine.config.MODEL_MAX_INFLATION` times the file's size; :meth:`header` reads
    an array's header and checks that the member holds exactly the bytes it declares,
    :meth:`array` reads the array (never a pickle). Every failure is a
    :class:`ModelFileError` naming the file."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        try:
            self.zip = zipfile.ZipFile(self.path)
            infos = self.zip.infolist()
        except Exception as exc:  # zipfile raises half a dozen types for damaged archives
            self.fail(f"not a readable .npz model file ({type(exc).__name__}: {exc})")
        self.members = {}
        for info in infos:
            if not info.filename.endswith(".npy"):
                self.close()
                self.fail(f"not a model file: member {info.filename[:80]!r} is not a .npy "
                          f"array")
            self.members[info.filename[:-len(".npy")]] = info
        if len(self.members) != len(infos):
            self.close()
            self.fail("not a model file: a member name appears twice")
        declared = sum(info.file_size for info in infos)
        allowed = config.MODEL_MAX_INFLATION * max(os.path.getsize(self.path), 1)
        if declared > allowed:
            self.close()
            self.fail(f"its members would take {declared:,} bytes decompressed, more than "
                      f"{config.MODEL_MAX_INFLATION} times the file's size; model files "
                      f"are not that compressible")
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.zip.close()

    def fail(self, message):
        raise ModelFileError(f"{self.path}: {message}") from None

    def header(self, name):
        """``(dtype, shape)`` from member ``name``'s header, checked against its size."""
        info = self.members[name]
        try:
            with self.zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:  # 3.0 exists only for dtypes with non-Latin-1 field names
                    raise ValueError(f"npy format version {version} is not used by models")
                offset = f.tell()
        except Exception as exc:
            self.fail(f"{name} is not a readable array ({type(exc).__name__}: {exc})")
        if dtype.hasobject:
            self.fail(f"{name} holds Python objects, which model files never do")
        if offset + math.prod(shape) * dtype.itemsize != info.file_size:
            self.fail(f"{name} declares shape {shape} of {dtype}, but its member holds "
                      f"{info.file_size - offset:,} bytes of data")
        return dtype, shape

    def array(self, name):
        self.header(name)
        try:
            with self.zip.open(self.members[name]) as f:
                return np.lib.format.read_array(f, allow_pickle=False)
        except Exception as exc:
            self.fail(f"not a readable .npz model file ({type(exc).__name__}: {exc})")


def _metadata(path, arrays):
    raw = arrays.get("metadata")
    if raw is None or raw.shape != () or raw.dtype.kind != "U":
        raise ModelFileError(f"{path}: no metadata string; this is not an engine model file")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: the metadata are not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an engine model file (format "
                             f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path} was written in model format version {version} by engine "
                             f"{meta.get('engine_version', '?')}; this engine ({__version__}) "
                             f"reads versions up to {FORMAT_VERSION}. Upgrade engine to load it.")
    keys = _META_KEYS[version]
    if set(meta) != keys:
        raise ModelFileError(f"{path}: metadata fields differ from format version "
                             f"{version} (missing: {sorted(keys - set(meta))}; "
                             f"unexpected: {sorted(set(meta) - keys)})")
    if version == 1:  # what version 1 could not hold
        meta.update(batch_norm=[False] * (len(meta["sizes"]) - 2) if isinstance(
            meta["sizes"], list) else [], optimizer={"name": "sgd", "step": 0},
            rng_state=None, training=None)
    if version < 3:
        meta["sequential"] = None

    def bad(field, expected):
        raise ModelFileError(f"{path}: metadata field {field!r} should be {expected}; "
                             f"found {meta[field]!r}")

    sizes = meta["sizes"]
    if (not isinstance(sizes, list) or len(sizes) < 2
            or any(isinstance(n, bool) or not isinstance(n, int) or n <= 0 for n in sizes)):
        bad("sizes", "a list of at least two positive integers")
    activation = meta["activation"]
    if isinstance(activation, list):  # one per hidden layer
        if (not isinstance(sizes, list) or len(activation) != len(sizes) - 2
                or any(not isinstance(a, str) or a not in codes.ACTIVATIONS
                       for a in activation)):
            bad("activation", f"one of {sorted(codes.ACTIVATIONS)} or a list of them, one "
                              f"per hidden layer")
    elif not isinstance(activation, str) or activation not in codes.ACTIVATIONS:
        bad("activation", f"one of {sorted(codes.ACTIVATIONS)} or a list of them, one per "
                          f"hidden layer")
    for field, valid in (("output", codes.OUTPUTS), ("cost", codes.COSTS), ("init", SCHEMES),
                         ("dtype", ("float64", "float32"))):
        if not isinstance(meta[field], str) or meta[field] not in valid:
            bad(field, f"one of {sorted(valid)}")
    if meta["task"] not in _TASKS:
        bad("task", "'classification', 'regression' or null")
    if not isinstance(meta["engine_version"], str):
        bad("engine_version", "a string")
    flags = meta["batch_norm"]
    if (not isinstance(flags, list) or len(flags) != len(sizes) - 2
            or any(not isinstance(f, bool) for f in flags)):
        bad("batch_norm", f"a list of {len(sizes) - 2} booleans (one per hidden layer)")
    optimizer = meta["optimizer"]
    if (not isinstance(optimizer, dict) or set(optimizer) != {"name", "step"}
            or not isinstance(optimizer["name"], str) or optimizer["name"] not in codes.SLOTS
            or isinstance(optimizer["step"], bool) or not isinstance(optimizer["step"], int)
            or optimizer["step"] < 0):
        bad("optimizer", f"an object with 'name' (one of {sorted(codes.SLOTS)}) and a "
                         f"non-negative integer 'step'")
    rng_state = meta["rng_state"]
    if rng_state is not None and (not isinstance(rng_state, dict) or rng_state.get(
            "bit_generator") not in _BIT_GENERATORS):
        bad("rng_state", f"null or a numpy bit generator state ({', '.join(_BIT_GENERATORS)})")
    if meta["training"] is not None and not isinstance(meta["training"], dict):
        bad("training", "null or an object")
    if meta["sequential"] is not None and not isinstance(meta["sequential"], dict):
        bad("sequential", "null or an object")
    norm = meta["normalization"]
    allowed = (["mean", "scale"], ["mean", "scale", "target_mean", "target_scale"])
    if norm is not None and norm not in allowed:
        bad("normalization", f"null or one of {allowed}")
    history = meta["history"]
    if not isinstance(history, dict) or any(
            not isinstance(v, list) or any(x is not None and (isinstance(x, bool) or not
                                                              isinstance(x, (int, float)))
                                           for x in v)
            for v in history.values()):
        bad("history", "an object of lists of numbers")
    return meta


def history_to_json(history):
    """``history`` with NaN and infinities as null, for strict JSON readers."""
    return {k: [None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v
                for v in vals] for k, vals in _history_for_json(history).items()}

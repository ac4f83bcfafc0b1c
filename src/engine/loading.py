"""``engine.load``: a model file back as the model it holds.

:mod:`engine.io` reads and checks the file; this module, above both model classes, builds
a :class:`~engine.Network`, or the :class:`~engine.Sequential` model saved around one.
"""

from . import io
from .network import Network
from .sequential import Sequential


def load(path, backend="numba"):
    """Read a model written by :meth:`engine.Network.save` (or :func:`engine.io.save`,
    or :meth:`engine.Sequential.save`).

    Parameters
    ----------
    path : str or os.PathLike
        The file; a name without ``.npz`` that names no file means the file ``save``
        wrote for it, ``path + ".npz"`` (:func:`engine.io.model_path`).
    backend : str
        Backend of the returned model (the file does not fix where it runs).

    Returns
    -------
    engine.Network or engine.Sequential
        Same parameters (bit for bit), architecture, normalisation, batch normalisation,
        optimiser memory, random generator state and history; a Sequential model also its
        layers and compile settings.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    engine.io.ModelFileError
        If the file is not a model file, is damaged, misses or has unexpected fields or
        shapes, or comes from a newer format version.
    """
    record = io.read(path)
    net = Network._from_record(record, backend)
    saved_layers = record.meta["sequential"]
    if saved_layers is None:
        return net
    try:
        return Sequential._from_saved(net, saved_layers)
    except (TypeError, ValueError, KeyError) as exc:
        raise io.ModelFileError(f"{record.path}: the metadata describe no valid Sequential "
                                f"model: {exc}") from None

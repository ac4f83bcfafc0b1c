"""Boston housing: the classic ``housing.data`` or mlxtend's copy, split in file order with
the training part's normalisation statistics."""

from pathlib import Path

from ..normalization import Normalization
from ._common import DataNotFoundError, Dataset
from .tables import mlxtend_file, read_table


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
        file = mlxtend_file("boston_housing.csv")
    else:
        file = Path(path)
        if file.is_dir():
            file = file / "housing.data"
        if not file.is_file():
            raise DataNotFoundError(f"no housing data at {file}")
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must lie strictly between 0 and 1; "
                         f"got {train_fraction}")
    table = read_table(file, 14)
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

"""PNG figures: learning curves, a confusion matrix, predicted against actual values.

Drawn on matplotlib's Agg canvas directly rather than through ``pyplot``: nothing needs a
display, and a user's interactive backend and open figures are left alone.
"""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_LABELS = {"": "training", "val_": "validation", "test_": "test"}


def _figure(width, height):
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def learning_curves(history, path, title=""):
    """Plot loss (and accuracy, when recorded) per epoch, training and held-out, to a PNG.

    Parameters
    ----------
    history : dict
        Lists per epoch under ``"loss"``, ``"val_loss"`` or ``"test_loss"``, and optionally
        ``"accuracy"``, ``"val_accuracy"``, ``"test_accuracy"`` (missing keys are skipped).
    path : str or os.PathLike
    title : str
    """
    metrics = [m for m in ("loss", "accuracy") if any(p + m in history for p in _LABELS)]
    fig = _figure(5 * len(metrics), 3.8)
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for prefix, label in _LABELS.items():
            values = history.get(prefix + metric)
            if values:
                ys = np.array([np.nan if v is None else v for v in values], dtype=float)
                ax.plot(np.arange(len(ys)), ys, marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=100)


def confusion_matrix(matrix, path, title=""):
    """Draw a confusion matrix (rows: true class, columns: predicted) with counts, to a PNG."""
    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    fig = _figure(6, 5.2)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for r in range(k):
        for c in range(k):
            ax.text(c, r, str(matrix[r, c]), ha="center", va="center", fontsize=7,
                    color="white" if matrix[r, c] > threshold else "black")
    if title:
        ax.set_title(title)
    fig.savefig(path, dpi=100)


def predicted_vs_actual(actual, predicted, path, title=""):
    """Scatter predictions against targets with the line of perfect prediction, to a PNG."""
    actual, predicted = np.ravel(actual), np.ravel(predicted)
    fig = _figure(5, 5)
    ax = fig.add_subplot()
    ax.scatter(actual, predicted, s=12, alpha=0.7)
    lo = float(min(actual.min(), predicted.min()))
    hi = float(max(actual.max(), predicted.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", linewidth=1, label="perfect prediction")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.savefig(path, dpi=100)

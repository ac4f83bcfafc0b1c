"""A picture of one handwritten digit, prepared the way MNIST's images were."""

from pathlib import Path

import numpy as np

from .. import config
from ._common import DataFormatError


def read_digit_image(path):
    """A picture of one handwritten digit, prepared the way MNIST's images were.

    The picture is turned grey, inverted when its background is light (MNIST has white ink
    on black), cropped to the ink, scaled so its longer side is 20 pixels, and placed in a
    28×28 field with its centre of mass at pixel (14, 14), as LeCun et al. did.

    Parameters
    ----------
    path : str or os.PathLike
        Any image Pillow reads (PNG, JPEG, …); transparency counts as background.

    Returns
    -------
    numpy.ndarray
        784 float64 pixels in [0, 1], row by row (a row of ``X`` for MNIST models).

    Raises
    ------
    DataFormatError
        If the file is not an image, or the image is blank.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with warnings.catch_warnings():
            # Pillow warns of a possible decompression bomb from 89 million pixels: an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:  # reads the header only
                pixels = img.width * img.height
                if pixels > config.IMAGE_MAX_PIXELS:
                    raise DataFormatError(
                        f"{path}: {img.width} × {img.height} pixels is more than a digit "
                        f"picture needs (at most {config.IMAGE_MAX_PIXELS:,} pixels); scale "
                        f"it down first")
                rgba = img.convert("RGBA")
    except DataFormatError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise DataFormatError(f"{path}: not an image Pillow can read ({exc})") from None
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    grey = np.asarray(Image.alpha_composite(white, rgba).convert("L"), dtype=np.float64) / 255
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = np.median(border)
    ink = grey if background < 0.5 else 1 - grey
    ink = np.clip(ink - min(background, 1 - background), 0, None)
    if ink.max() <= 0.05:
        raise DataFormatError(f"{path}: no digit found (the image is blank)")
    rows, cols = np.nonzero(ink > 0.1 * ink.max())
    glyph = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1] / ink.max()
    h, w = glyph.shape
    factor = 20 / max(h, w)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    small = Image.fromarray(np.round(glyph * 255).astype(np.uint8)).resize(
        size, Image.Resampling.LANCZOS)
    glyph = np.asarray(small, dtype=np.float64) / 255
    total = glyph.sum()
    cy = (glyph.sum(axis=1) @ np.arange(glyph.shape[0])) / total
    cx = (glyph.sum(axis=0) @ np.arange(glyph.shape[1])) / total
    top = int(np.clip(round(14 - cy), 0, 28 - glyph.shape[0]))
    left = int(np.clip(round(14 - cx), 0, 28 - glyph.shape[1]))
    field = np.zeros((28, 28))
    field[top:top + glyph.shape[0], left:left + glyph.shape[1]] = glyph
    return np.clip(field, 0, 1).reshape(784)

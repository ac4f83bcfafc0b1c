"""Numba CPU kernels: forward pass, backpropagation and the mini-batch update loop.

Twin of :mod:`engine.oracle` (the tests compare each kernel with it). Every kernel here
takes plain arrays and scalars; the Python layer validates inputs and allocates outputs.

Parameter layout contract
-------------------------
All weights and biases live in one flat array ``params`` (float32 or float64). For layer
``l`` (1-based, ``l = 1..L``) with ``n = sizes[l]`` outputs and ``n_in = sizes[l-1]`` inputs:

* ``W_l = params[w_off[l] : w_off[l] + n*n_in].reshape(n, n_in)`` (row-major, as the
  public ``net.weights[l-1]`` view),
* ``b_l = params[b_off[l] : b_off[l] + n]``.

Working layout
--------------
A kernel call first copies the parameters into ``work``, where layer ``l`` is stored
transposed and padded: ``Wt_l`` with shape ``(n_in + 1, P_l)``, the weights of input ``k``
in row ``k`` and the bias in the last row (``P_l`` is ``n`` rounded up to a whole number
of ``config.PAD_BYTES``, itself rounded up to whole vectors of :data:`VECTOR_BYTES`; the
padding columns are zero). Every inner loop then runs along a contiguous row of whole
vectors, whatever the layer sizes, and one input unit's weights are one row, so a group of
samples whose inputs are mostly zero touches only the rows of the inputs where one of them
is non-zero (in the forward pass and in the update). Training writes the updated parameters back at the end of the call.

All offsets travel in one int64 array ``lay`` (see :func:`working_layout`), one column per layer.

Groups of four samples and sparse inputs
----------------------------------------
The forward pass and the update take a mini-batch four samples at a time: each row of a
layer's weights is loaded (and, in the update, stored) once for the four. For each group
and layer the kernel lists the inputs where any of the four samples is non-zero (eight
inputs per vector compare). If at most ``density`` of them are listed it visits those rows
only; otherwise every row. A sample with a zero input adds an exact zero, and every sum
adds its terms in ascending input order, so a sample's results do not depend on its group,
and skipping zero inputs changes the result by rounding only against the oracle (which
sums in its own order). ``density`` comes from ``config.SPARSE_MAX_DENSITY``.

Serial and parallel twins
-------------------------
Each kernel is compiled from the same source serially (``*_serial``) and with
``parallel=True`` (``*_parallel``), for each of the variants below (``TRAIN``).
The parallel twin spreads a mini-batch's groups of samples (forward pass, backpropagated
errors) and blocks of weight rows (the update) over threads when a step has at least
``parallel_work`` multiply-adds; smaller steps run serially in both twins, because
starting threads would cost more than the step. Both twins do every sum in the same order,
so they give identical results. Integer codes from :mod:`.codes` pick the activation and
cost inside the kernel, so one compilation per dtype serves every network.

Narrow and wide variants
------------------------
Layers whose padded rows are wide (``config.COLUMN_UPDATE_MIN_ROW_BYTES``) have one more
update path: from ``config.COLUMN_UPDATE_MIN_BATCH`` samples it sums each weight's share
over the mini-batch before adding it. It is compiled only into the wide variant of the
training kernels (``TRAIN``), which the Python layer calls for networks that have such a
layer.

Modules
-------
Each imports only modules listed above it:

===================== =====================================================================
``cache``             Numba's disk cache, kept fresh across the package's modules
``options``           the Numba option sets of the compiled functions
``vectors``           LLVM building blocks: vector width, loads and multiply-adds, left-pack
``rows``              the explicit vector loops over weight rows
``layout``            :func:`working_layout` and the copies to and from the working layout
``elementwise``       exp, activations and their derivatives, one sample's δ and cost
``groups``            groups of four samples, their index lists and column lists
``layers``            one layer: forward pass, back-propagated errors, update, output δ
``dropout_batchnorm`` dropout and batch normalisation
``optimizers``        the optimisers' steps and the L2 penalty
``epoch``             :func:`train_batches`, the training kernel
``predict``           :func:`forward_rows`, the prediction kernel
``variants``          the compiled variants :data:`TRAIN` and :data:`FORWARD`
===================== =====================================================================
"""

# The names callers use as ``cpu.<name>`` (the backends, tests and benchmarks).
from .cache import SOURCES_DIGEST, PackageCache
from .elementwise import _exp_nonpositive
from .epoch import train_batches
from .groups import _union_list
from .layout import (A_OFF, ACT, B_OFF, BN, BN_AFTER, PAD, PANEL, SIZE, T_OFF, TB_OFF, U_OFF,
                     W_OFF, _load_work, _store_work, column_inputs, working_layout)
from .options import _JIT
from .predict import forward_rows
from .variants import _STEPS, FORWARD, TRAIN, _at_opt_level, _compile, _variant
from .vectors import VECTOR_BYTES

__all__ = ["A_OFF", "ACT", "B_OFF", "BN", "BN_AFTER", "FORWARD", "PAD", "PANEL",
           "PackageCache", "SIZE", "SOURCES_DIGEST", "T_OFF", "TB_OFF", "TRAIN", "U_OFF",
           "VECTOR_BYTES", "W_OFF", "_JIT", "_STEPS", "_at_opt_level", "_compile",
           "_exp_nonpositive", "_load_work", "_store_work", "_union_list", "_variant",
           "column_inputs", "forward_rows", "train_batches", "working_layout"]

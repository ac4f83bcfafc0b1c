"""Tunables of the compiled backends, named once. Tests patch them here.

The compiled backends read these when they call a kernel (they are kernel arguments, not
compile-time constants), so changing one takes effect at the next call.
"""

# Flags LLVM may use in the CPU kernels. "reassoc" and "contract" let dot products vectorise
# (which changes rounding in the last bits only); "nnan"/"ninf" are left out on purpose so
# that NaN and inf propagate and divergence stays detectable.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

# Rows a compiled prediction call processes per parallel task (bounds scratch memory).
PREDICT_BLOCK_ROWS = 256

# The kernels store each layer's weights transposed, one row of units per input, padded
# with zero columns to a multiple of this many bytes: LLVM vectorises a loop over a row as
# 4 interleaved AVX2 vectors (4 x 32 bytes), so rows of whole multiples run no scalar tail.
PAD_BYTES = 128

# A sample's input to a layer is treated as sparse (only its non-zero entries' weight rows
# are used, in the forward pass and in the update) when at most this fraction of the
# entries is non-zero. Measured with benchmarks/compare.py --density-sweep (see README,
# "Performance"): below about this density the index list pays for itself.
SPARSE_MAX_DENSITY = 0.5

# numba-parallel starts threads for a step of a mini-batch (forward pass, backpropagated
# errors, weight update) only from this many multiply-adds; smaller steps run serially,
# because waking the threads costs more than the step.
PARALLEL_MIN_WORK = 1 << 22

# Rows of a (transposed) weight matrix, one per input unit, that one thread updates per
# task in numba-parallel.
PARALLEL_ROW_BLOCK = 64

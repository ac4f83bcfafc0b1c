"""Tunables of the compiled backends, named once. Tests patch them here."""

# Flags LLVM may use in the CPU kernels. "reassoc" and "contract" let dot products vectorise
# (which changes rounding in the last bits only); "nnan"/"ninf" are left out on purpose so
# that NaN and inf propagate and divergence stays detectable.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

# Rows a compiled prediction call processes per parallel task (bounds scratch memory).
PREDICT_BLOCK_ROWS = 256

# --- CUDA backend (engine.cuda_backend, kernels/cuda.py). Sensible defaults, not yet tuned
# on a real GPU. ---

# How a range of mini-batches runs on the GPU: "tiled" (a few shared-memory tiled kernels
# per layer and mini-batch, all launched from one Python loop with no host sync between
# mini-batches), "persistent" (one single-block kernel launch runs them all), or "auto":
# persistent while batch_size × (number of weights) ≤ CUDA_PERSISTENT_MAX_WORK, where a
# mini-batch is too little work to pay for a dozen kernel launches.
CUDA_STRATEGY = "auto"
CUDA_PERSISTENT_MAX_WORK = 1 << 20

# Threads of the persistent kernel's single block (at most 512, for its registers).
CUDA_PERSISTENT_THREADS = 512

# Edge of the square tiles the tiled kernels stage in shared memory; a block has
# CUDA_TILE × CUDA_TILE threads. A compile-time constant: each value compiles its own kernels.
CUDA_TILE = 16

# Threads per block of the one-thread-per-sample kernels (output layer, softmax).
CUDA_ROW_THREADS = 128

# Rows a prediction call feeds forward per round (bounds device scratch memory).
CUDA_PREDICT_ROWS = 16384

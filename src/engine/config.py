"""Tunables of the compiled backends, named once. Tests patch them here.

The CPU backends pass PAD_BYTES, SPARSE_MAX_DENSITY, the PARALLEL_* and COLUMN_UPDATE_*
values and PREDICT_BLOCK_ROWS to their kernels as arguments, so a change takes effect at the
next call (PAD_BYTES: for networks created after it). FASTMATH is fixed when a kernel
compiles.
"""

# Flags LLVM may use in the CPU kernels. "reassoc" and "contract" let dot products vectorise
# (which changes rounding in the last bits only); "nnan"/"ninf" are left out on purpose so
# that NaN and inf propagate and divergence stays detectable.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

# LLVM optimisation level of the CPU kernels (Numba's NUMBA_OPT, applied to their
# compilation only; an explicit NUMBA_OPT in the environment wins). The hot loops are
# hand-vectorised intrinsics, so -O3 buys them nothing over -O2. Nielsen's network's
# kernel compiled at -O1, -O2 and -O3 in one process, six processes in rotated orders:
# compile time -O2/-O3 0.88-1.05 (median 0.92), -O1/-O3 0.78-0.91 (median 0.84); epochs
# (cycle-counted, interleaved in one process) of that net, [784, 100, 10] and the
# deep net equal at all three levels. -O1 was not taken: in a micro-benchmark it left
# float64 sigmoid unvectorised (415 against 136 cycles per sample). Fixed when a kernel
# compiles.
COMPILE_OPT_LEVEL = 2

# Rows a compiled prediction call processes per parallel task (bounds scratch memory).
PREDICT_BLOCK_ROWS = 256

# The kernels store each layer's weights transposed, one row of units per input, padded
# with zero columns to a multiple of this many bytes, rounded up to whole vector registers
# (engine.kernels.cpu.VECTOR_BYTES: 64 with AVX-512, else 32): the row loops work in
# chunks of 4 vectors, then the rest.
PAD_BYTES = 128

# A group of four samples' input to a layer is treated as sparse (only the weight rows of
# the entries where one of them is non-zero are visited, in the forward pass and in the
# update) when at most this fraction of the entries is in that union. Measured with
# `python benchmarks/compare.py --density-sweep` (docs/design/cpu-kernels.md): at
# batch 10 the lists pay 1.1-1.3x up to a union of about 0.87 (four samples with 40% of
# their inputs non-zero at random) and are even within noise above. MNIST's pixels: 0.19
# of a sample's, 0.39 of a group's.
SPARSE_MAX_DENSITY = 0.9

# numba-parallel starts threads for a step of a mini-batch (forward pass, backpropagated
# errors, weight update) only from this many multiply-adds; smaller steps run serially,
# because waking the threads costs more than the step. Measured on 2 cores: steps below
# about 2**22 (e.g. [784, 300, 10] at batch 10) gained nothing or lost up to 40%.
PARALLEL_MIN_WORK = 1 << 22
# From mini-batches of PARALLEL_BIG_BATCH samples (each thread then has 16 or more), steps
# from PARALLEL_MIN_WORK_BIG_BATCH multiply-adds use threads too. The [784, 512, 256, 10]
# network's 10-unit output layer at batch 128 (2**19 multiply-adds per step) then runs
# threaded: its epoch 6% faster (853 -> 801 ms, interleaved, 50,000 images). The same
# threshold at batch 10 cost [784, 100, 10] 40% (244 -> 341 ms): waking the threads takes
# about 10 us per step.
PARALLEL_BIG_BATCH = 32
PARALLEL_MIN_WORK_BIG_BATCH = 1 << 19

# Rows of a (transposed) weight matrix, one per input unit, that one thread updates per
# task in numba-parallel, where a layer's update is not split by panels (below).
PARALLEL_ROW_BLOCK = 64

# numba-parallel keeps the weights of a layer that take at least this many bytes in one
# panel of units per thread (kernels.cpu.working_layout): each thread computes its units' sums and
# updates their weights, which no other core then reads or writes, instead of splitting
# the forward pass by samples (every core reads every weight) and the update by rows.
# Measured on [784, 512, 256, 10] at batch 128, 2 cores, interleaved epochs in one process
# (docs/design/cpu-kernels.md): float32, panels in the first layer (1.5 MiB) took the
# numba-parallel epoch from 747 to 609 ms, and in the second (0.5 MiB) too, 662 ms;
# float64, panels in the second layer (1 MiB) as well as the first: 1,387 against 1,344 ms.
PARALLEL_PANEL_MIN_BYTES = 1_310_720  # 1.25 MiB

# The weight update of a layer either adds four samples' shares at a time straight into the
# weights (every weight row the group touches is read and written once per group of four),
# or first lists the mini-batch's non-zero inputs column by column and sums each weight's
# share over the whole mini-batch in registers (each weight read and written once per
# mini-batch; the listing costs ~20 cycles per non-zero input). The second is used from
# COLUMN_UPDATE_MIN_BATCH samples when a padded row of the layer's units has at least
# COLUMN_UPDATE_MIN_ROW_BYTES: layers whose weights outgrow the L2 cache. Measured on
# [784, H, 10] ReLU nets, real MNIST, one core, cycle counts of the first layer's update
# (docs/design/cpu-kernels.md): per-weight sums 1.3-1.6x faster with rows of 4,096
# bytes (H = 1,024 float32 or 512 float64, batches 16-128) and 1.7x at 8,192; about equal
# at 2,048 (H = 512 float32: 0.9-1.1x); 2x slower at 512 (H = 100). Networks without such
# a layer run kernels compiled without that path (engine.kernels.cpu, "Narrow and wide").
COLUMN_UPDATE_MIN_BATCH = 16
COLUMN_UPDATE_MIN_ROW_BYTES = 4096

# --- CUDA backend (engine._backends.cuda, kernels/cuda.py). Sensible defaults, not yet tuned
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

# Batch normalisation constants, as torch.nn.BatchNorm1d defines them: ε added to the batch
# variance, and the weight of each new batch in the running averages used for prediction.
BN_EPS = 1e-5
BN_MOMENTUM = 0.1

# --- Untrusted files: what loading may cost (engine.io, engine.datasets). A file a user
# downloads may be hostile; these bounds keep the memory a load takes in proportion to the
# bytes the file holds. ---

# A model file's members, decompressed, may take at most this many times the file's size.
# engine.io.save stores members uncompressed (1x); np.savez_compressed shrinks trained
# float parameters little (random normal weights: 1.07x float64, 1.08x float32), while
# deflate reaches about 1,000x on constant data, the mark of a decompression bomb.
MODEL_MAX_INFLATION = 16

# A gzipped IDX file's header may declare at most this many times the compressed file's
# size in data. MNIST's own files inflate 4.8x (images) and 2.2x (labels); Fashion-MNIST's
# about 1.8x. A 1 MB .gz of zeros declaring 1.1 GB is refused before anything is read.
IDX_MAX_INFLATION = 32

# A digit picture given to `engine predict` may have at most this many pixels (a
# 24-megapixel camera photo, 6,000 x 4,000, fits). Decoding takes about 13 bytes per
# pixel (RGBA, then float64 grey); Pillow's own decompression-bomb limit (89 million
# pixels) would allow over a gigabyte.
IMAGE_MAX_PIXELS = 25_000_000

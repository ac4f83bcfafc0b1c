"""Tunables of the compiled backends, named once. Tests patch them here."""

# Flags LLVM may use in the CPU kernels. "reassoc" and "contract" let dot products vectorise
# (which changes rounding in the last bits only); "nnan"/"ninf" are left out on purpose so
# that NaN and inf propagate and divergence stays detectable.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

# Rows a compiled prediction call processes per parallel task (bounds scratch memory).
PREDICT_BLOCK_ROWS = 256

# Batch normalisation constants, as torch.nn.BatchNorm1d defines them: ε added to the batch
# variance, and the weight of each new batch in the running averages used for prediction.
BN_EPS = 1e-5
BN_MOMENTUM = 0.1

"""Tunables of the compiled backends, named once. Tests patch them here."""

# Flags LLVM may use in the CPU kernels. "reassoc" and "contract" let dot products vectorise
# (which changes rounding in the last bits only); "nnan"/"ninf" are left out on purpose so
# that NaN and inf propagate and divergence stays detectable.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

# Rows a compiled prediction call processes per parallel task (bounds scratch memory).
PREDICT_BLOCK_ROWS = 256

"""Test-session setup that must run before anything imports ``numba.cuda``.

Numba's CUDA target reads ``NUMBA_ENABLE_CUDASIM`` once, when ``numba.cuda`` is first
imported. Where no CUDA driver is installed we turn on Numba's CUDA simulator, so that
tests/test_cuda.py checks the CUDA kernels everywhere, CI included; where a driver is
installed the tests use the real GPU. A ``NUMBA_ENABLE_CUDASIM`` already set in the
environment always wins. The CPU backends never read the variable.
"""

import ctypes.util
import os

if "NUMBA_ENABLE_CUDASIM" not in os.environ and not (
        os.path.exists("/dev/nvidiactl") or ctypes.util.find_library("cuda")):
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

"""asv benchmark suites (``bench_*.py``) and the comparison script (``compare.py``); see
README.md here for how to run and read them."""

from .common import numba_cache_in_asv_environment

numba_cache_in_asv_environment()  # before any suite imports engine (and Numba)

"""Compiled kernels, one module or package per execution target.

``cpu``  : Numba ``njit`` kernels, serial and ``parallel=True`` twins of one source (a
           package, one module per job; see its docstring).
``cuda`` : Numba CUDA kernels.
``codes``: the integer codes the kernels take for activations and costs.

Every kernel has a twin in :mod:`engine.oracle`, the NumPy reference; the tests compare them.
Each compiled function names it in a docstring line ``Twin: engine.oracle.<name>`` (or
``Twin: none (<why>)`` for plumbing); tests/test_oracle_kernel_twins.py checks the lines.
"""

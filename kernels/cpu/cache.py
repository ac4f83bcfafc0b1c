"""Numba's disk cache for the package, kept fresh across its modules.

Numba keys a function's cached machine code on a stamp of the function's own source file,
yet compiles into it the code of the functions it calls. A kernel loaded from the cache
would keep the old code of a helper edited in another module of this package (a limit
Numba documents: numba/numba#1833). So every cached function here also takes one stamp
for all of them: a digest of every source of the package, of ``kernels/codes.py`` (its
constants are compiled in) and of ``config.FASTMATH`` (flags that Numba's key leaves
out). An edit anywhere in the package makes each kernel compile again at its next call,
as an edit of its own file always did; an unchanged package loads from the cache as
before. Numba still chooses the cache directory (``NUMBA_CACHE_DIR``, ``__pycache__`` or
the user-wide one) and keys each entry by signature and CPU.
"""

import hashlib
from pathlib import Path

from numba import njit
from numba.core.caching import CompileResultCacheImpl, FunctionCache

from engine import config

PACKAGE = Path(__file__).resolve().parent


def sources_digest():
    """Hex SHA-256 of the package's ``*.py`` files (names and contents), ``codes.py``
    beside it and the fastmath flags."""
    digest = hashlib.sha256()
    for path in (*sorted(PACKAGE.glob("*.py")), PACKAGE.parent / "codes.py"):
        data = path.read_bytes()
        digest.update(f"{path.name}\0{len(data)}\0".encode())
        digest.update(data)
    flags = config.FASTMATH
    digest.update(repr(sorted(flags) if isinstance(flags, (set, frozenset)) else flags)
                  .encode())
    return digest.hexdigest()


SOURCES_DIGEST = sources_digest()


class _PackageStamp:
    """The cache locator Numba chose for a function (its directory and file names), with
    the package's digest added to the stamp of the function's own file."""

    def __init__(self, chosen):
        self._chosen = chosen

    def ensure_cache_path(self):
        self._chosen.ensure_cache_path()

    def get_cache_path(self):
        return self._chosen.get_cache_path()

    def get_disambiguator(self):
        return self._chosen.get_disambiguator()

    def get_source_stamp(self):
        return self._chosen.get_source_stamp(), SOURCES_DIGEST


class _PackageCacheImpl(CompileResultCacheImpl):
    def __init__(self, py_func):
        super().__init__(py_func)
        self._locator = _PackageStamp(self._locator)


class PackageCache(FunctionCache):
    """Numba's cache of one function's compiled code, whose index is fresh only while the
    function's file and every source of the package are as they were when it was
    written: a stale index is dropped and rewritten, as Numba does when the function's own
    file changes."""

    _impl_class = _PackageCacheImpl


def jit(**options):
    """``numba.njit(**options)``, but ``cache=True`` gives the function a
    :class:`PackageCache` (where ``Dispatcher.enable_caching`` would set Numba's
    ``FunctionCache``)."""
    cache = options.pop("cache", False)

    def compile_with_package_cache(func):
        dispatcher = njit(**options)(func)
        if cache:
            dispatcher._cache = PackageCache(dispatcher.py_func)
        return dispatcher

    return compile_with_package_cache

"""asv suites: compile time and start-up, each measured in a fresh Python process.

* ``track_first_fit_compile``: a new process with an empty Numba cache runs one ``fit`` of
  Nielsen's network; the time of that first call, per compiled backend, float64 (goal:
  ≤ 10 s for the default configuration, backend "numba").
* ``track_warm_startup``: with the cache filled, a new process imports engine, loads a saved
  model and trains one mini-batch; the wall time of the whole process from the parent's
  side (goal: ≤ 1.5 s).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

FIRST_FIT = textwrap.dedent("""
    import time
    import numpy as np
    import engine
    X = np.random.default_rng(0).random((40, 784)).astype({dtype!r})
    net = engine.Network([784, 30, 10], dtype={dtype!r}, backend={backend!r}, seed=0)
    start = time.perf_counter()
    net.fit(X, np.arange(40) % 10, epochs=1, batch_size=10, lr=3.0)
    print(time.perf_counter() - start)
""")

STARTUP = textwrap.dedent("""
    import numpy as np
    import engine
    net = engine.load({model!r})
    X = np.random.default_rng(0).random((10, 784))
    net.fit(X, np.arange(10), epochs=1, batch_size=10, lr=3.0)
""")


def _run(code, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=600, check=True)
    return time.perf_counter() - start, out.stdout


class CompileTime:
    """First ``fit`` per compiled backend in a fresh process with an empty Numba cache, in
    the default dtype (float64; ``compare.py`` also measures float32). A time in seconds,
    not a ratio: compilation has no side-by-side reference, so its series carries the
    machine's load (see benchmarks/README.md)."""

    params = (["numba", "numba-parallel"],)
    param_names = ["backend"]
    timeout = 900
    unit = "seconds"

    def track_first_fit_compile(self, backend):
        cache = tempfile.mkdtemp(prefix="engine-asv-cache-")
        try:
            _, out = _run(FIRST_FIT.format(dtype="float64", backend=backend), cache)
            return float(out.strip().splitlines()[-1])
        finally:
            shutil.rmtree(cache, ignore_errors=True)


class WarmStartup:
    timeout = 900
    unit = "seconds"

    def setup(self):
        import engine

        self.folder = tempfile.mkdtemp(prefix="engine-asv-startup-")
        self.model = os.path.join(self.folder, "model.npz")
        engine.Network([784, 30, 10], seed=0).save(self.model)
        self.cache = os.path.join(self.folder, "cache")
        _run(STARTUP.format(model=self.model), self.cache)  # compile into the cache

    def teardown(self):
        shutil.rmtree(self.folder, ignore_errors=True)

    def track_warm_startup(self):
        return _run(STARTUP.format(model=self.model), self.cache)[0]


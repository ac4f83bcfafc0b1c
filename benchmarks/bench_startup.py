"""asv suites: compile time and start-up, each measured in a fresh Python process.

* ``track_first_fit_compile``: a new process with an empty Numba cache runs one ``fit`` of
  the seeds' network; the time of that first call (goal: ≤ 10 s for the default
  configuration, backend "numba", float64).
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
    params = (["numba", "numba-parallel"], ["float64", "float32"])
    param_names = ["backend", "dtype"]
    timeout = 900
    number = 1
    repeat = 1
    unit = "seconds"

    def track_first_fit_compile(self, backend, dtype):
        cache = tempfile.mkdtemp(prefix="engine-asv-cache-")
        try:
            _, out = _run(FIRST_FIT.format(dtype=dtype, backend=backend), cache)
            return float(out.strip().splitlines()[-1])
        finally:
            shutil.rmtree(cache, ignore_errors=True)

    track_first_fit_compile.unit = "seconds"


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

    track_warm_startup.unit = "seconds"

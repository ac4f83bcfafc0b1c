"""The CPU kernels' disk cache follows edits across the modules of ``kernels/cpu/``.

Numba stamps a function's cache with its own source file only, yet compiles into it the
functions it calls, so a kernel loaded from the cache would keep the old code of a helper
edited in another module. ``kernels/cpu/cache.py`` stamps every cached function of the
package with a digest of all its sources instead. The test below edits a copy of the
installed package between fresh processes that share one cache directory.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from numba.core.dispatcher import Dispatcher

import engine.kernels
from engine.kernels import cpu

KERNELS = Path(engine.kernels.__file__).resolve().parent

# Predicts with a tiny network on the copy of the kernels given as argv[1] (put in front of
# engine.kernels' path, so that ``engine.kernels.cpu`` is the copy) and reports whether the
# prediction kernel came from the cache.
PREDICT = """
import json, sys
import numpy as np
import engine
import engine.kernels
engine.kernels.__path__.insert(0, sys.argv[1])
from engine.kernels import cpu
assert cpu.__file__.startswith(sys.argv[1]), cpu.__file__
net = engine.Network([3, 4, 2], seed=0)  # sigmoid layers
out = net.predict_proba(np.linspace(-1.0, 1.0, 15).reshape(5, 3))
kernel = cpu.FORWARD[False]
print(json.dumps({"out": out.tolist(), "loaded": sum(kernel.stats.cache_hits.values()),
                  "compiled": sum(kernel.stats.cache_misses.values())}))
"""

# The sigmoid of elementwise._activate, inlined into layers._forward_layer (a cached helper
# of its own) and so into predict.forward_rows: neither of their files changes.
SIGMOID = "            v[j] = r if v[j] >= 0 else e * r\n"
QUARTER = "            v[j] = one / (one + one + one + one)\n"


def _predict(copy, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    done = subprocess.run([sys.executable, "-c", PREDICT, str(copy)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_edit_in_a_callee_module_recompiles_its_callers(tmp_path):
    copy = tmp_path / "kernels"
    shutil.copytree(KERNELS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    cache_dir = tmp_path / "numba-cache"

    first = _predict(copy, cache_dir)
    assert first["compiled"] == 1 and first["loaded"] == 0
    assert not np.allclose(first["out"], 0.25)

    again = _predict(copy, cache_dir)  # nothing changed: from the cache
    assert again["loaded"] == 1 and again["compiled"] == 0
    assert again["out"] == first["out"]

    elementwise = copy / "cpu" / "elementwise.py"
    source = elementwise.read_text(encoding="utf-8")
    assert source.count(SIGMOID) == 1
    elementwise.write_text(source.replace(SIGMOID, QUARTER), encoding="utf-8")
    edited = _predict(copy, cache_dir)
    assert edited["compiled"] == 1 and edited["loaded"] == 0
    np.testing.assert_array_equal(edited["out"], 0.25)


def test_every_cached_function_of_the_package_takes_the_package_stamp():
    """A plain ``numba.njit(cache=True)`` in the package would escape the package stamp."""
    found = []
    dispatchers = [*cpu.TRAIN.values(), *cpu.FORWARD.values(),
                   *(step for steps in cpu._STEPS.values() for step in steps.values())]
    for name, module in sorted(sys.modules.items()):
        if name.startswith("engine.kernels.cpu."):
            dispatchers += [value for value in vars(module).values()
                            if isinstance(value, Dispatcher)]
    for dispatcher in dispatchers:
        found.append(dispatcher.py_func.__qualname__)
        assert isinstance(dispatcher._cache, cpu.PackageCache), dispatcher.py_func
    assert {"train_batches_serial_plain", "_forward_layer", "_sgd_step",
            "_update_layer_wide"} <= set(found)

"""Every compiled kernel names its twin in the NumPy oracle, one hop away.

The convention (docs/design/cpu-kernels.md): each compiled function in the modules of
``kernels/cpu/`` and in ``kernels/cuda.py`` has exactly one docstring line
``Twin: engine.oracle.<name>`` (several names, comma-separated, when it fuses several
oracle steps) or, for plumbing with no oracle counterpart, ``Twin: none (<why>)``. The
modules are read with ``ast``, so ``numba.cuda`` is never imported here.
"""

import ast
import re
from pathlib import Path

import pytest

import engine.oracle

KERNELS = Path(__file__).resolve().parents[1] / "kernels"  # the source, not an install
# The source files of each target: the CPU kernels are a package whose modules call each
# other (a kernel may be compiled in one module from a function defined in another).
SOURCES = {"cpu": sorted((KERNELS / "cpu").glob("*.py")), "cuda": [KERNELS / "cuda.py"]}
MODULES = tuple(SOURCES)
# Decorators that compile a function: Numba's njit/jit and its CUDA jit, the low-level
# intrinsic and the @overload that compiles an implementation for a Python stub.
COMPILING = {"njit", "jit", "intrinsic", "overload", "cuda.jit", "numba.njit", "numba.jit",
             "numba.cuda.jit"}
NAME = r"engine\.oracle\.[A-Za-z_][\w.]*"
TWIN = re.compile(rf"^Twin: ({NAME}(?:, {NAME})*)$")
NO_TWIN = re.compile(r"^Twin: none \((\S.*)\)$")
# One kernel reached by each route the detection below must follow, so that a change in
# how the modules compile cannot empty the list unnoticed.
EXPECTED = {
    "cpu": {"_derivative_times",        # @njit(**options)
            "_rows_dot4",               # @intrinsic
            "_exp_nonpositive_impl",    # @overload(stub)
            "_update_layer",            # compiled by the factory _variant
            "train_batches", "forward_rows"},  # by _compile, which calls _variant
    "cuda": {"_derivative_times", "output_layer", "train_persistent",
             "forward_layer", "backprop_delta", "gradient_update"},  # inside _build_tiled
}


def _dotted(node):
    """``a.b.c`` for a Name/Attribute chain (the callee of a decorator call), else None."""
    if isinstance(node, ast.Call):
        node = node.func
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id] + parts[::-1])


def _compiles_its_argument(func):
    """Whether the body of ``func`` applies a compiling decorator to a value it computes:
    ``njit(**options)(twin)``."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Call)
               and _dotted(n.func) in COMPILING for n in ast.walk(func))


def compiled_functions(trees):
    """Every function definition of the modules (``trees``, one target's) that Numba
    compiles: decorated ones at any depth (factory closures included), and module-level
    functions passed by name to a module function that compiles its argument (directly or
    through another one), whichever of the modules defines each."""
    found = {}
    for node in (n for tree in trees for n in ast.walk(tree)):
        if isinstance(node, ast.FunctionDef) and any(
                _dotted(d) in COMPILING for d in node.decorator_list):
            found[node.name] = node
    top = {}
    for tree in trees:
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                assert node.name not in top, f"{node.name} is defined in two modules"
                top[node.name] = node
    compilers = {name for name, f in top.items() if _compiles_its_argument(f)}
    grew = True
    while grew:  # a function that hands its argument to a compiler compiles it too
        grew = False
        for name, f in top.items():
            if name not in compilers and any(
                    isinstance(n, ast.Call) and _dotted(n) in compilers for n in ast.walk(f)):
                compilers.add(name)
                grew = True
    for node in (n for tree in trees for n in ast.walk(tree)):
        if (isinstance(node, ast.Call) and _dotted(node) in compilers and node.args
                and isinstance(node.args[0], ast.Name) and node.args[0].id in top):
            found[node.args[0].id] = top[node.args[0].id]
    return found


def twin_lines(func):
    doc = ast.get_docstring(func) or ""
    return [line.strip() for line in doc.splitlines() if line.strip().startswith("Twin:")]


def oracle_attribute(dotted):
    """The object ``engine.oracle.<path>`` names, or None."""
    obj = engine.oracle
    for part in dotted.split(".")[2:]:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


@pytest.fixture(scope="module")
def kernels():
    """{module: {function name: (twin names or None, reason for none)}}, checking the
    one-line rule on the way."""
    table, problems, without = {}, [], {}
    for module, paths in SOURCES.items():
        trees = [ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
                 for path in paths]
        table[module] = {}
        for name, func in sorted(compiled_functions(trees).items()):
            lines = twin_lines(func)
            if len(lines) != 1:
                problems.append(f"{module}.{name}: {len(lines)} Twin: lines")
                continue
            twin, none = TWIN.match(lines[0]), NO_TWIN.match(lines[0])
            if not (twin or none):
                problems.append(f"{module}.{name}: malformed {lines[0]!r}")
                continue
            if none:
                without[f"{module}.{name}"] = none.group(1)
            table[module][name] = (twin.group(1).split(", ") if twin else None,
                                   none.group(1) if none else None)
    assert not problems, (
        "every compiled kernel needs exactly one docstring line 'Twin: engine.oracle.<name>' "
        "or 'Twin: none (<why>)':\n  " + "\n  ".join(problems)
        + "\nfunctions that declare no twin now:\n  "
        + "\n  ".join(f"{k}: {v}" for k, v in sorted(without.items())))
    return table


@pytest.mark.parametrize("module", MODULES)
def test_detection_reaches_every_way_of_compiling(kernels, module):
    missing = EXPECTED[module] - set(kernels[module])
    assert not missing, f"kernels/{module}: compiled functions not found: {missing}"


@pytest.mark.parametrize("module", MODULES)
def test_every_named_twin_exists_in_the_oracle(kernels, module):
    unknown = [f"{name}: {twin}" for name, (twins, _) in kernels[module].items()
               for twin in twins or () if not callable(oracle_attribute(twin))]
    assert not unknown, f"kernels/{module} names twins the oracle lacks: {unknown}"


def test_the_same_device_function_has_the_same_twin_on_both_targets(kernels):
    shared = set(kernels["cpu"]) & set(kernels["cuda"])
    assert shared, "no device function shares its name between the CPU and CUDA kernels"
    differ = {name: (kernels["cpu"][name][0], kernels["cuda"][name][0]) for name in shared
              if kernels["cpu"][name][0] != kernels["cuda"][name][0]}
    assert not differ, f"one name, two twins: {differ}"


def test_kernels_that_do_the_maths_name_a_twin(kernels):
    """Plumbing may say none; the entry points and the element-wise maths may not."""
    for module, names in (("cpu", ("train_batches", "forward_rows", "_activate",
                                   "_derivative_times", "_sgd_step")),
                          ("cuda", ("train_persistent", "forward_layer", "_activate"))):
        for name in names:
            assert kernels[module][name][0], f"{module}.{name} declares no twin"

"""The package's modules import one another without a cycle, counting imports inside
functions too (they hide a cycle from Python's import system, not from a reader).

The graph is read from the source with :mod:`ast`: an edge ``a -> b`` for every import in
module ``a`` of a module ``b`` of the engine (``src/engine`` and ``kernels/``, which installs
as ``engine.kernels``). ``from . import x`` is an edge to the submodule ``x`` when there is
one, else to the package itself. A package's own ``__init__`` being run before its
submodules is Python's doing, not an import, and is not an edge.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = {"engine": ROOT / "src" / "engine", "engine.kernels": ROOT / "kernels"}


def _modules():
    """``{dotted name: path}`` of every module of the engine."""
    found = {}
    for package, folder in TREES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package] + parts)] = path
    return found


def _is_package(path):
    return path.name == "__init__.py"


def _imports(name, path, modules):
    """The engine modules that module ``name`` imports, anywhere in its body."""
    package = name if _is_package(path) else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in modules else base)
    return {target for target in targets if target in modules and target != name}


def _graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_engine_has_no_import_cycle():
    graph = _graph()
    assert {"engine.network", "engine.training", "engine.io", "engine.kernels.codes"} <= set(graph)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path):
    # The detector itself: a module importing another inside a function, which imports
    # the first at the top, is a cycle.
    graph = _graph()
    graph["engine.io"] = graph["engine.io"] | {"engine.network"}
    assert any({"engine.io", "engine.network"} <= set(c) for c in _cycles(graph))
    (tmp_path / "a.py").write_text("def f():\n    from . import b\n")
    (tmp_path / "b.py").write_text("from .a import f\n")
    modules = {"p.a": tmp_path / "a.py", "p.b": tmp_path / "b.py"}
    small = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert small == {"p.a": {"p.b"}, "p.b": {"p.a"}}
    assert _cycles(small) == [["p.a", "p.b"]]


@pytest.mark.parametrize("low, high", [("engine.io", "engine.network"),
                                       ("engine.training", "engine.network"),
                                       ("engine._backends.protocol", "engine.training"),
                                       ("engine.state", "engine.training")])
def test_lower_layers_do_not_import_higher_ones(low, high):
    """Data flows down: API -> training loop -> backend -> kernel; the file format and the
    state sit below the model and the loop."""
    graph = _graph()
    reachable, todo = set(), [low]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in reachable:
                reachable.add(nxt)
                todo.append(nxt)
    assert high not in reachable


def test_every_package_is_installed():
    """A subpackage missing from pyproject.toml's list works in an editable install and is
    absent from a built wheel; compare the list with the folders that are packages."""
    tomllib = pytest.importorskip("tomllib")
    with open(ROOT / "pyproject.toml", "rb") as f:
        listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
    found = {name for name, path in _modules().items() if _is_package(path)}
    assert listed == found

"""The package's layout: modules import each other without a cycle, and the public names stay
importable from where they were."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import fastprop

PACKAGE = Path(fastprop.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _nodes(tree: ast.AST, lazy: bool):
    """Every node of the tree; with ``lazy`` False, not those inside functions (which run at
    call time, not at import)."""
    for child in ast.iter_child_nodes(tree):
        if lazy or not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield child
            yield from _nodes(child, lazy)


def imports(path: Path, modules: set[str], lazy: bool = True) -> set[str]:
    """The package's modules that ``path`` imports (``lazy``: inside functions too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _nodes(ast.parse(path.read_text(encoding="utf-8")), lazy):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in modules and m != name}


def graph(lazy: bool = True) -> dict[str, set[str]]:
    paths = [p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts]
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports(p, modules, lazy) for p in paths}


def test_modules_import_each_other_without_a_cycle():
    edges = graph(lazy=False)
    edges["fastprop"] = set()  # every module is inside the package: its __init__ runs first
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for other in sorted(edges[module]):
            if state.get(other) == "open":
                cycle = path[path.index(other):] + [other] if other in path else [module, other]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if other not in state:
                visit(other, [*path, other])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_the_network_and_the_file_format_meet_only_in_the_state_module():
    edges = graph(lazy=True)  # not even inside a method
    assert "fastprop.io" not in edges["fastprop.network"]
    assert {"fastprop.network", "fastprop.io"}.isdisjoint(edges["fastprop._state"])
    assert "fastprop._state" in edges["fastprop.network"] & edges["fastprop.io"]


@pytest.mark.parametrize("module, names", [
    ("fastprop", ["Network", "Trace", "History", "load", "save", "optim", "reference",
                  "set_num_threads", "get_num_threads", "__version__"]),
    ("fastprop.network", ["Network", "Trace", "History", "set_num_threads", "get_num_threads",
                          "_warn_about_ignored_settings"]),
    ("fastprop.io", ["FORMAT", "VERSION", "save", "load"]),
    ("fastprop.optim", ["Optimizer", "SGD", "Adam", "AdamW", "Rprop", "DPSGD",
                        "LevenbergMarquardt", "make", "OPTIMIZERS"]),
    ("fastprop.bench", ["WORKLOADS", "QUICK_WORKLOADS", "CONTENDERS", "Workload", "main"]),
])
def test_public_names_stay_where_they_were(module, names):
    loaded = importlib.import_module(module)
    missing = [name for name in names if not hasattr(loaded, name)]
    assert not missing, f"{module} lacks {missing}"


def test_history_and_trace_are_one_class_wherever_imported_from():
    from fastprop import history, network

    assert network.History is history.History is fastprop.History
    assert network.Trace is history.Trace is fastprop.Trace

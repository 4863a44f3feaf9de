"""The settings package's layers: no import cycle, no import inside a function to hide one, and each module
importing only from the layers below it (read from the source, so a new cycle fails here by name)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "broker_tier_celery"
PACKAGE_DIR = Path(__file__).resolve().parents[3] / "worker" / PACKAGE

LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"environment", "naming", "fallbacks", "timeouts", "heartbeat"}),
    frozenset({"failover", "sqs_handback", "protection", "shutdown", "backlog_metrics", "reconnect", "health"}),
    frozenset({"lifecycle"}),
    frozenset({"settings"}),
    frozenset({"wiring"}),
    frozenset({"__init__"}),
)
"""Bottom first: a module may import modules of lower layers only (and none of its own layer but the leaves)."""


def _layer(module: str) -> int:
    return next(index for index, layer in enumerate(LAYERS) if module in layer)


def _package_imports(node: ast.AST) -> set[str]:
    """The package's modules that ``node`` imports (``from broker_tier_celery import x`` imports module x)."""
    modules: set[str] = set()
    for found in ast.walk(node):
        if isinstance(found, ast.Import):
            modules |= {a.name.split(".")[1] for a in found.names if a.name.startswith(f"{PACKAGE}.")}
        elif isinstance(found, ast.ImportFrom) and found.module and found.module.split(".")[0] == PACKAGE:
            if found.module == PACKAGE:
                modules |= {a.name for a in found.names if (PACKAGE_DIR / f"{a.name}.py").exists()}
            else:
                modules.add(found.module.split(".")[1])
    return modules


def import_graph(package_dir: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    return {path.stem: _package_imports(ast.parse(path.read_text())) for path in sorted(package_dir.glob("*.py"))}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path that ends where it starts, or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return path[path.index(module) :] + [module]
        if module in done:
            return None
        for imported in sorted(graph.get(module, ())):
            cycle = visit(imported, [*path, module])
            if cycle:
                return cycle
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module, [])
        if cycle:
            return cycle
    return None


MODULES = sorted(import_graph())


def test_the_package_has_modules_and_every_one_has_a_layer():
    assert {"environment", "settings", "wiring", "failover"} <= set(MODULES)
    assert [module for module in MODULES if not any(module in layer for layer in LAYERS)] == []


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_the_cycle_check_finds_a_cycle():
    assert find_cycle({"settings": {"lifecycle"}, "lifecycle": {"environment", "settings"}, "environment": set()}) == [
        "lifecycle",
        "settings",
        "lifecycle",
    ]


@pytest.mark.parametrize("module", MODULES)
def test_a_module_imports_only_from_lower_layers(module):
    imported = import_graph()[module]
    higher = {name for name in imported if _layer(name) > _layer(module)}
    same = {name for name in imported if _layer(name) == _layer(module) and _layer(name) not in (0, 1)}
    assert (higher, same) == (set(), set()), f"{module} imports {sorted(higher | same)} from its own or a higher layer"


@pytest.mark.parametrize("module", MODULES)
def test_no_package_import_inside_a_function(module):
    tree = ast.parse((PACKAGE_DIR / f"{module}.py").read_text())
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    hidden = {name for function in functions for name in _package_imports(function)}
    assert hidden == set(), f"{module} imports {sorted(hidden)} inside a function"

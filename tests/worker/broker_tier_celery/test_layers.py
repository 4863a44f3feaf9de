"""The settings package's layers: no import inside a function, and each module importing only from the layers below
it (read from the source; cycles anywhere are tests/test_import_cycles.py's)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from import_graph import imported_modules, module_files

PACKAGE = "broker_tier_celery"
PACKAGE_DIR = Path(__file__).resolve().parents[3] / "worker" / PACKAGE

LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"environment", "naming", "fallbacks", "timeouts", "heartbeat", "periodic_metrics"}),
    frozenset(
        {
            "failover",
            "dropped_brpop",
            "name_probe",
            "sqs_handback",
            "claim_check",
            "protection",
            "shutdown",
            "backlog_metrics",
            "beat_fence",
            "keyspace_metrics",
            "reconnect",
            "health",
        }
    ),
    frozenset({"lifecycle"}),
    frozenset({"settings"}),
    frozenset({"wiring"}),
    frozenset({"__init__"}),
)
"""Bottom first: a module may import modules of lower layers only (and none of its own layer but the leaves)."""


def _layer(module: str) -> int:
    return next(index for index, layer in enumerate(LAYERS) if module in layer)


def _package_imports(node: ast.AST, module: str) -> set[str]:
    """The package's modules that ``node`` imports (``from broker_tier_celery import x`` imports module x)."""
    found = imported_modules(node, importer=f"{PACKAGE}.{module}", is_package=module == "__init__", known=KNOWN)
    return {name.removeprefix(f"{PACKAGE}.") for name in found if name.startswith(f"{PACKAGE}.")}


KNOWN = set(module_files())


def import_graph(package_dir: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    return {
        path.stem: _package_imports(ast.parse(path.read_text()), path.stem) for path in sorted(package_dir.glob("*.py"))
    }


MODULES = sorted(import_graph())


def test_the_package_has_modules_and_every_one_has_a_layer():
    assert {"environment", "settings", "wiring", "failover"} <= set(MODULES)
    assert [module for module in MODULES if not any(module in layer for layer in LAYERS)] == []


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
    hidden = {name for function in functions for name in _package_imports(function, module)}
    assert hidden == set(), f"{module} imports {sorted(hidden)} inside a function"

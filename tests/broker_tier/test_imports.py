"""The cost estimate and the tools depend on each other in one direction only (tools -> cost): what both
need (reading a cloud assembly, the stateful resource types) lives in neutral modules. A new cycle fails."""

from __future__ import annotations

import ast

from tier_testing import ROOT

PACKAGE = ROOT / "broker_tier"


def imported_units(path) -> set[str]:
    """The ``broker_tier`` units (subpackage or top-level module) a module imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            parts = name.split(".")
            if parts[0] == "broker_tier" and len(parts) > 1:
                found.add(parts[1])
    return found


def unit_graph() -> dict[str, set[str]]:
    """broker_tier unit -> the units its modules import (itself left out)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).parts
        unit = relative[0].removesuffix(".py")
        graph.setdefault(unit, set()).update(imported_units(path) - {unit})
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for following in graph.get(todo.pop(), ()):
            if following not in seen:
                seen.add(following)
                todo.append(following)
    return seen


def units_in_a_cycle_with(graph: dict[str, set[str]], unit: str) -> set[str]:
    return {other for other in reachable(graph, unit) if unit in reachable(graph, other)}


def test_cost_and_tools_are_in_no_import_cycle():
    graph = unit_graph()
    assert {"cost", "tools", "cloud_assembly", "stateful_resources"} <= set(graph)
    assert "cost" in graph["tools"]  # the synthesis summary prices the templates
    for unit in ("cost", "tools", "cloud_assembly", "stateful_resources"):
        assert units_in_a_cycle_with(graph, unit) == set(), unit


def test_the_check_finds_a_cycle():
    graph = {"cost": {"tools"}, "tools": {"cost"}, "config": set()}
    assert units_in_a_cycle_with(graph, "cost") == {"cost", "tools"}
    assert units_in_a_cycle_with(graph, "config") == set()

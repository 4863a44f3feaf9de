"""The ops tool, the rehearsal and the evidence they share depend on each other one way only, without cycles.

Every import counts, also one inside a function or under ``TYPE_CHECKING``: a cycle hidden that way is a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tier_testing import ROOT

PACKAGES = ("broker_tier.ops", "broker_tier.rehearsal", "broker_tier.evidence")
ALLOWED_INTO_REHEARSAL = {"broker_tier.ops.rehearse"}
"""The one ops module that may reach the rehearsal: the command that runs it."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every ``broker_tier`` module ``path`` imports (``from a import b`` counts a.b when it is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("broker_tier")}


def graph() -> dict[str, set[str]]:
    modules = {
        module_name(path): path for package in PACKAGES for path in (ROOT / package.replace(".", "/")).rglob("*.py")
    }
    return {name: {target for target in imports_of(path) if target in modules} for name, path in modules.items()}


def test_the_graph_sees_the_packages_and_their_imports():
    edges = graph()
    assert {"broker_tier.ops.cli", "broker_tier.rehearsal.runner", "broker_tier.evidence.report"} <= set(edges)
    assert "broker_tier.evidence.report" in edges["broker_tier.rehearsal.runner"]
    assert "broker_tier.rehearsal.runner" in edges["broker_tier.ops.rehearse"]  # an import inside a function


def test_the_evidence_imports_neither_the_ops_tool_nor_the_rehearsal():
    edges = graph()
    evidence = {name: targets for name, targets in edges.items() if name.startswith("broker_tier.evidence")}
    assert evidence
    assert {
        name: targets
        for name, targets in evidence.items()
        if not all(t.startswith("broker_tier.evidence") for t in targets)
    } == {}


def test_the_rehearsal_never_imports_the_ops_tool():
    edges = graph()
    rehearsal = {name: targets for name, targets in edges.items() if name.startswith("broker_tier.rehearsal")}
    assert rehearsal
    assert {
        name: sorted(t for t in targets if t.startswith("broker_tier.ops"))
        for name, targets in rehearsal.items()
        if any(t.startswith("broker_tier.ops") for t in targets)
    } == {}


def test_only_the_rehearse_command_reaches_the_rehearsal():
    edges = graph()
    reaching = {
        name
        for name, targets in edges.items()
        if name.startswith("broker_tier.ops") and any(t.startswith("broker_tier.rehearsal") for t in targets)
    }
    assert reaching == ALLOWED_INTO_REHEARSAL


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(edges.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += edges.get(node, ())
    return seen


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The modules on a cycle, grouped by cycle (each group: the modules that reach each other)."""
    reach = {node: reachable(edges, node) for node in edges}
    on_cycle = sorted(node for node in edges if node in reach[node])
    groups = {
        tuple(sorted(other for other in on_cycle if other in reach[node] and node in reach[other])) for node in on_cycle
    }
    return sorted(list(group) for group in groups)


def test_no_import_cycle_in_the_ops_tool_the_rehearsal_or_the_evidence():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []

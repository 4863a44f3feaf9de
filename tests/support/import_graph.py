"""The first-party import graph, read from the source: every import counts, also one inside a function or under
``TYPE_CHECKING`` (a cycle hidden that way is still a cycle). One graph for every layering test."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PACKAGE_DIRS = {
    "broker_tier": ROOT / "broker_tier",
    "broker_tier_contract": ROOT / "worker" / "broker_tier_contract",
    "broker_tier_celery": ROOT / "worker" / "broker_tier_celery",
    "broker_tier_worker": ROOT / "worker" / "broker_tier_worker",
}
"""Every first-party package, by import name."""


def module_files() -> dict[str, Path]:
    """Module name -> source file, for every first-party module (a package is its ``__init__``)."""
    modules = {}
    for package, directory in PACKAGE_DIRS.items():
        for path in directory.rglob("*.py"):
            parts = [package, *path.relative_to(directory).with_suffix("").parts]
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_modules(node: ast.AST, *, importer: str, is_package: bool, known: Iterable[str]) -> set[str]:
    """The first-party modules imported anywhere under ``node``: ``from a import b`` counts ``a.b`` when it is a
    module, else ``a``; a name not itself a module counts as its nearest enclosing module."""
    known = set(known)
    found = set()
    for statement in ast.walk(node):
        if isinstance(statement, ast.Import):
            targets = [alias.name for alias in statement.names]
        elif isinstance(statement, ast.ImportFrom):
            origin = statement.module or ""
            if statement.level:
                base = importer.split(".")[: len(importer.split(".")) - statement.level + int(is_package)]
                origin = ".".join([*base, *([origin] if origin else [])])
            targets = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin for alias in statement.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != importer:
                found.add(target)
    return found


def module_graph() -> dict[str, set[str]]:
    """Module -> the first-party modules it imports."""
    files = module_files()
    return {
        name: imported_modules(
            ast.parse(path.read_text(), str(path)), importer=name, is_package=path.name == "__init__.py", known=files
        )
        for name, path in files.items()
    }


def collapsed(graph: Mapping[str, set[str]], depth: int) -> dict[str, set[str]]:
    """The graph between units of ``depth`` name parts (2: broker_tier.ops, broker_tier.cost, ...)."""

    def unit(module: str) -> str:
        return ".".join(module.split(".")[:depth])

    units: dict[str, set[str]] = {}
    for module, targets in graph.items():
        units.setdefault(unit(module), set()).update(unit(t) for t in targets if unit(t) != unit(module))
    for targets in list(units.values()):
        for target in targets:
            units.setdefault(target, set())
    return units


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Each group of nodes that reach one another (a strongly connected component of two or more), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)

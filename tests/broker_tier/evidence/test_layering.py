"""The ops tool, the rehearsal and the evidence they share depend on each other one way only (cycles anywhere are
tests/test_import_cycles.py's): the evidence imports neither, the rehearsal never the ops tool, and only the
``rehearse`` command reaches the rehearsal."""

from __future__ import annotations

from import_graph import module_graph

ALLOWED_INTO_REHEARSAL = {"broker_tier.ops.rehearse"}
"""The one ops module that may reach the rehearsal: the command that runs it."""


def imports_from(prefix: str, into: str) -> dict[str, list[str]]:
    """Each module under ``prefix`` that imports a module under ``into``, with those modules."""
    modules = {name: targets for name, targets in module_graph().items() if name.startswith(prefix)}
    assert modules, prefix
    return {
        name: sorted(t for t in targets if t.startswith(into))
        for name, targets in modules.items()
        if any(t.startswith(into) for t in targets)
    }


def test_the_evidence_imports_neither_the_ops_tool_nor_the_rehearsal():
    assert imports_from("broker_tier.evidence", "broker_tier.ops") == {}
    assert imports_from("broker_tier.evidence", "broker_tier.rehearsal") == {}


def test_the_rehearsal_never_imports_the_ops_tool():
    assert imports_from("broker_tier.rehearsal", "broker_tier.ops") == {}


def test_only_the_rehearse_command_reaches_the_rehearsal():
    assert set(imports_from("broker_tier.ops", "broker_tier.rehearsal")) == ALLOWED_INTO_REHEARSAL

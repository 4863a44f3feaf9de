"""The first-party packages form layers: no module imports, directly or through others, one that imports it back,
and no two units of broker_tier (ops, rehearsal, evidence, cost, tools, ...) depend on each other both ways."""

from __future__ import annotations

from import_graph import PACKAGE_DIRS, collapsed, cycles, module_graph


def test_the_graph_sees_every_package_and_imports_inside_functions():
    graph = module_graph()
    assert set(PACKAGE_DIRS) <= set(graph)
    assert "broker_tier.rehearsal.runner" in graph["broker_tier.ops.rehearse"]  # imported inside a function
    assert "broker_tier.cost" in collapsed(graph, 2)["broker_tier.tools"]  # the synthesis summary prices templates


def test_no_module_imports_itself_back():
    assert cycles(module_graph()) == []


def test_no_two_units_of_broker_tier_depend_on_each_other():
    assert cycles(collapsed(module_graph(), 2)) == []


def test_the_cycle_finder_finds_each_cycle_and_only_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": set()}
    assert cycles(graph) == [["a", "b", "c"], ["d", "e"]]
    assert cycles({"a": {"b"}, "b": set()}) == []

"""docs/measuring.md's table is the one the committed benchmark summary renders, and the summary says where, when
and with what it was measured."""

from __future__ import annotations

import json

from tier_testing import ROOT

from broker_tier.tools.benchmark import PACKAGES, SYNTHESIS_RATIO_GOAL, TEST_COMMAND_GOAL_SECONDS
from broker_tier.tools.benchmark_table import SUMMARY, lines

DOCUMENT = ROOT / "docs" / "measuring.md"
MEASURED = json.loads(SUMMARY.read_text())


def test_the_summary_says_where_when_and_with_what_it_was_measured():
    machine = MEASURED["machine"]
    assert machine["cpu_count"] >= 1 and machine["cpu_model"] and len(machine["git_commit"]) == 40
    assert set(PACKAGES) | {"python"} <= set(machine["versions"])
    assert all(version != "not installed" for version in machine["versions"].values())
    assert len(MEASURED["load_average"]["at_start"]) == len(MEASURED["load_average"]["at_end"]) == 3
    assert MEASURED["date"]


def test_the_summary_measures_both_goals_against_the_code_s_goals():
    synthesis, ran = MEASURED["synthesis"], MEASURED["test_command"]
    assert len(synthesis["bare_seconds"]) == len(synthesis["tier_seconds"]) == synthesis["runs"] >= 3
    assert synthesis["ratio"] == round(synthesis["tier_median_seconds"] / synthesis["bare_median_seconds"], 2)
    assert synthesis["ratio_goal"] == SYNTHESIS_RATIO_GOAL and ran["goal_seconds"] == TEST_COMMAND_GOAL_SECONDS
    assert ran["pytest"]["passed"] > 0 and "failed" not in ran["pytest"]
    assert ran["cpu_seconds"] > 0 and ran["wall_seconds"] > 0


def test_a_changed_figure_or_a_missed_goal_changes_the_table():
    changed = json.loads(json.dumps(MEASURED))
    changed["test_command"]["wall_seconds"] = 999.5
    changed["synthesis"]["ratio"] = 2.5
    table = "\n".join(lines(changed))
    assert table != "\n".join(lines(MEASURED))
    assert "999.5 s wall" in table and "| 2.5x | at most 2x | **missed** |" in table
    changed["synthesis"]["ratio"] = 1.5
    assert "| 1.5x | at most 2x | met |" in "\n".join(lines(changed))

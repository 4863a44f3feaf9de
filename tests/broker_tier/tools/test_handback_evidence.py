"""The hand-back figures of docs/workers.md are the table generated from the committed summary, which says what
they were measured on; the summary is aggregated from the JSON lines the tests record, and they record only when
asked (tests/support/measurements.py)."""

from __future__ import annotations

import copy
import json

import pytest
from measurements import ENVIRONMENT_VARIABLE, OPTION, recorder_for

from broker_tier.tools import handback_evidence
from broker_tier.tools.handback_evidence import (
    PACKAGES,
    ROOT,
    ROWS,
    SUMMARY,
    TABLE,
    TESTS,
    aggregate,
    lines_for,
    missing,
    read_records,
    table_for,
)

pytest_plugins = ["pytester"]  # runs a test with the measurements plugin in a pytest of its own

DOCUMENT = ROOT / "docs" / "workers.md"


def committed() -> dict:
    return json.loads(SUMMARY.read_text())


def test_the_measured_section_types_no_figure_by_hand():
    section = DOCUMENT.read_text().split("### Measured", 1)[1].split("\n## ", 1)[0]
    prose = section.replace(TABLE.table(), "")
    assert prose != section  # the table is in the section
    assert "not checked evidence" not in section and "not a committed summary" not in section
    for figure in ("1.9-2.0 s", "4.8-5.9 s", "0.4-0.9 s", "0.6-1.5 s"):  # the hand-typed figures it carried
        assert figure not in prose


def test_the_summary_says_what_it_was_measured_on_and_has_every_figure_the_table_shows():
    summary = committed()
    assert summary["runs"] >= 3 and summary["tests"] == list(TESTS)
    assert summary["date"] and summary["duration_seconds"] > 0
    machine = summary["machine"]
    assert machine["cpu_count"] >= 1 and machine["cpu_model"] and len(machine["git_commit"]) == 40
    assert set(machine["versions"]) == {"python", *PACKAGES, "redis-server"}
    assert "not installed" not in machine["versions"].values()
    assert [len(summary["load_average"][when]) for when in ("at_start", "at_end")] == [3, 3]
    assert ROWS
    for row in ROWS:
        figure = summary["figures"][row.test][row.name]
        assert len(figure["runs"]) == summary["runs"], row
        assert figure["min"] == min(figure["runs"]) and figure["max"] == max(figure["runs"]), row
    assert missing(summary["figures"], summary["runs"]) == []


def test_the_summary_holds_the_bounds_the_tests_assert():
    figures = committed()["figures"]
    for test in TESTS[:3]:  # the three hand-back cases: SIGTERM to the start elsewhere within 15 s
        assert figures[test]["hand_back_seconds"]["max"] < 15
    spot = figures[handback_evidence.SPOT_LONG]
    assert spot["visible_again_seconds"]["max"] <= spot["started_elsewhere_seconds"]["max"] < 15
    assert spot["receive_count"]["runs"] == [2] * committed()["runs"]
    assert figures[handback_evidence.SPOT_SHORT]["exit_seconds"]["max"] < 60


def test_the_table_is_generated_from_the_summary(tmp_path):
    summary = committed()
    changed = copy.deepcopy(summary)
    figure = changed["figures"][handback_evidence.REDIS]["hand_back_seconds"]
    figure["runs"][0], figure["max"] = 9.87, 9.87
    assert table_for(summary).table() == TABLE.table()
    assert table_for(changed).table() != TABLE.table()
    assert any("9.9 s" in line and line.startswith("| Redis broker |") for line in lines_for(changed))
    changed["machine"]["versions"]["kombu"] = "9.9.9"
    assert "kombu 9.9.9" in lines_for(changed)[0]
    del changed["figures"][handback_evidence.SPOT_SHORT]
    with pytest.raises(KeyError):
        lines_for(changed)


def test_a_figure_is_the_minimum_and_maximum_of_its_runs_in_run_order(tmp_path):
    lines = tmp_path / "run.jsonl"
    lines.write_text(
        '{"test": "t::a", "name": "x_seconds", "value": 2.0, "context": {"broker": "sqs"}}\n'
        '{"test": "t::a", "name": "count", "value": 2, "context": {}}\n'
    )
    runs = [
        read_records(lines),
        [{"test": "t::a", "name": "x_seconds", "value": 1.23456, "context": {"broker": "sqs"}}],
        [{"test": "t::a", "name": "x_seconds", "value": 3.5, "context": {"broker": "sqs"}}],
        read_records(tmp_path / "absent.jsonl"),  # a run that recorded nothing
    ]
    assert aggregate(runs) == {
        "t::a": {
            "count": {"min": 2, "max": 2, "runs": [2], "context": {}},
            "x_seconds": {"min": 1.235, "max": 3.5, "runs": [2.0, 1.235, 3.5], "context": {"broker": "sqs"}},
        }
    }


def test_a_figure_missing_from_a_run_is_reported():
    one_run = [[{"test": row.test, "name": row.name, "value": 1.0, "context": {}} for row in ROWS]]
    assert missing(aggregate(one_run), 1) == []
    assert missing(aggregate(one_run), 2) == [f"{row.test} {row.name}" for row in ROWS]
    assert missing(aggregate([one_run[0][1:]]), 1) == [f"{ROWS[0].test} {ROWS[0].name}"]


def test_a_failed_run_writes_no_summary(tmp_path, monkeypatch):
    monkeypatch.setattr(handback_evidence, "run_once", lambda records: 1)
    summary = tmp_path / "summary.json"
    assert handback_evidence.main(["measure", "--runs", "2", "--summary", str(summary)]) == 1
    assert not summary.exists()


def test_a_run_writes_the_summary(tmp_path, monkeypatch):
    def run_once(records):
        records.write_text(
            "".join(json.dumps({"test": r.test, "name": r.name, "value": 2, "context": {}}) + "\n" for r in ROWS)
        )
        return 0

    monkeypatch.setattr(handback_evidence, "run_once", run_once)
    monkeypatch.setattr(handback_evidence, "machine", lambda packages, redis_server: {"versions": {}})
    summary = tmp_path / "summary.json"
    assert handback_evidence.main(["measure", "--runs", "2", "--summary", str(summary)]) == 0
    written = json.loads(summary.read_text())
    assert written["runs"] == 2 and written["command"] == "scripts/measure-handback.sh --runs 2"
    assert written["figures"][ROWS[0].test][ROWS[0].name]["runs"] == [2, 2]
    assert set(written["load_average"]) == {"at_start", "at_end"}


# -- the plugin: records only when asked ---------------------------------------------------------------------------
def test_the_recorder_writes_nothing_unless_given_a_file(tmp_path):
    silent = recorder_for(None, {})
    assert silent.path is None
    silent.record("t::a", "x_seconds", 1.0, {})  # nowhere to write: does nothing, raises nothing
    target = tmp_path / "figures.jsonl"
    recorder_for(str(target), {}).record("t::a", "x_seconds", 1.5, {"broker": "redis"})
    recorder_for(None, {ENVIRONMENT_VARIABLE: str(target)}).record("t::b", "y_seconds", 2.5, {})
    assert read_records(target) == [
        {"test": "t::a", "name": "x_seconds", "value": 1.5, "context": {"broker": "redis"}},
        {"test": "t::b", "name": "y_seconds", "value": 2.5, "context": {}},
    ]
    assert recorder_for(str(target), {ENVIRONMENT_VARIABLE: "elsewhere"}).path == target  # the option wins


PLUGGED_TEST = """
def test_one(measured):
    measured("x_seconds", 1.25, broker="sqs")
    assert True
"""


@pytest.mark.parametrize("asked", [True, False], ids=["with the option", "without"])
def test_the_fixture_records_only_under_the_option(pytester, monkeypatch, asked):
    import measurements

    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    pytester.makepyfile(test_plugged=PLUGGED_TEST)
    target = pytester.path / "figures.jsonl"
    options = [OPTION, str(target)] if asked else []
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", *options, plugins=[measurements])
    result.assert_outcomes(passed=1)
    expected = [{"test": "test_plugged.py::test_one", "name": "x_seconds", "value": 1.25, "context": {"broker": "sqs"}}]
    assert read_records(target) == (expected if asked else [])

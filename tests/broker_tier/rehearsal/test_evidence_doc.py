"""The rehearsal's figures in the docs come from the committed series summary, and nothing else."""

from __future__ import annotations

import json
import shutil

from tier_testing import ROOT

from broker_tier.rehearsal import evidence_doc
from broker_tier.rehearsal.faults import BROKERS, FAULTS
from broker_tier.rehearsal.series import DESCRIBED_CODE, described_code_digest, stale_parts, updated

SUMMARY = json.loads(evidence_doc.SUMMARY.read_text())


def test_the_document_is_what_the_summary_and_the_records_render():
    assert evidence_doc.current() == evidence_doc.render(SUMMARY), (
        "docs/rehearsal.md's generated block is out of date: run python -m broker_tier.rehearsal.evidence_doc"
    )


def test_a_figure_typed_into_the_document_by_hand_is_caught(tmp_path, monkeypatch):
    block = evidence_doc.current()
    assert "| redis | power-loss |" in block
    edited = tmp_path / "rehearsal.md"
    edited.write_text(
        evidence_doc.DOCUMENT.read_text().replace("| redis | power-loss |", "| redis | power-loss | 0 |", 1)
    )
    monkeypatch.setattr(evidence_doc, "DOCUMENT", edited)
    assert evidence_doc.main(["--check"]) == 1
    monkeypatch.setattr(evidence_doc, "DOCUMENT", evidence_doc.DOCUMENT)


def test_the_summary_says_where_when_and_with_what_it_was_measured():
    machine = SUMMARY["machine"]
    assert machine["cpu_count"] >= 1 and machine["cpu_model"] and len(machine["git_commit"]) == 40
    assert {"python", "celery", "kombu", "redis", "redis-server", "moto"} <= set(machine["versions"])
    assert all(machine["versions"].values())
    assert len(SUMMARY["load_average"]["at_start"]) == len(SUMMARY["load_average"]["at_end"]) == 3
    assert SUMMARY["date"] and SUMMARY["duration_seconds"] > 0 and SUMMARY["runs_per_cell"] >= 1


def test_the_summary_covers_every_broker_x_fault_at_every_rate():
    cells = SUMMARY["cells"]
    assert cells
    covered = {(cell["broker"], cell["fault"], cell["rate"]) for cell in cells}
    assert covered >= {(b, f.name, r) for b in BROKERS for f in FAULTS for r in SUMMARY["rates"]}
    for cell in cells:
        assert cell["runs"] == len(cell["outcomes"]) == SUMMARY["runs_per_cell"]
        assert cell["goals_met"] == cell["outcomes"].count("passed")
        assert cell["figures"]["load_1min_at_start"], "each row gives its runs' load"


def test_a_changed_figure_in_the_summary_changes_the_document():
    changed = json.loads(json.dumps(SUMMARY))
    cell = changed["cells"][0]
    cell["figures"]["longest_stall_seconds"] = [123.45, 678.9]
    text = evidence_doc.render(changed)
    assert "123.45–678.9" in text and text != evidence_doc.render(SUMMARY)


def test_the_faults_and_goals_tables_come_from_the_records():
    text = evidence_doc.render(SUMMARY)
    assert FAULTS
    for fault in FAULTS:
        assert f"| `{fault.name}` | {fault.what_happens} |" in text
        for broker in BROKERS:
            assert f"{broker} {fault.name}" in text
            assert fault.goals[broker]
            for goal in fault.goals[broker]:
                assert f"| `{goal.figure}` |" in text


def test_the_pictures_the_document_shows_are_committed():
    assert SUMMARY["pictures"]
    for entry in SUMMARY["pictures"]:
        path = evidence_doc.DOCUMENT.parent / entry["path"]
        assert path.is_file() and path.read_text().lstrip().startswith("<?xml"), path
        assert f"]({entry['path']})" in evidence_doc.current()


def test_an_update_replaces_its_faults_rows_and_keeps_the_rest_with_their_own_provenance():
    part = json.loads(json.dumps(SUMMARY))
    part["cells"] = [cell for cell in part["cells"] if cell["fault"] == "crash"]
    assert part["cells"]
    for cell in part["cells"]:
        cell["figures"]["longest_stall_seconds"] = [1.23, 4.56]
    part["pictures"] = [entry for entry in part["pictures"] if entry["fault"] == "crash"]
    part["date"] = "2030-01-01T00:00:00+00:00"
    merged = updated(SUMMARY, part, ["crash"])
    assert len(merged["cells"]) == len(SUMMARY["cells"])
    assert all(c["figures"]["longest_stall_seconds"] == [1.23, 4.56] for c in merged["cells"] if c["fault"] == "crash")
    assert [c for c in merged["cells"] if c["fault"] != "crash"] == [
        c for c in SUMMARY["cells"] if c["fault"] != "crash"
    ]
    text = evidence_doc.render(merged)
    assert "The rows of crash finished 2030-01-01T00:00:00+00:00" in text and "all but crash" in text
    part["runs_per_cell"] += 1
    try:
        updated(SUMMARY, part, ["crash"])
    except ValueError as error:
        assert "an update must use the summary's runs and rates" in str(error)
    else:
        raise AssertionError("an update with other runs per cell was taken")


def test_the_figures_describe_the_code_as_it_is():
    stale = stale_parts(SUMMARY, described_code_digest())
    assert stale == [], (
        f"{' and '.join(stale)} of docs/evidence/rehearsal-summary.json measured {' and '.join(DESCRIBED_CODE)} as "
        "they were before a change: run scripts/rehearse-all.sh (FAULTS=... for the faults the change concerns)"
    )


def test_a_summary_of_changed_code_is_caught(tmp_path):
    copy = tmp_path / "root"
    for folder in DESCRIBED_CODE:
        shutil.copytree(ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    assert described_code_digest(copy) == described_code_digest()
    changed = copy / DESCRIBED_CODE[0] / "settings.py"
    changed.write_text(changed.read_text() + "\n# a change\n")
    changed_digest = described_code_digest(copy)
    assert changed_digest != described_code_digest()
    current = {**SUMMARY, "machine": {**SUMMARY["machine"], "described_code_sha256": described_code_digest()}}
    assert stale_parts(current, changed_digest) == ["the series"]
    part = {**current, "cells": [], "pictures": []}
    update = updated(current, {**part, "machine": {**part["machine"], "described_code_sha256": changed_digest}}, ["x"])
    assert stale_parts(update, changed_digest) == ["the series"]

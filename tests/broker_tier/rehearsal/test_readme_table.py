"""The README's rehearsal table is the one the committed series summary renders, row for row."""

from __future__ import annotations

import json

from tier_testing import ROOT

from broker_tier.rehearsal.evidence_doc import SUMMARY
from broker_tier.rehearsal.faults import BROKERS, FAULTS
from broker_tier.rehearsal.readme_table import TABLE, lines, widest

README = ROOT / "README.md"
MEASURED = json.loads(SUMMARY.read_text())


def test_the_readme_s_table_is_the_generated_one():
    text = README.read_text()
    assert "| redis | `power-loss` |" in text  # the table is there, not just its markers
    assert TABLE.replace_in(text) == text, (
        "README.md's rehearsal table differs from docs/evidence/rehearsal-summary.json; run "
        "python -m broker_tier.rehearsal.readme_table --write README.md"
    )


def test_a_figure_typed_into_the_readme_is_caught(tmp_path, capsys):
    edited = tmp_path / "README.md"
    edited.write_text(README.read_text().replace("| redis | `power-loss` |", "| redis | `power-loss` | 0 |", 1))
    assert TABLE.main(["--check", str(edited)], description="") == 1
    assert "out of date" in capsys.readouterr().out


def test_one_row_per_broker_x_fault_counting_every_run_of_it():
    rows = [line for line in lines(MEASURED) if line.startswith("| ") and "`" in line]
    assert len(rows) == len(BROKERS) * len(FAULTS)
    total = sum(int(row.split(" | ")[2].split(" of ")[1]) for row in rows)
    assert total == sum(cell["runs"] for cell in MEASURED["cells"])


def test_each_figure_is_the_range_over_every_rate_and_window():
    assert widest([[1.0, 2.0], [0.5, 1.5], [3.0, 3.0]]) == [0.5, 3.0]
    assert widest([]) is None
    changed = json.loads(json.dumps(MEASURED))
    chosen = next(c for c in changed["cells"] if c["broker"] == "redis" and c["fault"] == "crash")
    chosen["figures"]["longest_stall_seconds"] = [0.01, 99.5]
    chosen["goals_met"] = 0
    row = next(line for line in lines(changed) if line.startswith("| redis | `crash` |"))
    assert "| 0.01–99.5 |" in row
    assert row != next(line for line in lines(MEASURED) if line.startswith("| redis | `crash` |"))

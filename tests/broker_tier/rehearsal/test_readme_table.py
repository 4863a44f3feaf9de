"""The README's rehearsal table is the one the committed series summary renders, row for row."""

from __future__ import annotations

import json

from tier_testing import ROOT

from broker_tier.rehearsal.evidence_doc import SUMMARY
from broker_tier.rehearsal.faults import BROKERS, FAULTS
from broker_tier.rehearsal.readme_table import lines, widest

README = ROOT / "README.md"
MEASURED = json.loads(SUMMARY.read_text())


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

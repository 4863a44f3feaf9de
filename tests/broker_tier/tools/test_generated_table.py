"""Every table generated into a document (``GeneratedTable``) is the one its generator makes now, and a row edited
by hand is caught: one test for them all, so that a new table is covered the day it is added."""

from __future__ import annotations

import re

import pytest
from tier_testing import ROOT

from broker_tier.rehearsal import readme_table
from broker_tier.tools import benchmark_table, config_reference, container_variables, handback_evidence
from broker_tier.tools.generated_table import GeneratedTable

TABLES = {
    config_reference.TABLE: "| `cache.node_type` |",
    container_variables.TABLE: "| `BROKER_TIER_QUEUE_URLS` |",
    benchmark_table.TABLE: "| Ratio |",
    handback_evidence.TABLE: "| Redis broker | SIGTERM to the task starting on the other worker |",
    readme_table.TABLE: "| redis | `power-loss` |",
}
"""Each table, and the start of a row it must have (the table is there, not just its markers)."""
CASES = pytest.mark.parametrize("table", list(TABLES), ids=lambda table: table.marker)


def test_every_generated_table_of_the_code_is_checked_here():
    defined = {
        path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
        for path in (ROOT / "broker_tier").rglob("*.py")
        if re.search(r"^\w+ = GeneratedTable\(", path.read_text(), re.M)
    }
    assert defined and defined == {table.module for table in TABLES}


@CASES
def test_the_document_holds_the_generated_table(table: GeneratedTable):
    document = ROOT / table.document
    text = document.read_text()
    assert TABLES[table] in text
    assert table.replace_in(text) == text, (
        f"{table.document}: {table.what} is out of date; run python -m {table.module} --write {table.document}"
    )
    assert table.main(["--check", str(document)], description="") == 0


@CASES
def test_a_row_edited_by_hand_is_caught(table: GeneratedTable, tmp_path, capsys):
    edited = tmp_path / "document.md"
    edited.write_text((ROOT / table.document).read_text().replace(TABLES[table], TABLES[table] + " 0 |", 1))
    assert table.main(["--check", str(edited)], description="") == 1
    assert "out of date" in capsys.readouterr().out

"""The README's rehearsal table, generated from the committed series summary
(``docs/evidence/rehearsal-summary.json``): per broker x fault, every rate and split window together, the runs that
met every goal and the range of the figures a team asks first. The full table is in docs/rehearsal.md.
``--write README.md`` replaces it, ``--check README.md`` exits 1 when it is out of date."""

from __future__ import annotations

import json
import sys

from broker_tier.rehearsal.evidence_doc import SUMMARY, span
from broker_tier.rehearsal.faults import BROKERS, FAULTS
from broker_tier.tools.generated_table import GeneratedTable

FIGURES = (
    ("lost", "tasks lost"),
    ("publish_errors", "publish errors"),
    ("worker_restarts", "worker exits"),
    ("duplicated", "tasks run twice"),
    ("longest_stall_seconds", "longest stall (s)"),
    ("results_lost", "results lost"),
    ("results_lost_to_split_window", "of which split window"),
)


def widest(pairs: list[list[float]]) -> list[float] | None:
    """The range that covers every ``[low, high]`` of ``pairs``, or None when there are none."""
    return [min(low for low, _ in pairs), max(high for _, high in pairs)] if pairs else None


def lines(summary: dict | None = None) -> list[str]:
    found = summary if summary is not None else json.loads(SUMMARY.read_text())
    rows = [
        "| broker | fault | runs meeting every goal | " + " | ".join(title for _, title in FIGURES) + " |",
        "|---|---|---|" + "---|" * len(FIGURES),
    ]
    for broker in BROKERS:
        for fault in FAULTS:
            cells = [c for c in found["cells"] if c["broker"] == broker and c["fault"] == fault.name]
            met, runs = sum(c["goals_met"] for c in cells), sum(c["runs"] for c in cells)
            figures = [
                span(widest([c["figures"][name] for c in cells if c["figures"].get(name)])) for name, _ in FIGURES
            ]
            rows.append(f"| {broker} | `{fault.name}` | {met} of {runs} | " + " | ".join(figures) + " |")
    rates = ", ".join(f"{rate:g}" for rate in found["rates"])
    return [
        f"{found['runs_per_cell']} runs per rate ({rates} tasks/s) and split window, measured {found['date'][:10]} "
        f"on {found['machine']['cpu_count']} × {found['machine']['cpu_model']} (load and versions: "
        "[docs/rehearsal.md](docs/rehearsal.md#measured)); each figure is the range over every run:",
        "",
        *rows,
    ]


TABLE = GeneratedTable(
    what="the README's rehearsal table",
    marker="rehearsal-figures",
    source="docs/evidence/rehearsal-summary.json",
    module="broker_tier.rehearsal.readme_table",
    document="README.md",
    lines=lines,
)


if __name__ == "__main__":
    sys.exit(TABLE.main(sys.argv[1:], description=__doc__.splitlines()[0]))

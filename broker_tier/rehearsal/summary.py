"""A Markdown table of rehearsal reports: one row per broker mode and fault, over all their runs.

``python -m broker_tier.rehearsal.summary DIR`` reads every ``rehearse-*.json`` in ``DIR`` (what
``scripts/rehearse-all.sh`` writes) and prints the table the README's "Failover rehearsal" shows.
A figure measured in several runs reads ``min–max`` (or the single value when all agree).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from broker_tier.rehearsal.goals import GOALS

COLUMNS = (
    ("runs", "runs"),
    ("published", "published"),
    ("publish_errors", "publish errors"),
    ("executed", "executed"),
    ("lost", "lost"),
    ("duplicated", "duplicated"),
    ("results_lost", "results lost"),
    ("worker_restarts", "worker restarts"),
    ("resume_seconds", "resume (s)"),
    ("longest_stall_seconds", "longest stall (s)"),
    ("max_delay_seconds", "max delay (s)"),
    ("throughput_before", "tasks/s before"),
    ("throughput_after", "tasks/s after"),
    ("queued_before_fault", "queued at the fault"),
    ("unacked_at_end", "unacked at end"),
    ("stranded_until_visibility_timeout", "stranded until visibility timeout"),
    ("writes_lost_to_replication_bytes", "replication loss (bytes)"),
    ("outcome", "goals"),
)
ORDER = [(broker, fault) for broker in ("sqs", "redis") for fault in ("promote", "power-loss", "reboot")]


def _span(values: list) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if all(isinstance(v, str) for v in values):
        return ", ".join(sorted(set(values)))
    low, high = min(values), max(values)
    return f"{low:g}" if low == high else f"{low:g}–{high:g}"


def load(directory: Path) -> dict[tuple[str, str], list[dict]]:
    runs: dict[tuple[str, str], list[dict]] = {}
    for path in sorted(directory.glob("rehearse-*.json")):
        report = json.loads(path.read_text())
        figures = report["measurements"]
        if "broker" in figures:
            has_goals = bool(GOALS.get((figures["broker"], figures["fault"])))
            figures = {
                **figures,
                "outcome": ("met" if report["outcome"] == "passed" else "missed") if has_goals else "none (measured)",
            }
            runs.setdefault((figures["broker"], figures["fault"]), []).append(figures)
    return runs


def table(runs: dict[tuple[str, str], list[dict]]) -> str:
    lines = [
        "| mode | fault | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    for key in sorted(runs, key=lambda k: ORDER.index(k) if k in ORDER else len(ORDER)):
        figures = runs[key]
        cells = [str(len(figures)) if name == "runs" else _span([f.get(name) for f in figures]) for name, _ in COLUMNS]
        lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def reboot_losses(runs: dict[tuple[str, str], list[dict]]) -> list[str]:
    """What the reboot destroyed: keys per database before, and what the nodes held after."""
    notes = []
    for (broker, fault), figures in sorted(runs.items()):
        if fault == "reboot":
            for run in figures:
                notes.append(
                    f"- {broker} reboot: keys before {run.get('keys_before')}, after "
                    f"{run.get('keys_after_reboot')}; results lost {run.get('results_lost')}, tasks lost "
                    f"{run.get('lost')}"
                )
    return notes


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m broker_tier.rehearsal.summary DIR", file=sys.stderr)
        return 2
    runs = load(Path(args[0]))
    loads = [f.get("load_average_at_start") for figures in runs.values() for f in figures]
    print(table(runs))
    print()
    print("\n".join(reboot_losses(runs)))
    print(f"\nload average (1, 5, 15 min) at the start of each run: {loads}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

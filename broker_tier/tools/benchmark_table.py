"""The table of docs/measuring.md, generated from the committed benchmark summary
(``docs/evidence/benchmark-summary.json``, written by ``scripts/benchmark.sh --summary``): no figure typed by hand.
``--write docs/measuring.md`` replaces it, ``--check docs/measuring.md`` exits 1 when it is out of date."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from broker_tier.tools.generated_table import GeneratedTable, cell

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = ROOT / "docs" / "evidence" / "benchmark-summary.json"


def _met(met: bool) -> str:
    return "met" if met else "**missed**"


def lines(summary: dict | None = None) -> list[str]:
    found = summary if summary is not None else json.loads(SUMMARY.read_text())
    machine, load = found["machine"], found["load_average"]
    synthesis = found["synthesis"]
    rows = [
        (
            "Synthesis, bare one-stack app (median)",
            f"{synthesis['bare_median_seconds']:g} s (runs {', '.join(f'{r:g}' for r in synthesis['bare_seconds'])})",
            "",
            "",
        ),
        (
            "Synthesis, every environment, cdk-nag included (median)",
            f"{synthesis['tier_median_seconds']:g} s (runs {', '.join(f'{r:g}' for r in synthesis['tier_seconds'])})",
            "",
            "",
        ),
        (
            "Ratio",
            f"{synthesis['ratio']:g}x",
            f"at most {synthesis['ratio_goal']:g}x",
            _met(synthesis["ratio"] <= synthesis["ratio_goal"]),
        ),
    ]
    ran = found.get("test_command")
    if ran:
        counts = ", ".join(f"{n} {kind}" for kind, n in ran["pytest"].items())
        rows.append(
            (
                "`scripts/test.sh`, set-up done",
                f"{ran['wall_seconds']:g} s wall, {ran['cpu_seconds']:g} s CPU (pytest: {counts}; "
                f"`{ran['left_out']}` left out: it reads this summary)",
                f"under {ran['goal_seconds']:g} s",
                _met(ran["wall_seconds"] < ran["goal_seconds"]),
            )
        )
    versions = ", ".join(f"{name} {version}" for name, version in machine["versions"].items())
    return [
        f"Measured {found['date']} at commit `{machine['git_commit'][:12]}`"
        + (" (with uncommitted changes)" if machine["git_dirty"] else "")
        + f" on {machine['cpu_count']} × {machine['cpu_model']} ({machine['memory_gib']} GiB), {machine['platform']}; "
        f"load average (1, 5, 15 min) {load['at_start']} at the start, {load['at_end']} at the end. Versions: "
        f"{versions}.",
        "",
        "| What | Measured | Goal | |",
        "|---|---|---|---|",
        *("| " + " | ".join(cell(text) for text in row) + " |" for row in rows),
    ]


TABLE = GeneratedTable(
    what="the benchmark table",
    marker="benchmark",
    source="docs/evidence/benchmark-summary.json",
    module="broker_tier.tools.benchmark_table",
    document="docs/measuring.md",
    lines=lines,
)


if __name__ == "__main__":
    sys.exit(TABLE.main(sys.argv[1:], description=__doc__.splitlines()[0]))

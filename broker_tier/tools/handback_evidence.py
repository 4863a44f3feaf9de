"""The hand-back figures of docs/workers.md ("### Measured"), from a committed summary.

``python -m broker_tier.tools.handback_evidence measure [--runs N]`` (what ``scripts/measure-handback.sh`` runs)
runs the SIGTERM hand-back and Spot interruption integration tests N times, one after another, each run a pytest
process with ``--record-measurements`` (tests/support/measurements.py), and writes
``docs/evidence/handback-summary.json``: each figure's minimum, maximum and every run, with the date, the duration,
the machine, its load at the start and end, and the versions. A failed run writes nothing and exits 1.

``python -m broker_tier.tools.handback_evidence`` prints the table generated from that summary; ``--write
docs/workers.md`` replaces the table between that document's markers; ``--check docs/workers.md`` exits 1 when its
table differs (the test suite runs the same comparison).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from broker_tier.evidence.machine import load_average, load_since, machine
from broker_tier.tools.generated_table import GeneratedTable, cell

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = ROOT / "docs" / "evidence" / "handback-summary.json"
SCRIPT = "scripts/measure-handback.sh"
PACKAGES = ("celery", "kombu", "redis", "moto", "boto3", "botocore", "pytest")
"""What could change the figures: Celery and kombu (the shutdown and the hand-back), redis-py, moto's SQS server
(its long poll), boto3 and botocore, and pytest (which runs it all)."""
DISPLAY = {"python": "Python", "celery": "Celery", "redis": "redis-py"}
"""Names the document gives packages whose distribution name says less (``redis`` is the client)."""

LIFECYCLE = "tests/worker/integration/test_worker_lifecycle.py"
SPOT = "tests/worker/integration/test_spot_interruption.py"
HAND_BACK = f"{LIFECYCLE}::test_sigterm_mid_task_hands_the_message_back_and_another_worker_runs_it"
SQS_ALL_BUSY = f"{HAND_BACK}[sqs-all-busy]"
SQS_POLL_OPEN = f"{HAND_BACK}[sqs-poll-open]"
REDIS = f"{HAND_BACK}[redis]"
SPOT_LONG = (
    f"{SPOT}::test_a_spot_interruption_hands_a_long_task_back_at_once_and_it_runs_on_another_worker_received_once_more"
)
SPOT_SHORT = f"{SPOT}::test_a_task_whose_time_limit_fits_the_notice_finishes_on_the_interrupted_worker_received_once"
TESTS = (SQS_ALL_BUSY, SQS_POLL_OPEN, REDIS, SPOT_LONG, SPOT_SHORT)
"""The tests each run runs, by pytest node id (relative to the repository, where pytest is run)."""


@dataclass(frozen=True, kw_only=True)
class Row:
    """One figure of the table: which test records it under which name, and how the document says it."""

    case: str
    figure: str
    test: str
    name: str
    unit: str = "s"


ROWS = (
    Row(
        case="SQS, every process busy (no long poll open at SIGTERM)",
        figure="SIGTERM to the task starting on the other worker",
        test=SQS_ALL_BUSY,
        name="hand_back_seconds",
    ),
    Row(case="", figure="SIGTERM to the first worker's exit", test=SQS_ALL_BUSY, name="exit_seconds"),
    Row(
        case="SQS, an idle process beside the busy one (a 5 s long poll open at SIGTERM)",
        figure="SIGTERM to the task starting on the other worker",
        test=SQS_POLL_OPEN,
        name="hand_back_seconds",
    ),
    Row(case="", figure="SIGTERM to the first worker's exit", test=SQS_POLL_OPEN, name="exit_seconds"),
    Row(
        case="Redis broker",
        figure="SIGTERM to the task starting on the other worker",
        test=REDIS,
        name="hand_back_seconds",
    ),
    Row(case="", figure="SIGTERM to the first worker's exit", test=REDIS, name="exit_seconds"),
    Row(
        case="Spot interruption, a 3600 s class (handed back)",
        figure="SIGTERM to the message being visible again",
        test=SPOT_LONG,
        name="visible_again_seconds",
    ),
    Row(
        case="",
        figure="SIGTERM to the task starting on the other worker",
        test=SPOT_LONG,
        name="started_elsewhere_seconds",
    ),
    Row(
        case="",
        figure="the message's receive count while it runs there (moto's)",
        test=SPOT_LONG,
        name="receive_count",
        unit="",
    ),
    Row(case="", figure="SIGTERM to the interrupted worker's exit", test=SPOT_LONG, name="exit_seconds"),
    Row(
        case="Spot interruption, a 60 s class (finished where it ran)",
        figure="SIGTERM to the worker's exit, its task done",
        test=SPOT_SHORT,
        name="exit_seconds",
    ),
)


# -- measuring ----------------------------------------------------------------------------------------------------
def read_records(path: Path) -> list[dict]:
    """The JSON lines one run's tests recorded (none when no test recorded anything)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def aggregate(runs: list[list[dict]]) -> dict[str, dict[str, dict]]:
    """Each test's figures over the runs, in run order: ``{test: {name: {min, max, runs, context}}}``."""
    values: dict[str, dict[str, list[float]]] = {}
    contexts: dict[tuple[str, str], dict] = {}
    for records in runs:
        for record in records:
            values.setdefault(record["test"], {}).setdefault(record["name"], []).append(record["value"])
            contexts.setdefault((record["test"], record["name"]), record.get("context", {}))
    return {
        test: {
            name: {
                "min": round(min(found), 3),
                "max": round(max(found), 3),
                "runs": [round(value, 3) for value in found],
                "context": contexts[(test, name)],
            }
            for name, found in sorted(figures.items())
        }
        for test, figures in sorted(values.items())
    }


def missing(figures: dict[str, dict[str, dict]], runs: int) -> list[str]:
    """The table's figures that were not recorded once in every run (a test skipped, renamed or not run)."""
    return [
        f"{row.test} {row.name}"
        for row in ROWS
        if len(figures.get(row.test, {}).get(row.name, {}).get("runs", [])) != runs
    ]


def run_once(records: Path) -> int:
    """One run of ``TESTS`` in one pytest process, its figures appended to ``records``; pytest's exit status."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "--record-measurements", str(records), *TESTS]
    return subprocess.run(command, cwd=ROOT, check=False).returncode


def measure(runs: int, summary_path: Path) -> int:
    started, start = datetime.now(UTC), time.monotonic()
    # read before the runs: the commit and tree the figures were measured on, the load they started under
    on, load_at_start = machine(PACKAGES, redis_server=True), load_average()
    recorded = []
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(1, runs + 1):
            print(f"run {number} of {runs}", flush=True)
            records = Path(tmp) / f"run-{number}.jsonl"
            status = run_once(records)
            if status != 0:
                print(f"run {number} failed (pytest exit status {status}); {summary_path} not written")
                return 1
            recorded.append(read_records(records))
    figures = aggregate(recorded)
    absent = missing(figures, runs)
    if absent:
        print("figures not recorded in every run; summary not written:\n" + "\n".join(absent))
        return 1
    summary = {
        "what": "SIGTERM hand-back and Spot interruption, real prefork workers against moto's SQS server and "
        "redis-server on loopback: each figure's minimum, maximum and every run",
        "command": f"{SCRIPT} --runs {runs}",
        "date": started.isoformat(timespec="seconds"),
        "duration_seconds": round(time.monotonic() - start, 1),
        "runs": runs,
        "tests": list(TESTS),
        "machine": on,
        "load_average": load_since(load_at_start),
        "figures": figures,
    }
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {summary_path}; now run python -m {TABLE.module} --write {TABLE.document}")
    return 0


# -- the table ----------------------------------------------------------------------------------------------------
def _number(value: float, unit: str) -> str:
    return f"{value:.1f}" if unit else f"{value:g}"


def span(figure: dict, unit: str) -> str:
    """``1.9-2.0 s``; one value when every run rounds to it."""
    low, high = _number(figure["min"], unit), _number(figure["max"], unit)
    text = low if low == high else f"{low}-{high}"
    return f"{text} {unit}".strip()


def sentence(summary: dict) -> str:
    """When, on what and under which load the figures were measured, and by which command."""
    on, load = summary["machine"], summary["load_average"]
    versions = ", ".join(f"{DISPLAY.get(name, name)} {version}" for name, version in on["versions"].items())
    dirty = " (with uncommitted changes)" if on["git_dirty"] else ""
    return (
        f"Measured by `{summary['command']}` on {summary['date'][:10]} ({summary['runs']} runs of each test, "
        f"{summary['duration_seconds']:.0f} s in all) at commit `{on['git_commit'][:12]}`{dirty}, on "
        f"{on['cpu_count']} × {on['cpu_model']} with {on['memory_gib']} GiB ({on['platform']}); load average "
        f"(1, 5, 15 min) {', '.join(map(str, load['at_start']))} at the start and "
        f"{', '.join(map(str, load['at_end']))} at the end; {versions}. "
        "Summary: [handback-summary.json](evidence/handback-summary.json)."
    )


def lines_for(summary: dict) -> list[str]:
    """The sentence and the table, from ``summary``; a figure of ``ROWS`` it lacks is a KeyError."""
    lines = [
        sentence(summary),
        "",
        f"| case | figure | over {summary['runs']} runs | each run |",
        "|---|---|---|---|",
    ]
    for row in ROWS:
        figure = summary["figures"][row.test][row.name]
        each = ", ".join(_number(value, row.unit) for value in figure["runs"])
        cells = (row.case, row.figure, span(figure, row.unit), each)
        lines.append("| " + " | ".join(cell(text) for text in cells) + " |")
    return lines


def _lines() -> list[str]:
    return lines_for(json.loads(SUMMARY.read_text()))


TABLE = GeneratedTable(
    what="the table of hand-back figures",
    marker="handback-figures",
    source="docs/evidence/handback-summary.json",
    module="broker_tier.tools.handback_evidence",
    document="docs/workers.md",
    lines=_lines,
)


def table_for(summary: dict) -> GeneratedTable:
    """``TABLE``, generated from ``summary`` instead of the committed one."""
    return dataclasses.replace(TABLE, lines=lambda: lines_for(summary))


def main(argv: Iterable[str]) -> int:
    args = list(argv)
    if args[:1] != ["measure"]:
        return TABLE.main(args, description=__doc__.splitlines()[0])
    parser = argparse.ArgumentParser(prog=f"python -m {TABLE.module} measure", description="measure and summarize")
    parser.add_argument("--runs", type=int, default=3, help="runs of each test (default: 3)")
    parser.add_argument("--summary", type=Path, default=SUMMARY, help="where to write it (default: %(default)s)")
    options = parser.parse_args(args[1:])
    if options.runs < 1:
        parser.error("--runs must be at least 1")
    return measure(options.runs, options.summary)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

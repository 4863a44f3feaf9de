"""Rehearsals run many times: each figure's range over the runs, and the series' summary with the machine, its load
and the versions beside the figures (``docs/evidence/``; ``evidence_doc`` renders it for the docs).

``python -m broker_tier.rehearsal.series --runs 3 --rates 10,40 --out DIR --summary FILE`` runs every broker x
fault of ``faults.FAULTS`` (what ``scripts/rehearse-all.sh`` does). How many: docs/decisions/rehearsal-run-count.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import signal
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from broker_tier.evidence.machine import load_average, load_since
from broker_tier.evidence.machine import machine as machine_and_versions
from broker_tier.evidence.report import Check, Report
from broker_tier.rehearsal.faults import BROKERS, FAULTS
from broker_tier.rehearsal.runner import RehearsalOptions, new_report, refuse_options, rehearse

ROOT = Path(__file__).resolve().parents[2]
SERIES_PHASES: dict[str, Any] = {"before_seconds": 8.0, "after_seconds": 10.0}
"""Shorter publishing than a single run's defaults, to fit many runs in an hour. The SQS visibility timeout stays at
its default: it must outlast a task holding its message through the fault, and exceed the max-delay bound
(docs/decisions/rehearsal-goals.md)."""
SPLIT_WINDOWS_MEASURED = (0.0, 0.1)
"""promote is also run at these split windows (besides the default), at the highest rate."""
PACKAGES = ("celery", "kombu", "redis", "moto", "boto3", "matplotlib")
DESCRIBED_CODE = ("worker/broker_tier_celery", "worker/broker_tier_contract")
"""The code whose behaviour the figures describe: the summary records its digest, and a test fails once it changes
(tests/broker_tier/rehearsal/test_evidence_doc.py), so that no figure in the docs predates the code it describes."""


def described_code_digest(root: Path = ROOT) -> str:
    """SHA-256 over the path and content of every Python file of ``DESCRIBED_CODE``, in path order."""
    digest = hashlib.sha256()
    for folder in DESCRIBED_CODE:
        for path in sorted((root / folder).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def numeric_ranges(runs: Iterable[dict]) -> dict[str, list[float]]:
    """Figure -> [lowest, highest] over ``runs``, for every figure that is a number in each run it appears in."""
    values: dict[str, list[float]] = {}
    for figures in runs:
        for name, value in figures.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values.setdefault(name, []).append(value)
    return {name: [min(found), max(found)] for name, found in sorted(values.items())}


def run_series(
    options: RehearsalOptions,
    runs: int,
    *,
    templates: tuple[dict, dict] | None = None,
    report_dir: Path | None = None,
    stream=None,
    rehearse_one: Callable[..., Report] = rehearse,
) -> Report:
    """``runs`` rehearsals with ``options``, each report written to ``report_dir``; returns the series' report:
    one check per run, and each figure's range."""
    refuse_options(options)
    if templates is None:
        from broker_tier.rehearsal.definition import synthesize

        templates = synthesize(options.environment, broker=options.broker)
    series = new_report(options, stream=stream)
    series.target += f", {runs} runs"
    reports = []
    for number in range(1, runs + 1):
        series.say(f"run {number} of {runs}")
        report = rehearse_one(options, templates=templates, stream=stream)
        reports.append(report)
        if report_dir is not None:
            json_path, _ = report.write(report_dir)
            series.say(f"run {number}: {report.outcome}; report {json_path}")
    failed = [name for report in reports for name in report.failed_checks]
    series.measurements.update(
        runs=runs,
        outcomes=[report.outcome for report in reports],
        failed_checks=sorted(set(failed)),
        ranges=numeric_ranges(report.measurements for report in reports),
    )
    drawn = [report for report in reports if "timeline" in report.pictures]
    if drawn:
        worst = max(drawn, key=lambda report: report.measurements.get("longest_stall_seconds") or 0)
        series.pictures["timeline-longest-stall"] = worst.pictures["timeline"]
    checks = [
        Check(f"run {n}", report.outcome == "passed", f"{report.outcome}: {', '.join(report.failed_checks) or 'ok'}")
        for n, report in enumerate(reports, start=1)
    ]
    passed = series.add_checks(series.verification, checks)
    series.finish("passed" if passed else ("aborted" if "aborted" in series.measurements["outcomes"] else "failed"))
    return series


# -- the whole series: every broker x fault ------------------------------------------------------------------
def cells(rates: list[float], faults: Iterable[str] | None = None) -> list[RehearsalOptions]:
    """Every broker x fault (or only ``faults``) at every rate, and promote at the measured split windows at the
    highest rate."""
    chosen = [fault for fault in FAULTS if faults is None or fault.name in set(faults)]
    found = []
    for broker in BROKERS:
        for fault in chosen:
            for rate in rates:
                found.append(
                    RehearsalOptions(
                        broker=broker, fault=fault.name, rate=rate, **SERIES_PHASES, **fault.series_options
                    )
                )
        if any(fault.name == "promote" for fault in chosen):
            found += [
                RehearsalOptions(
                    broker=broker, fault="promote", rate=max(rates), split_window_seconds=w, **SERIES_PHASES
                )
                for w in SPLIT_WINDOWS_MEASURED
            ]
    return found


def machine() -> dict:
    """What the figures were measured on (``broker_tier.evidence.machine``), and the digest of the code they
    describe."""
    return {**machine_and_versions(PACKAGES, redis_server=True), "described_code_sha256": described_code_digest()}


def cell_summary(options: RehearsalOptions, series: Report) -> dict:
    ranges = series.measurements["ranges"]
    return {
        "broker": options.broker,
        "fault": options.fault,
        "rate": options.rate,
        "split_window_seconds": options.split_window_seconds if options.fault == "promote" else None,
        "runs": series.measurements["runs"],
        "goals_met": series.measurements["outcomes"].count("passed"),
        "outcomes": series.measurements["outcomes"],
        "failed_checks": series.measurements["failed_checks"],
        "figures": ranges,
        "load_1min_at_start": ranges.get("load_1min_at_start"),
    }


def keep_picture(options: RehearsalOptions, series: Report, rates: list[float], pictures: Path) -> dict | None:
    """The timeline of the run with the longest stall, for each broker x fault at the top rate (default window)."""
    default_window = RehearsalOptions().split_window_seconds
    if options.rate != max(rates) or options.split_window_seconds != default_window:
        return None
    picture = series.pictures.get("timeline-longest-stall")
    if picture is None:
        return None
    pictures.mkdir(parents=True, exist_ok=True)
    path = pictures / f"{options.broker}-{options.fault}.svg"
    path.write_text(picture)
    stall = series.measurements["ranges"].get("longest_stall_seconds", [None, None])[1]
    return {
        "broker": options.broker,
        "fault": options.fault,
        "why": f"{options.rate:g} tasks/s, the run with the longest stall: {stall} s",
        "path": f"{pictures.parent.name}/{pictures.name}/{path.name}",
    }


def run_all(
    runs: int,
    rates: list[float],
    out: Path,
    pictures: Path,
    *,
    say: Callable[[str], None],
    faults: Iterable[str] | None = None,
) -> dict:
    """Every cell (of ``faults``, default all), ``runs`` times; the summary (not yet written); timeline pictures into
    ``pictures``."""
    from broker_tier.rehearsal.definition import synthesize

    started, load_at_start, measured_on = time.time(), load_average(), machine()  # the code that runs
    templates = {broker: synthesize("dev", broker=broker) for broker in BROKERS}
    summary_cells, kept = [], []
    for options in cells(rates, faults):
        window = f", split window {options.split_window_seconds:g} s" if options.fault == "promote" else ""
        say(f"== {options.broker} {options.fault} at {options.rate:g} tasks/s{window}")
        series = run_series(options, runs, templates=templates[options.broker], report_dir=out, stream=sys.stderr)
        summary_cells.append(cell_summary(options, series))
        kept.append(keep_picture(options, series, rates, pictures))
        say(f"   {series.outcome}: {series.measurements['outcomes']}")
    defaults = dataclasses.asdict(RehearsalOptions())
    return {
        "generated_by": "scripts/rehearse-all.sh (python -m broker_tier.rehearsal.series)",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_seconds": round(time.time() - started),
        "runs_per_cell": runs,
        "rates": rates,
        "options": {**{k: v for k, v in defaults.items() if k not in ("overrides", "workdir")}, **SERIES_PHASES},
        "machine": measured_on,
        "load_average": load_since(load_at_start),
        "cells": summary_cells,
        "pictures": [entry for entry in kept if entry is not None],
    }


PROVENANCE = ("date", "duration_seconds", "runs_per_cell", "rates", "machine", "load_average")
"""What says when, where and with what a series was measured: kept for each part of an updated summary."""


def updated(summary: dict, part: dict, faults: list[str]) -> dict:
    """``summary`` with the cells and pictures of ``faults`` replaced by ``part``'s, and ``part``'s provenance
    recorded under ``updates`` (the rest keeps its own): re-running one fault's cells costs minutes, not an hour."""
    if part["runs_per_cell"] != summary["runs_per_cell"] or part["rates"] != summary["rates"]:
        raise ValueError(
            f"an update must use the summary's runs and rates ({summary['runs_per_cell']} runs at {summary['rates']} "
            f"tasks/s), not {part['runs_per_cell']} at {part['rates']}"
        )
    merged = {**summary}
    merged["cells"] = [cell for cell in summary["cells"] if cell["fault"] not in faults] + part["cells"]
    merged["pictures"] = [entry for entry in summary["pictures"] if entry["fault"] not in faults] + part["pictures"]
    kept_updates = [entry for entry in summary.get("updates", []) if not set(entry["faults"]) <= set(faults)]
    merged["updates"] = [*kept_updates, {"faults": faults, **{key: part[key] for key in PROVENANCE}}]
    return merged


def stale_parts(summary: dict, digest: str) -> list[str]:
    """The parts of ``summary`` (the series, each update) measured on code other than ``digest``'s: their figures
    describe code that has changed since."""
    parts = [("the series", summary["machine"])] + [
        (f"the update of {', '.join(entry['faults'])}", entry["machine"]) for entry in summary.get("updates", [])
    ]
    return [name for name, machine in parts if machine.get("described_code_sha256") != digest]


def _interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (or SIGINT, which a background shell ignores) is Ctrl-C: each rehearsal's clean-up then stops the
    # redis-servers, moto and the workers it started.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    parser = argparse.ArgumentParser(prog="python -m broker_tier.rehearsal.series", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per cell (default: 3)")
    parser.add_argument("--rates", default="10,40", help="tasks/s, comma-separated (default: 10,40)")
    parser.add_argument("--out", type=Path, required=True, help="where every run's report goes")
    parser.add_argument("--summary", type=Path, required=True, help="the summary JSON to write")
    parser.add_argument("--pictures", type=Path, required=True, help="where the kept timeline pictures go")
    parser.add_argument(
        "--faults",
        help="only these faults, comma-separated (default: every fault); with an existing --summary, its cells of "
        "these faults are replaced and the rest kept, each part with its own date, machine and load",
    )
    args = parser.parse_args(argv)
    rates = [float(rate) for rate in args.rates.split(",")]
    faults = args.faults.split(",") if args.faults else None
    unknown = sorted(set(faults or ()) - {fault.name for fault in FAULTS})
    if unknown:
        parser.error(f"--faults: unknown {', '.join(unknown)}; known: {', '.join(f.name for f in FAULTS)}")
    summary = run_all(
        args.runs,
        rates,
        args.out,
        args.pictures,
        say=lambda line: print(line, file=sys.stderr, flush=True),
        faults=faults,
    )
    if faults and args.summary.exists():
        summary = updated(json.loads(args.summary.read_text()), summary, faults)
    args.summary.parent.mkdir(parents=True, exist_ok=True)
    args.summary.write_text(json.dumps(summary, indent=2) + "\n")
    met = all(cell["goals_met"] == cell["runs"] for cell in summary["cells"])
    print(f"summary: {args.summary}; {summary['duration_seconds']} s; every goal met: {met}", file=sys.stderr)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

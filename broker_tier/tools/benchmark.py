"""Benchmark: synthesis of every environment against a bare one-stack CDK app, side by side, and the README's test
command; the figures go to a committed summary with the machine, its load and the versions beside them.

Both syntheses run through the same pinned CLI and Node, alternately, ``--runs`` times each: the medians and their
ratio (goal: at most 2x). ``--test-command`` also runs ``scripts/test.sh`` with set-up done: its wall time (goal:
under 2 minutes), the CPU time of it and everything it waited for, and pytest's count. ``--summary FILE`` writes
the JSON that ``broker_tier.tools.benchmark_table`` renders into docs/measuring.md.

Run: ``scripts/benchmark.sh [--runs 3] [--test-command] [--summary docs/evidence/benchmark-summary.json]``.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from broker_tier.evidence.machine import load_average, load_since, machine

ROOT = Path(__file__).resolve().parents[2]
BARE_APP = """
import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
app = cdk.App()
sqs.Queue(cdk.Stack(app, "Bare"), "Queue")
app.synth()
"""
SYNTHESIS_RATIO_GOAL = 2.0
"""Synthesis of every environment takes at most twice a bare one-stack app's."""
TEST_COMMAND_GOAL_SECONDS = 120.0
"""The README's test command, set-up done, on the project's 2-core machine: under 2 minutes."""
PACKAGES = ("aws-cdk-lib", "cdk-nag", "cfn-lint", "pytest", "pytest-xdist", "moto", "celery", "mypy", "ruff")
OWN_TESTS = "tests/broker_tier/tools/test_benchmark_table.py"
"""Left out of the timed test command: they check the summary this run is about to write."""
PYTEST_COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


def timed(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + sys of the command and all it waited for) and the last line of output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, check=False, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return wall, cpu, lines[-1] if lines else ""


def synthesis(runs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp)
        (bare / "app.py").write_text(BARE_APP)
        (bare / "cdk.json").write_text(f'{{"app": "{sys.executable} app.py", "notices": false}}')
        synth = ["cdk", "synth", "--quiet"]
        timed(synth, bare), timed(synth, ROOT)  # warm-up: jsii's package cache, the OS page cache
        bare_runs, tier_runs = [], []
        for _ in range(runs):
            bare_runs.append(timed(synth, bare)[0])
            tier_runs.append(timed(synth, ROOT)[0])
    bare_s, tier_s = statistics.median(bare_runs), statistics.median(tier_runs)
    return {
        "runs": runs,
        "bare_seconds": [round(r, 2) for r in bare_runs],
        "tier_seconds": [round(r, 2) for r in tier_runs],
        "bare_median_seconds": round(bare_s, 2),
        "tier_median_seconds": round(tier_s, 2),
        "ratio": round(tier_s / bare_s, 2),
        "ratio_goal": SYNTHESIS_RATIO_GOAL,
    }


def test_command() -> dict:
    wall, cpu, last = timed(["scripts/test.sh", f"--ignore={OWN_TESTS}"], ROOT)
    counts = {kind.rstrip("s") if kind.startswith("error") else kind: int(n) for n, kind in PYTEST_COUNTS.findall(last)}
    return {
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "pytest": counts,
        "left_out": OWN_TESTS,
        "goal_seconds": TEST_COMMAND_GOAL_SECONDS,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each synthesis (default: 3)")
    parser.add_argument("--test-command", action="store_true", help="also run and time scripts/test.sh")
    parser.add_argument("--summary", type=Path, help="write the figures, the machine and its load to this JSON")
    args = parser.parse_args(argv)
    started, load_at_start = datetime.now(UTC), load_average()
    summary: dict = {
        "generated_by": "scripts/benchmark.sh (python -m broker_tier.tools.benchmark)",
        "machine": machine(PACKAGES),
        "synthesis": synthesis(args.runs),
    }
    found = summary["synthesis"]
    print(f"bare one-stack app synth:       median {found['bare_median_seconds']:5.1f} s  runs {found['bare_seconds']}")
    print(f"broker-tier, every environment: median {found['tier_median_seconds']:5.1f} s  runs {found['tier_seconds']}")
    print(f"ratio: {found['ratio']:.2f}x (goal <= {SYNTHESIS_RATIO_GOAL:g}x)")
    if args.test_command:
        summary["test_command"] = ran = test_command()
        print(
            f"scripts/test.sh (set-up done): {ran['wall_seconds']:.1f} s wall, {ran['cpu_seconds']:.1f} s CPU, "
            f"pytest {ran['pytest']} (goal < {TEST_COMMAND_GOAL_SECONDS:g} s)"
        )
    summary["date"] = started.isoformat(timespec="seconds")
    summary["load_average"] = load_since(load_at_start)
    if args.summary:
        args.summary.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"summary: {args.summary}; render it with python -m broker_tier.tools.benchmark_table --write")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Benchmark: synthesis of every environment against a bare one-stack CDK app, side by side.

Both run through the same pinned CLI and Node, alternately, ``--runs`` times each; the report is
the median of each and their ratio (the target is at most 2x). ``--test-command`` also times the
README's test command with set-up already done (target: at most 90 s).

Run: ``scripts/benchmark.sh [--runs 3] [--test-command]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BARE_APP = """
import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
app = cdk.App()
sqs.Queue(cdk.Stack(app, "Bare"), "Queue")
app.synth()
"""


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each synthesis (default: 3)")
    parser.add_argument("--test-command", action="store_true", help="also time scripts/test.sh")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp)
        (bare / "app.py").write_text(BARE_APP)
        (bare / "cdk.json").write_text(f'{{"app": "{sys.executable} app.py", "notices": false}}')
        synth = ["cdk", "synth", "--quiet"]
        timed(synth, bare), timed(synth, ROOT)  # warm-up: jsii's package cache, the OS page cache
        bare_runs, tier_runs = [], []
        for _ in range(args.runs):
            bare_runs.append(timed(synth, bare))
            tier_runs.append(timed(synth, ROOT))
    bare_s, tier_s = statistics.median(bare_runs), statistics.median(tier_runs)
    print(f"bare one-stack app synth:      median {bare_s:5.1f} s  runs {[round(r, 1) for r in bare_runs]}")
    print(f"broker-tier, every environment: median {tier_s:5.1f} s  runs {[round(r, 1) for r in tier_runs]}")
    print(f"ratio: {tier_s / bare_s:.2f}x (target <= 2.0x)")
    if args.test_command:
        seconds = timed(["scripts/test.sh"], ROOT)
        print(f"scripts/test.sh (set-up already done): {seconds:.1f} s (target <= 90 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``broker-tier-ops rehearse``: count every task through a primary switch, on loopback (no AWS).

The one ops module that reaches ``broker_tier.rehearsal`` (imported when the command runs). Exit code 0 when the
goals hold (in every run), 1 when one does not, 2 when the rehearsal cannot run here or a goal could not fail in
the set-up asked for, 3 when it stopped after publishing had started (aborted; the logs are kept).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from broker_tier.evidence.report import Report
from broker_tier.ops.command import Command, environment_name, non_negative, positive


def _override(text: str) -> tuple[str, object]:
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"{text}: expected NAME=JSON, e.g. task_publish_retry=false")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"{text}: the value is not JSON (strings need quotes)") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from broker_tier.rehearsal.faults import BROKERS, FAULTS
    from broker_tier.rehearsal.runner import RehearsalOptions

    defaults = RehearsalOptions()
    parser.add_argument(
        "--broker",
        choices=BROKERS,
        default=defaults.broker,
        help="sqs: SQS queues (moto) with Redis for results; redis: Redis is broker and backend "
        f"(default: {defaults.broker})",
    )
    parser.add_argument(
        "--fault",
        choices=tuple(fault.name for fault in FAULTS),
        default=defaults.fault,
        help="; ".join(f"{fault.name}: {fault.help}" for fault in FAULTS) + f" (default: {defaults.fault})",
    )
    parser.add_argument(
        "--split-window",
        type=non_negative(float),
        default=defaults.split_window_seconds,
        metavar="SECONDS",
        help="promote: seconds both nodes take writes, from the replica's promotion to the old primary's demotion "
        f"(default: {defaults.split_window_seconds:g}; docs/decisions/rehearsal-split-window.md)",
    )
    parser.add_argument(
        "--full-for",
        type=positive(float, 3600),
        default=defaults.full_seconds,
        metavar="SECONDS",
        help=f"memory-full: seconds Redis stays full before the keys that filled it are deleted (default: "
        f"{defaults.full_seconds:g})",
    )
    parser.add_argument(
        "--runs",
        type=positive(int, 1000),
        default=1,
        help="rehearse this many times and report each figure's range (every run's report is written too) (default: 1)",
    )
    parser.add_argument(
        "--dns-delay",
        type=positive(float, 120),
        default=defaults.dns_delay_seconds,
        help="seconds from the fault to the endpoint's name moving (default: "
        f"{defaults.dns_delay_seconds:g}; AWS documents 'up to a few seconds')",
    )
    parser.add_argument(
        "--rate",
        type=positive(float, 200),
        default=defaults.rate,
        help=f"canary tasks published per second (default: {defaults.rate:g})",
    )
    parser.add_argument(
        "--before",
        type=positive(float, 3600),
        default=defaults.before_seconds,
        help=f"seconds of steady publishing before the fault (default: {defaults.before_seconds:g})",
    )
    parser.add_argument(
        "--after",
        type=positive(float, 3600),
        default=defaults.after_seconds,
        help=f"seconds of publishing after the endpoint recovered (default: {defaults.after_seconds:g})",
    )
    parser.add_argument(
        "--backlog",
        type=non_negative(float),
        default=defaults.backlog_seconds,
        help="seconds the workers are paused just before the fault, so tasks queue up as behind "
        f"busy workers (default: {defaults.backlog_seconds:g})",
    )
    parser.add_argument(
        "--visibility-timeout",
        type=positive(int, 43200),
        default=defaults.visibility_timeout_seconds,
        help="sqs mode: the queue's visibility timeout on moto, shortened so an un-acked message "
        f"comes back within the run (default: {defaults.visibility_timeout_seconds})",
    )
    parser.add_argument(
        "--drain-timeout",
        type=positive(float, 3600),
        default=defaults.drain_timeout_seconds,
        help="seconds to wait for published tasks to run once publishing stops (default: "
        f"{defaults.drain_timeout_seconds:g})",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep the logs (workers, producer, redis, moto) here; default: a temporary directory, "
        "kept only when the rehearsal fails",
    )
    parser.add_argument(
        "--workers",
        type=positive(int, 16),
        default=defaults.workers,
        help=f"worker processes (ECS tasks) of the class (default: {defaults.workers})",
    )
    parser.add_argument(
        "--env",
        dest="environment",
        type=environment_name,
        default=defaults.environment,
        help=f"the cdk.json environment whose worker task definition is mirrored (default: {defaults.environment})",
    )
    parser.add_argument(
        "--queue-class",
        default=defaults.queue_class,
        help=f"the latency class mirrored and published to (default: {defaults.queue_class})",
    )
    parser.add_argument(
        "--override",
        type=_override,
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="experiments only: a Celery setting put on top of the settings package in the "
        "workers and the producer, e.g. task_publish_retry=false (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="also print the JSON report on stdout")


def _interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace, _resources, _clients) -> Report:
    from broker_tier.rehearsal.runner import RehearsalOptions, rehearse
    from broker_tier.rehearsal.series import run_series

    options = RehearsalOptions(
        broker=args.broker,
        fault=args.fault,
        dns_delay_seconds=args.dns_delay,
        split_window_seconds=args.split_window,
        full_seconds=args.full_for,
        rate=args.rate,
        before_seconds=args.before,
        after_seconds=args.after,
        backlog_seconds=args.backlog,
        visibility_timeout_seconds=args.visibility_timeout,
        drain_timeout_seconds=args.drain_timeout,
        workers=args.workers,
        environment=args.environment,
        queue_class=args.queue_class,
        overrides=dict(args.override),
        workdir=args.workdir,
    )
    # SIGTERM (a CI job cancelled, `timeout`) is Ctrl-C here: the rehearsal's own clean-up then stops the
    # redis-servers, moto and the workers it started instead of leaving them behind.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        report = rehearse(options) if args.runs == 1 else run_series(options, args.runs, report_dir=args.report_dir)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if args.json:
        print(report.to_json(), file=sys.stdout, flush=True)
    return report


COMMAND = Command(
    name="rehearse",
    help="failover rehearsal on loopback: two redis-servers behind a DNS-like endpoint, real Celery workers "
    "from the synthesized task definition, canary tasks counted through a fault (--fault)",
    add_arguments=add_arguments,
    run=run,
    aws=False,
)

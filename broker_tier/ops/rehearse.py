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


def _description(defaults) -> str:
    publishing = defaults.before_seconds + defaults.dns_delay_seconds + defaults.after_seconds
    return (
        "Failover rehearsal on this machine's loopback, no AWS account (docs/rehearsal.md): two redis-servers "
        "behind an endpoint that moves like the primary's DNS name, moto's SQS server, real Celery workers started "
        "as the synthesized worker task definition of --env, canary tasks counted through a --fault. Needs "
        "redis-server on PATH (scripts/ensure-redis.sh), the project's virtualenv with moto and Celery "
        "(scripts/setup.sh) and the pinned Node for the synthesis (source scripts/env.sh). One run takes about "
        f"1 to 2 minutes with the defaults: start-up, {publishing:g} s of publishing around the fault, the drain "
        f"(at most {defaults.drain_timeout_seconds:g} s), and in sqs mode one visibility timeout; --runs N takes N "
        "times that. Exit 0: every goal held; 1: one did not; 2: it cannot run here; 3: stopped midway."
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from broker_tier.rehearsal.faults import BROKERS, FAULTS
    from broker_tier.rehearsal.runner import RehearsalOptions

    defaults = RehearsalOptions()
    parser.description = _description(defaults)
    parser.add_argument(
        "--broker", choices=BROKERS, default=defaults.broker, help="the broker mode (default: %(default)s)"
    )
    parser.add_argument(
        "--fault",
        choices=tuple(fault.name for fault in FAULTS),
        default=defaults.fault,
        metavar="FAULT",
        help=f"{' | '.join(fault.name for fault in FAULTS)}: docs/rehearsal.md#the-faults (default: %(default)s)",
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
        metavar="N",
        help="rehearse N times, a report each, and each figure's range (default: %(default)s)",
    )
    phases = parser.add_argument_group("the run (seconds unless said; docs/rehearsal.md#options)")
    for flag, kind, field, text in (
        ("--split-window", non_negative(float), "split_window_seconds", "promote: both nodes take writes this long"),
        ("--dns-delay", positive(float, 120), "dns_delay_seconds", "from the fault to the name's move"),
        ("--rate", positive(float, 200), "rate", "canary tasks published per second"),
        ("--before", positive(float, 3600), "before_seconds", "publishing before the fault"),
        ("--after", positive(float, 3600), "after_seconds", "publishing after the name moved"),
        ("--backlog", non_negative(float), "backlog_seconds", "workers paused right before the fault"),
        ("--visibility-timeout", positive(int, 43200), "visibility_timeout_seconds", "sqs mode: the queue's"),
        ("--drain-timeout", positive(float, 3600), "drain_timeout_seconds", "for published tasks to run"),
        ("--workers", positive(int, 16), "workers", "worker processes (ECS tasks) of the class"),
    ):
        phases.add_argument(
            flag,
            type=kind,
            default=getattr(defaults, field),
            metavar="N",
            help=f"{text} (default: {getattr(defaults, field):g})",
        )
    parser.add_argument(
        "--env",
        dest="environment",
        type=environment_name,
        default=defaults.environment,
        metavar="ENV",
        help="the cdk.json environment whose worker task definition is mirrored (default: %(default)s)",
    )
    parser.add_argument(
        "--queue-class",
        default=defaults.queue_class,
        metavar="CLASS",
        help="the latency class mirrored and published to (default: %(default)s)",
    )
    parser.add_argument(
        "--workdir", type=Path, metavar="DIR", help="keep the logs here (default: kept only when a goal fails)"
    )
    parser.add_argument(
        "--override",
        type=_override,
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="experiments: a Celery setting on top of the settings package (repeatable)",
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
    help="failover rehearsal on this machine, no AWS: every task counted",
    add_arguments=add_arguments,
    run=run,
    aws=False,
)

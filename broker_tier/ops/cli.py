"""``broker-tier-ops``: run a failover drill, fail back, or redrive dead letters.

Region and credentials follow boto3's usual chain (``AWS_PROFILE``/``--profile``,
``AWS_REGION``/``--region``, instance roles, ...). Resources are read from the deployed stacks'
outputs of ``--env``; ``--replication-group-id`` overrides the cache. Every command prints its
progress with the elapsed time, writes a JSON and a Markdown report to ``--report-dir`` and exits
0 (passed, or planned with --dry-run), 1 (failed its hypothesis), 2 (refused: a precondition does
not hold, nothing changed) or 3 (aborted mid-way by a time-out or an AWS error; report written).
No command reboots a node.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import boto3
from botocore.config import Config

from broker_tier.ops.failback import Failback, FailbackOptions
from broker_tier.ops.failover import FailoverDrill, FailoverOptions
from broker_tier.ops.redrive import SQS_MAX_MOVE_RATE, Redrive, RedriveOptions
from broker_tier.ops.report import Report
from broker_tier.ops.resources import OpsError, discover

# boto3's standard retry mode (exponential back-off with jitter, throttling-aware).
RETRIES = Config(retries={"mode": "standard", "max_attempts": 8}, user_agent_extra="broker-tier-ops")
SERVICES = ("cloudformation", "elasticache", "cloudwatch", "sqs", "ecs")


def make_clients(region: str | None, profile: str | None) -> dict:
    session = boto3.Session(region_name=region, profile_name=profile)
    return {name: session.client(name, config=RETRIES) for name in SERVICES}


def _positive(kind: type, upper: float | None = None) -> Callable[[str], float]:
    def parse(text: str):
        value = kind(text)
        if value <= 0 or (upper is not None and value > upper):
            raise argparse.ArgumentTypeError(f"{text}: must be above 0" + (f" and at most {upper}" if upper else ""))
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="broker-tier-ops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--region", help="AWS region (default: boto3's chain, e.g. AWS_REGION)")
    parser.add_argument("--profile", help="AWS profile (default: boto3's chain, e.g. AWS_PROFILE)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--env", required=True, help="environment name (stacks BrokerTier-<env>-*)")
        sub.add_argument("--replication-group-id", help="the cache, instead of the State stack's output")
        sub.add_argument("--report-dir", type=Path, default=Path("drill-reports"),
                         help="where the JSON and Markdown reports go (default: drill-reports)")
        sub.add_argument("--dry-run", action="store_true", help="check and print the plan; change nothing")
        return sub

    failover = command("failover", "Failover drill: check the steady state, call TestFailover, follow it, verify, "
                                   "report.")
    failover.add_argument("--max-replication-lag", type=_positive(float), default=5.0, metavar="SECONDS",
                          help="refuse above this replica lag in the last 10 min (default: 5)")
    failover.add_argument("--failover-budget", type=_positive(int), default=15, metavar="N",
                          help="TestFailover calls allowed per rolling 24 h (default: 15)")
    failover.add_argument("--timeout", type=_positive(float), default=900, metavar="SECONDS",
                          help="from TestFailover to 'available' again (default: 900)")
    failover.add_argument("--poll", type=_positive(float), default=10, metavar="SECONDS",
                          help="event and waiter interval (default: 10)")
    failover.add_argument("--services-timeout", type=_positive(float), default=600, metavar="SECONDS",
                          help="time for the ECS services to be steady afterwards (default: 600)")

    failback = command("failback", "Make a chosen node primary again: Multi-AZ off, promote, restore the original "
                                   "Multi-AZ and automatic-failover settings (also when a step fails).")
    target = failback.add_mutually_exclusive_group(required=True)
    target.add_argument("--primary-cluster-id", help="node to promote, e.g. broker-tier-prod-001")
    target.add_argument("--preferred-az", help="promote the node in this AZ, e.g. eu-west-1a")
    failback.add_argument("--timeout", type=_positive(float), default=1800, metavar="SECONDS",
                          help="per wait for 'available' (default: 1800)")
    failback.add_argument("--poll", type=_positive(float), default=15, metavar="SECONDS",
                          help="waiter interval (default: 15)")

    redrive = command("redrive", "Move a class's dead-letter messages back to its queue (SQS message move task).")
    redrive.add_argument("--queue-class", required=True, help="latency class, e.g. default")
    redrive.add_argument("--rate", type=_positive(int, SQS_MAX_MOVE_RATE), metavar="PER_SECOND",
                         help=f"messages per second, 1-{SQS_MAX_MOVE_RATE} (default: SQS's pace)")
    redrive.add_argument("--timeout", type=_positive(float), default=3600, metavar="SECONDS",
                         help="how long to follow the move (default: 3600)")
    redrive.add_argument("--poll", type=_positive(float), default=10, metavar="SECONDS",
                         help="progress interval (default: 10)")
    return parser


def run(args: argparse.Namespace, clients: dict) -> Report:
    resources = discover(clients["cloudformation"], args.env, replication_group_id=args.replication_group_id)
    if args.command == "failover":
        report = Report("failover", args.env, resources.replication_group_id, args.dry_run)
        options = FailoverOptions(max_replication_lag_seconds=args.max_replication_lag,
                                  failover_budget=args.failover_budget, timeout_seconds=args.timeout,
                                  poll_seconds=args.poll, services_timeout_seconds=args.services_timeout)
        return FailoverDrill(clients, resources, options, report).run(dry_run=args.dry_run)
    if args.command == "failback":
        report = Report("failback", args.env, resources.replication_group_id, args.dry_run)
        options = FailbackOptions(primary_cluster_id=args.primary_cluster_id, preferred_az=args.preferred_az,
                                  timeout_seconds=args.timeout, poll_seconds=args.poll)
        return Failback(clients["elasticache"], resources.replication_group_id, options, report).run(
            dry_run=args.dry_run)
    if args.queue_class not in resources.queues:
        raise OpsError(f"--queue-class {args.queue_class!r}: not a class of {args.env}; classes: "
                       f"{', '.join(sorted(resources.queues)) or 'none found in the State stack outputs'}")
    pair = resources.queues[args.queue_class]
    report = Report("redrive", args.env, pair.dead_letter_arn, args.dry_run)
    options = RedriveOptions(rate=args.rate, timeout_seconds=args.timeout, poll_seconds=args.poll)
    return Redrive(clients["sqs"], pair, options, report).run(dry_run=args.dry_run)


def main(argv: list[str] | None = None, *, clients: dict | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = run(args, clients or make_clients(args.region, args.profile))
    except OpsError as error:
        print(f"broker-tier-ops {args.command}: {error}", file=sys.stderr)
        return 2
    json_path, markdown_path = report.write(args.report_dir)
    print(f"report: {json_path} and {markdown_path}", file=sys.stderr)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())

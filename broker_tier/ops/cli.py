"""``broker-tier-ops``: run a failover drill, fail back, redrive dead letters, or rehearse a failover locally.

Region and credentials follow boto3's usual chain (``AWS_PROFILE``/``--profile``,
``AWS_DEFAULT_REGION``/``--region``, instance roles, ...). Resources are read from the deployed
stacks' outputs of ``--env``; ``--replication-group-id`` overrides the cache. Every command prints
its progress with the elapsed time, writes a JSON and a Markdown report to ``--report-dir`` and
exits 0 (passed, or planned with --dry-run), 1 (failed its hypothesis), 2 (refused: a precondition
does not hold, nothing changed) or 3 (aborted mid-way by a time-out or an AWS error; report written).
No command reboots a node.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import boto3
from botocore.config import Config

from broker_tier.ops import failback, failover, redrive, rehearse
from broker_tier.ops.command import Command
from broker_tier.ops.resources import OpsError, discover

COMMANDS: tuple[Command, ...] = (failover.COMMAND, failback.COMMAND, redrive.COMMAND, rehearse.COMMAND)
# boto3's standard retry mode (exponential back-off with jitter, throttling-aware).
RETRIES = Config(retries={"mode": "standard", "max_attempts": 8}, user_agent_extra="broker-tier-ops")
SERVICES = ("cloudformation", "elasticache", "cloudwatch", "sqs", "ecs")


def make_clients(region: str | None, profile: str | None) -> dict:
    session = boto3.Session(region_name=region, profile_name=profile)
    return {name: session.client(name, config=RETRIES) for name in SERVICES}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="broker-tier-ops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--region", help="AWS region (default: boto3's chain, e.g. AWS_DEFAULT_REGION)")
    parser.add_argument("--profile", help="AWS profile (default: boto3's chain, e.g. AWS_PROFILE)")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = subcommands.add_parser(command.name, help=command.help, description=command.help)
        if command.aws:
            sub.add_argument("--env", required=True, help="environment name (stacks BrokerTier-<env>-*)")
            sub.add_argument("--replication-group-id", help="the cache, instead of the State stack's output")
            sub.add_argument("--dry-run", action="store_true", help="check and print the plan; change nothing")
        sub.add_argument("--report-dir", type=Path, default=Path("drill-reports"),
                         help="where the JSON and Markdown reports go (default: drill-reports)")
        command.add_arguments(sub)
        sub.set_defaults(command_spec=command)
    return parser


def main(argv: list[str] | None = None, *, clients: dict | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: Command = args.command_spec
    try:
        if command.aws:
            clients = clients or make_clients(args.region, args.profile)
            resources = discover(clients["cloudformation"], args.env, replication_group_id=args.replication_group_id)
            report = command.run(args, resources, clients)
        else:
            report = command.run(args, None, None)
    except OpsError as error:
        print(f"broker-tier-ops {args.command}: {error}", file=sys.stderr)
        return 2
    json_path, markdown_path = report.write(args.report_dir)
    print(f"report: {json_path} and {markdown_path}", file=sys.stderr)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())

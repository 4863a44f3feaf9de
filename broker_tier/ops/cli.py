"""broker-tier-ops: the command line (its parser, the global options, the exit codes) and the run of a command
with its report and one-line verdict. What each command does: docs/operations.md.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import traceback
from pathlib import Path

from broker_tier.evidence.errors import SETTING_ERRORS, blame_setting, exit_code_table
from broker_tier.evidence.report import Report, begin_invocation, latest_report
from broker_tier.ops import (
    cost,
    dead_letters,
    failback,
    failover,
    migrate_broker,
    redrive,
    rehearse,
    status,
    toolbox,
)
from broker_tier.ops.aws import PROFILE_HELP, REGION_HELP, AwsTarget, make_clients
from broker_tier.ops.aws_calls import AwsCallRecorder
from broker_tier.ops.command import ENV_REQUIRED, Command, environment_name
from broker_tier.ops.resources import discover_from_options

COMMANDS: tuple[Command, ...] = (
    status.COMMAND,
    failover.COMMAND,
    failback.COMMAND,
    dead_letters.COMMAND,
    redrive.COMMAND,
    migrate_broker.COMMAND,
    toolbox.COMMAND,
    rehearse.COMMAND,
    cost.COMMAND,
)
DEFAULT_REPORT_DIR = Path("drill-reports")
CLIENT_SETTING_ERRORS: tuple[type[Exception], ...] = (ValueError, *SETTING_ERRORS)
"""What making the AWS session and clients raises for a setting it cannot use (``_clients``)."""
EPILOG = f"exit codes (every command):\n{exit_code_table()}"
DESCRIPTION = textwrap.fill(
    "Operates a broker-tier environment (status, failover drill, fail-back, dead letters, broker migration, "
    "toolbox) and, without AWS, rehearses a failover and estimates the cost. Each command writes a JSON and a "
    "Markdown report and ends with a one-line verdict. In full: docs/operations.md; a command's own options: "
    "broker-tier-ops COMMAND --help.",
    width=98,
)
COMMAND_EPILOG = "Global options (--region, --profile, --report-dir, --debug), exit codes: broker-tier-ops --help"
GLOBAL_OPTIONS = ("region", "profile", "report_dir", "debug")
"""The destinations of the global options: every command accepts them (``_add_global_options``)."""


def _add_global_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """The options accepted before and after the command, listed in the top-level help only. After the
    command, an option left out must not reset what was given before it: the subcommand's defaults are
    SUPPRESS (argparse then keeps the earlier value)."""

    def default(value):
        return value if top_level else argparse.SUPPRESS

    def shown(text: str) -> str:
        return text if top_level else argparse.SUPPRESS

    options = parser.add_argument_group("global options (before or after the command)") if top_level else parser
    options.add_argument("--region", default=default(None), help=shown(REGION_HELP))
    options.add_argument("--profile", default=default(None), help=shown(PROFILE_HELP))
    options.add_argument(
        "--report-dir",
        type=Path,
        metavar="DIR",
        default=default(DEFAULT_REPORT_DIR),
        help=shown(f"where the JSON and Markdown reports go (default: {DEFAULT_REPORT_DIR})"),
    )
    options.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help=shown("print the traceback of a failure (default: one line)"),
    )


def _add_shared_aws_options(sub: argparse.ArgumentParser, command: Command) -> None:
    """The options of AWS commands that the command says it reads (``Command.env`` and the flags)."""
    if command.env is not None:
        sub.add_argument(
            "--env",
            required=command.env == ENV_REQUIRED,
            type=environment_name,
            help="environment (stacks BrokerTier-<env>-*)",
        )
    if command.replication_group_option:
        sub.add_argument("--replication-group-id", metavar="ID", help="the cache, instead of the State stack's output")
    if command.dry_run:
        sub.add_argument("--dry-run", action="store_true", help="read AWS, check and print the plan; change nothing")


def _command_help(prog: str) -> argparse.HelpFormatter:
    """A command's help: the options' text from column 32, so that most options take one line."""
    return argparse.HelpFormatter(prog, max_help_position=32)


def _top_level_help(prog: str) -> argparse.HelpFormatter:
    """The top-level help on one screen: each command's summary on its own line (the rest: docs/operations.md)."""
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=22, width=100)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="broker-tier-ops",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=_top_level_help,
    )
    _add_global_options(parser, top_level=True)
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = subcommands.add_parser(
            command.name,
            help=command.help,
            description=command.description or command.help,
            epilog=COMMAND_EPILOG,
            usage=f"broker-tier-ops {command.name} {command.usage + ' ' if command.usage else ''}[options]",
            formatter_class=_command_help,
        )
        _add_global_options(sub, top_level=False)
        if command.aws:
            _add_shared_aws_options(sub, command)
        command.add_arguments(sub)
        sub.set_defaults(command_spec=command)
    return parser


def command_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each command's own parser, by name (its ``--help``)."""
    (subcommands,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return dict(subcommands.choices)


def _clients(args: argparse.Namespace) -> tuple[dict, AwsTarget]:
    """``make_clients``, with a setting botocore rejects named (``errors.blame_setting``). Only here can a bare
    ValueError be told from a defect: nothing but the region, the profile, the AWS_* variables and the config
    file has been read, and no request made. One no setting holds is raised as it is (exit 8)."""
    try:
        return make_clients(args.region, args.profile)
    except CLIENT_SETTING_ERRORS as error:
        setting = blame_setting(error, region_option=args.region, profile=args.profile)
        if setting is None:
            raise
        raise setting from error


def _stand_in_report(args: argparse.Namespace, command: Command) -> Report:
    """The report of a command that failed before it made its own (no region, a missing stack, ...)."""
    return Report(
        command.name,
        getattr(args, "env", None) or "-",
        getattr(args, "replication_group_id", None) or "(not resolved)",
        getattr(args, "dry_run", False),
    )


def _run(command: Command, args: argparse.Namespace, clients: dict | None, invocation: dict) -> Report:
    """The command's report: run against AWS (the clients made here unless given) or offline."""
    if not command.aws:
        return command.run(args, None, None)
    if clients is None:
        clients, target = _clients(args)
        invocation.update(region=target.region, region_from=target.region_source, max_attempts=target.max_attempts)
    else:
        invocation["region"] = clients["sqs"].meta.region_name
    begin_invocation({key: value for key, value in invocation.items() if value is not None})
    with AwsCallRecorder(clients) as calls:
        try:
            resources = (command.resources or discover_from_options)(args, clients)
            return command.run(args, resources, clients)
        finally:
            invocation["aws_calls"] = calls.summary()


def main(argv: list[str] | None = None, *, clients: dict | None = None) -> int:
    """Run one command; ``clients`` (by service name) replaces the boto3 clients the CLI would make."""
    args = build_parser().parse_args(argv)
    command: Command = args.command_spec
    invocation = {"argv": " ".join(sys.argv[1:] if argv is None else argv), "profile": args.profile}
    begin_invocation({key: value for key, value in invocation.items() if value is not None})
    before = latest_report()
    try:
        report = _run(command, args, clients, invocation)
    except (Exception, KeyboardInterrupt) as error:  # every failure ends in a report, a line and an exit code
        latest = latest_report()
        stale = latest is None or latest is before or latest.finished_at is not None
        report = _stand_in_report(args, command) if stale or latest is None else latest
        report.abort(error)
    report.invocation.update({key: value for key, value in invocation.items() if value is not None})
    if args.debug and report.exception is not None:
        traceback.print_exception(report.exception, file=sys.stderr)
    try:
        json_path, markdown_path = report.write(args.report_dir)
        print(f"report: {json_path} and {markdown_path}", file=sys.stderr)
    except OSError as error:
        print(
            f"broker-tier-ops {command.name}: the report could not be written to {args.report_dir} ({error}); "
            f"its content follows",
            file=sys.stderr,
        )
        print(report.to_json(), file=sys.stderr)
    print(report.verdict, file=sys.stderr)
    print(report.summary(), file=sys.stderr)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())

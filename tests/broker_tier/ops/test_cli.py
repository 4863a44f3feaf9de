"""broker-tier-ops: the installed command, discovery from stack outputs, reports and exit codes."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from fake_aws import ENV, FAST_CANARY_ARGS, GROUP, FakeMoveTasks

from broker_tier.evidence.errors import OpsError
from broker_tier.evidence.report import Check, Report
from broker_tier.ops.aws import CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, SEND_ONCE, make_clients
from broker_tier.ops.cli import COMMANDS, build_parser, command_parsers, main
from broker_tier.ops.resources import discover

SCRIPT = Path(sys.executable).parent / "broker-tier-ops"


def test_the_installed_script_prints_the_top_level_help_and_a_commands_help():
    for command in ([], [COMMANDS[0].name]):
        result = subprocess.run([str(SCRIPT), *command, "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: broker-tier-ops {' '.join(command)}".rstrip())


@pytest.mark.parametrize("command", [command.name for command in COMMANDS])
def test_help_of_every_command_works(command, capsys):
    """In-process (the script above runs the same main; a process per command cost about 0.7 s of CPU each)."""
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: broker-tier-ops {command}")


def test_discovery_reads_the_three_stacks_outputs(aws):
    resources = discover(aws.clients["cloudformation"], ENV)
    assert resources.replication_group_id == GROUP
    assert set(resources.queues) == {"interactive", "default"}
    assert resources.queues["default"].dead_letter_url == aws.tier.queues["default"]["dlq_url"]
    assert resources.service_names == {"interactive": "worker-interactive", "default": "worker-default", "beat": "beat"}
    assert (resources.cluster_name, resources.alarm_name_prefix) == (aws.tier.cluster, f"broker-tier-{ENV}-")


def test_an_undeployed_environment_is_a_clear_error(aws):
    with pytest.raises(
        OpsError, match="stack BrokerTier-nowhere-State does not exist in eu-west-1: check --env and --region"
    ):
        discover(aws.clients["cloudformation"], "nowhere")


def test_failover_command_writes_both_reports_and_exits_by_outcome(aws, tmp_path, capsys):
    code = main(
        ["failover", "--env", ENV, "--poll", "1", "--report-dir", str(tmp_path), *FAST_CANARY_ARGS], clients=aws.clients
    )
    assert code == 0, capsys.readouterr().err
    (json_report,) = tmp_path.glob("failover-drill-*.json")
    assert json.loads(json_report.read_text())["outcome"] == "passed"
    assert json_report.with_suffix(".md").read_text().startswith("# broker-tier-ops failover: PASSED")
    assert "TestFailover called" in capsys.readouterr().err  # progress with elapsed time on stderr


def test_refused_drill_exits_2(aws, tmp_path):
    aws.group.multi_az = "disabled"
    assert main(["failover", "--env", ENV, "--report-dir", str(tmp_path)], clients=aws.clients) == 2


def test_unknown_queue_class_names_the_classes(aws, tmp_path, capsys):
    code = main(
        ["redrive", "--env", ENV, "--queue-class", "nightly", "--report-dir", str(tmp_path)], clients=aws.clients
    )
    assert code == 2 and "classes: default, interactive" in capsys.readouterr().err


def test_rate_beyond_sqs_ceiling_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["redrive", "--env", ENV, "--queue-class", "default", "--rate", "600"])
    assert exited.value.code == 2 and "at most 500" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--region", "eu-central-1", "--profile", "on-call", "status", "--env", "prod"],
        ["status", "--env", "prod", "--region", "eu-central-1", "--profile", "on-call"],
        ["--profile", "on-call", "status", "--region", "eu-central-1", "--env", "prod"],
    ],
)
def test_global_options_before_or_after_the_command(argv):
    args = build_parser().parse_args(argv)
    assert (args.region, args.profile, args.env) == ("eu-central-1", "on-call", "prod")


def test_an_option_after_the_command_wins_and_a_missing_one_does_not_reset(tmp_path):
    args = build_parser().parse_args(
        [
            "--region",
            "eu-west-1",
            "--report-dir",
            str(tmp_path),
            "--debug",
            "failover",
            "--env",
            "prod",
            "--region",
            "us-east-1",
        ]
    )
    assert (args.region, args.report_dir, args.debug) == ("us-east-1", tmp_path, True)


REGION_CASES = {
    "--region first": (
        {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-west-2"},
        "eu-north-1",
        ("eu-north-1", "--region"),
    ),
    "AWS_REGION before AWS_DEFAULT_REGION": (
        {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-west-2"},
        None,
        ("us-east-1", "AWS_REGION"),
    ),
    "AWS_DEFAULT_REGION": ({"AWS_DEFAULT_REGION": "us-west-2"}, None, ("us-west-2", "AWS_DEFAULT_REGION")),
    "the profile's region": ({}, None, ("ap-southeast-2", "the profile")),
}


@pytest.mark.parametrize("environ,given,expected", REGION_CASES.values(), ids=REGION_CASES.keys())
def test_region_precedence(monkeypatch, tmp_path, environ, given, expected):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config"
    config.write_text("[default]\nregion = ap-southeast-2\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    clients, target = make_clients(given, None)
    assert (target.region, target.region_source) == expected
    assert {client.meta.region_name for client in clients.values()} == {expected[0]}


def test_every_client_gives_up_connecting_and_reading_within_the_documented_times(monkeypatch):
    # botocore's own defaults are 60 s each: with 8 attempts an unreachable endpoint would hang for minutes
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    clients, target = make_clients(None, None)
    assert (
        {(c.meta.config.connect_timeout, c.meta.config.read_timeout) for c in clients.values()}
        == {(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)}
        == {(10, 30)}
    )
    send_once = clients.pop(SEND_ONCE)
    assert {c.meta.config.retries["total_max_attempts"] for c in clients.values()} == {target.max_attempts}
    assert send_once.meta.config.retries["total_max_attempts"] == 1  # a retried SendMessage could enqueue twice


def test_help_says_exactly_which_region_variables_are_read(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--region REGION AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION, else the profile's)" in help_text
    assert "global options (before or after the command): --region" in help_text


def test_reports_of_the_same_second_never_overwrite_each_other(tmp_path):
    paths = [
        Report("status", "prod", "g", False, started_at="2026-11-22T02:49:47+00:00").write(tmp_path) for _ in range(3)
    ]
    assert [json_path.name for json_path, _ in paths] == [
        "status-prod-2026-11-22T024947Z.json",
        "status-prod-2026-11-22T024947Z-2.json",
        "status-prod-2026-11-22T024947Z-3.json",
    ]
    assert len({markdown.read_text() for _, markdown in paths}) == 1 and len(list(tmp_path.iterdir())) == 6


def test_markdown_tables_escape_pipes_and_line_breaks():
    report = Report("redrive", "prod", "arn|x", False)
    report.add_checks(report.steady_state, [Check("odd|name", False, "AWS said:\nline two | with a pipe\\")])
    report.say("multi\r\nline | message")
    report.finish("refused", "first line\nsecond | line")
    markdown = report.to_markdown()
    assert "| odd\\|name | FAIL | AWS said:<br>line two \\| with a pipe\\\\ |" in markdown
    assert "multi<br>line \\| message |" in markdown
    assert "- Stopped by: first line second | line" in markdown  # a list item stays one line
    columns = {"| Check |": 3, "| Elapsed (s) |": 4}
    for header, count in columns.items():
        rows = markdown.split(header, 1)[1].split("\n\n", 1)[0].strip().splitlines()[1:]
        assert rows and all(len(re.findall(r"(?<!\\)\|", row)) == count + 1 for row in rows), rows


def test_rehearse_is_offline_and_refuses_bad_phases_before_starting_anything(tmp_path, capsys):
    # no AWS clients, no --env discovery: the rehearsal runs on loopback (tests/broker_tier/rehearsal/)
    code = main(["rehearse", "--before", "4", "--backlog", "5", "--report-dir", str(tmp_path)])
    assert code == 2
    assert "--backlog 5 is not allowed; allowed: at least 0 and less than --before (4)" in capsys.readouterr().err
    (report,) = tmp_path.glob("rehearse-*.json")  # a refusal leaves its report too, as every command's does
    assert json.loads(report.read_text())["outcome"] == "refused"


# -- each command's help: one screen, and only the options the command reads -----------------------------------
SCREEN_LINES, SCREEN_COLUMNS = 40, 100


class ReadRecorder(argparse.Namespace):
    """A namespace that records each option the command reads (after parsing: ``recorded`` is cleared then)."""

    recorded: set[str]

    def __getattribute__(self, name: str):
        if not name.startswith("_") and name != "recorded":
            object.__getattribute__(self, "recorded").add(name)
        return object.__getattribute__(self, name)


def listed_options(parser: argparse.ArgumentParser) -> dict[str, str]:
    """The destination of every option the help lists, by its flag."""
    return {
        action.option_strings[-1]: action.dest
        for action in parser._actions
        if action.help != argparse.SUPPRESS and action.option_strings and action.dest != "help"
    }


def test_the_top_level_help_fits_one_screen_with_every_command_and_exit_code(monkeypatch):
    monkeypatch.setenv("COLUMNS", str(SCREEN_COLUMNS))
    text = build_parser().format_help()
    lines = text.splitlines()
    assert len(lines) <= SCREEN_LINES, f"{len(lines)} lines\n{text}"
    assert max(map(len, lines)) <= SCREEN_COLUMNS, text
    assert COMMANDS and all(f"\n    {command.name} " in text for command in COMMANDS)
    assert "--region" in text and "docs/operations.md" in text and "130  interrupted" in text


@pytest.mark.parametrize("name", [command.name for command in COMMANDS])
def test_each_commands_help_fits_one_screen_without_the_global_options(name, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(SCREEN_COLUMNS))
    parser = build_parser()
    text = command_parsers(parser)[name].format_help()
    lines = text.splitlines()
    assert len(lines) <= SCREEN_LINES, f"{name}: {len(lines)} lines\n{text}"
    assert max(map(len, lines)) <= SCREEN_COLUMNS, text
    options = text.split("options:", 1)[1].rsplit("Global options", 1)[0]
    assert "--region" not in options and "--report-dir" not in options, "the global options: top-level help only"
    assert "exit codes: broker-tier-ops --help" in " ".join(text.split())
    assert listed_options(command_parsers(parser)[name]), name


def _rehearsal_stand_in(options, *args, **kwargs) -> Report:
    report = Report("rehearse", options.environment, "stand-in", False)
    report.finish("passed")
    return report


# Each command's invocations whose reads, together, must cover every option its help lists.
REDIS_URL = "redis://127.0.0.1:{port}"
"""migrate-broker's --redis-url: the test's redis-server (without a database: --redis-db's is taken)."""
INVOCATIONS = {
    "status": [["--env", ENV, "--json"]],
    "failover": [["--env", ENV, "--dry-run", "--no-canary"], ["--env", ENV, "--dry-run", *FAST_CANARY_ARGS]],
    "failback": [["--env", ENV, "--preferred-az", "eu-west-1b", "--dry-run"]],
    "dead-letters": [["--env", ENV, "--queue-class", "default", "--show-args", "--no-logs"]],
    "redrive": [
        ["--env", ENV, "--queue-class", "default", "--dry-run"],
        ["--env", ENV, "--queue-class", "default", "--dry-run", "--task-name", "x", "--task-id", "y"],
    ],
    "toolbox": [["--env", ENV, "--dry-run"]],
    "migrate-broker": [
        ["--env", ENV, "--to", "sqs", "--dry-run", "--redis-url", REDIS_URL, "--claim-check-bucket", "b"],
        [
            "--env",
            ENV,
            "--to",
            "redis",
            "--dry-run",
            "--redis-url",
            REDIS_URL,
            "--task-time-limit",
            "60",
            "--poll",
            "1",
        ],
    ],
    "rehearse": [["--json"], ["--runs", "2"]],
    "cost": [["--cdk-out", "baseline", "--json"], ["--cdk-out", "baseline", "--markdown", "--what-if"]],
}


def test_each_command_reads_every_option_its_help_lists(aws, monkeypatch, tmp_path, capsys, lone_redis):
    import broker_tier.rehearsal.runner
    import broker_tier.rehearsal.series
    from broker_tier.ops.cli import GLOBAL_OPTIONS, _run

    queues = aws.tier.queues
    FakeMoveTasks(aws.clients["sqs"], {q["dlq_arn"]: q["dlq_url"] for q in queues.values()}).install(aws.api)
    monkeypatch.setattr(broker_tier.rehearsal.runner, "rehearse", _rehearsal_stand_in)
    monkeypatch.setattr(broker_tier.rehearsal.series, "run_series", _rehearsal_stand_in)
    monkeypatch.chdir(Path(__file__).resolve().parents[3])  # --cdk-out baseline: the repository's
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("BROKER_TIER_REDIS_AUTH_TOKEN", lone_redis.password)
    parser = build_parser()
    assert set(INVOCATIONS) == {command.name for command in COMMANDS}
    for name, invocations in INVOCATIONS.items():
        read: set[str] = set()
        for given in invocations:
            argv = [part.format(port=lone_redis.port) if part == REDIS_URL else part for part in given]
            args = parser.parse_args([name, "--report-dir", str(tmp_path), *argv], namespace=ReadRecorder())
            object.__setattr__(args, "recorded", set())
            _run(args.command_spec, args, {**aws.clients, SEND_ONCE: aws.clients["sqs"]}, {})
            read |= args.recorded
        listed = listed_options(command_parsers(parser)[name])
        unread = {flag for flag, dest in listed.items() if dest not in read and dest not in GLOBAL_OPTIONS}
        assert not unread, f"{name} lists options it never reads: {sorted(unread)}"
    assert list(scratch.iterdir()) == [], "a command left a temporary directory behind"
    capsys.readouterr()

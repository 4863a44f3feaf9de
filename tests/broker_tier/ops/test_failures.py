"""Every failure class of broker-tier-ops, produced with botocore's real exceptions: one line naming the
cause and what to do, the documented exit code, and both reports written (refusals included).

Three sources: the CLI's own boto3 clients against a loopback endpoint (botocore signs, retries and
parses for real: tests/support/fake_endpoint.py) or a closed loopback port; moto and the model-validated
fakes; and botocore's Stubber for the JSON-protocol services' error codes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, InvalidRegionError
from botocore.stub import Stubber
from fake_aws import ENV, FAST_CANARY_ARGS, GROUP, REGION
from fake_endpoint import CannedEndpoint, CannedResponse, query_error
from loopback import free_port

from broker_tier.evidence.errors import EXIT_CODES, blame_setting, classify
from broker_tier.ops import cli
from broker_tier.ops.aws import DEFAULT_MAX_ATTEMPTS
from broker_tier.ops.cli import COMMANDS, main


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str
    report: dict
    markdown: str

    @property
    def last_line(self) -> str:
        return self.stderr.strip().splitlines()[-1]


def run(argv: list[str], capsys, report_dir: Path, **kwargs) -> Ran:
    code = main([*argv, "--report-dir", str(report_dir)], **kwargs)
    captured = capsys.readouterr()
    (json_path,) = report_dir.glob("*.json")
    report = json.loads(json_path.read_text())
    markdown = json_path.with_suffix(".md").read_text()
    assert report["exit_code"] == code
    assert "Traceback" not in captured.err
    return Ran(code, captured.out, captured.err, report, markdown)


def assert_one_line(ran: Ran, command: str, outcome: str, code: int, *phrases: str) -> None:
    """The last line: command, outcome, exit code, then the cause and what to do."""
    assert ran.code == code
    assert ran.last_line.startswith(f"broker-tier-ops {command}: {outcome.upper()} (exit {code}): "), ran.stderr
    for phrase in phrases:
        assert phrase in ran.last_line, (phrase, ran.last_line)
    assert ran.report["outcome"] == outcome
    assert f"# broker-tier-ops {command}: {outcome.upper()}" in ran.markdown
    assert f"exit code {code}" in ran.markdown and "- Stopped by: " in ran.markdown


@pytest.fixture
def no_aws_config(monkeypatch, tmp_path):
    """A machine as a new user has it: no AWS variables, no ~/.aws files, no instance metadata."""
    for name in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_MAX_ATTEMPTS",
        "AWS_RETRY_MODE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # botocore's retry back-off, not the test's time
    return monkeypatch


@pytest.fixture
def credentials(no_aws_config):
    no_aws_config.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    no_aws_config.setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
    return no_aws_config


# Each AWS command with the options it needs: a new user's first try of every command.
EVERY_COMMAND = {
    "status": [],
    "failover": [],
    "failback": ["--preferred-az", "eu-west-1a"],
    "dead-letters": ["--queue-class", "default"],
    "redrive": ["--queue-class", "default"],
    "toolbox": [],
    "migrate-broker": ["--to", "sqs"],
}
assert set(EVERY_COMMAND) == {command.name for command in COMMANDS if command.aws}


def test_exit_code_table_is_in_the_top_level_help_only(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    assert EXIT_CODES
    for entry in EXIT_CODES:
        assert f"{entry.code:>3}  {entry.name}" in help_text
    with pytest.raises(SystemExit):
        main(["status", "--help"])
    command_help = " ".join(capsys.readouterr().out.split())
    assert "exit codes: broker-tier-ops --help" in command_help and "access-denied" not in command_help


# -- the CLI's own clients: no region, no credentials, a closed port, a loopback endpoint --------------------
@pytest.mark.parametrize("command", EVERY_COMMAND)
def test_no_region(no_aws_config, capsys, tmp_path, command):
    ran = run([command, "--env", "prod", *EVERY_COMMAND[command]], capsys, tmp_path / "reports")
    assert_one_line(
        ran, command, "error", 4, "no AWS region configured", "pass --region, or set AWS_REGION or AWS_DEFAULT_REGION"
    )
    assert ran.report["failure"]["error_type"] == "NoRegionError"


@pytest.mark.parametrize("command", EVERY_COMMAND)
def test_no_credentials(no_aws_config, capsys, tmp_path, command):
    ran = run([command, "--env", "prod", "--region", REGION, *EVERY_COMMAND[command]], capsys, tmp_path / "reports")
    assert_one_line(ran, command, "error", 4, "no usable AWS credentials", "pass --profile (or set AWS_PROFILE)")
    assert ran.report["failure"]["error_type"] == "NoCredentialsError"


def test_a_new_user_runs_the_installed_script_without_a_region(no_aws_config, tmp_path):
    script = Path(sys.executable).parent / "broker-tier-ops"
    result = subprocess.run(
        [str(script), "status", "--env", "prod"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 4 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "broker-tier-ops status: ERROR (exit 4): no AWS region configured; pass --region, or set AWS_REGION or "
        "AWS_DEFAULT_REGION, or give the profile a region"
    )
    assert len(list((tmp_path / "drill-reports").glob("status-prod-*"))) == 2  # JSON and Markdown


def test_unknown_profile(no_aws_config, capsys, tmp_path):
    ran = run(["--profile", "on-call", "status", "--env", "prod"], capsys, tmp_path / "reports")
    assert_one_line(ran, "status", "error", 4, "AWS profile not found", "check --profile or AWS_PROFILE")


# -- a setting the AWS SDK rejects: the credentials/configuration class (4), naming the setting ---------------
# (environment variables, a file's text as the config file, the options, and the phrases of the last line)
SETTINGS = {
    "--region with spaces": (
        {},
        None,
        ["--region", "us east 1"],
        ["--region is set to 'us east 1', which the AWS SDK rejects", "give a region code such as eu-west-1"],
    ),
    "AWS_REGION with spaces": (
        {"AWS_REGION": "us east 1"},
        None,
        [],
        ["AWS_REGION is set to 'us east 1'", "give a region code such as eu-west-1"],
    ),
    "a profile's region with spaces": (
        {},
        "[default]\nregion = us east 1\n",
        [],
        ["region of profile 'default' in ", "is set to 'us east 1'", "give a region code such as eu-west-1"],
    ),
    "AWS_ENDPOINT_URL not a URL": (
        {"AWS_ENDPOINT_URL": "not-a-url"},
        None,
        ["--region", REGION],
        [
            "AWS_ENDPOINT_URL is set to 'not-a-url', which the AWS SDK rejects (Invalid endpoint: not-a-url)",
            "give a full URL such as https://",
            "or unset AWS_ENDPOINT_URL",
        ],
    ),
    "AWS_MAX_ATTEMPTS not a number": (
        {"AWS_MAX_ATTEMPTS": "abc"},
        None,
        ["--region", REGION],
        ["AWS_MAX_ATTEMPTS is set to 'abc'", "correct AWS_MAX_ATTEMPTS, or unset AWS_MAX_ATTEMPTS"],
    ),
    "a profile's max_attempts not a number": (
        {},
        "[default]\nmax_attempts = abc\n",
        ["--region", REGION],
        [
            "max_attempts of profile 'default' in ",
            "is set to 'abc'",
            "correct max_attempts, or remove it from the profile",
        ],
    ),
    "AWS_RETRY_MODE unknown": (
        {"AWS_RETRY_MODE": "bogus"},
        None,
        ["--region", REGION],
        ["AWS_RETRY_MODE is set to 'bogus'", "must be one of: ('legacy', 'standard'"],
    ),
    "a config file that cannot be parsed": (
        {},
        "[profile broken\nregion = eu-west-1\n",
        ["--region", REGION],
        ["cannot be parsed (File contains no section headers", "[profile broken", "point AWS_CONFIG_FILE"],
    ),
}


@pytest.mark.parametrize("variables,config_file,options,phrases", SETTINGS.values(), ids=SETTINGS.keys())
def test_a_setting_the_sdk_rejects_is_named_with_exit_4(
    credentials, capsys, tmp_path, variables, config_file, options, phrases
):
    for name, value in variables.items():
        credentials.setenv(name, value)
    if config_file is not None:
        (tmp_path / "config").write_text(config_file)
        credentials.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    ran = run(["status", "--env", "prod", *options], capsys, tmp_path / "reports")
    assert_one_line(ran, "status", "error", 4, *phrases)
    assert ran.report["failure"]["kind"] == "credentials" and "internal error" not in ran.last_line
    if config_file is not None:
        assert str(tmp_path / "config") in ran.last_line  # the file to fix, by its path


def test_a_value_error_no_setting_holds_stays_unexpected(credentials, capsys, tmp_path, monkeypatch):
    """Only a setting holding the rejected value makes a ValueError a setting's: any other is a defect (8)."""
    credentials.setenv("AWS_MAX_ATTEMPTS", "3")

    def broken(region, profile):
        raise ValueError("invalid literal for int() with base 10: 'x3'")

    monkeypatch.setattr(cli, "make_clients", broken)
    ran = run(["status", "--env", "prod", "--region", REGION], capsys, tmp_path / "reports")
    assert_one_line(ran, "status", "error", 8, "internal error: ValueError", "report the traceback")


def test_a_setting_is_blamed_only_for_exactly_the_rejected_value_and_never_a_secret(credentials):
    credentials.setenv("AWS_SECRET_ACCESS_KEY", "abc")
    credentials.setenv("AWS_RETRY_MODE", "standard")
    assert (
        blame_setting(ValueError("invalid literal for int() with base 10: 'abc'"), region_option=None, profile=None)
        is None
    )  # only the secret holds it: never blamed, never printed
    assert blame_setting(ValueError("standard is not valid: 'x'"), region_option=None, profile=None) is None
    assert blame_setting(ValueError("no separator"), region_option=None, profile=None) is None
    setting = blame_setting(InvalidRegionError(region_name="eu west 1"), region_option="eu west 1", profile=None)
    assert str(setting).startswith("--region is set to 'eu west 1'")


def test_a_region_error_from_elsewhere_is_still_a_configuration_error():
    failure = classify(InvalidRegionError(region_name="us east 1"))
    assert failure.exit_code == 4 and failure.cause == "'us east 1' is not an AWS region name"
    assert "--region" in failure.remedy and "AWS_REGION" in failure.remedy


def test_an_aws_error_points_at_the_message_in_the_line_itself():
    error = ClientError(
        {"Error": {"Code": "ClusterNotFoundException", "Message": "Cluster not found."}}, "DescribeServices"
    )
    failure = classify(error)
    assert failure.exit_code == 7
    assert failure.line == (
        "AWS refused DescribeServices (ClusterNotFoundException: Cluster not found.); AWS's "
        "message, in the parentheses, says what is wrong: check the names the command used "
        "(--env, --region, the resource ids) against it"
    )


@pytest.mark.parametrize("command", EVERY_COMMAND)
def test_endpoint_unreachable(credentials, capsys, tmp_path, command):
    credentials.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    ran = run([command, "--env", "prod", "--region", REGION, *EVERY_COMMAND[command]], capsys, tmp_path / "reports")
    assert_one_line(ran, command, "error", 6, "cannot reach AWS", "check the network, VPN or proxy")
    assert ran.report["failure"]["error_type"] == "EndpointConnectionError"


CANNED = {
    "expired credentials": (
        CannedResponse(403, query_error("ExpiredToken", "The security token included in the request is expired")),
        4,
        ["AWS credentials have expired (ExpiredToken", "aws sso login"],
    ),
    "access denied": (
        CannedResponse(
            403,
            query_error(
                "AccessDenied",
                "User: arn:aws:iam::123456789012:user/oncall is not authorized to perform: "
                "cloudformation:DescribeStacks",
            ),
        ),
        5,
        [
            "access denied (AccessDenied; DescribeStacks: User: arn:aws:iam::123456789012:user/oncall",
            "use a role allowed to call DescribeStacks",
        ],
    ),
    "throttled beyond the retry budget": (
        CannedResponse(400, query_error("Throttling", "Rate exceeded")),
        6,
        [f"AWS kept throttling after {DEFAULT_MAX_ATTEMPTS} attempts", "wait a minute and run it again"],
    ),
    "malformed response": (
        CannedResponse(200, "<DescribeStacksResponse><DescribeStacksResult><Stacks"),
        8,
        ["AWS sent a response the tool cannot parse", "--debug"],
    ),
    "stack missing": (
        CannedResponse(400, query_error("ValidationError", "Stack with id BrokerTier-prod-State does not exist")),
        2,
        ["stack BrokerTier-prod-State does not exist in eu-west-1", "check --env and --region"],
    ),
}


@pytest.mark.parametrize("response,code,phrases", CANNED.values(), ids=CANNED.keys())
def test_aws_answers_through_botocore(credentials, capsys, tmp_path, response, code, phrases):
    with CannedEndpoint(response) as endpoint:
        credentials.setenv("AWS_ENDPOINT_URL", endpoint.url)
        ran = run(["status", "--env", "prod", "--region", REGION], capsys, tmp_path / "reports")
    assert_one_line(ran, "status", "refused" if code == 2 else "error", code, *phrases)
    # botocore's standard retry mode retried the throttled call up to the budget, and nothing else
    assert endpoint.requests == (DEFAULT_MAX_ATTEMPTS if "Throttling" in response.body else 1)


def test_retry_budget_follows_aws_max_attempts(credentials, capsys, tmp_path):
    credentials.setenv("AWS_MAX_ATTEMPTS", "3")
    with CannedEndpoint(CannedResponse(400, query_error("Throttling", "Rate exceeded"))) as endpoint:
        credentials.setenv("AWS_ENDPOINT_URL", endpoint.url)
        ran = run(["status", "--env", "prod", "--region", REGION], capsys, tmp_path / "reports")
    assert endpoint.requests == 3 and "after 3 attempts" in ran.last_line
    assert ran.report["invocation"]["max_attempts"] == 3


def test_debug_adds_the_traceback(credentials, capsys, tmp_path):
    credentials.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    code = main(["--debug", "status", "--env", "prod", "--region", REGION, "--report-dir", str(tmp_path)])
    stderr = capsys.readouterr().err
    assert code == 6 and "Traceback (most recent call last)" in stderr and "EndpointConnectionError" in stderr
    assert stderr.strip().splitlines()[-1].startswith("broker-tier-ops status: ERROR (exit 6): cannot reach AWS")


# -- moto and the fakes: missing stack or output, time-out, refusal, missing field ----------------------------
@pytest.mark.parametrize("command", EVERY_COMMAND)
def test_stack_missing(aws, capsys, tmp_path, command):
    ran = run([command, "--env", "nowhere", *EVERY_COMMAND[command]], capsys, tmp_path, clients=aws.clients)
    assert_one_line(
        ran, command, "refused", 2, "stack BrokerTier-nowhere-State does not exist in eu-west-1", "nothing was changed"
    )


def test_output_missing(aws, capsys, tmp_path):
    aws.clients["cloudformation"].create_stack(
        StackName="BrokerTier-bare-State",
        TemplateBody=json.dumps({"Resources": {"Marker": {"Type": "AWS::SNS::Topic"}}}),
    )
    ran = run(["status", "--env", "bare"], capsys, tmp_path, clients=aws.clients)
    assert_one_line(
        ran,
        "status",
        "refused",
        2,
        "stack BrokerTier-bare-State has no ReplicationGroupId output",
        "--replication-group-id",
    )


def test_time_out_after_the_change_started_aborts(aws, capsys, tmp_path):
    aws.group.primary = f"{GROUP}-002"
    describe = aws.group.DescribeReplicationGroups

    def never_available_again(**params):
        response = describe(**params)
        if aws.group.modify_calls:
            response["ReplicationGroups"][0]["Status"] = "modifying"
        return response

    aws.api.handlers[("elasticache", "DescribeReplicationGroups")] = never_available_again
    ran = run(
        ["failback", "--env", ENV, "--preferred-az", "eu-west-1a", "--timeout", "60", "--poll", "5"],
        capsys,
        tmp_path,
        clients=aws.clients,
    )
    assert_one_line(
        ran,
        "failback",
        "aborted",
        3,
        "time-out: Waiter ReplicationGroupAvailable failed",
        "look at the resource's state",
    )
    assert ran.report["plan"] and ran.report["failure"]["kind"] == "time-out"
    assert "RESTORE FAILED" in ran.markdown  # the timeline so far is in the report


def test_steady_state_refusal_writes_both_reports(aws, capsys, tmp_path):
    aws.group.multi_az = "disabled"
    ran = run(["failover", "--env", ENV], capsys, tmp_path, clients=aws.clients)
    assert_one_line(
        ran, "failover", "refused", 2, "the steady state does not hold", "[failed: multi_az_and_automatic_failover]"
    )
    assert "| multi_az_and_automatic_failover | FAIL |" in ran.markdown


def test_response_missing_a_field(aws, capsys, tmp_path):
    describe = aws.group.DescribeReplicationGroups

    def without_node_groups(**params):
        response = describe(**params)
        del response["ReplicationGroups"][0]["NodeGroups"]
        return response  # still valid against botocore's model: no member is required

    aws.api.handlers[("elasticache", "DescribeReplicationGroups")] = without_node_groups
    ran = run(["status", "--env", ENV], capsys, tmp_path, clients=aws.clients)
    assert_one_line(ran, "status", "error", 8, "an AWS response lacks 'NodeGroups'", "--debug")
    assert "UNAVAILABLE replication group: an AWS response lacks 'NodeGroups'" in ran.stdout
    assert "default" in ran.stdout  # the sections that could be read are still shown


def test_connect_time_out_mid_drill_aborts(aws, capsys, tmp_path):
    def connect_times_out(**_):
        raise ConnectTimeoutError(endpoint_url=f"https://elasticache.{REGION}.amazonaws.com/")

    aws.group.on_failover = lambda: aws.api.handlers.update({("elasticache", "DescribeEvents"): connect_times_out})
    ran = run(["failover", "--env", ENV, "--poll", "1", *FAST_CANARY_ARGS], capsys, tmp_path, clients=aws.clients)
    assert_one_line(
        ran, "failover", "aborted", 3, "cannot reach AWS (Connect timeout on endpoint URL", "check the network"
    )
    assert ran.report["failure"]["kind"] == "unreachable"  # the cause is kept; exit 3 says a change was under way


# -- JSON-protocol error codes (ECS, SQS, CloudWatch) through botocore's Stubber -----------------------------
STUBBED = {
    "expired (ExpiredTokenException)": ("ExpiredTokenException", 4, "AWS credentials have expired"),
    "access denied (AccessDeniedException)": (
        "AccessDeniedException",
        5,
        "access denied (AccessDeniedException; DescribeServices",
    ),
    "throttled (ThrottlingException)": ("ThrottlingException", 6, "AWS kept throttling"),
    "other AWS error (ClusterNotFoundException)": ("ClusterNotFoundException", 7, "AWS refused DescribeServices"),
}


@pytest.mark.parametrize("error_code,code,phrase", STUBBED.values(), ids=STUBBED.keys())
def test_json_protocol_errors_in_status(aws, capsys, tmp_path, error_code, code, phrase):
    ecs = boto3.client("ecs", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    with Stubber(ecs) as stubber:
        stubber.add_client_error(
            "describe_services", service_error_code=error_code, service_message="stubbed", http_status_code=400
        )
        ran = run(["status", "--env", ENV], capsys, tmp_path, clients={**aws.clients, "ecs": ecs})
    assert_one_line(ran, "status", "error", code, phrase)


def interrupt(**_):
    raise KeyboardInterrupt


def test_ctrl_c_before_any_change_exits_130_with_the_report(aws, capsys, tmp_path):
    aws.api.handlers[("elasticache", "DescribeReplicationGroups")] = interrupt
    ran = run(["failover", "--env", ENV], capsys, tmp_path, clients=aws.clients)
    # "interrupted", as the README's exit code table names the outcome, not "error"
    assert_one_line(ran, "failover", "interrupted", 130, "interrupted (Ctrl-C)", "look at the resource's state")
    assert ran.report["failure"]["kind"] == "interrupted"
    assert ran.report["target"] == GROUP  # the command's own report, not a stand-in


def test_ctrl_c_after_test_failover_exits_3_with_the_timeline_so_far(aws, capsys, tmp_path):
    aws.group.on_failover = lambda: aws.api.handlers.update({("elasticache", "DescribeEvents"): interrupt})
    ran = run(["failover", "--env", ENV, "--poll", "1", *FAST_CANARY_ARGS], capsys, tmp_path, clients=aws.clients)
    assert_one_line(ran, "failover", "aborted", 3, "interrupted (Ctrl-C)")
    assert "TestFailover called for node group 0001" in ran.markdown

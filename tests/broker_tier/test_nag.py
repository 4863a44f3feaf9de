"""cdk-nag wiring: a finding fails synthesis, and an acknowledgment with a reason clears it; a wildcard
resource acknowledged by its ARN holds for a pinned and an agnostic stack and for that resource only."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs

from broker_tier.nag import acknowledge, acknowledge_wildcard_resource, add_aws_solutions_checks, flatten_cfn_reference


def probe_app(tmp_path) -> cdk.App:
    """An app for a cdk-nag probe: only cdk-nag's findings go into its report (CDK's own validation is off)."""
    return cdk.App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)


def synth_queue_app(tmp_path, *, acknowledged: bool) -> None:
    app = probe_app(tmp_path)
    stack = cdk.Stack(app, "NagProbe")
    queue = sqs.Queue(stack, "PlainQueue")  # no DLQ (SQS3), no TLS-only policy (SQS4)
    if acknowledged:
        acknowledge(queue, "SQS3", "probe: a queue without a DLQ")
        acknowledge(queue, "SQS4", "probe: a queue without a TLS-only policy")
    add_aws_solutions_checks(app)
    app.synth()


def test_unacknowledged_finding_fails_synthesis_and_acknowledged_one_passes(tmp_path):
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        synth_queue_app(tmp_path / "failing", acknowledged=False)
    report = (tmp_path / "failing" / "validation-report.json").read_text()
    assert "AwsSolutions-SQS3" in report and "AwsSolutions-SQS4" in report
    synth_queue_app(tmp_path / "passing", acknowledged=True)


def synth_wildcard_app(tmp_path, *, env: cdk.Environment | None, acknowledged_group: str | None) -> None:
    """A role allowed to write the streams of log group ``Audit`` (a wildcard ARN), acknowledged for the log
    group named ``acknowledged_group`` (None: not at all)."""
    app = probe_app(tmp_path)
    stack = cdk.Stack(app, "NagWildcardProbe", env=env)
    groups = {name: logs.LogGroup(stack, name) for name in ("Audit", "Other")}
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))

    def streams(group: logs.LogGroup) -> str:
        return stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{group.log_group_name}:*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["logs:PutLogEvents"], resources=[streams(groups["Audit"])])
    )
    if acknowledged_group:
        acknowledge_wildcard_resource(role, streams(groups[acknowledged_group]), "probe: the group's streams")
    add_aws_solutions_checks(app)
    app.synth()


PINNED = cdk.Environment(account="123456789012", region="eu-west-1")


@pytest.mark.parametrize("env", [None, PINNED], ids=["agnostic", "pinned"])
def test_a_wildcard_acknowledged_by_its_arn_holds_pinned_and_agnostic(tmp_path, env):
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        synth_wildcard_app(tmp_path / "bare", env=env, acknowledged_group=None)
    report = (tmp_path / "bare" / "validation-report.json").read_text()
    # pinned: region and account literal (the partition too, with the app's enablePartitionLiterals flag)
    literal = ":logs:eu-west-1:123456789012:log-group:" if env else ":logs:<AWS::Region>:<AWS::AccountId>:log-group:"
    assert literal in report  # the finding names the ARN as this stack renders it
    synth_wildcard_app(tmp_path / "acknowledged", env=env, acknowledged_group="Audit")


@pytest.mark.parametrize("env", [None, PINNED], ids=["agnostic", "pinned"])
def test_an_acknowledgment_covers_only_the_resource_it_names(tmp_path, env):
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        synth_wildcard_app(tmp_path, env=env, acknowledged_group="Other")


FLATTENED = {
    "literal": ("arn:aws:logs:eu-west-1:1:log-group:x:*", "arn:aws:logs:eu-west-1:1:log-group:x:*"),
    "join of refs": (
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":ecs:", {"Ref": "Cluster"}, "/*"]]},
        "arn:<AWS::Partition>:ecs:<Cluster>/*",
    ),
    "get-att": ({"Fn::GetAtt": ["Queue", "Arn"]}, "<Queue.Arn>"),
    "sub": ({"Fn::Sub": "arn:${AWS::Partition}:s3:::b/*"}, "arn:<AWS::Partition>:s3:::b/*"),
    "anything else, as JSON": (
        {"Fn::GetStackOutput": {"OutputName": "A"}},
        '{"Fn::GetStackOutput":{"OutputName":"A"}}',
    ),
}


@pytest.mark.parametrize("value,expected", FLATTENED.values(), ids=FLATTENED.keys())
def test_values_are_flattened_as_cdk_nag_writes_them(value, expected):
    assert flatten_cfn_reference(value) == expected

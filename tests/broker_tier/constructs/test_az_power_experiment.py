"""AzPowerExperiments on a bare stack: one AWS FIS template per AZ given, stopped by a composite of the given
alarms, with a role that may interrupt the power of the tagged group only; and no experiment without a stop
alarm (where the tier enables them, as synthesized: tests/broker_tier/stacks/test_az_power_experiments.py)."""

from __future__ import annotations

import pytest
from aws_cdk import aws_cloudwatch as cloudwatch
from bare_stack import BareApp
from deployment import ACCOUNT, REGION
from policy_evaluator import Request, evaluate

import broker_tier_contract as contract
from broker_tier.constructs.az_power_experiment import AzPowerExperiments

ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
GROUP = "team-cache"
TAG = contract.FAULT_INJECTION_TARGET_TAG
STOP_ALARMS = ("team-redis-memory-critical", "team-beat-not-one")


def experiments(stack, construct_id: str = "AzPower", **changes) -> AzPowerExperiments:
    properties = {
        "replication_group_id": GROUP,
        "availability_zones": ZONES,
        "duration_minutes": 10,
        "stop_alarms": [
            cloudwatch.CfnAlarm(
                stack,
                name,
                alarm_name=name,
                comparison_operator="GreaterThanThreshold",
                evaluation_periods=1,
                threshold=1,
                metric_name="m",
                namespace="n",
                period=60,
                statistic="Maximum",
            )
            for name in STOP_ALARMS
        ],
        "stop_alarm_name": "team-fault-injection-stop",
        "description_prefix": "team dev",
    }
    return AzPowerExperiments(stack, construct_id, **{**properties, **changes})


@pytest.fixture(scope="module")
def bare() -> BareApp:
    app = BareApp()
    built = experiments(app.stack("Experiments"))
    app.built["Experiments"] = {
        "templates": [app.logical_id(template) for template in built.templates],
        "stop_alarm": app.logical_id(built.stop_alarm),
        "role": app.logical_id(built.role),
    }
    return app.synthesize()


def test_one_template_per_az_interrupting_the_tagged_groups_power_there_for_the_duration(bare):
    built = bare.built["Experiments"]
    found = bare.resources("Experiments", "AWS::FIS::ExperimentTemplate")
    assert len(found) == len(built["templates"]) == len(ZONES)
    for index, (logical_id, zone) in enumerate(zip(built["templates"], ZONES, strict=True), start=1):
        assert found[logical_id]["Properties"] == {
            "Description": f"team dev: interrupt the power of the cache nodes in {zone} for 10 min",
            "RoleArn": {"Fn::GetAtt": [built["role"], "Arn"]},
            "StopConditions": [
                {"Source": "aws:cloudwatch:alarm", "Value": {"Fn::GetAtt": [built["stop_alarm"], "Arn"]}}
            ],
            "Targets": {
                contract.AZ_POWER_TARGET: {
                    "ResourceType": "aws:elasticache:replicationgroup",
                    "SelectionMode": "ALL",
                    "ResourceTags": {TAG: GROUP},
                    "Parameters": {contract.AZ_POWER_ZONE_PARAMETER: zone},
                }
            },
            "Actions": {
                "InterruptAzPower": {
                    "ActionId": contract.AZ_POWER_ACTION,
                    "Parameters": {"duration": "PT10M"},
                    "Targets": {contract.AZ_POWER_TARGET: contract.AZ_POWER_TARGET},
                }
            },
            "ExperimentOptions": {"AccountTargeting": "single-account", "EmptyTargetResolutionMode": "fail"},
            "Tags": {"Name": f"team dev az-power {index}"},
        }


def test_any_stop_alarm_stops_every_experiment_through_one_silent_composite_alarm(bare):
    stop = bare.templates["Experiments"]["Resources"][bare.built["Experiments"]["stop_alarm"]]
    assert stop["Properties"]["AlarmName"] == "team-fault-injection-stop"
    assert stop["Properties"]["AlarmRule"] == " OR ".join(f'ALARM("{name}")' for name in STOP_ALARMS)
    assert stop["Properties"]["ActionsEnabled"] is False  # its children notify
    children = list(bare.resources("Experiments", "AWS::CloudWatch::Alarm"))
    assert sorted(stop["DependsOn"]) == sorted(children) and len(children) == len(STOP_ALARMS)


def test_only_this_accounts_experiments_may_assume_the_role(bare):
    role = bare.templates["Experiments"]["Resources"][bare.built["Experiments"]["role"]]["Properties"]
    (trust,) = bare.resolve("Experiments", role["AssumeRolePolicyDocument"]["Statement"])
    assert trust == {
        "Effect": "Allow",
        "Principal": {"Service": "fis.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {
            "StringEquals": {"aws:SourceAccount": ACCOUNT},
            "ArnLike": {"aws:SourceArn": f"arn:aws:fis:{REGION}:{ACCOUNT}:experiment/*"},
        },
    }
    assert "Policies" not in role and "ManagedPolicyArns" not in role


def role_decision(bare: BareApp, action: str, **context: str) -> str:
    (policy,) = bare.resources("Experiments", "AWS::IAM::Policy").values()
    assert policy["Properties"]["Roles"] == [{"Ref": bare.built["Experiments"]["role"]}]
    group_arn = f"arn:aws:elasticache:{REGION}:{ACCOUNT}:replicationgroup:{GROUP}"
    request = Request({"Service": "fis.amazonaws.com"}, action, group_arn, context)
    return evaluate(policy["Properties"]["PolicyDocument"], request).outcome


def test_the_role_may_interrupt_the_power_of_the_tagged_group_and_resolve_targets(bare):
    assert role_decision(bare, "elasticache:InterruptClusterAzPower", **{f"aws:ResourceTag/{TAG}": GROUP}) == "allowed"
    assert role_decision(bare, "elasticache:DescribeReplicationGroups") == "allowed"
    assert role_decision(bare, "tag:GetResources") == "allowed"


@pytest.mark.parametrize(
    "action,context",
    [
        ("elasticache:InterruptClusterAzPower", {f"aws:ResourceTag/{TAG}": "another-group"}),
        ("elasticache:InterruptClusterAzPower", {}),
        ("elasticache:TestFailover", {f"aws:ResourceTag/{TAG}": GROUP}),
        ("elasticache:DeleteReplicationGroup", {f"aws:ResourceTag/{TAG}": GROUP}),
        ("elasticache:ModifyReplicationGroup", {f"aws:ResourceTag/{TAG}": GROUP}),
    ],
    ids=["another-group", "untagged-group", "test-failover", "delete", "modify"],
)
def test_the_role_may_do_nothing_else(bare, action, context):
    assert role_decision(bare, action, **context) == "implicit deny"


def test_no_experiment_without_a_stop_alarm():
    with pytest.raises(ValueError, match="at least one stop alarm"):
        experiments(BareApp().stack("Unstoppable"), stop_alarms=[])

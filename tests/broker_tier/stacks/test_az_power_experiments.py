"""The AWS FIS AZ power experiments: created where the configuration enables them (dev), one per
AZ of the network, on the tier's replication group only, stopped by the tier's paging alarms, with
a role that can do exactly what the action needs."""

from __future__ import annotations

import pytest
from tier_testing import tier_context

import broker_tier_contract as contract
from broker_tier.config import load_environments

CONFIGS = load_environments(tier_context())
TAG = "broker-tier:fault-injection-target"


def templates(synthesized, env: str) -> list[dict]:
    found = synthesized.resources(env, "Monitoring", "AWS::FIS::ExperimentTemplate")
    return [found[logical_id]["Properties"] for logical_id in sorted(found)]


def replication_group_tags(synthesized, env: str) -> dict[str, str]:
    group = synthesized.only(env, "State", "AWS::ElastiCache::ReplicationGroup")
    return {tag["Key"]: tag["Value"] for tag in group["Properties"]["Tags"]}


def test_dev_has_one_template_per_az_cutting_power_to_its_own_group_for_the_configured_time(synthesized):
    config = CONFIGS["dev"]
    found = templates(synthesized, "dev")
    assert len(found) == config.network.max_azs == 2
    (stop_alarm,) = synthesized.resources("dev", "Monitoring", "AWS::CloudWatch::CompositeAlarm")
    (role,) = synthesized.resources("dev", "Monitoring", "AWS::IAM::Role")
    for index, template in enumerate(found):
        assert template["Actions"] == {
            "InterruptAzPower": {
                "ActionId": "aws:elasticache:replicationgroup-interrupt-az-power",
                "Parameters": {"duration": "PT5M"},
                "Targets": {"ReplicationGroups": "ReplicationGroups"},
            }
        }
        assert template["Targets"] == {
            "ReplicationGroups": {
                "ResourceType": "aws:elasticache:replicationgroup",
                "SelectionMode": "ALL",
                "ResourceTags": {TAG: "broker-tier-dev"},
                "Parameters": {"availabilityZoneIdentifier": {"Fn::Select": [index, {"Fn::GetAZs": ""}]}},
            }
        }
        assert template["StopConditions"] == [
            {"Source": "aws:cloudwatch:alarm", "Value": {"Fn::GetAtt": [stop_alarm, "Arn"]}}
        ]
        assert template["ExperimentOptions"] == {
            "AccountTargeting": "single-account",
            "EmptyTargetResolutionMode": "fail",
        }
        assert template["RoleArn"] == {"Fn::GetAtt": [role, "Arn"]}
    # the tag the templates select by is on dev's replication group, with its id
    assert replication_group_tags(synthesized, "dev")[TAG] == "broker-tier-dev"
    output = synthesized.json("dev", "Monitoring")["Outputs"]["AzPowerExperimentTemplateIds"]["Value"]
    assert output == {
        "Fn::Join": [
            ",",
            [
                {"Ref": logical_id}
                for logical_id in sorted(synthesized.resources("dev", "Monitoring", "AWS::FIS::ExperimentTemplate"))
            ],
        ]
    }


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_off_by_default_nothing_is_created_and_the_group_carries_no_target_tag(synthesized, env):
    assert not CONFIGS[env].fault_injection.az_power.enabled
    assert templates(synthesized, env) == []
    assert synthesized.resources(env, "Monitoring", "AWS::CloudWatch::CompositeAlarm") == {}
    assert synthesized.resources(env, "Monitoring", "AWS::IAM::Role") == {}
    assert "AzPowerExperimentTemplateIds" not in synthesized.json(env, "Monitoring")["Outputs"]
    assert TAG not in replication_group_tags(synthesized, env)


def test_stop_condition_is_every_paging_alarm_but_those_the_fault_sets_off(synthesized):
    alarms = {
        r["Properties"]["AlarmName"]: (logical_id, r["Properties"])
        for logical_id, r in synthesized.resources("dev", "Monitoring", "AWS::CloudWatch::Alarm").items()
    }
    paging = {name for name, (_, alarm) in alarms.items() if alarm["AlarmDescription"].startswith("[page]")}
    expected = {
        name for name in paging if name.removeprefix("broker-tier-dev-") not in contract.EXPECTED_DURING_AZ_POWER
    }
    assert {"broker-tier-dev-redis-replication-lag", "broker-tier-dev-redis-connections"} <= paging - expected
    assert {
        "broker-tier-dev-dlq-default-messages",
        "broker-tier-dev-queue-interactive-age",
        "broker-tier-dev-beat-tasks",
        "broker-tier-dev-redis-memory-critical",
    } <= expected
    stop = synthesized.only("dev", "Monitoring", "AWS::CloudWatch::CompositeAlarm")
    rule = stop["Properties"]["AlarmRule"]
    assert rule.split(" OR ") == [f'ALARM("{name}")' for name in alarms if name in expected]
    assert stop["Properties"]["AlarmName"] == "broker-tier-dev-fault-injection-stop"
    assert stop["Properties"]["ActionsEnabled"] is False  # its children notify; it only stops experiments
    assert sorted(stop["DependsOn"]) == sorted(alarms[name][0] for name in expected)


def test_role_is_assumable_by_this_accounts_experiments_only_and_may_do_exactly_what_the_action_needs(synthesized):
    role = synthesized.only("dev", "Monitoring", "AWS::IAM::Role")
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "fis.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    deployment, monitoring = synthesized.deployment("dev"), contract.stack_name("dev", "Monitoring")
    conditions = {
        (operator, key): deployment.resolve(monitoring, value)
        for operator, tests in trust["Condition"].items()
        for key, value in tests.items()
    }
    assert conditions == {
        ("StringEquals", "aws:SourceAccount"): synthesized.account,
        ("ArnLike", "aws:SourceArn"): f"arn:aws:fis:{synthesized.region}:{synthesized.account}:experiment/*",
    }
    policies = synthesized.resources("dev", "Monitoring", "AWS::IAM::Policy")
    assert "Policies" not in role["Properties"] and "ManagedPolicyArns" not in role["Properties"]
    (policy,) = policies.values()
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {
            "Sid": "InterruptAzPowerOfTheTiersGroupOnly",
            "Effect": "Allow",
            "Action": "elasticache:InterruptClusterAzPower",
            "Resource": "*",
            "Condition": {"StringEquals": {f"aws:ResourceTag/{TAG}": "broker-tier-dev"}},
        },
        {
            "Sid": "ResolveTargets",
            "Effect": "Allow",
            "Action": ["elasticache:DescribeReplicationGroups", "tag:GetResources"],
            "Resource": "*",
        },
    ]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_compute_stack_tells_the_drill_which_broker_the_workers_consume(synthesized, env):
    assert synthesized.json(env, "Compute")["Outputs"]["Broker"]["Value"] == CONFIGS[env].compute.broker

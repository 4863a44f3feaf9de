"""BeatService: exactly one Beat, never two during a deployment, publish-only."""

from __future__ import annotations

import json

import pytest
from tier_testing import ENVIRONMENTS, expected_health_check, tier_context, without_ecs_exec

import broker_tier_contract as contract
from broker_tier.config import load_environments


def beat_service(synthesized, env):
    services = synthesized.resources(env, "Compute", "AWS::ECS::Service")
    return next((i, s["Properties"]) for i, s in services.items() if i.startswith("BeatCelery"))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_exactly_one_beat_that_stops_before_its_successor_starts(synthesized, env):
    logical_id, beat = beat_service(synthesized, env)
    assert beat["DesiredCount"] == 1
    assert beat["DeploymentConfiguration"]["MaximumPercent"] == 100
    assert beat["DeploymentConfiguration"]["MinimumHealthyPercent"] == 0
    targets = synthesized.resources(env, "Compute", "AWS::ApplicationAutoScaling::ScalableTarget")
    assert logical_id not in json.dumps(targets)  # no autoscaling of Beat


def fence_statements(table_arn, key_arn) -> dict[str, dict]:
    """What Beat may do with its fence table: create items with the fence's attributes, nothing else."""
    return {
        "ClaimBeatTicks": {
            "Action": "dynamodb:PutItem",
            "Resource": table_arn,
            "Condition": {"ForAllValues:StringEquals": {"dynamodb:Attributes": list(contract.BEAT_FENCE_ATTRIBUTES)}},
        },
        "BeatFenceEncryption": {
            "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
            "Resource": key_arn,
        },
    }


def beat_statements(compute: dict) -> dict[str, dict]:
    policies = {i: r for i, r in compute["Resources"].items() if r["Type"] == "AWS::IAM::Policy"}
    role_policy = next(p for i, p in policies.items() if i.startswith("BeatCeleryTaskDefinitionTaskRole"))
    return {s["Sid"]: s for s in without_ecs_exec(role_policy["Properties"]["PolicyDocument"]["Statement"])}


def assert_fence_only(statements: dict[str, dict]) -> None:
    claim, encryption = statements["ClaimBeatTicks"], statements["BeatFenceEncryption"]
    # the table and the key by their State stack outputs (weak references), no wildcard
    assert "BeatFence" in json.dumps(claim["Resource"]) and "*" not in json.dumps(claim["Resource"])
    assert "Key" in json.dumps(encryption["Resource"]) and "*" not in json.dumps(encryption["Resource"])
    for sid, expected in fence_statements(claim["Resource"], encryption["Resource"]).items():
        assert {key: statements[sid][key] for key in expected} == expected, sid
    assert "dynamodb." in json.dumps(encryption["Condition"]["StringEquals"]["kms:ViaService"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_beat_runs_beat_and_may_only_publish(synthesized, env):
    tasks = synthesized.resources(env, "Compute", "AWS::ECS::TaskDefinition")
    beat_task = next(t for i, t in tasks.items() if i.startswith("BeatCelery"))
    (container,) = beat_task["Properties"]["ContainerDefinitions"]
    assert container["Command"][:4] == ["celery", "-A", "broker_tier_worker.app", "beat"]
    environment = {item["Name"]: item["Value"] for item in container["Environment"]}
    assert "BeatFence" in json.dumps(environment[contract.ContainerEnvironment.BEAT_FENCE_TABLE.name])
    assert container["HealthCheck"] == expected_health_check("beat")
    statements = beat_statements(synthesized.json(env, "Compute"))
    payloads = {  # with the claim check on, Beat puts the payloads of periodic tasks too big for SQS
        "PutClaimCheckPayloads": "s3:PutObject",
        "EncryptPayloadsThroughS3": "kms:GenerateDataKey",
    }
    assert {sid: s["Action"] for sid, s in statements.items()} == {
        "PublishToWorkQueues": "sqs:SendMessage",
        "PublishBeatMetrics": "cloudwatch:PutMetricData",
        "QueueEncryption": ["kms:Decrypt", "kms:GenerateDataKey"],
        **(payloads if load_environments(tier_context())[env].claim_check.enabled else {}),
        "ClaimBeatTicks": "dynamodb:PutItem",
        "BeatFenceEncryption": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
    }
    assert "sqs." in json.dumps(statements["QueueEncryption"]["Condition"]["StringEquals"]["kms:ViaService"])
    assert_fence_only(statements)
    # its tick counts and Redis's keyspace (status shows it), in sqs mode
    assert statements["PublishBeatMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": [contract.BEAT_NAMESPACE, contract.REDIS_KEYSPACE_NAMESPACE]}
    }


def test_beat_publishes_the_redis_backlog_in_redis_broker_mode_and_nothing_else(redis_mode_dev):
    statements = beat_statements(redis_mode_dev["Compute"])
    assert set(statements) == {"ClaimBeatTicks", "BeatFenceEncryption", "PublishBeatMetrics"}
    assert_fence_only(statements)
    # PutMetricData has no resource-level permissions: '*', held to Beat's namespaces by its condition key
    assert statements["PublishBeatMetrics"] == {
        "Sid": "PublishBeatMetrics",
        "Effect": "Allow",
        "Action": "cloudwatch:PutMetricData",
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                "cloudwatch:namespace": [
                    contract.BEAT_NAMESPACE,
                    contract.REDIS_KEYSPACE_NAMESPACE,
                    contract.REDIS_BACKLOG_NAMESPACE,
                ]
            }
        },
    }
    policies = [r for i, r in redis_mode_dev["Compute"]["Resources"].items() if r["Type"] == "AWS::IAM::Policy"]
    workers = [p for p in policies if "Worker" in json.dumps(p["Properties"]["Roles"])]
    assert workers and "cloudwatch:PutMetricData" not in json.dumps(workers)
    assert "dynamodb:" not in json.dumps(workers)


def test_beat_gets_each_class_visibility_time_out_in_redis_mode(redis_mode_dev):
    tasks = {i: r for i, r in redis_mode_dev["Compute"]["Resources"].items() if r["Type"] == "AWS::ECS::TaskDefinition"}
    (container,) = next(t for i, t in tasks.items() if i.startswith("BeatCelery"))["Properties"]["ContainerDefinitions"]
    environment = {item["Name"]: item["Value"] for item in container["Environment"]}
    timeouts = json.loads(environment[contract.ContainerEnvironment.VISIBILITY_TIMEOUTS.name])
    assert timeouts and set(timeouts) == set(json.loads(json.dumps(timeouts)))
    assert all(isinstance(seconds, int) and seconds > 0 for seconds in timeouts.values())

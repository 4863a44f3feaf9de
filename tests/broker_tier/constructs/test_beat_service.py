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


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_beat_runs_beat_and_may_only_publish(synthesized, env):
    tasks = synthesized.resources(env, "Compute", "AWS::ECS::TaskDefinition")
    beat_task = next(t for i, t in tasks.items() if i.startswith("BeatCelery"))
    command = beat_task["Properties"]["ContainerDefinitions"][0]["Command"]
    assert command[:4] == ["celery", "-A", "broker_tier_worker.app", "beat"]
    container = beat_task["Properties"]["ContainerDefinitions"][0]
    assert container["HealthCheck"] == expected_health_check("beat")
    policies = synthesized.resources(env, "Compute", "AWS::IAM::Policy")
    role_policy = next(p for i, p in policies.items() if i.startswith("BeatCeleryTaskDefinitionTaskRole"))
    statements = {s["Sid"]: s for s in without_ecs_exec(role_policy["Properties"]["PolicyDocument"]["Statement"])}
    payloads = {  # with the claim check on, Beat puts the payloads of periodic tasks too big for SQS
        "PutClaimCheckPayloads": "s3:PutObject",
        "EncryptPayloadsThroughS3": "kms:GenerateDataKey",
    }
    assert {sid: s["Action"] for sid, s in statements.items()} == {
        "PublishToWorkQueues": "sqs:SendMessage",
        "PublishBeatMetrics": "cloudwatch:PutMetricData",
        "QueueEncryption": ["kms:Decrypt", "kms:GenerateDataKey"],
        **(payloads if load_environments(tier_context())[env].claim_check.enabled else {}),
    }
    assert "sqs." in json.dumps(statements["QueueEncryption"]["Condition"]["StringEquals"]["kms:ViaService"])
    # Redis's keyspace, in either broker mode (status shows it); the backlog only in redis mode
    assert statements["PublishBeatMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": [contract.REDIS_KEYSPACE_NAMESPACE]}
    }


def test_beat_publishes_the_redis_backlog_and_keyspace_in_redis_broker_mode_and_nothing_else(redis_mode_dev):
    policies = {i: r for i, r in redis_mode_dev["Compute"]["Resources"].items() if r["Type"] == "AWS::IAM::Policy"}
    role_policy = next(p for i, p in policies.items() if i.startswith("BeatCeleryTaskDefinitionTaskRole"))
    statements = without_ecs_exec(role_policy["Properties"]["PolicyDocument"]["Statement"])
    # PutMetricData has no resource-level permissions: '*', held to Beat's namespaces by its condition key
    assert statements == [
        {
            "Sid": "PublishBeatMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "cloudwatch:namespace": [contract.REDIS_KEYSPACE_NAMESPACE, contract.REDIS_BACKLOG_NAMESPACE]
                }
            },
        }
    ]
    workers = [p for i, p in policies.items() if i.startswith("Worker") and "TaskRole" in i]
    assert workers and "cloudwatch:PutMetricData" not in json.dumps(workers)

"""BeatService: exactly one Beat, never two during a deployment, publish-only."""

from __future__ import annotations

import json

import pytest

from tier_testing import ENVIRONMENTS, without_ecs_exec


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
    policies = synthesized.resources(env, "Compute", "AWS::IAM::Policy")
    role_policy = next(p for i, p in policies.items() if i.startswith("BeatCeleryTaskDefinitionTaskRole"))
    actions = {s["Sid"]: s["Action"]
               for s in without_ecs_exec(role_policy["Properties"]["PolicyDocument"]["Statement"])}
    assert actions == {"PublishToWorkQueues": "sqs:SendMessage",
                       "QueueEncryption": ["kms:Decrypt", "kms:GenerateDataKey"]}

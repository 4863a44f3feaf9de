"""BrokerComputeStack: broker modes, images, outputs."""

from __future__ import annotations

import json


def test_redis_broker_mode_grants_no_sqs_and_tells_the_containers(redis_mode_dev):
    resources = redis_mode_dev["Compute"]["Resources"]
    policies = json.dumps([r for r in resources.values() if r["Type"] == "AWS::IAM::Policy"])
    assert "sqs:" not in policies
    for task in (
        r
        for r in resources.values()
        if r["Type"] == "AWS::ECS::TaskDefinition" and r["Properties"]["ContainerDefinitions"][0]["Name"] == "celery"
    ):
        container = task["Properties"]["ContainerDefinitions"][0]
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert env["BROKER_TIER_BROKER"] == "redis" and env["BROKER_TIER_REDIS_DB_BROKER"] == "1"
        assert container["Command"][:3] == ["celery", "-A", "team_app.celery:app"]
        assert "@sha256:" + "b" * 64 in json.dumps(container["Image"]) and "team/app" in json.dumps(container["Image"])


def test_outputs_name_cluster_and_services(synthesized):
    outputs = synthesized.json("prod", "Compute")["Outputs"]
    assert {
        "ClusterName",
        "BeatServiceName",
        "WorkerServiceInteractiveName",
        "WorkerServiceDefaultName",
        "WorkerServiceBatchName",
    } <= set(outputs)


def test_reference_worker_image_is_built_from_the_repository(synthesized):
    task = next(iter(synthesized.resources("dev", "Compute", "AWS::ECS::TaskDefinition").values()))
    assert "cdk-hnb659fds-container-assets" in json.dumps(task["Properties"]["ContainerDefinitions"][0]["Image"])

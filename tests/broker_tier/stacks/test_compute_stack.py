"""BrokerComputeStack: broker modes, images, outputs."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest

from broker_tier.app_builder import build_app
from broker_tier.config import deep_merge
from tier_testing import project_context


@pytest.fixture(scope="module")
def redis_mode_dev(tmp_path_factory) -> dict:
    """dev with the Redis broker and a team image: one more synthesis, once for this module."""
    context = project_context()
    dev = context["broker-tier"]["environments"]["dev"]
    context["broker-tier"]["environments"]["dev"] = deep_merge(dev, {"compute": {
        "broker": "redis", "image": {"repository_name": "team/app", "digest": "sha256:" + "b" * 64},
        "celery_app": "team_app.celery:app"}})
    app = cdk.App(context={**context, "env": "dev"}, outdir=str(tmp_path_factory.mktemp("redis-mode")))
    build_app(app, nag=False)
    return app.synth().get_stack_by_name("BrokerTier-dev-Compute").template


def test_redis_broker_mode_grants_no_sqs_and_tells_the_containers(redis_mode_dev):
    resources = redis_mode_dev["Resources"]
    policies = json.dumps([r for r in resources.values() if r["Type"] == "AWS::IAM::Policy"])
    assert "sqs:" not in policies
    for task in (r for r in resources.values() if r["Type"] == "AWS::ECS::TaskDefinition"
                 and r["Properties"]["ContainerDefinitions"][0]["Name"] == "celery"):
        container = task["Properties"]["ContainerDefinitions"][0]
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert env["BROKER_TIER_BROKER"] == "redis" and env["BROKER_TIER_REDIS_DB_BROKER"] == "1"
        assert container["Command"][:3] == ["celery", "-A", "team_app.celery:app"]
        assert "@sha256:" + "b" * 64 in json.dumps(container["Image"]) and "team/app" in json.dumps(container["Image"])


def test_outputs_name_cluster_and_services(synthesized):
    outputs = synthesized.json("prod", "Compute")["Outputs"]
    assert {"ClusterName", "BeatServiceName", "WorkerServiceInteractiveName", "WorkerServiceDefaultName",
            "WorkerServiceBatchName"} <= set(outputs)


def test_reference_worker_image_is_built_from_the_repository(synthesized):
    task = next(iter(synthesized.resources("dev", "Compute", "AWS::ECS::TaskDefinition").values()))
    assert "cdk-hnb659fds-container-assets" in json.dumps(task["Properties"]["ContainerDefinitions"][0]["Image"])

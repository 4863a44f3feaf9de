"""BrokerComputeStack: broker modes, images, outputs."""

from __future__ import annotations

import json
from pathlib import Path


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


ASSOCIATION = "AWS::ECS::ClusterCapacityProviderAssociations"


def worker_and_beat_services(templates_by_part: dict) -> tuple[dict[str, dict], tuple[str, dict]]:
    """The worker services (by the class each consumes) and Beat's (logical id, resource) of a Compute template."""
    resources = templates_by_part["Compute"]["Resources"]
    classes = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::ECS::TaskDefinition":
            continue
        variables = {e["Name"]: e["Value"] for e in resource["Properties"]["ContainerDefinitions"][0]["Environment"]}
        if "BROKER_TIER_QUEUE" in variables:
            classes[logical_id] = variables["BROKER_TIER_QUEUE"]
    workers, beat = {}, None
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::ECS::Service":
            continue
        task = resource["Properties"]["TaskDefinition"]["Ref"]
        if task in classes:
            workers[classes[task]] = resource
        elif logical_id.startswith("BeatCelery"):
            beat = (logical_id, resource)
    assert workers and beat is not None
    return workers, beat


def test_workers_run_by_a_capacity_provider_strategy_and_beat_by_the_fargate_launch_type(synthesized):
    for env in ("dev", "staging", "prod"):
        resources = synthesized.json(env, "Compute")["Resources"]
        (association_id,) = [i for i, r in resources.items() if r["Type"] == ASSOCIATION]
        association = resources[association_id]["Properties"]
        assert association["CapacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
        assert association["DefaultCapacityProviderStrategy"] == []  # Beat and the toolbox keep their launch type
        workers, (_, beat) = worker_and_beat_services({"Compute": synthesized.json(env, "Compute")})
        assert set(workers) == {"interactive", "default", "batch"}
        for service in workers.values():
            # on-demand only as shipped, but as a strategy: opting in later changes the strategy in place
            assert service["Properties"]["CapacityProviderStrategy"] == [{"CapacityProvider": "FARGATE", "Weight": 1}]
            assert "LaunchType" not in service["Properties"]
            assert association_id in service["DependsOn"]  # the providers are associated before it names them
        assert beat["Properties"]["LaunchType"] == "FARGATE" and "CapacityProviderStrategy" not in beat["Properties"]


def test_the_switch_to_a_strategy_and_the_providers_update_in_place_per_the_cloudformation_schema(synthesized):
    """docs/decisions/fargate-spot-per-class.md: neither LaunchType nor CapacityProviderStrategy is create-only for
    AWS::ECS::Service, nor CapacityProviders for the cluster (cfn-lint's provider schemas, which the guard reads);
    and nothing the tier names is create-only either, so CloudFormation updates the services where they stand."""
    from broker_tier.tools.replacement_guard import create_only_properties

    service_create_only = create_only_properties("AWS::ECS::Service")
    assert service_create_only == ["Cluster", "Role", "SchedulingStrategy", "ServiceName"]
    assert create_only_properties("AWS::ECS::Cluster") == ["ClusterName"]
    resources = synthesized.json("prod", "Compute")["Resources"]
    for resource in resources.values():
        if resource["Type"] == "AWS::ECS::Service":
            assert not {"ServiceName", "Role", "SchedulingStrategy"} & set(resource["Properties"])
        if resource["Type"] == "AWS::ECS::Cluster":
            assert "ClusterName" not in resource["Properties"]


def test_opting_classes_into_spot_on_arm64_passes_cdk_nag_cfn_lint_and_the_guard(spot_prod):
    from cfnlint.api import ManualArgs, lint_by_config

    from broker_tier.tools.replacement_guard import compare, stateful_resources

    # synthesized with cdk-nag: an unacknowledged finding would have failed it; only warnings remain
    reports = json.loads((spot_prod.outdir / "validation-report.json").read_text())["pluginReports"]
    findings = [v for report in reports for v in report["violations"]]
    assert findings and all(v["severity"] == "warning" for v in findings), reports
    templates = sorted(str(path) for path in spot_prod.outdir.glob("*.template.json"))
    assert len(templates) == 3
    assert [str(match) for match in lint_by_config(ManualArgs(templates=templates, regions=["us-east-1"]))] == []
    root = Path(__file__).resolve().parents[3]
    for part in ("State", "Compute"):
        stack = f"BrokerTier-prod-{part}"
        baseline = json.loads((root / "baseline" / f"{stack}.json").read_text())
        assert compare("prod", stack, baseline, stateful_resources(spot_prod.templates[part])) == []


def test_each_class_gets_its_own_strategy_and_beat_never_runs_on_spot(spot_prod):
    workers, (_, beat) = worker_and_beat_services(spot_prod.templates)
    strategies = {name: service["Properties"]["CapacityProviderStrategy"] for name, service in workers.items()}
    assert strategies == {
        "interactive": [
            {"Base": 1, "CapacityProvider": "FARGATE", "Weight": 25},
            {"CapacityProvider": "FARGATE_SPOT", "Weight": 75},
        ],
        "default": [{"CapacityProvider": "FARGATE", "Weight": 1}],
        "batch": [
            {"Base": 1, "CapacityProvider": "FARGATE", "Weight": 50},
            {"CapacityProvider": "FARGATE_SPOT", "Weight": 50},
        ],
    }
    # every class on Spot or not, Beat keeps the FARGATE launch type: it can never be placed on Spot
    assert beat["Properties"]["LaunchType"] == "FARGATE" and "CapacityProviderStrategy" not in beat["Properties"]
    tasks = [r for r in spot_prod.templates["Compute"]["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    assert tasks and {t["Properties"]["RuntimePlatform"]["CpuArchitecture"] for t in tasks} == {"ARM64"}


def test_each_spot_class_has_an_alarm_on_tasks_left_pending(spot_prod):
    alarms = {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in spot_prod.templates["Monitoring"]["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    spot_alarms = {name: alarm for name, alarm in alarms.items() if name.endswith("-spot-capacity")}
    assert set(spot_alarms) == {f"broker-tier-prod-worker-{name}-spot-capacity" for name in ("interactive", "batch")}
    for alarm in spot_alarms.values():
        metrics = {m["Id"]: m for m in alarm["Metrics"]}
        assert metrics["alarmed"]["Expression"] == "FILL(desired, 0) - FILL(running, 0)"
        assert metrics["desired"]["MetricStat"]["Metric"]["MetricName"] == "DesiredTaskCount"
        assert metrics["running"]["MetricStat"]["Metric"]["MetricName"] == "RunningTaskCount"
        assert metrics["running"]["MetricStat"]["Metric"]["Namespace"] == "ECS/ContainerInsights"
        window = (alarm["Threshold"], alarm["ComparisonOperator"], alarm["EvaluationPeriods"])
        assert window == (0, "GreaterThanThreshold", 10)
        description = alarm["AlarmDescription"]
        assert description.startswith("[warning]") and description.endswith("worker-spot-capacity.md")

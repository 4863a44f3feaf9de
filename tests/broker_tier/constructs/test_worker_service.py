"""WorkerService: one service per class, backlog-per-task scaling, least-privilege queue access."""

from __future__ import annotations

import json

import pytest
from tier_testing import ENVIRONMENTS, expected_health_check, is_ecs_exec, tier_context, without_ecs_exec

import broker_tier_contract as contract
from broker_tier.config import load_environments

CONFIGS = load_environments(tier_context())
CLASSES = [(env, name) for env in ENVIRONMENTS for name in CONFIGS[env].queues]


def container_of(synthesized, env, name):
    for task in synthesized.resources(env, "Compute", "AWS::ECS::TaskDefinition").values():
        container = task["Properties"]["ContainerDefinitions"][0]
        env_vars = {e["Name"]: e["Value"] for e in container.get("Environment", [])}
        if env_vars.get("BROKER_TIER_QUEUE") == name:
            return task["Properties"], container, env_vars
    raise AssertionError(f"no worker task definition for {name} in {env}")


@pytest.mark.parametrize("env,cls", CLASSES)
def test_worker_consumes_only_its_class_and_never_runs_beat(synthesized, env, cls):
    task, container, env_vars = container_of(synthesized, env, cls)
    worker = CONFIGS[env].queues[cls].worker
    command = container["Command"]
    assert command[:4] == ["celery", "-A", "broker_tier_worker.app", "worker"]
    assert command[command.index("--queues") + 1] == cls
    assert command[command.index("--concurrency") + 1] == str(worker.concurrency)
    assert not {"-B", "--beat"} & set(command)
    assert set(contract.WORKER_EVENT_OPTIONS) <= set(command)  # no worker events, gossip nor mingle
    assert container["HealthCheck"] == expected_health_check("worker")
    assert (task["Cpu"], task["Memory"]) == (str(worker.cpu), str(worker.memory_mib))
    assert task["RuntimePlatform"]["CpuArchitecture"] == "X86_64"
    assert env_vars["BROKER_TIER_TASK_TIME_LIMIT"] == str(CONFIGS[env].queues[cls].task_time_limit_seconds)
    assert env_vars["BROKER_TIER_BROKER"] == "sqs"
    assert container["StopTimeout"] == 120
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"


def celery_task_definitions(synthesized, env):
    """The task definitions of the Celery services (not the operators' toolbox)."""
    return [
        task
        for task in synthesized.resources(env, "Compute", "AWS::ECS::TaskDefinition").values()
        if task["Properties"]["ContainerDefinitions"][0]["Name"] == "celery"
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_auth_token_reaches_containers_only_as_an_ecs_secret(synthesized, env):
    tasks = celery_task_definitions(synthesized, env)
    assert len(tasks) == len(CONFIGS[env].queues) + 1  # + Beat
    for task in tasks:
        container = task["Properties"]["ContainerDefinitions"][0]
        assert [s["Name"] for s in container["Secrets"]] == ["BROKER_TIER_REDIS_AUTH_TOKEN"]
        assert "CacheAuthToken" in json.dumps(container["Secrets"][0]["ValueFrom"])
        for variable in container["Environment"]:
            assert "TOKEN" not in variable["Name"] and "PASSWORD" not in variable["Name"]
            # nor a reference to the secret under another name, nor a dynamic reference resolving it
            value = json.dumps(variable["Value"])
            assert "CacheAuthToken" not in value and "resolve:secretsmanager" not in value


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_one_worker_service_per_class_with_rollback(synthesized, env):
    services = synthesized.resources(env, "Compute", "AWS::ECS::Service")
    assert len(services) == len(CONFIGS[env].queues) + 1  # + Beat
    for service in services.values():
        deployment = service["Properties"]["DeploymentConfiguration"]
        assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
        assert service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    synthesized.template(env, "Compute").has_resource_properties(
        "AWS::ECS::Cluster", {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]}
    )


@pytest.mark.parametrize("env,cls", CLASSES)
def test_scaling_tracks_backlog_per_task_not_cpu(synthesized, env, cls):
    worker = CONFIGS[env].queues[cls].worker
    policies = [
        p["Properties"]
        for p in synthesized.resources(env, "Compute", "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    ]
    tracking = [p for p in policies if p["PolicyType"] == "TargetTrackingScaling"]
    assert all("PredefinedMetricSpecification" not in p["TargetTrackingScalingPolicyConfiguration"] for p in tracking)
    mine = next(p for p in tracking if p["PolicyName"] == f"{cls}-backlog-per-task")
    config = mine["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == worker.backlog_per_task_target
    metrics = {m["Id"]: m for m in config["CustomizedMetricSpecification"]["Metrics"]}
    # work in progress counts: messages in flight as well as those waiting, per running task
    assert metrics["backlogPerTask"]["Expression"] == "(visible + inflight) / running"
    assert metrics["backlogPerTask"]["ReturnData"] is True
    for metric_id, name in (
        ("visible", "ApproximateNumberOfMessagesVisible"),
        ("inflight", "ApproximateNumberOfMessagesNotVisible"),
    ):
        metric = metrics[metric_id]["MetricStat"]["Metric"]
        assert (metric["Namespace"], metric["MetricName"]) == ("AWS/SQS", name)
        assert f"Queues{cls}Queue" in json.dumps(metric["Dimensions"])
        assert (metrics[metric_id]["MetricStat"]["Stat"], metrics[metric_id]["ReturnData"]) == ("Sum", False)
    running = metrics["running"]["MetricStat"]["Metric"]
    assert (running["Namespace"], running["MetricName"]) == ("ECS/ContainerInsights", "RunningTaskCount")
    service_id = own_service_logical_id(synthesized, env, cls)
    assert {"Name": "ServiceName", "Value": {"Fn::GetAtt": [service_id, "Name"]}} in running["Dimensions"]
    target = own_scalable_target(synthesized, env, cls)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (worker.min_tasks, worker.max_tasks)
    assert {
        "Ref": next(
            i
            for i, r in synthesized.resources(env, "Compute", "AWS::ApplicationAutoScaling::ScalableTarget").items()
            if r["Properties"] is target
        )
    } == mine["ScalingTargetId"]


def own_service_logical_id(synthesized, env, cls):
    return next(
        i for i in synthesized.resources(env, "Compute", "AWS::ECS::Service") if i.startswith(f"Worker{cls}Celery")
    )


def own_scalable_target(synthesized, env, cls):
    """The scalable target whose resource id names this class's own service."""
    service_id = own_service_logical_id(synthesized, env, cls)
    targets = [
        t["Properties"]
        for t in synthesized.resources(env, "Compute", "AWS::ApplicationAutoScaling::ScalableTarget").values()
        if {"Fn::GetAtt": [service_id, "Name"]} in t["Properties"]["ResourceId"]["Fn::Join"][1]
    ]
    assert len(targets) == 1, targets
    return targets[0]


def test_a_class_that_scales_to_zero_scales_out_on_one_message(synthesized):
    assert CONFIGS["dev"].queues["batch"].worker.min_tasks == 0
    alarms = synthesized.resources("dev", "Compute", "AWS::CloudWatch::Alarm")
    alarm = next(a["Properties"] for i, a in alarms.items() if i.startswith("WorkerbatchMessagesWithoutWorkers"))
    expression = next(m["Expression"] for m in alarm["Metrics"] if "Expression" in m)
    assert expression == "IF(FILL(running, 0) == 0 AND visible > 0, 1, 0)"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    step = next(
        p["Properties"]
        for p in synthesized.resources("dev", "Compute", "AWS::ApplicationAutoScaling::ScalingPolicy").values()
        if p["Properties"]["PolicyType"] == "StepScaling"
    )
    adjustments = step["StepScalingPolicyConfiguration"]["StepAdjustments"]
    assert adjustments == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]
    # classes with a minimum of one or more tasks need no such trigger (staging's Compute stack has no alarm at all:
    # its resources of every type are searched)
    staging = synthesized.json("staging", "Compute")["Resources"]
    assert staging and not any(i.startswith("WorkerbatchMessagesWithoutWorkers") for i in staging)


def statements(synthesized, env, prefix):
    policies = synthesized.resources(env, "Compute", "AWS::IAM::Policy")
    return [
        s for i, p in policies.items() if i.startswith(prefix) for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_worker_task_role_is_least_privilege(synthesized, env):
    assert CONFIGS[env].queues
    for cls in CONFIGS[env].queues:
        found = {
            s["Sid"]: s
            for s in without_ecs_exec(statements(synthesized, env, f"Worker{cls}CeleryTaskDefinitionTaskRole"))
        }
        # the claim check's statements, where it is on: test_claim_check_bucket.py
        payloads = {"ReadAndDeleteOwnPayloads", "PutClaimCheckPayloads", "PayloadsThroughS3"}
        assert set(found) == {
            "ConsumeOwnQueue",
            "PublishToWorkQueues",
            "QueueEncryption",
            "OwnScaleInProtection",
            *(payloads if CONFIGS[env].claim_check.enabled else ()),
        }
        found = {sid: statement for sid, statement in found.items() if sid not in payloads}
        protection = found.pop("OwnScaleInProtection")
        assert sorted(protection["Action"]) == ["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"]
        # this cluster's tasks only: arn:<partition>:ecs:<region>:<account>:task/<cluster name>/*
        deployment = synthesized.deployment(env)
        compute = contract.stack_name(env, "Compute")
        cluster = deployment.resolve(compute, {"Ref": synthesized.cluster_logical_id(env)})
        assert deployment.resolve(compute, protection["Resource"]) == (
            f"arn:aws:ecs:{synthesized.region}:{synthesized.account}:task/{cluster}/*"
        )
        assert sorted(found["ConsumeOwnQueue"]["Action"]) == [
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ReceiveMessage",
        ]
        assert f"Queues{cls}Queue" in json.dumps(found["ConsumeOwnQueue"]["Resource"])
        assert found["PublishToWorkQueues"]["Action"] == "sqs:SendMessage"
        assert len(found["PublishToWorkQueues"]["Resource"]) == len(CONFIGS[env].queues)
        assert "DeadLetter" not in json.dumps(found)
        assert sorted(found["QueueEncryption"]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
        # the tier's data key encrypts the secret, the cache and the topic too: only through SQS
        assert found["QueueEncryption"]["Condition"] == {
            "StringEquals": {"kms:ViaService": {"Fn::Join": ["", ["sqs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}}
        }
        for statement in found.values():
            assert "*" not in json.dumps(statement["Action"]) and statement["Resource"] != "*"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_execution_roles_read_the_secret_and_have_one_documented_wildcard(synthesized, env):
    services = len(CONFIGS[env].queues) + 1
    found = statements(synthesized, env, "")
    wildcards = [s for s in found if s.get("Resource") == "*" and not is_ecs_exec(s)]  # ECS Exec's: operator tests
    # each execution role pulls images; Beat's task role publishes its tick counts and Redis's keyspace (held to
    # its namespaces by a condition: test_beat_service.py)
    assert (
        sorted(s["Action"] for s in wildcards)
        == ["cloudwatch:PutMetricData"] + ["ecr:GetAuthorizationToken"] * services
    )
    assert [s["Condition"] for s in wildcards if s["Action"] == "cloudwatch:PutMetricData"] == [
        {"StringEquals": {"cloudwatch:namespace": [contract.BEAT_NAMESPACE, contract.REDIS_KEYSPACE_NAMESPACE]}}
    ]
    decrypt = [s for s in found if s.get("Sid") == "DecryptInjectedSecrets"]
    assert len(decrypt) == services + 1  # and the operators' toolbox
    for statement in decrypt:
        assert statement["Action"] == "kms:Decrypt"
        assert "secretsmanager." in json.dumps(statement["Condition"]["StringEquals"]["kms:ViaService"])
    reads = [s for s in found if s.get("Action") == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]]
    assert len(reads) == services + 1 and all("CacheAuthToken" in json.dumps(s["Resource"]) for s in reads)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_redis_ingress_only_from_the_services_on_the_redis_port(synthesized, env):
    rules = synthesized.resources(env, "Compute", "AWS::EC2::SecurityGroupIngress")
    assert len(rules) == len(CONFIGS[env].queues) + 2  # + Beat, + the operators' toolbox
    for rule in rules.values():
        props = rule["Properties"]
        assert (props["FromPort"], props["ToPort"], props["IpProtocol"]) == (6380, 6380, "tcp")
        assert "SourceSecurityGroupId" in props and "CidrIp" not in props
        assert "CacheSecurityGroup" in json.dumps(props["GroupId"])


def test_redis_broker_mode_scales_on_the_redis_backlog_beat_publishes(redis_mode_dev):
    """In redis mode the SQS queues stay empty: scaling (and scaling out from zero) reads the Redis lists
    and unacked record of the class, which Beat publishes (broker_tier_celery.backlog_metrics)."""
    resources = redis_mode_dev["Compute"]["Resources"]
    policies = [
        r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"
    ]
    for cls in CONFIGS["dev"].queues:
        mine = next(p for p in policies if p.get("PolicyName") == f"{cls}-backlog-per-task")
        metrics = {
            m["Id"]: m
            for m in mine["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]["Metrics"]
        }
        assert metrics["backlogPerTask"]["Expression"] == "(visible + inflight) / running"
        for metric_id, name in (
            ("visible", contract.REDIS_BACKLOG_WAITING),
            ("inflight", contract.REDIS_BACKLOG_IN_PROGRESS),
        ):
            stat = metrics[metric_id]["MetricStat"]
            assert stat["Metric"] == {
                "Namespace": contract.REDIS_BACKLOG_NAMESPACE,
                "MetricName": name,
                "Dimensions": [{"Name": "Environment", "Value": "dev"}, {"Name": "QueueClass", "Value": cls}],
            }
            assert stat["Stat"] == "Maximum"
    assert "AWS/SQS" not in json.dumps(policies)
    alarm = next(r["Properties"] for i, r in resources.items() if i.startswith("WorkerbatchMessagesWithoutWorkers"))
    visible = next(m for m in alarm["Metrics"] if m["Id"] == "visible")["MetricStat"]["Metric"]
    assert (visible["Namespace"], visible["MetricName"]) == (
        contract.REDIS_BACKLOG_NAMESPACE,
        contract.REDIS_BACKLOG_WAITING,
    )
    assert {"Name": "QueueClass", "Value": "batch"} in visible["Dimensions"]

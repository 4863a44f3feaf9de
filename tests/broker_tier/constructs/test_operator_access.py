"""The operators' way in: ECS Exec on every Celery service with encrypted session logs, and the toolbox."""

from __future__ import annotations

import json

import pytest
from tier_testing import ENVIRONMENTS, is_ecs_exec

from broker_tier.constructs.toolbox import TOOLBOX_IMAGE

SESSION_ACTIONS = {
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
}


def operator_log_group(synthesized, env):
    groups = synthesized.resources(env, "Compute", "AWS::Logs::LogGroup")
    (logical_id,) = [i for i, g in groups.items() if g["Properties"]["LogGroupName"] == f"/broker-tier-{env}/operator"]
    return logical_id, groups[logical_id]["Properties"]


def task_role_statements(synthesized, env, prefix):
    policies = synthesized.resources(env, "Compute", "AWS::IAM::Policy")
    (policy,) = [p for i, p in policies.items() if i.startswith(prefix) and "TaskRole" in i]
    return policy["Properties"]["PolicyDocument"]["Statement"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_celery_service_has_ecs_exec_logged_to_the_encrypted_operator_log_group(synthesized, env):
    services = synthesized.resources(env, "Compute", "AWS::ECS::Service")
    assert services and all(s["Properties"]["EnableExecuteCommand"] is True for s in services.values())
    log_group_id, log_group = operator_log_group(synthesized, env)
    assert "PublishOutputFnGetAttLogsKey" in json.dumps(log_group["KmsKeyId"])  # the tier's logs key
    cluster = synthesized.only(env, "Compute", "AWS::ECS::Cluster")["Properties"]
    assert cluster["Configuration"]["ExecuteCommandConfiguration"] == {
        "Logging": "OVERRIDE",
        "LogConfiguration": {"CloudWatchEncryptionEnabled": True, "CloudWatchLogGroupName": {"Ref": log_group_id}},
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_ecs_exec_permissions_are_the_session_channels_and_the_operator_log_group(synthesized, env):
    log_group_id, _ = operator_log_group(synthesized, env)
    for prefix in ["BeatCelery", "Toolbox", *(f"Worker{c}Celery" for c in ("interactive", "default", "batch"))]:
        exec_statements = [s for s in task_role_statements(synthesized, env, prefix) if is_ecs_exec(s)]
        unscoped = {
            a
            for s in exec_statements
            if s["Resource"] == "*"
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        }
        # ssmmessages and DescribeLogGroups have no resource-level permissions; nothing else is unscoped
        assert unscoped == SESSION_ACTIONS | {"logs:DescribeLogGroups"}, prefix
        writes = [s for s in exec_statements if s["Resource"] != "*"]
        assert len(writes) == 1 and log_group_id in json.dumps(writes[0]["Resource"]), prefix
        assert set(writes[0]["Action"]) == {"logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_toolbox_has_redis_cli_the_token_from_its_secret_and_nothing_else(synthesized, env):
    tasks = synthesized.resources(env, "Compute", "AWS::ECS::TaskDefinition")
    (toolbox,) = [
        t["Properties"] for t in tasks.values() if t["Properties"]["ContainerDefinitions"][0]["Name"] == "toolbox"
    ]
    container = toolbox["ContainerDefinitions"][0]
    assert container["Image"] == TOOLBOX_IMAGE and container["Command"] == ["sleep", "3600"]
    assert [s["Name"] for s in container["Secrets"]] == ["REDISCLI_AUTH"]
    assert "CacheAuthToken" in json.dumps(container["Secrets"][0]["ValueFrom"])
    assert {e["Name"] for e in container["Environment"]} == {"BROKER_TIER_REDIS_HOST", "BROKER_TIER_REDIS_PORT"}
    log_group_id, _ = operator_log_group(synthesized, env)
    assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": log_group_id}
    # no SQS, no KMS, nothing but ECS Exec on the toolbox's task role
    statements = task_role_statements(synthesized, env, "Toolbox")
    assert statements and all(is_ecs_exec(s) for s in statements)
    rules = synthesized.resources(env, "Compute", "AWS::EC2::SecurityGroupIngress")
    toolbox_rules = [
        r["Properties"]
        for r in rules.values()
        if "ToolboxSecurityGroup" in json.dumps(r["Properties"]["SourceSecurityGroupId"])
    ]
    assert len(toolbox_rules) == 1 and toolbox_rules[0]["FromPort"] == 6380
    outputs = synthesized.json(env, "Compute")["Outputs"]
    assert {"ToolboxTaskDefinitionArn", "ToolboxSecurityGroupId", "ToolboxSubnetIds", "OperatorLogGroupName"} <= set(
        outputs
    )

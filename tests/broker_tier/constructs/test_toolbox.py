"""Toolbox on a bare stack: a task definition with a TLS redis-cli, the endpoint as variables and the AUTH token
as an ECS secret, a task role that can open ECS Exec sessions and log them and nothing else, and a security
group without ingress (as synthesized in every environment: tests/broker_tier/constructs/test_operator_access.py)."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from bare_stack import BareApp
from deployment import REGION
from policy_evaluator import Request, evaluate

import broker_tier_contract as contract
from broker_tier.constructs.celery_service import CeleryServiceSettings
from broker_tier.constructs.toolbox import ECS_EXEC_SESSION_ACTIONS, TOOLBOX_IMAGE, Toolbox

REDIS_HOST = "master.team-cache.abc123.euw1.cache.amazonaws.com"


@pytest.fixture(scope="module")
def bare() -> BareApp:
    app = BareApp()
    stack = app.stack("Toolbox")
    vpc = ec2.Vpc.from_vpc_attributes(
        stack, "Vpc", vpc_id="vpc-0123456789", availability_zones=["za", "zb"], private_subnet_ids=["s-a", "s-b"]
    )
    token = secretsmanager.Secret(stack, "AuthToken", secret_name="team/auth-token")
    key = kms.Key(stack, "DataKey")
    log_group = logs.LogGroup(stack, "OperatorLogs", log_group_name="/team/operator")
    settings = CeleryServiceSettings(
        environment_name="team",
        cluster=ecs.Cluster(stack, "Cluster", vpc=vpc),
        image=ecs.ContainerImage.from_registry("example/worker:1"),
        celery_app="team.app",
        cpu_architecture=ecs.CpuArchitecture.ARM64,
        environment={"BROKER_TIER_BROKER": "sqs"},
        secrets={contract.ContainerEnvironment.REDIS_AUTH_TOKEN.name: ecs.Secret.from_secrets_manager(token)},
        secrets_key=key,
        log_retention_days=7,
        logs_key=kms.Key(stack, "LogsKey"),
        removal_policy=cdk.RemovalPolicy.DESTROY,
        stop_timeout_seconds=60,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        operator_log_group=log_group,
    )
    toolbox = Toolbox(stack, "Toolbox", settings=settings, log_group=log_group, redis_host=REDIS_HOST, redis_port=6390)
    task_definition = toolbox.task_definition
    app.built["Toolbox"] = {
        "task_definition": app.logical_id(task_definition),
        "task_role": app.logical_id(task_definition.task_role),
        "execution_role": app.logical_id(task_definition.obtain_execution_role()),
        "security_group": app.logical_id(toolbox.security_group),
        "secret": app.logical_id(token),
        "key": app.logical_id(key),
        "log_group": app.logical_id(log_group),
    }
    return app.synthesize()


def resource(bare: BareApp, name: str) -> dict:
    return bare.templates["Toolbox"]["Resources"][bare.built["Toolbox"][name]]


def role_policy(bare: BareApp, role: str) -> dict:
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in bare.resources("Toolbox", "AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": bare.built["Toolbox"][role]}]
    ]
    return bare.resolve("Toolbox", policy)


def test_one_small_task_of_redis_cli_with_the_endpoint_and_the_token_from_its_secret(bare):
    props = resource(bare, "task_definition")["Properties"]
    assert (props["Cpu"], props["Memory"]) == ("256", "512")
    assert props["RuntimePlatform"] == {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"}
    (container,) = props["ContainerDefinitions"]
    assert container["Name"] == contract.TOOLBOX_CONTAINER and container["Image"] == TOOLBOX_IMAGE
    assert container["Command"] == ["sleep", str(contract.TOOLBOX_LIFETIME_SECONDS)]
    assert container["Environment"] == [
        {"Name": contract.ContainerEnvironment.REDIS_HOST.name, "Value": REDIS_HOST},
        {"Name": contract.ContainerEnvironment.REDIS_PORT.name, "Value": "6390"},
    ]
    assert container["Secrets"] == [
        {"Name": contract.ToolboxEnvironment.REDIS_CLI_AUTH.name, "ValueFrom": {"Ref": bare.built["Toolbox"]["secret"]}}
    ]
    assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": bare.built["Toolbox"]["log_group"]}
    assert container["LogConfiguration"]["Options"]["awslogs-stream-prefix"] == contract.TOOLBOX_CONTAINER
    assert container["ReadonlyRootFilesystem"] is False  # redis-cli's history file
    tags = {tag["Key"]: tag["Value"] for tag in props["Tags"]}
    assert tags == {"Purpose": "operator-toolbox"}


def test_the_task_role_opens_ecs_exec_sessions_and_logs_them_to_the_operator_log_group_only(bare):
    log_group_arn = bare.deployment().attribute("Toolbox", bare.built["Toolbox"]["log_group"], "Arn")
    assert role_policy(bare, "task_role")["Statement"] == [
        {"Sid": "EcsExecSession", "Effect": "Allow", "Action": ECS_EXEC_SESSION_ACTIONS, "Resource": "*"},
        {"Sid": "EcsExecFindLogGroup", "Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"},
        {
            "Sid": "EcsExecSessionLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            "Resource": log_group_arn,
        },
    ]


@pytest.mark.parametrize(
    "action,resource",
    [
        ("sqs:ReceiveMessage", "arn:aws:sqs:eu-west-1:123456789012:team-default"),
        ("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team-AbCdEf"),
        ("kms:Decrypt", "arn:aws:kms:eu-west-1:123456789012:key/1"),
        ("logs:PutLogEvents", "arn:aws:logs:eu-west-1:123456789012:log-group:/team/other:*"),
        ("elasticache:TestFailover", "*"),
    ],
)
def test_the_task_role_may_do_nothing_else(bare, action, resource):
    request = Request({"AWS": "arn:aws:iam::123456789012:role/toolbox"}, action, resource)
    assert evaluate(role_policy(bare, "task_role"), request).outcome == "implicit deny"


def test_the_execution_role_decrypts_the_injected_token_only_through_secrets_manager(bare):
    statements = role_policy(bare, "execution_role")["Statement"]
    key_arn = bare.deployment().attribute("Toolbox", bare.built["Toolbox"]["key"], "Arn")
    (decrypt,) = [s for s in statements if s.get("Sid") == "DecryptInjectedSecrets"]
    assert decrypt == {
        "Sid": "DecryptInjectedSecrets",
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": key_arn,
        "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}},
    }


def test_the_security_group_admits_nothing(bare):
    props = resource(bare, "security_group")["Properties"]
    assert "SecurityGroupIngress" not in props
    assert props["SecurityGroupEgress"] == [
        {"CidrIp": "0.0.0.0/0", "Description": "Allow all outbound traffic by default", "IpProtocol": "-1"}
    ]
    assert bare.count("Toolbox", "AWS::EC2::SecurityGroupIngress") == 0

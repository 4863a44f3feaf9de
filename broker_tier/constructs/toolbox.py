"""The operators' toolbox: a one-off Fargate task with a TLS ``redis-cli`` and the AUTH token, reached by ECS Exec."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

import broker_tier_contract as contract
from broker_tier.constructs.celery_service import CeleryServiceSettings, acknowledge_ecs_exec, allow_secret_injection
from broker_tier.nag import acknowledge

TOOLBOX_IMAGE = "public.ecr.aws/docker/library/redis:7.2"
"""The official Redis image on ECR Public: ``redis-cli`` built with TLS. 7.2, the last BSD-licensed line;
its ``redis-cli`` speaks to Valkey 7 and 8 too."""
ECS_EXEC_SESSION_ACTIONS = [
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
]


class Toolbox(Construct):
    """A task definition (not a service): ``broker-tier-ops toolbox`` runs one task of it with ECS Exec on,
    and an operator opens ``redis-cli`` in it with ``aws ecs execute-command``.

    The container gets the primary endpoint and port as variables and the AUTH token, from its secret,
    as ``REDISCLI_AUTH``. No SQS or other AWS permission: queues are reached from the operator's laptop
    with the AWS CLI.

    Attributes:
        task_definition, security_group (grant it Redis access).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: CeleryServiceSettings,
        log_group: logs.ILogGroup,
        redis_host: str,
        redis_port: int,
    ) -> None:
        """
        :param settings: what the environment's Celery services share (VPC, subnets, the AUTH-token secret
            and its key, architecture).
        :param log_group: the operator log group (container output; ECS Exec sessions log there too).
        :param redis_host: the replication group's primary endpoint.
        :param redis_port: its port.
        """
        super().__init__(scope, construct_id)
        variables = contract.ContainerEnvironment
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=256,
            memory_limit_mib=512,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=settings.cpu_architecture, operating_system_family=ecs.OperatingSystemFamily.LINUX
            ),
        )
        self.task_definition.add_container(
            contract.TOOLBOX_CONTAINER,
            image=ecs.ContainerImage.from_registry(TOOLBOX_IMAGE),
            command=["sleep", str(contract.TOOLBOX_LIFETIME_SECONDS)],
            environment={variables.REDIS_HOST.name: redis_host, variables.REDIS_PORT.name: str(redis_port)},
            secrets={
                contract.ToolboxEnvironment.REDIS_CLI_AUTH.name: settings.secrets[variables.REDIS_AUTH_TOKEN.name]
            },
            logging=ecs.LogDrivers.aws_logs(stream_prefix=contract.TOOLBOX_CONTAINER, log_group=log_group),
            readonly_root_filesystem=False,
        )  # redis-cli keeps its history file in the home directory
        allow_secret_injection(self.task_definition, settings.secrets_key)
        acknowledge(
            self.task_definition,
            "ECS2",
            "The environment holds only the Redis endpoint and port; the AUTH token is an ECS secret.",
        )
        task_role = self.task_definition.task_role
        # ECS Exec into a standalone task: CDK grants this only to services with enable_execute_command.
        task_role.add_to_principal_policy(
            iam.PolicyStatement(sid="EcsExecSession", actions=ECS_EXEC_SESSION_ACTIONS, resources=["*"])
        )
        task_role.add_to_principal_policy(
            iam.PolicyStatement(sid="EcsExecFindLogGroup", actions=["logs:DescribeLogGroups"], resources=["*"])
        )
        task_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="EcsExecSessionLogs",
                actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )  # the group's ARN ends in ":*": its streams
        acknowledge_ecs_exec(task_role, log_group)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=settings.cluster.vpc,
            allow_all_outbound=True,
            description=f"{construct_id}: the operators redis-cli; egress to Redis and the SSM endpoints; no ingress",
        )
        cdk.Tags.of(self.task_definition).add("Purpose", "operator-toolbox")

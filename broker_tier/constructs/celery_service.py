"""One Celery process type (a worker class or Beat) as an ECS Fargate service."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

import broker_tier_contract as contract
from broker_tier.constructs.log_group import tier_log_group
from broker_tier.nag import acknowledge, acknowledge_wildcard_resource


@dataclass(frozen=True, kw_only=True)
class CeleryServiceSettings:
    """What every Celery service of one environment shares (the Compute stack builds it once)."""

    environment_name: str
    """The tier environment (log group names)."""
    cluster: ecs.ICluster
    """The ECS cluster; its VPC hosts the services."""
    image: ecs.ContainerImage
    """The container image (the reference worker, or a team's image)."""
    celery_app: str
    """What ``celery -A`` loads."""
    cpu_architecture: ecs.CpuArchitecture
    """CPU architecture of the tasks."""
    environment: Mapping[str, str]
    """Non-secret settings every container gets (``broker_tier_contract.ContainerEnvironment`` names)."""
    secrets: Mapping[str, ecs.Secret]
    """Secret settings, injected by ECS from Secrets Manager (the AUTH token)."""
    secrets_key: kms.IKey
    """KMS key of those secrets; the execution role may decrypt with it only through Secrets Manager."""
    log_retention_days: int
    """Retention of each service's log group."""
    logs_key: kms.IKey
    """Encrypts each service's log group (the State stack's logs key)."""
    removal_policy: cdk.RemovalPolicy
    """What stack deletion does to the log groups."""
    stop_timeout_seconds: int
    """SIGTERM to SIGKILL (Fargate: at most 120)."""
    subnets: ec2.SubnetSelection
    """Where the tasks run (private subnets with egress)."""
    operator_log_group: logs.ILogGroup
    """Where ECS Exec sessions are logged (the cluster's execute-command configuration names it)."""


def allow_secret_injection(task_definition: ecs.TaskDefinition, secrets_key: kms.IKey) -> iam.IRole:
    """Lets the execution role decrypt the injected secrets with their key, only through Secrets Manager."""
    execution_role = task_definition.obtain_execution_role()
    execution_role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="DecryptInjectedSecrets",
            actions=["kms:Decrypt"],
            resources=[secrets_key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{cdk.Aws.REGION}.amazonaws.com"}},
        )
    )
    return execution_role


def allow_queue_encryption(role: iam.IRole, key: kms.IKey) -> None:
    """Lets a producer or consumer of the SSE-KMS queues use their key, only through SQS: a producer
    needs GenerateDataKey and Decrypt both (Amazon SQS Developer Guide, "Amazon SQS Key management"),
    and the ``kms:ViaService`` condition keeps the role from using the same key on the tier's other data
    (the AUTH secret, the cache at rest, the alarm topic)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="QueueEncryption",
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=[key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"sqs.{cdk.Aws.REGION}.amazonaws.com"}},
        )
    )


ECS_EXEC_WILDCARD_REASON = (
    "ECS Exec: ssmmessages:CreateControlChannel, CreateDataChannel, OpenControlChannel and OpenDataChannel, and "
    "logs:DescribeLogGroups (the session logger looks its log group up) have no resource-level permissions "
    "(the Service Authorization Reference lists no resource type for them: Resource must be '*'). Writing "
    "session logs is limited to the operator log group."
)


def acknowledge_ecs_exec(task_role: iam.IRole, log_group: logs.ILogGroup) -> None:
    """Acknowledge the wildcards ECS Exec needs on a task role, with the reason: the unscoped actions, and
    the streams of the session log group (named as they are created)."""
    acknowledge(task_role, "IAM5[Resource::*]", ECS_EXEC_WILDCARD_REASON)
    # the ARN CDK grants ECS Exec's session logging on (aws-ecs' execute-command log configuration)
    session_streams = cdk.Stack.of(log_group).format_arn(
        service="logs",
        resource="log-group",
        resource_name=f"{log_group.log_group_name}:*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
    acknowledge_wildcard_resource(
        task_role,
        session_streams,
        "ECS Exec writes each session to a new log stream of the operator log group; the streams are "
        "named when a session starts, so the statement names the group's streams, not one stream.",
    )


@dataclass(frozen=True, kw_only=True)
class ProcessSpec:
    """One process type's own part: its name, command line, size, extra variables and deployment limits."""

    process: str
    """``worker-<class>`` or ``beat``: names its log group."""
    command: list[str]
    """The Celery command line."""
    health_check_process: str
    """What the container health check checks (``python -m broker_tier_celery.health <it>``): ``worker`` or
    ``beat``."""
    cpu: int
    """Fargate CPU units."""
    memory_mib: int
    """Memory, a size Fargate offers for ``cpu`` (validated by the configuration model)."""
    desired_count: int | None
    """Tasks to run; None leaves it to autoscaling."""
    min_healthy_percent: int
    """Deployment lower limit."""
    max_healthy_percent: int
    """Deployment upper limit."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Variables of this process only, added to the shared ones. Default: none."""
    capacity_provider_strategies: tuple[ecs.CapacityProviderStrategy, ...] = ()
    """Where the tasks run, as a capacity-provider strategy (the cluster must have the providers); empty
    runs them with the FARGATE launch type. Default: empty (Beat, which never runs on Spot)."""


def container_health_check(process: str) -> ecs.HealthCheck:
    """ECS replaces a task whose worker stopped consuming or whose Beat stopped ticking: the heartbeat file's age,
    with the contract's timing (docs/decisions/container-health-checks.md)."""
    return ecs.HealthCheck(
        command=contract.health_check_command(process),
        interval=cdk.Duration.seconds(contract.HEALTH_CHECK_INTERVAL_SECONDS),
        timeout=cdk.Duration.seconds(contract.HEALTH_CHECK_TIMEOUT_SECONDS),
        retries=contract.HEALTH_CHECK_RETRIES,
        start_period=cdk.Duration.seconds(contract.HEALTH_CHECK_START_PERIOD_SECONDS),
    )


class CeleryFargateService(Construct):
    """A Fargate task definition, container and service running one Celery command.

    Logs go to a named log group; the container health check runs the settings package's heartbeat check;
    deployments roll back on the circuit breaker; ``stop_timeout``
    gives Celery's soft shutdown time to hand unfinished messages back before SIGKILL. The AUTH
    token arrives only through ``secrets`` (ECS injects it; it is never a plain variable).

    Attributes:
        service: the Fargate service.
        task_definition: its task definition (``task_role`` for grants).
        container: the Celery container.
        security_group: the service's security group (grant it Redis access).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: CeleryServiceSettings, spec: ProcessSpec
    ) -> None:
        """
        :param settings: what the environment's Celery services share.
        :param spec: this process type's command, size and deployment limits.
        """
        super().__init__(scope, construct_id)
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=spec.cpu,
            memory_limit_mib=spec.memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=settings.cpu_architecture, operating_system_family=ecs.OperatingSystemFamily.LINUX
            ),
        )
        log_group = tier_log_group(
            self,
            "Logs",
            log_group_name=contract.service_log_group_name(settings.environment_name, spec.process),
            retention_days=settings.log_retention_days,
            removal_policy=settings.removal_policy,
            encryption_key=settings.logs_key,
        )
        self.container = self.task_definition.add_container(
            "celery",
            image=settings.image,
            command=spec.command,
            environment={**settings.environment, **spec.environment},
            secrets=dict(settings.secrets),
            logging=ecs.LogDrivers.aws_logs(stream_prefix="celery", log_group=log_group),
            stop_timeout=cdk.Duration.seconds(settings.stop_timeout_seconds),
            readonly_root_filesystem=False,
            health_check=container_health_check(spec.health_check_process),
        )
        acknowledge(
            self.task_definition,
            "ECS2",
            "The environment holds only non-secret settings the stack owns (queue URLs, Redis "
            "endpoint and port, DB numbers, limits); the AUTH token is an ECS secret.",
        )
        execution_role = allow_secret_injection(self.task_definition, settings.secrets_key)
        acknowledge(
            execution_role,
            "IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource-level permissions (Resource must be '*'); the "
            "execution role needs it to pull the image. Every other statement names its resources.",
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=settings.cluster.vpc,
            allow_all_outbound=True,
            description=f"{construct_id}: egress to SQS, Redis and AWS APIs; no ingress",
        )
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=settings.cluster,
            task_definition=self.task_definition,
            desired_count=spec.desired_count,
            capacity_provider_strategies=list(spec.capacity_provider_strategies) or None,
            min_healthy_percent=spec.min_healthy_percent,
            max_healthy_percent=spec.max_healthy_percent,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            security_groups=[self.security_group],
            vpc_subnets=settings.subnets,
            assign_public_ip=False,
            # ECS Exec: the operators' way in (sessions logged to the cluster's encrypted operator log group)
            enable_execute_command=True,
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
        )
        acknowledge_ecs_exec(self.task_definition.task_role, settings.operator_log_group)

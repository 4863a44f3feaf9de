"""One Celery process type (a worker class or Beat) as an ECS Fargate service."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2, aws_ecs as ecs, aws_iam as iam, aws_kms as kms
from constructs import Construct

from broker_tier.constructs.log_group import tier_log_group
from broker_tier.nag import acknowledge


class CeleryFargateService(Construct):
    """A Fargate task definition, container and service running one Celery command.

    Logs go to a named log group; deployments roll back on the circuit breaker; ``stop_timeout``
    gives Celery's soft shutdown time to hand unfinished messages back before SIGKILL. The AUTH
    token arrives only through ``secrets`` (ECS injects it; it is never a plain variable).

    Attributes:
        service: the Fargate service.
        task_definition: its task definition (``task_role`` for grants).
        security_group: the service's security group (grant it Redis access).
    """

    def __init__(self, scope: Construct, construct_id: str, *, cluster: ecs.ICluster, image: ecs.ContainerImage,
                 command: list[str], cpu: int, memory_mib: int, cpu_architecture: ecs.CpuArchitecture,
                 environment: dict[str, str], secrets: dict[str, ecs.Secret], secrets_key: kms.IKey,
                 log_group_name: str,
                 log_retention_days: int, removal_policy: cdk.RemovalPolicy, stop_timeout_seconds: int,
                 desired_count: int | None, min_healthy_percent: int, max_healthy_percent: int,
                 subnets: ec2.SubnetSelection) -> None:
        """
        :param cluster: the ECS cluster (its VPC hosts the service).
        :param image: container image; ``command`` is the Celery command line.
        :param cpu: Fargate CPU units; ``memory_mib`` a size Fargate offers for it (validated).
        :param environment: non-secret settings for the container (endpoints, queue URLs, limits).
        :param secrets: secret settings, injected by ECS from Secrets Manager.
        :param secrets_key: the KMS key of those secrets (the execution role may decrypt with it only
            through Secrets Manager).
        :param log_group_name: explicit log group name; ``log_retention_days`` its retention.
        :param stop_timeout_seconds: SIGTERM to SIGKILL (Fargate: at most 120).
        :param desired_count: tasks to run; None leaves it to autoscaling.
        :param min_healthy_percent: / ``max_healthy_percent``: deployment limits.
        :param subnets: where the tasks run (private subnets with egress).
        """
        super().__init__(scope, construct_id)
        self.task_definition = ecs.FargateTaskDefinition(
            self, "TaskDefinition", cpu=cpu, memory_limit_mib=memory_mib,
            runtime_platform=ecs.RuntimePlatform(cpu_architecture=cpu_architecture,
                                                 operating_system_family=ecs.OperatingSystemFamily.LINUX))
        log_group = tier_log_group(self, "Logs", log_group_name=log_group_name, retention_days=log_retention_days,
                                   removal_policy=removal_policy)
        self.container = self.task_definition.add_container(
            "celery", image=image, command=command, environment=environment, secrets=secrets,
            logging=ecs.LogDrivers.aws_logs(stream_prefix="celery", log_group=log_group),
            stop_timeout=cdk.Duration.seconds(stop_timeout_seconds), readonly_root_filesystem=False)
        acknowledge(self.task_definition, "ECS2",
                    "The environment holds only non-secret settings the stack owns (queue URLs, Redis "
                    "endpoint and port, DB numbers, limits); the AUTH token is an ECS secret.")
        execution_role = self.task_definition.obtain_execution_role()
        execution_role.add_to_principal_policy(iam.PolicyStatement(
            sid="DecryptInjectedSecrets", actions=["kms:Decrypt"], resources=[secrets_key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{cdk.Aws.REGION}.amazonaws.com"}}))
        acknowledge(execution_role, "IAM5[Resource::*]",
                    "ecr:GetAuthorizationToken has no resource-level permissions (Resource must be '*'); the "
                    "execution role needs it to pull the image. Every other statement names its resources.")
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=cluster.vpc, allow_all_outbound=True,
            description=f"{construct_id}: egress to SQS, Redis and AWS APIs; no ingress")
        self.service = ecs.FargateService(
            self, "Service", cluster=cluster, task_definition=self.task_definition, desired_count=desired_count,
            min_healthy_percent=min_healthy_percent, max_healthy_percent=max_healthy_percent,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            security_groups=[self.security_group], vpc_subnets=subnets, assign_public_ip=False,
            enable_execute_command=False, propagate_tags=ecs.PropagatedTagSource.SERVICE)

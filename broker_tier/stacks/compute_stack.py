"""The compute half of the tier: the ECS cluster, one worker service per queue class, one Beat."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

import broker_tier_contract as contract
from broker_tier.config import ComputeConfig, EnvironmentConfig
from broker_tier.config.services import FARGATE, FARGATE_SPOT
from broker_tier.constructs.beat_service import BeatService
from broker_tier.constructs.celery_service import CeleryServiceSettings
from broker_tier.constructs.log_group import tier_log_group
from broker_tier.constructs.toolbox import Toolbox
from broker_tier.constructs.worker_service import WorkerService
from broker_tier.stacks.base import TierStack
from broker_tier.stacks.state_stack import REMOVAL, BrokerStateStack

REFERENCE_WORKER_DIR = Path(__file__).resolve().parents[2] / "worker"
_ARCHITECTURE = {
    "X86_64": (ecs.CpuArchitecture.X86_64, ecr_assets.Platform.LINUX_AMD64),
    "ARM64": (ecs.CpuArchitecture.ARM64, ecr_assets.Platform.LINUX_ARM64),
}


class BrokerComputeStack(TierStack):
    """ECS cluster (Container Insights), a worker service per class, and exactly one Beat.

    Outputs: ``ClusterName``, ``BeatServiceName``, ``Broker``, ``WorkerService<Class>Name``.

    Attributes:
        cluster, capacity_providers (its FARGATE and FARGATE_SPOT association), workers (WorkerService by class),
        beat (BeatService).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, state: BrokerStateStack, **kwargs
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            config=config,
            description=f"broker-tier {config.name}: Celery workers and Beat on ECS Fargate",
            **kwargs,
        )
        compute = config.compute
        removal = REMOVAL[config.removal_policy]
        # The operators' way in: ECS Exec sessions and the toolbox's output, encrypted like every log group
        # of the tier with the State stack's logs key.
        self.operator_logs = tier_log_group(
            self,
            "OperatorLogs",
            log_group_name=contract.operator_log_group_name(config.name),
            retention_days=compute.log_retention_days,
            removal_policy=removal,
            encryption_key=state.logs_key,
        )
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=state.network.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
            execute_command_configuration=ecs.ExecuteCommandConfiguration(
                logging=ecs.ExecuteCommandLogging.OVERRIDE,
                log_configuration=ecs.ExecuteCommandLogConfiguration(
                    cloud_watch_log_group=self.operator_logs, cloud_watch_encryption_enabled=True
                ),
            ),
        )
        # FARGATE and FARGATE_SPOT for the workers' capacity-provider strategies, associated explicitly so that the
        # services can depend on it; no default strategy: Beat and the toolbox keep the FARGATE launch type
        # (docs/decisions/fargate-spot-per-class.md).
        self.capacity_providers = ecs.CfnClusterCapacityProviderAssociations(
            self,
            "CapacityProviders",
            cluster=self.cluster.cluster_name,
            capacity_providers=[FARGATE, FARGATE_SPOT],
            default_capacity_provider_strategy=[],
        )
        cpu_architecture, platform = _ARCHITECTURE[compute.cpu_architecture]
        uses_sqs = compute.broker == "sqs"
        work_queues: list[sqs.IQueue] = [queues.queue for queues in state.queues.values()]
        cache = state.cache
        variables = contract.ContainerEnvironment
        # By ARN: granting the State stack's secret directly would add these roles to the State stack's
        # key policy, a dependency cycle. The key grant is explicit instead (see CeleryFargateService).
        auth_token = secretsmanager.Secret.from_secret_complete_arn(
            self, "AuthToken", cache.auth_token_secret.secret_arn
        )
        # the claim check, if on (sqs broker mode only: the configuration refuses it with the Redis broker)
        payload_bucket = state.claim_check if config.claim_check.enabled else None
        claim_check_variables = (
            {
                variables.CLAIM_CHECK_BUCKET.name: payload_bucket.bucket_name,
                variables.CLAIM_CHECK_THRESHOLD.name: str(config.claim_check.threshold_bytes),
            }
            if payload_bucket
            else {}
        )
        settings = CeleryServiceSettings(
            environment_name=config.name,
            cluster=self.cluster,
            image=self._image(compute, platform),
            celery_app=compute.celery_app,
            cpu_architecture=cpu_architecture,
            environment={
                variables.BROKER.name: compute.broker,
                variables.ENVIRONMENT.name: config.name,
                variables.REGION.name: cdk.Aws.REGION,
                variables.QUEUE_URLS.name: self.to_json_string(
                    {name: q.queue.queue_url for name, q in state.queues.items()}
                ),
                variables.REDIS_HOST.name: cache.primary_endpoint_address,
                variables.REDIS_PORT.name: str(cache.port),
                variables.REDIS_TLS.name: "true",
                variables.REDIS_DB_RESULTS.name: str(cache.databases.results),
                variables.REDIS_DB_BROKER.name: str(cache.databases.broker),
                variables.RESULT_EXPIRES.name: str(compute.result_expires_seconds),
                variables.SOFT_SHUTDOWN_TIMEOUT.name: str(contract.soft_shutdown_seconds(compute.stop_timeout_seconds)),
                variables.REMAP_SIGTERM.name: "SIGQUIT",  # SIGTERM from ECS starts Celery's soft shutdown (5.5+)
                **claim_check_variables,
            },
            secrets={variables.REDIS_AUTH_TOKEN.name: ecs.Secret.from_secrets_manager(auth_token)},
            secrets_key=state.encryption_key,
            log_retention_days=compute.log_retention_days,
            logs_key=state.logs_key,
            removal_policy=removal,
            stop_timeout_seconds=compute.stop_timeout_seconds,
            subnets=state.network.private_subnets,
            operator_log_group=self.operator_logs,
        )

        self.workers: dict[str, WorkerService] = {
            name: WorkerService(
                self,
                f"Worker-{name}",
                class_name=name,
                class_config=config.queues[name],
                settings=settings,
                queue=queues.queue,
                publish_queues=work_queues,
                encryption_key=state.encryption_key,
                uses_sqs_broker=uses_sqs,
                capacity_providers=self.capacity_providers,
                payload_bucket=payload_bucket,
            )
            for name, queues in state.queues.items()
        }
        self.beat = BeatService(
            self,
            "Beat",
            config=compute.beat,
            settings=settings,
            publish_queues=work_queues,
            encryption_key=state.encryption_key,
            uses_sqs_broker=uses_sqs,
            payload_bucket=payload_bucket,
        )

        self.toolbox = Toolbox(
            self,
            "Toolbox",
            settings=settings,
            log_group=self.operator_logs,
            redis_host=cache.primary_endpoint_address,
            redis_port=cache.port,
        )

        for name, worker in self.workers.items():
            cache.allow_connections_from(
                worker.service.security_group, scope=worker, description=f"Celery workers ({name})"
            )
        cache.allow_connections_from(self.beat.service.security_group, scope=self.beat, description="Celery Beat")
        cache.allow_connections_from(
            self.toolbox.security_group, scope=self.toolbox, description="operators' toolbox (redis-cli)"
        )

        outputs = contract.ComputeOutputs
        cdk.CfnOutput(self, outputs.CLUSTER_NAME, value=self.cluster.cluster_name)
        cdk.CfnOutput(self, outputs.BEAT_SERVICE_NAME, value=self.beat.service.service.service_name)
        cdk.CfnOutput(self, outputs.BROKER, value=compute.broker)  # the failover drill's canary needs it
        for name, worker in self.workers.items():
            cdk.CfnOutput(self, contract.worker_service_output_id(name), value=worker.service.service.service_name)
        cdk.CfnOutput(self, outputs.TOOLBOX_TASK_DEFINITION_ARN, value=self.toolbox.task_definition.task_definition_arn)
        cdk.CfnOutput(self, outputs.TOOLBOX_SECURITY_GROUP_ID, value=self.toolbox.security_group.security_group_id)
        toolbox_subnets = state.network.vpc.select_subnets(subnet_type=state.network.private_subnets.subnet_type)
        cdk.CfnOutput(self, outputs.TOOLBOX_SUBNET_IDS, value=cdk.Fn.join(",", toolbox_subnets.subnet_ids))
        cdk.CfnOutput(self, outputs.OPERATOR_LOG_GROUP_NAME, value=self.operator_logs.log_group_name)

    def _image(self, compute: ComputeConfig, platform: ecr_assets.Platform) -> ecs.ContainerImage:
        if compute.image is None:
            return ecs.ContainerImage.from_asset(str(REFERENCE_WORKER_DIR), platform=platform)
        repository = ecr.Repository.from_repository_name(self, "ImageRepository", compute.image.repository_name)
        return ecs.ContainerImage.from_ecr_repository(repository, compute.image.digest or compute.image.tag)

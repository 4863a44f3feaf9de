"""The compute half of the tier: the ECS cluster, one worker service per queue class, one Beat."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import broker_tier_contract as contract
from aws_cdk import aws_ecr as ecr, aws_ecr_assets as ecr_assets, aws_ecs as ecs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from broker_tier.config import ComputeConfig, EnvironmentConfig
from broker_tier.constructs.beat_service import BeatService
from broker_tier.constructs.celery_service import CeleryServiceSettings
from broker_tier.constructs.worker_service import WorkerService
from broker_tier.stacks.base import TierStack
from broker_tier.stacks.state_stack import REMOVAL, BrokerStateStack

REFERENCE_WORKER_DIR = Path(__file__).resolve().parents[2] / "worker"
_ARCHITECTURE = {"X86_64": (ecs.CpuArchitecture.X86_64, ecr_assets.Platform.LINUX_AMD64),
                 "ARM64": (ecs.CpuArchitecture.ARM64, ecr_assets.Platform.LINUX_ARM64)}


class BrokerComputeStack(TierStack):
    """ECS cluster (Container Insights), a worker service per class, and exactly one Beat.

    Outputs: ``ClusterName``, ``BeatServiceName``, ``Broker``, ``WorkerService<Class>Name``.

    Attributes:
        cluster, workers (WorkerService by class), beat (BeatService).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 state: BrokerStateStack, **kwargs) -> None:
        super().__init__(scope, construct_id, config=config,
                         description=f"broker-tier {config.name}: Celery workers and Beat on ECS Fargate", **kwargs)
        compute = config.compute
        self.cluster = ecs.Cluster(self, "Cluster", vpc=state.network.vpc,
                                   container_insights_v2=ecs.ContainerInsights.ENABLED)
        cpu_architecture, platform = _ARCHITECTURE[compute.cpu_architecture]
        uses_sqs = compute.broker == "sqs"
        work_queues = [queues.queue for queues in state.queues.values()]
        cache = state.cache
        variables = contract.ContainerEnvironment
        # By ARN: granting the State stack's secret directly would add these roles to the State stack's
        # key policy, a dependency cycle. The key grant is explicit instead (see CeleryFargateService).
        auth_token = secretsmanager.Secret.from_secret_complete_arn(self, "AuthToken", cache.auth_token_secret.secret_arn)
        settings = CeleryServiceSettings(
            environment_name=config.name, cluster=self.cluster, image=self._image(compute, platform),
            celery_app=compute.celery_app, cpu_architecture=cpu_architecture,
            environment={
                variables.BROKER.name: compute.broker,
                variables.REGION.name: cdk.Aws.REGION,
                variables.QUEUE_URLS.name: self.to_json_string(
                    {name: q.queue.queue_url for name, q in state.queues.items()}),
                variables.REDIS_HOST.name: cache.primary_endpoint_address,
                variables.REDIS_PORT.name: str(cache.port),
                variables.REDIS_TLS.name: "true",
                variables.REDIS_DB_RESULTS.name: str(cache.databases.results),
                variables.REDIS_DB_BROKER.name: str(cache.databases.broker),
                variables.RESULT_EXPIRES.name: str(compute.result_expires_seconds),
                variables.SOFT_SHUTDOWN_TIMEOUT.name: str(contract.soft_shutdown_seconds(compute.stop_timeout_seconds)),
                variables.REMAP_SIGTERM.name: "SIGQUIT",  # SIGTERM from ECS starts Celery's soft shutdown (5.5+)
            },
            secrets={variables.REDIS_AUTH_TOKEN.name: ecs.Secret.from_secrets_manager(auth_token)},
            secrets_key=state.encryption_key, log_retention_days=compute.log_retention_days, logs_key=state.logs_key,
            removal_policy=REMOVAL[config.removal_policy], stop_timeout_seconds=compute.stop_timeout_seconds,
            subnets=state.network.private_subnets)

        self.workers: dict[str, WorkerService] = {
            name: WorkerService(self, f"Worker-{name}", class_name=name, class_config=config.queues[name],
                                settings=settings, queue=queues.queue, publish_queues=work_queues,
                                encryption_key=state.encryption_key, uses_sqs_broker=uses_sqs)
            for name, queues in state.queues.items()}
        self.beat = BeatService(self, "Beat", config=compute.beat, settings=settings, publish_queues=work_queues,
                                encryption_key=state.encryption_key, uses_sqs_broker=uses_sqs)

        for name, worker in self.workers.items():
            cache.allow_connections_from(worker.service.security_group, scope=worker,
                                         description=f"Celery workers ({name})")
        cache.allow_connections_from(self.beat.service.security_group, scope=self.beat, description="Celery Beat")

        outputs = contract.ComputeOutputs
        cdk.CfnOutput(self, outputs.CLUSTER_NAME, value=self.cluster.cluster_name)
        cdk.CfnOutput(self, outputs.BEAT_SERVICE_NAME, value=self.beat.service.service.service_name)
        cdk.CfnOutput(self, outputs.BROKER, value=compute.broker)  # the failover drill's canary needs it
        for name, worker in self.workers.items():
            cdk.CfnOutput(self, contract.worker_service_output_id(name), value=worker.service.service.service_name)

    def _image(self, compute: ComputeConfig, platform: ecr_assets.Platform) -> ecs.ContainerImage:
        if compute.image is None:
            return ecs.ContainerImage.from_asset(str(REFERENCE_WORKER_DIR), platform=platform)
        repository = ecr.Repository.from_repository_name(self, "ImageRepository", compute.image.repository_name)
        return ecs.ContainerImage.from_ecr_repository(repository, compute.image.digest or compute.image.tag)

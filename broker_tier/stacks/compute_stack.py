"""The compute half of the tier: the ECS cluster, one worker service per queue class, one Beat."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr, aws_ecr_assets as ecr_assets, aws_ecs as ecs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from broker_tier.config import ComputeConfig, EnvironmentConfig
from broker_tier.constructs.beat_service import BeatService
from broker_tier.constructs.worker_service import WorkerService
from broker_tier.stacks.base import TierStack
from broker_tier.stacks.state_stack import REMOVAL, BrokerStateStack, output_id

REFERENCE_WORKER_DIR = Path(__file__).resolve().parents[2] / "worker"
# Seconds of the stop timeout kept back from Celery's soft shutdown for the cold shutdown after it.
COLD_SHUTDOWN_SECONDS = 15
_ARCHITECTURE = {"X86_64": (ecs.CpuArchitecture.X86_64, ecr_assets.Platform.LINUX_AMD64),
                 "ARM64": (ecs.CpuArchitecture.ARM64, ecr_assets.Platform.LINUX_ARM64)}


class BrokerComputeStack(TierStack):
    """ECS cluster (Container Insights), a worker service per class, and exactly one Beat.

    Outputs: ``ClusterName``, ``BeatServiceName``, ``WorkerService<Class>Name``.

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
        image = self._image(compute, platform)
        uses_sqs = compute.broker == "sqs"
        work_queues = [queues.queue for queues in state.queues.values()]
        cache = state.cache

        common_environment = {
            "BROKER_TIER_BROKER": compute.broker,
            "BROKER_TIER_REGION": cdk.Aws.REGION,
            "BROKER_TIER_QUEUE_URLS": self.to_json_string({name: q.queue.queue_url for name, q in state.queues.items()}),
            "BROKER_TIER_REDIS_HOST": cache.primary_endpoint_address,
            "BROKER_TIER_REDIS_PORT": str(cache.port),
            "BROKER_TIER_REDIS_TLS": "true",
            "BROKER_TIER_REDIS_DB_RESULTS": str(cache.databases.results),
            "BROKER_TIER_REDIS_DB_BROKER": str(cache.databases.broker),
            "BROKER_TIER_RESULT_EXPIRES": str(compute.result_expires_seconds),
            "BROKER_TIER_SOFT_SHUTDOWN_TIMEOUT": str(compute.stop_timeout_seconds - COLD_SHUTDOWN_SECONDS),
            "REMAP_SIGTERM": "SIGQUIT",  # SIGTERM from ECS starts Celery's soft shutdown (Celery 5.5+)
        }
        # By ARN: granting the State stack's secret directly would add these roles to the State stack's
        # key policy, a dependency cycle. The key grant is explicit instead (see CeleryFargateService).
        auth_token = secretsmanager.Secret.from_secret_complete_arn(self, "AuthToken", cache.auth_token_secret.secret_arn)
        secrets = {"BROKER_TIER_REDIS_AUTH_TOKEN": ecs.Secret.from_secrets_manager(auth_token)}
        removal = REMOVAL[config.removal_policy]

        def service_props(name: str, command: list[str], environment: dict[str, str]) -> dict:
            return {"cluster": self.cluster, "image": image, "command": command, "cpu_architecture": cpu_architecture,
                    "environment": {**common_environment, **environment}, "secrets": secrets,
                    "log_group_name": f"/{config.resource_prefix}/celery/{name}",
                    "log_retention_days": compute.log_retention_days, "removal_policy": removal,
                    "stop_timeout_seconds": compute.stop_timeout_seconds, "secrets_key": state.encryption_key,
                    "subnets": state.network.private_subnets}

        self.workers: dict[str, WorkerService] = {}
        for name, queues in state.queues.items():
            class_config = config.queues[name]
            command = ["celery", "-A", compute.celery_app, "worker", "--queues", name,
                       "--concurrency", str(class_config.worker.concurrency), "--hostname", f"{name}@%h",
                       "--loglevel", "INFO"]
            self.workers[name] = WorkerService(
                self, f"Worker-{name}", class_name=name, config=class_config.worker, queue=queues.queue,
                publish_queues=work_queues, encryption_key=state.encryption_key, uses_sqs_broker=uses_sqs,
                service_props=service_props(f"worker-{name}", command, {
                    "BROKER_TIER_QUEUE": name,
                    "BROKER_TIER_TASK_TIME_LIMIT": str(class_config.task_time_limit_seconds)}))

        self.beat = BeatService(
            self, "Beat", config=compute.beat, publish_queues=work_queues, encryption_key=state.encryption_key,
            uses_sqs_broker=uses_sqs,
            service_props=service_props("beat", ["celery", "-A", compute.celery_app, "beat", "--loglevel", "INFO",
                                                 "--schedule", "/tmp/celerybeat-schedule"], {}))

        for name, worker in self.workers.items():
            cache.allow_connections_from(worker.service.security_group, scope=worker,
                                         description=f"Celery workers ({name})")
        cache.allow_connections_from(self.beat.service.security_group, scope=self.beat, description="Celery Beat")

        cdk.CfnOutput(self, "ClusterName", value=self.cluster.cluster_name)
        cdk.CfnOutput(self, "BeatServiceName", value=self.beat.service.service.service_name)
        for name, worker in self.workers.items():
            cdk.CfnOutput(self, output_id("workerService", name, "name"), value=worker.service.service.service_name)

    def _image(self, compute: ComputeConfig, platform: ecr_assets.Platform) -> ecs.ContainerImage:
        if compute.image is None:
            return ecs.ContainerImage.from_asset(str(REFERENCE_WORKER_DIR), platform=platform)
        repository = ecr.Repository.from_repository_name(self, "ImageRepository", compute.image.repository_name)
        return ecs.ContainerImage.from_ecr_repository(repository, compute.image.digest or compute.image.tag)

"""The single Celery Beat of the tier."""

from __future__ import annotations

import json
from collections.abc import Mapping

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

import broker_tier_contract as contract
from broker_tier.config import BeatConfig
from broker_tier.constructs.beat_fence_table import BeatFenceTable
from broker_tier.constructs.celery_service import (
    ECS_EXEC_WILDCARD_REASON,
    CeleryFargateService,
    CeleryServiceSettings,
    ProcessSpec,
    allow_queue_encryption,
)
from broker_tier.constructs.claim_check_bucket import ClaimCheckBucket
from broker_tier.nag import acknowledge

# Beat keeps its schedule state in a file; the container's own /tmp is enough (the schedule is code).
SCHEDULE_FILE = "/tmp/celerybeat-schedule"  # nosec: a private file in the container, not a shared /tmp


class BeatService(Construct):
    """Exactly one Celery Beat: desired count 1, maximum 100 %, minimum healthy 0 %, no autoscaling.

    The old Beat stops before the new one starts, so a deployment never runs two (CDK's defaults,
    50 % / 200 %, overlap them: aws/aws-cdk#31705). Beat only publishes: send to the work queues, after a claim of
    each due tick in the fence table (a second Beat that ECS did not mean to run publishes nothing twice), its tick
    counts to CloudWatch, and in redis broker mode each class's Redis backlog (the workers scale on it).

    Attributes:
        service (CeleryFargateService).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: BeatConfig,
        settings: CeleryServiceSettings,
        publish_queues: list[sqs.IQueue],
        encryption_key: kms.IKey,
        uses_sqs_broker: bool,
        fence: BeatFenceTable,
        visibility_timeouts: Mapping[str, int],
        payload_bucket: ClaimCheckBucket | None = None,
    ) -> None:
        """
        :param config: Beat's size (its count and deployment limits are fixed by the model).
        :param settings: what the environment's Celery services share (image, variables, secrets, ...).
        :param publish_queues: the work queues periodic tasks are sent to.
        :param encryption_key: the queues' and the fence table's KMS key.
        :param uses_sqs_broker: grant SQS access (false in redis broker mode).
        :param fence: the table in which Beat claims each due tick before it publishes it.
        :param visibility_timeouts: each class's visibility time-out (redis mode: when a message in progress is
            overdue).
        :param payload_bucket: with the claim check on, the bucket where Beat puts the payloads of periodic tasks
            too big for SQS. Default: None (off).
        """
        super().__init__(scope, construct_id)
        self.service = CeleryFargateService(
            self,
            "Celery",
            settings=settings,
            spec=ProcessSpec(
                process=contract.BEAT_PROCESS,
                command=[
                    "celery",
                    "-A",
                    settings.celery_app,
                    "beat",
                    "--loglevel",
                    "INFO",
                    "--schedule",
                    SCHEDULE_FILE,
                ],
                health_check_process=contract.BEAT_PROCESS,
                cpu=config.cpu,
                memory_mib=config.memory_mib,
                desired_count=config.desired_count,
                min_healthy_percent=config.minimum_healthy_percent,
                max_healthy_percent=config.maximum_percent,
                environment=self._variables(fence, visibility_timeouts, uses_sqs_broker),
            ),
        )
        role = self.service.task_definition.task_role
        if uses_sqs_broker:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="PublishToWorkQueues",
                    actions=["sqs:SendMessage"],
                    resources=[q.queue_arn for q in publish_queues],
                )
            )
            allow_queue_encryption(role, encryption_key)
            if payload_bucket is not None:
                for statement in payload_bucket.writer_statements():
                    role.add_to_principal_policy(statement)
                payload_bucket.acknowledge_payload_keys(role)
        fence.allow_claims(role, encryption_key)
        self._allow_metrics(role, uses_sqs_broker)

    @staticmethod
    def _variables(fence: BeatFenceTable, visibility_timeouts: Mapping[str, int], uses_sqs: bool) -> dict[str, str]:
        variables = contract.ContainerEnvironment
        found = {variables.BEAT_FENCE_TABLE.name: fence.table.table_name}
        if not uses_sqs:
            found[variables.VISIBILITY_TIMEOUTS.name] = json.dumps(dict(visibility_timeouts), sort_keys=True)
        return found

    @staticmethod
    def _allow_metrics(role: iam.IRole, uses_sqs: bool) -> None:
        """Beat publishes its tick counts and Redis's keyspace (keys and keys without a TTL per database) every minute
        (``broker_tier_celery.beat_fence``, ``broker_tier_celery.keyspace_metrics``), and in redis broker mode
        each class's Redis backlog, which the worker services scale on and the alarms watch
        (``broker_tier_celery.backlog_metrics``)."""
        namespaces = [contract.BEAT_NAMESPACE, contract.REDIS_KEYSPACE_NAMESPACE] + (
            [] if uses_sqs else [contract.REDIS_BACKLOG_NAMESPACE]
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PublishBeatMetrics",
                actions=["cloudwatch:PutMetricData"],
                # PutMetricData has no resource-level permissions: '*', limited to the tier's namespaces
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": namespaces}},
            )
        )
        acknowledge(
            role,
            "IAM5[Resource::*]",
            "cloudwatch:PutMetricData has no resource-level permissions (Resource must be '*'); a "
            "cloudwatch:namespace condition limits it to Beat's own namespaces. " + ECS_EXEC_WILDCARD_REASON,
        )

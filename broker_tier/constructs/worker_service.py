"""The Celery workers of one latency class, scaled on their queue's backlog per task."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IDependable

import broker_tier_contract as contract
from broker_tier.config import CapacityConfig, QueueClassConfig
from broker_tier.constructs.celery_service import (
    CeleryFargateService,
    CeleryServiceSettings,
    ProcessSpec,
    allow_queue_encryption,
)
from broker_tier.constructs.claim_check_bucket import ClaimCheckBucket
from broker_tier.nag import acknowledge_wildcard_resource

SCALING_PERIOD = cdk.Duration.minutes(1)
BACKLOG_PER_TASK = "(visible + inflight) / running"
"""The tracked metric: messages waiting or in progress per running task."""


def capacity_provider_strategies(capacity: CapacityConfig) -> tuple[ecs.CapacityProviderStrategy, ...]:
    """The class's capacity-provider strategy: on-demand FARGATE only, or FARGATE_SPOT above an on-demand base.
    Always a strategy, never the launch type, so that opting a class in or out of Spot changes the strategy in
    place (docs/decisions/fargate-spot-per-class.md)."""
    return tuple(
        ecs.CapacityProviderStrategy(capacity_provider=provider, base=base or None, weight=weight)
        for provider, base, weight in capacity.strategy()
    )


@dataclass(frozen=True, kw_only=True)
class QueueMetric:
    """One CloudWatch metric of a class's queue, as scaling reads it."""

    namespace: str
    metric_name: str
    dimensions: Mapping[str, str]
    statistic: str


@dataclass(frozen=True, kw_only=True)
class QueueBacklog:
    """Where a class's waiting and in-progress messages are counted, by broker."""

    waiting: QueueMetric
    in_progress: QueueMetric

    @classmethod
    def of_sqs_queue(cls, queue: sqs.IQueue) -> QueueBacklog:
        """SQS's own queue metrics (published every minute; Sum of one datapoint per minute)."""

        def metric(name: str) -> QueueMetric:
            return QueueMetric(
                namespace="AWS/SQS", metric_name=name, dimensions={"QueueName": queue.queue_name}, statistic="Sum"
            )

        return cls(
            waiting=metric("ApproximateNumberOfMessagesVisible"),
            in_progress=metric("ApproximateNumberOfMessagesNotVisible"),
        )

    @classmethod
    def of_redis_broker(cls, environment_name: str, class_name: str) -> QueueBacklog:
        """The Redis broker's lists and unacked record, which Beat publishes every minute
        (``broker_tier_celery.backlog_metrics``): Redis has no per-list CloudWatch metric, and the SQS
        queues, unused in this mode, stay empty. Maximum: one datapoint a minute, and a second one (a
        Beat being replaced) must not add up."""
        environment_dimension, class_dimension = contract.REDIS_BACKLOG_DIMENSIONS

        def metric(name: str) -> QueueMetric:
            return QueueMetric(
                namespace=contract.REDIS_BACKLOG_NAMESPACE,
                metric_name=name,
                dimensions={environment_dimension: environment_name, class_dimension: class_name},
                statistic="Maximum",
            )

        return cls(
            waiting=metric(contract.REDIS_BACKLOG_WAITING), in_progress=metric(contract.REDIS_BACKLOG_IN_PROGRESS)
        )


class WorkerService(Construct):
    """One worker service consuming one class's queue, scaled on ``(visible + inflight) / running`` with a step
    out of zero, never on CPU; busy workers protect their task from scale-in
    (docs/decisions/scaling-counts-messages-in-flight.md,
    docs/decisions/scale-in-protection-while-busy.md).

    Attributes:
        class_name, service (CeleryFargateService), scalable_target, config (the class's WorkerConfig),
        backlog (QueueBacklog: the metrics scaling reads, the SQS queue's or the Redis broker's).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        class_name: str,
        class_config: QueueClassConfig,
        settings: CeleryServiceSettings,
        queue: sqs.IQueue,
        publish_queues: list[sqs.IQueue],
        encryption_key: kms.IKey,
        uses_sqs_broker: bool,
        capacity_providers: IDependable,
        payload_bucket: ClaimCheckBucket | None = None,
    ) -> None:
        """
        :param class_name: the latency class this service consumes.
        :param class_config: the class's limits (its task time limit reaches the workers) and its
            worker service (size, concurrency, scaling).
        :param settings: what the environment's Celery services share (image, variables, secrets, ...).
        :param queue: the class's work queue (consumed in sqs broker mode, where its depth drives scaling).
        :param publish_queues: the work queues tasks may publish to (retries, chains, routing).
        :param encryption_key: the queues' KMS key.
        :param uses_sqs_broker: grant SQS access (false in redis broker mode: nothing to grant).
        :param capacity_providers: the cluster's association of FARGATE and FARGATE_SPOT, which the service's
            capacity-provider strategy (``class_config.worker.capacity``) names.
        :param payload_bucket: with the claim check on, its bucket: the workers read and delete the payloads under
            their class's prefix, and put those of the tasks they publish. Default: None (off).
        """
        super().__init__(scope, construct_id)
        config = class_config.worker
        self.class_name, self.config = class_name, config
        variables = contract.ContainerEnvironment
        self.service = CeleryFargateService(
            self,
            "Celery",
            settings=settings,
            spec=ProcessSpec(
                process=contract.worker_process(class_name),
                # never -B: Beat runs once, in its own service
                command=[
                    "celery",
                    "-A",
                    settings.celery_app,
                    "worker",
                    "--queues",
                    class_name,
                    "--concurrency",
                    str(config.concurrency),
                    "--hostname",
                    f"{class_name}@%h",
                    "--loglevel",
                    "INFO",
                    *contract.WORKER_EVENT_OPTIONS,
                ],
                health_check_process="worker",
                cpu=config.cpu,
                memory_mib=config.memory_mib,
                desired_count=None,
                min_healthy_percent=100,
                max_healthy_percent=200,
                environment={
                    variables.QUEUE.name: class_name,
                    variables.TASK_TIME_LIMIT.name: str(class_config.task_time_limit_seconds),
                    variables.VISIBILITY_TIMEOUT.name: str(class_config.visibility_timeout_seconds),
                },
                capacity_provider_strategies=capacity_provider_strategies(config.capacity),
            ),
        )
        # The providers must be associated with the cluster before a service names them (aws/containers-roadmap#631):
        # on a first deployment CloudFormation would otherwise create both at once.
        self.service.service.node.add_dependency(capacity_providers)
        if uses_sqs_broker:
            self._grant_queues(queue, publish_queues, encryption_key)
        if payload_bucket is not None:
            role = self.service.task_definition.task_role
            for statement in payload_bucket.worker_statements(class_name):
                role.add_to_principal_policy(statement)
            payload_bucket.acknowledge_payload_keys(role)
        fargate = self.service.service
        self._allow_scale_in_protection(settings.cluster)
        self.scalable_target = appscaling.ScalableTarget(
            self,
            "ScalableTarget",
            service_namespace=appscaling.ServiceNamespace.ECS,
            resource_id=f"service/{fargate.cluster.cluster_name}/{fargate.service_name}",
            scalable_dimension="ecs:service:DesiredCount",
            min_capacity=config.min_tasks,
            max_capacity=config.max_tasks,
        )
        self.backlog = (
            QueueBacklog.of_sqs_queue(queue)
            if uses_sqs_broker
            else QueueBacklog.of_redis_broker(settings.environment_name, class_name)
        )
        self._track_backlog_per_task(fargate, config.backlog_per_task_target)
        if config.min_tasks == 0:
            self._scale_out_from_zero(fargate)

    def _grant_queues(self, queue: sqs.IQueue, publish_queues: list[sqs.IQueue], key: kms.IKey) -> None:
        role = self.service.task_definition.task_role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ConsumeOwnQueue",
                resources=[queue.queue_arn],
                # GetQueueAttributes: kombu reads the RedrivePolicy before leaving a failed message for SQS
                actions=[
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PublishToWorkQueues", actions=["sqs:SendMessage"], resources=[q.queue_arn for q in publish_queues]
            )
        )
        allow_queue_encryption(role, key)

    def _allow_scale_in_protection(self, cluster: ecs.ICluster) -> None:
        """The ECS agent sets the task's scale-in protection (``broker_tier_celery.protection``) with the
        task role: UpdateTaskProtection, and GetTaskProtection behind the agent's GET, on this cluster's
        tasks (resource type ``task``; task ARNs carry the cluster name, task ids are not known before)."""
        role = self.service.task_definition.task_role
        cluster_tasks = cdk.Stack.of(self).format_arn(
            service="ecs",
            resource="task",
            resource_name=f"{cluster.cluster_name}/*",
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="OwnScaleInProtection",
                actions=["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"],
                resources=[cluster_tasks],
            )
        )
        acknowledge_wildcard_resource(
            role,
            cluster_tasks,
            "Task scale-in protection: the task's own id is only known once it runs, so the statement names "
            "the tasks of this cluster (task ARNs carry the cluster name), not every task of the account.",
        )

    def _track_backlog_per_task(self, fargate: ecs.FargateService, target: int) -> None:
        """Target tracking on (visible + in flight) / running: the work of the class per running task,
        waiting or in progress (README "Workers that never kill a running task")."""
        P = appscaling.CfnScalingPolicy

        def queue_metric(metric_id: str, metric: QueueMetric):
            return P.TargetTrackingMetricDataQueryProperty(
                id=metric_id,
                return_data=False,
                metric_stat=P.TargetTrackingMetricStatProperty(
                    stat=metric.statistic,
                    metric=P.TargetTrackingMetricProperty(
                        namespace=metric.namespace,
                        metric_name=metric.metric_name,
                        dimensions=[
                            P.TargetTrackingMetricDimensionProperty(name=name, value=value)
                            for name, value in metric.dimensions.items()
                        ],
                    ),
                ),
            )

        metrics = [
            queue_metric("visible", self.backlog.waiting),
            queue_metric("inflight", self.backlog.in_progress),
            P.TargetTrackingMetricDataQueryProperty(
                id="running",
                return_data=False,
                metric_stat=P.TargetTrackingMetricStatProperty(
                    stat="Average",
                    metric=P.TargetTrackingMetricProperty(
                        namespace="ECS/ContainerInsights",
                        metric_name="RunningTaskCount",
                        dimensions=[
                            P.TargetTrackingMetricDimensionProperty(
                                name="ClusterName", value=fargate.cluster.cluster_name
                            ),
                            P.TargetTrackingMetricDimensionProperty(name="ServiceName", value=fargate.service_name),
                        ],
                    ),
                ),
            ),
            P.TargetTrackingMetricDataQueryProperty(
                id="backlogPerTask",
                expression=BACKLOG_PER_TASK,
                label="Messages waiting or in progress per task",
                return_data=True,
            ),
        ]
        appscaling.CfnScalingPolicy(
            self,
            "BacklogPerTask",
            policy_name=f"{self.class_name}-backlog-per-task",
            policy_type="TargetTrackingScaling",
            scaling_target_id=self.scalable_target.scalable_target_id,
            target_tracking_scaling_policy_configuration=P.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=target,
                scale_in_cooldown=120,
                scale_out_cooldown=60,
                customized_metric_specification=P.CustomizedMetricSpecificationProperty(metrics=metrics),
            ),
        )

    def _scale_out_from_zero(self, fargate: ecs.FargateService) -> None:
        waiting = self.backlog.waiting
        visible = cloudwatch.Metric(
            namespace=waiting.namespace,
            metric_name=waiting.metric_name,
            dimensions_map=dict(waiting.dimensions),
            period=SCALING_PERIOD,
            statistic=waiting.statistic,
        )
        running = cloudwatch.Metric(
            namespace="ECS/ContainerInsights",
            metric_name="RunningTaskCount",
            dimensions_map={"ClusterName": fargate.cluster.cluster_name, "ServiceName": fargate.service_name},
            period=SCALING_PERIOD,
            statistic="Average",
        )
        action = appscaling.StepScalingAction(
            self,
            "ScaleOutFromZero",
            scaling_target=self.scalable_target,
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=cdk.Duration.minutes(1),
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
        )
        action.add_adjustment(adjustment=1, lower_bound=0)
        waiting_without_workers = cloudwatch.MathExpression(
            expression="IF(FILL(running, 0) == 0 AND visible > 0, 1, 0)",
            using_metrics={"visible": visible, "running": running},
            period=SCALING_PERIOD,
            label="Messages waiting with no running task",
        )
        alarm = cloudwatch.Alarm(
            self,
            "MessagesWithoutWorkers",
            metric=waiting_without_workers,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"{self.class_name}: a message waits and no worker runs; scales out from zero "
            f"(a scaling trigger, not a page)",
        )
        alarm.add_alarm_action(cw_actions.ApplicationScalingAction(action))

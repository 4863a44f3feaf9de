"""What the tier alarms on, as data: one ``AlarmSpec`` per alarm, built from the configuration,
and the dashboard's graphs derived from the same specs.

Plain values (no CDK objects), so the alarms, the dashboard, the ops tool and the tests read the same
definitions; each Redis signal is one alarm over the worst node (docs/decisions/alarm-on-the-worst-node.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import broker_tier_contract as contract
from broker_tier.config import AlarmWindow, EnvironmentConfig

Comparison = Literal["GreaterThanThreshold", "LessThanThreshold"]
MissingData = Literal["missing", "notBreaching", "breaching"]


@dataclass(frozen=True, kw_only=True)
class MetricQuery:
    """One CloudWatch metric with its statistic; ``id`` names it inside an alarm's math."""

    id: str
    namespace: str
    metric_name: str
    dimensions: dict[str, str]
    statistic: str
    label: str


@dataclass(frozen=True, kw_only=True)
class AlarmSpec:
    """One alarm. ``expression`` combines ``metrics`` by id; without it the single metric is alarmed."""

    name: str
    """Suffix of the alarm name: ``broker-tier-<env>-<name>``."""
    summary: str
    """What the alarm means, for the operator (the description adds the runbook)."""
    runbook: str
    """File in ``runbooks/`` the operator opens."""
    graph: str
    """Title of the dashboard graph that shows this alarm's metrics and threshold (one of ``GRAPHS_BY_BROKER``'s)."""
    window: AlarmWindow
    """When it fires: periods, evaluation periods, datapoints."""
    threshold: float
    comparison: Comparison
    metrics: tuple[MetricQuery, ...]
    treat_missing_data: MissingData
    expression: str | None = None
    """Metric math over ``metrics`` that is alarmed. Default: None (the single metric)."""
    severity: Literal["page", "warning"] = "page"
    """``page`` wakes someone; ``warning`` is looked at in working hours. Default: page."""


@dataclass(frozen=True, kw_only=True)
class Graph:
    """One line graph of the dashboard: its metrics, and threshold lines drawn across it."""

    title: str
    metrics: tuple[MetricQuery, ...]
    thresholds: tuple[tuple[str, float], ...] = ()
    """(label, value) of each line. Default: none."""


# The dashboard's graphs, in reading order; the first three show the broker the environment's mode uses.
VISIBLE_MESSAGES = "Visible messages per class"
WAITING_MESSAGES = "Redis broker: messages waiting and in progress per class"
OLDEST_MESSAGE = "Oldest message age (s) per class"
DEAD_LETTERS = "Dead-letter messages per class"
OVERDUE_MESSAGES = "Redis broker: messages in progress past the visibility time-out per class"
REDIS_MEMORY = "Redis memory (% of maxmemory)"
REDIS_CPU = "Redis engine CPU (%)"
REDIS_LAG = "Redis replication lag (s)"
REDIS_CONNECTIONS = "Redis connections"
REDIS_EVICTIONS = "Redis evictions"
RUNNING_TASKS = "Running tasks per service"
BEAT_TICKS = "Beat ticks per minute"
_SHARED_GRAPHS = (REDIS_MEMORY, REDIS_CPU, REDIS_LAG, REDIS_CONNECTIONS, REDIS_EVICTIONS, RUNNING_TASKS, BEAT_TICKS)
GRAPHS_BY_BROKER: dict[str, tuple[str, ...]] = {
    "sqs": (VISIBLE_MESSAGES, OLDEST_MESSAGE, DEAD_LETTERS, *_SHARED_GRAPHS),
    "redis": (WAITING_MESSAGES, OLDEST_MESSAGE, OVERDUE_MESSAGES, *_SHARED_GRAPHS),
}
GRAPHS = GRAPHS_BY_BROKER["sqs"]
"""The graphs of an sqs-mode environment (``graphs_of`` gives any mode's)."""


def graphs_of(config: EnvironmentConfig) -> tuple[str, ...]:
    return GRAPHS_BY_BROKER[config.compute.broker]


@dataclass(frozen=True, kw_only=True)
class MonitoredResources:
    """Names of the monitored resources (strings or CDK tokens) the catalog builds metrics on."""

    cache_node_ids: tuple[str, ...]
    queue_names: dict[str, str]
    dead_letter_queue_names: dict[str, str]
    cluster_name: str
    worker_service_names: dict[str, str]
    beat_service_name: str


def member_cluster_ids(replication_group_id: str, replicas: int) -> tuple[str, ...]:
    """ElastiCache names a cluster-mode-disabled group's nodes ``<id>-001``, ``<id>-002``, ..."""
    return tuple(f"{replication_group_id}-{number:03d}" for number in range(1, replicas + 2))


def node_metrics(resources: MonitoredResources, metric_name: str, statistic: str) -> tuple[MetricQuery, ...]:
    return tuple(
        MetricQuery(
            id=f"node{index}",
            namespace="AWS/ElastiCache",
            metric_name=metric_name,
            dimensions={"CacheClusterId": node},
            statistic=statistic,
            label=node,
        )
        for index, node in enumerate(resources.cache_node_ids, start=1)
    )


def queue_metric(queue_name: str, metric_name: str, label: str) -> MetricQuery:
    return MetricQuery(
        id="queue",
        namespace="AWS/SQS",
        metric_name=metric_name,
        dimensions={"QueueName": queue_name},
        statistic="Maximum",
        label=label,
    )


def redis_broker_metric(config: EnvironmentConfig, class_name: str, metric_name: str, label: str) -> MetricQuery:
    """One of the metrics Beat publishes for a class in redis broker mode (``broker_tier_celery.backlog_metrics``)."""
    environment, queue_class = contract.REDIS_BACKLOG_DIMENSIONS
    return MetricQuery(
        id="broker",
        namespace=contract.REDIS_BACKLOG_NAMESPACE,
        metric_name=metric_name,
        dimensions={environment: config.name, queue_class: class_name},
        statistic="Maximum",
        label=label,
    )


def beat_tick_metric(config: EnvironmentConfig, metric_name: str, metric_id: str) -> MetricQuery:
    """One of the tick counts Beat's fence publishes (``broker_tier_celery.beat_fence``)."""
    return MetricQuery(
        id=metric_id,
        namespace=contract.BEAT_NAMESPACE,
        metric_name=metric_name,
        dimensions={contract.BEAT_DIMENSIONS[0]: config.name},
        statistic="Sum",
        label=f"Beat {metric_name}",
    )


def service_metric(
    resources: MonitoredResources, service_name: str, metric_name: str, statistic: str, label: str, metric_id: str
) -> MetricQuery:
    """One of Container Insights' service metrics (``DesiredTaskCount``, ``RunningTaskCount``, ...)."""
    return MetricQuery(
        id=metric_id,
        namespace="ECS/ContainerInsights",
        metric_name=metric_name,
        dimensions={"ClusterName": resources.cluster_name, "ServiceName": service_name},
        statistic=statistic,
        label=label,
    )


def running_tasks(
    resources: MonitoredResources, service_name: str, statistic: str, label: str, metric_id: str = "tasks"
) -> MetricQuery:
    return service_metric(resources, service_name, "RunningTaskCount", statistic, label, metric_id)


def _fullest_node(resources: MonitoredResources) -> str:
    return f"MAX([{', '.join(f'node{i}' for i in range(1, len(resources.cache_node_ids) + 1))}])"


def redis_specs(config: EnvironmentConfig, resources: MonitoredResources) -> list[AlarmSpec]:
    monitoring = config.monitoring
    memory, cpu = monitoring.redis_memory, monitoring.redis_engine_cpu
    lag, connections = monitoring.redis_replication_lag, monitoring.redis_connections

    def worst_node(*, metric: str, statistic: str, missing: MissingData = "missing", **spec) -> AlarmSpec:
        return AlarmSpec(
            comparison="GreaterThanThreshold",
            metrics=node_metrics(resources, metric, statistic),
            treat_missing_data=missing,
            expression=_fullest_node(resources),
            **spec,
        )

    memory_metric: dict[str, Any] = {
        "metric": "DatabaseMemoryUsagePercentage",
        "statistic": "Maximum",
        "graph": REDIS_MEMORY,
        "runbook": "redis-memory-pressure.md",
        "window": memory,
    }
    return [
        worst_node(
            name="redis-memory-warning",
            threshold=memory.warning_percent,
            severity="warning",
            summary=f"Redis memory above {memory.warning_percent:g}% of maxmemory on a node. Under "
            f"noeviction a full Redis refuses every write (results, and the broker in redis mode).",
            **memory_metric,
        ),
        worst_node(
            name="redis-memory-critical",
            threshold=memory.critical_percent,
            summary=f"Redis memory above {memory.critical_percent:g}% of maxmemory on a node: writes will "
            f"soon be refused (noeviction).",
            **memory_metric,
        ),
        worst_node(
            name="redis-engine-cpu",
            metric="EngineCPUUtilization",
            statistic="Average",
            graph=REDIS_CPU,
            runbook="redis-engine-health.md",
            window=cpu,
            threshold=cpu.threshold_percent,
            summary=f"Redis engine CPU above {cpu.threshold_percent:g}% on a node (Redis runs commands on "
            f"one thread; latency follows).",
        ),
        worst_node(
            name=contract.REPLICATION_LAG_ALARM,
            metric="ReplicationLag",
            statistic="Maximum",
            graph=REDIS_LAG,
            runbook="redis-engine-health.md",
            window=lag,
            threshold=lag.threshold_seconds,
            missing="notBreaching",  # the primary publishes no lag
            summary=f"A Redis replica lags more than {lag.threshold_seconds:g} s: a failover now would "
            f"lose those writes. Do not drill a failover.",
        ),
        worst_node(
            name=contract.REDIS_CONNECTIONS_ALARM,
            metric="CurrConnections",
            statistic="Maximum",
            graph=REDIS_CONNECTIONS,
            runbook="redis-engine-health.md",
            window=connections,
            threshold=connections.threshold,
            summary=f"More than {connections.threshold} connections on a Redis node (a connection leak, or "
            f"clients reconnecting in a loop).",
        ),
        worst_node(
            name="redis-evictions",
            metric="Evictions",
            statistic="Sum",
            graph=REDIS_EVICTIONS,
            runbook="redis-memory-pressure.md",
            window=monitoring.redis_evictions,
            threshold=0,
            missing="notBreaching",
            summary="Redis evicted keys. The tier sets maxmemory-policy noeviction, so the parameter group "
            "was changed: queued tasks and results are being deleted.",
        ),
    ]


def queue_specs(config: EnvironmentConfig, resources: MonitoredResources) -> list[AlarmSpec]:
    """Each class's age and failed-work alarms on the broker the environment's mode uses, never on the other one
    (docs/decisions/redis-broker-watched.md)."""
    return sqs_queue_specs(config, resources) if config.compute.broker == "sqs" else redis_queue_specs(config)


def redis_queue_specs(config: EnvironmentConfig) -> list[AlarmSpec]:
    """redis broker: the age of each class's oldest waiting message and its messages overdue in progress, which
    Beat publishes every minute."""
    monitoring = config.monitoring
    specs = []
    for name, class_config in config.queues.items():
        objective = class_config.latency_objective_seconds
        specs.append(
            AlarmSpec(
                name=f"queue-{name}-age",
                summary=f"The oldest message waiting in the Redis lists of class '{name}' is older than its latency "
                f"objective ({objective} s): workers are not keeping up, or not consuming. No data counts as "
                f"breaching: Beat publishes the age every minute, so none means Beat is down or cannot read Redis.",
                runbook="worker-backlog.md",
                graph=OLDEST_MESSAGE,
                window=monitoring.queue_age,
                threshold=objective,
                comparison="GreaterThanThreshold",
                metrics=(redis_broker_metric(config, name, contract.REDIS_OLDEST_MESSAGE_AGE, f"{name} oldest age"),),
                treat_missing_data="breaching",
            )
        )
        specs.append(
            AlarmSpec(
                name=f"unacked-{name}-overdue",
                summary=f"Messages of class '{name}' stayed in its Redis unacked record longer than its visibility "
                f"time-out ({class_config.visibility_timeout_seconds} s): neither acknowledged nor handed out "
                f"again, so no worker of the class is restoring them. They run again only once one does.",
                runbook="worker-backlog.md",
                graph=OVERDUE_MESSAGES,
                window=monitoring.unacked_overdue,
                threshold=0,
                comparison="GreaterThanThreshold",
                metrics=(redis_broker_metric(config, name, contract.REDIS_MESSAGES_OVERDUE, f"{name} overdue"),),
                treat_missing_data="notBreaching",  # the age alarm says when nothing is published
            )
        )
    return specs


def sqs_queue_specs(config: EnvironmentConfig, resources: MonitoredResources) -> list[AlarmSpec]:
    """sqs broker: each work queue's oldest message and each dead-letter queue's messages."""
    monitoring = config.monitoring
    specs = []
    for name, class_config in config.queues.items():
        specs.append(
            AlarmSpec(
                name=f"queue-{name}-age",
                summary=f"The oldest message of queue class '{name}' is older than its latency objective "
                f"({class_config.latency_objective_seconds} s): workers are not keeping up, or not consuming.",
                runbook="worker-backlog.md",
                graph=OLDEST_MESSAGE,
                window=monitoring.queue_age,
                threshold=class_config.latency_objective_seconds,
                comparison="GreaterThanThreshold",
                metrics=(
                    queue_metric(resources.queue_names[name], "ApproximateAgeOfOldestMessage", f"{name} oldest age"),
                ),
                treat_missing_data="notBreaching",
            )
        )
        specs.append(
            AlarmSpec(
                name=f"dlq-{name}-messages",
                summary=f"Messages in the dead-letter queue of class '{name}': tasks failed "
                f"{class_config.max_receive_count} receives and were moved there. Find the cause before you "
                f"redrive.",
                runbook="dead-letter-redrive.md",
                graph=DEAD_LETTERS,
                window=monitoring.dead_letter,
                threshold=0,
                comparison="GreaterThanThreshold",
                metrics=(
                    queue_metric(
                        resources.dead_letter_queue_names[name],
                        "ApproximateNumberOfMessagesVisible",
                        f"{name} dead letters",
                    ),
                ),
                treat_missing_data="notBreaching",
            )
        )
    return specs


def service_specs(config: EnvironmentConfig, resources: MonitoredResources) -> list[AlarmSpec]:
    monitoring = config.monitoring
    specs = []
    for name, class_config in config.queues.items():
        floor = class_config.worker.min_tasks
        if floor == 0:  # a class that scales to zero has no floor to fall below
            continue
        specs.append(
            AlarmSpec(
                name=f"worker-{name}-tasks",
                summary=f"Fewer than {floor} running worker tasks for class '{name}' (its minimum): tasks fail to "
                f"start or keep stopping. No data counts as breaching.",
                runbook="worker-backlog.md",
                graph=RUNNING_TASKS,
                window=monitoring.worker_tasks,
                threshold=floor,
                comparison="LessThanThreshold",
                metrics=(running_tasks(resources, resources.worker_service_names[name], "Minimum", f"{name} running"),),
                treat_missing_data="breaching",
            )
        )
    beat = resources.beat_service_name
    specs.append(
        AlarmSpec(
            name="beat-tasks",
            summary="Celery Beat is not running exactly one task: none runs (no periodic tasks are sent) or more "
            "than one (every periodic task is sent twice). No data counts as breaching.",
            runbook="celery-beat.md",
            graph=RUNNING_TASKS,
            window=monitoring.beat_tasks,
            threshold=0,
            comparison="GreaterThanThreshold",
            metrics=(
                running_tasks(resources, beat, "Maximum", "Beat running (max)", "most"),
                running_tasks(resources, beat, "Minimum", "Beat running (min)", "fewest"),
            ),
            treat_missing_data="breaching",
            expression="IF(FILL(most, 0) > 1 OR FILL(fewest, 0) < 1, 1, 0)",
        )
    )
    return specs


def spot_capacity_specs(config: EnvironmentConfig, resources: MonitoredResources) -> list[AlarmSpec]:
    """One alarm per class on Fargate Spot: fewer tasks running than desired for the whole window. ECS keeps
    the tasks it cannot place on Spot pending, so the class runs on its on-demand floor meanwhile
    (docs/decisions/fargate-spot-per-class.md)."""
    window = config.monitoring.worker_spot_capacity
    specs = []
    for name, class_config in config.queues.items():
        capacity = class_config.worker.capacity
        if not capacity.uses_spot:
            continue
        service = resources.worker_service_names[name]
        minutes = window.period_seconds * window.evaluation_periods // 60
        specs.append(
            AlarmSpec(
                name=f"worker-{name}-spot-capacity",
                summary=f"Fewer worker tasks of class '{name}' running than desired for {minutes} minutes: tasks "
                f"stay pending, most likely because Fargate Spot has no capacity for them "
                f"({capacity.spot_percent}% of the tasks above the on-demand floor run on Spot). The "
                f"{capacity.on_demand_base} on-demand task(s) of the floor carry the class meanwhile; the queue "
                f"age alarm pages if that is not enough.",
                runbook="worker-spot-capacity.md",
                graph=RUNNING_TASKS,
                window=window,
                threshold=0,
                comparison="GreaterThanThreshold",
                metrics=(
                    service_metric(resources, service, "DesiredTaskCount", "Minimum", f"{name} desired", "desired"),
                    service_metric(resources, service, "RunningTaskCount", "Maximum", f"{name} running", "running"),
                ),
                treat_missing_data="notBreaching",
                expression="FILL(desired, 0) - FILL(running, 0)",
                severity="warning",
            )
        )
    return specs


def beat_tick_specs(config: EnvironmentConfig) -> list[AlarmSpec]:
    """Beat's fence, in either broker mode: ticks published by no Beat, and ticks a second Beat tried to publish
    (docs/decisions/beat-fence.md). Warnings: the tick is gone (a page would not bring it back), and a second Beat
    is a page of its own (``beat-tasks``) when ECS runs it."""
    window = config.monitoring.beat_ticks
    skipped, missed, fenced_off = (
        beat_tick_metric(config, contract.BEAT_TICKS_SKIPPED, "skipped"),
        beat_tick_metric(config, contract.BEAT_TICKS_MISSED, "missed"),
        beat_tick_metric(config, contract.BEAT_TICKS_FENCED_OFF, "fencedoff"),
    )
    return [
        AlarmSpec(
            name="beat-ticks-lost",
            summary="Periodic tasks due were sent by no Beat: skipped (the fence table could not be written, or the "
            "publish failed after the claim) or missed (they fell due while Beat was stalled). Beat's log names "
            "each tick; run the ones that matter by hand.",
            runbook="celery-beat.md",
            graph=BEAT_TICKS,
            window=window,
            threshold=0,
            comparison="GreaterThanThreshold",
            metrics=(skipped, missed),
            treat_missing_data="notBreaching",  # Beat not running at all is beat-tasks' alarm
            expression="FILL(skipped, 0) + FILL(missed, 0)",
            severity="warning",
        ),
        AlarmSpec(
            name="beat-ticks-fenced-off",
            summary="A Beat found due ticks already claimed by another: more than one Beat runs on this tier (the "
            "fence kept each tick single). Find and stop the extra one.",
            runbook="celery-beat.md",
            graph=BEAT_TICKS,
            window=window,
            threshold=0,
            comparison="GreaterThanThreshold",
            metrics=(fenced_off,),
            treat_missing_data="notBreaching",
            severity="warning",
        ),
    ]


def tier_alarm_specs(config: EnvironmentConfig, resources: MonitoredResources) -> list[AlarmSpec]:
    """Every alarm of one environment."""
    return (
        redis_specs(config, resources)
        + queue_specs(config, resources)
        + service_specs(config, resources)
        + spot_capacity_specs(config, resources)
        + beat_tick_specs(config)
    )


def _signals_without_alarms(config: EnvironmentConfig, resources: MonitoredResources) -> dict[str, list[MetricQuery]]:
    """What the dashboard shows beside the alarms' own metrics: the backlog that drives scaling (of the broker the
    mode uses), the running tasks of every service (classes that scale to zero have no floor alarm), and the ticks
    Beat published."""
    services = {
        **{f"worker {name}": resources.worker_service_names[name] for name in config.queues},
        "beat": resources.beat_service_name,
    }
    if config.compute.broker == "sqs":
        backlog = [
            queue_metric(resources.queue_names[name], "ApproximateNumberOfMessagesVisible", name)
            for name in config.queues
        ]
    else:
        backlog = [
            redis_broker_metric(config, name, metric, f"{name} {what}")
            for name in config.queues
            for metric, what in (
                (contract.REDIS_BACKLOG_WAITING, "waiting"),
                (contract.REDIS_BACKLOG_IN_PROGRESS, "in progress"),
            )
        ]
    return {
        graphs_of(config)[0]: backlog,
        RUNNING_TASKS: [running_tasks(resources, service, "Average", label) for label, service in services.items()],
        BEAT_TICKS: [
            beat_tick_metric(config, metric, metric.lower())
            for metric in (contract.BEAT_TICKS_PUBLISHED, contract.BEAT_TICKS_FENCED_OFF)
        ],
    }


def dashboard_graphs(config: EnvironmentConfig, resources: MonitoredResources, specs: list[AlarmSpec]) -> list[Graph]:
    """The graphs of the environment's mode (``graphs_of``): each alarm's metrics (once per metric) and threshold
    on the graph it names."""
    titles = graphs_of(config)
    metrics: dict[str, list[MetricQuery]] = {title: [] for title in titles}
    thresholds: dict[str, list[tuple[str, float]]] = {title: [] for title in titles}
    for title, queries in _signals_without_alarms(config, resources).items():
        metrics[title] += queries
    for spec in specs:
        metrics[spec.graph] += spec.metrics
        if spec.expression is None or spec.graph != RUNNING_TASKS:  # Beat's 0/1 expression is no line to draw
            thresholds[spec.graph].append((spec.name, spec.threshold))
    return [
        Graph(title=title, metrics=_distinct(metrics[title]), thresholds=tuple(thresholds[title])) for title in titles
    ]


def _distinct(queries: list[MetricQuery]) -> tuple[MetricQuery, ...]:
    """One line per metric (namespace, name, dimensions): the first statistic and label given win."""
    seen, kept = set(), []
    for query in queries:
        key = (query.namespace, query.metric_name, tuple(sorted(query.dimensions.items())))
        if key not in seen:
            seen.add(key)
            kept.append(query)
    return tuple(kept)


def fault_injection_stop_specs(specs: list[AlarmSpec]) -> list[AlarmSpec]:
    """The alarms that stop an AWS FIS experiment on the tier: every paging alarm except those the
    fault itself is expected to set off (``broker_tier_contract.EXPECTED_DURING_AZ_POWER``). Tasks reaching a
    dead-letter queue, queues ageing past their objective, workers or Beat not running, Redis
    memory nearly full or evicting: each means the experiment is hurting work, not just moving it."""
    expected = contract.EXPECTED_DURING_AZ_POWER
    return [spec for spec in specs if spec.severity == "page" and spec.name not in expected]

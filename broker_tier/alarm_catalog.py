"""What the tier alarms on, as data: one ``AlarmSpec`` per alarm, built from the configuration.

The specs are plain values (no CDK objects), so the alarms, the dashboard and the tests read
the same definitions, and the ops tool can name the same alarms. ``TierAlarms`` renders them.

ElastiCache publishes per node (``CacheClusterId``), and which node is primary changes with
every failover, so each Redis signal is one alarm on ``MAX([node, node, ...])`` over the
group's member clusters (``<replication-group-id>-001`` ...), not one alarm per node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import broker_tier_contract as contract

from broker_tier.config import AlarmWindow, EnvironmentConfig

Comparison = Literal["GreaterThanThreshold", "LessThanThreshold"]
MissingData = Literal["missing", "notBreaching", "breaching"]


@dataclass(frozen=True)
class MetricQuery:
    """One CloudWatch metric with its statistic; ``id`` names it inside an alarm's math."""

    id: str
    namespace: str
    metric_name: str
    dimensions: dict[str, str]
    statistic: str
    label: str


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm. ``expression`` combines ``metrics`` by id; without it the single metric is alarmed."""

    name: str
    """Suffix of the alarm name: ``broker-tier-<env>-<name>``."""
    summary: str
    """What the alarm means, for the operator (the description adds the runbook)."""
    runbook: str
    """File in ``runbooks/`` the operator opens."""
    window: AlarmWindow
    threshold: float
    comparison: Comparison
    metrics: tuple[MetricQuery, ...]
    treat_missing_data: MissingData
    expression: str | None = None
    severity: Literal["page", "warning"] = "page"


@dataclass(frozen=True)
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
    return tuple(MetricQuery(f"node{index}", "AWS/ElastiCache", metric_name, {"CacheClusterId": node},
                             statistic, node)
                 for index, node in enumerate(resources.cache_node_ids, start=1))


def queue_metric(queue_name: str, metric_name: str, label: str) -> MetricQuery:
    return MetricQuery("queue", "AWS/SQS", metric_name, {"QueueName": queue_name}, "Maximum", label)


def running_tasks(resources: MonitoredResources, service_name: str, statistic: str, label: str,
                  metric_id: str = "tasks") -> MetricQuery:
    return MetricQuery(metric_id, "ECS/ContainerInsights", "RunningTaskCount",
                       {"ClusterName": resources.cluster_name, "ServiceName": service_name}, statistic, label)


def _fullest_node(resources: MonitoredResources) -> str:
    return f"MAX([{', '.join(f'node{i}' for i in range(1, len(resources.cache_node_ids) + 1))}])"


def redis_specs(config: EnvironmentConfig, resources: MonitoredResources) -> list[AlarmSpec]:
    monitoring = config.monitoring
    memory, cpu = monitoring.redis_memory, monitoring.redis_engine_cpu
    lag, connections = monitoring.redis_replication_lag, monitoring.redis_connections

    def worst_node(name: str, summary: str, runbook: str, window: AlarmWindow, threshold: float, metric: str,
                   statistic: str, missing: MissingData = "missing", **options) -> AlarmSpec:
        return AlarmSpec(name, summary, runbook, window, threshold, "GreaterThanThreshold",
                         node_metrics(resources, metric, statistic), missing, _fullest_node(resources), **options)

    return [
        worst_node("redis-memory-warning", f"Redis memory above {memory.warning_percent:g}% of maxmemory on a node. "
                   f"Under noeviction a full Redis refuses every write (results, and the broker in redis mode).",
                   "redis-memory-pressure.md", memory, memory.warning_percent, "DatabaseMemoryUsagePercentage",
                   "Maximum", severity="warning"),
        worst_node("redis-memory-critical", f"Redis memory above {memory.critical_percent:g}% of maxmemory on a "
                   f"node: writes will soon be refused (noeviction).",
                   "redis-memory-pressure.md", memory, memory.critical_percent, "DatabaseMemoryUsagePercentage",
                   "Maximum"),
        worst_node("redis-engine-cpu", f"Redis engine CPU above {cpu.threshold_percent:g}% on a node (Redis runs "
                   f"commands on one thread; latency follows).",
                   "redis-engine-health.md", cpu, cpu.threshold_percent, "EngineCPUUtilization", "Average"),
        worst_node(contract.REPLICATION_LAG_ALARM, f"A Redis replica lags more than {lag.threshold_seconds:g} s: a "
                   f"failover now would lose those writes. Do not drill a failover.",
                   "redis-engine-health.md", lag, lag.threshold_seconds, "ReplicationLag", "Maximum",
                   "notBreaching"),  # the primary publishes no lag
        worst_node("redis-connections", f"More than {connections.threshold} connections on a Redis node (a "
                   f"connection leak, or clients reconnecting in a loop).",
                   "redis-engine-health.md", connections, connections.threshold, "CurrConnections", "Maximum"),
        worst_node("redis-evictions", "Redis evicted keys. The tier sets maxmemory-policy noeviction, so the "
                   "parameter group was changed: queued tasks and results are being deleted.",
                   "redis-memory-pressure.md", monitoring.redis_evictions, 0, "Evictions", "Sum", "notBreaching"),
    ]


def queue_specs(config: EnvironmentConfig, resources: MonitoredResources) -> list[AlarmSpec]:
    monitoring = config.monitoring
    specs = []
    for name, class_config in config.queues.items():
        specs.append(AlarmSpec(
            f"queue-{name}-age",
            f"The oldest message of queue class '{name}' is older than its latency objective "
            f"({class_config.latency_objective_seconds} s): workers are not keeping up, or not consuming.",
            "worker-backlog.md", monitoring.queue_age, class_config.latency_objective_seconds,
            "GreaterThanThreshold",
            (queue_metric(resources.queue_names[name], "ApproximateAgeOfOldestMessage", f"{name} oldest age"),),
            "notBreaching"))
        specs.append(AlarmSpec(
            f"dlq-{name}-messages",
            f"Messages in the dead-letter queue of class '{name}': tasks failed {class_config.max_receive_count} "
            f"receives and were moved there. Find the cause before you redrive.",
            "dead-letter-redrive.md", monitoring.dead_letter, 0, "GreaterThanThreshold",
            (queue_metric(resources.dead_letter_queue_names[name], "ApproximateNumberOfMessagesVisible",
                          f"{name} dead letters"),),
            "notBreaching"))
    return specs


def service_specs(config: EnvironmentConfig, resources: MonitoredResources) -> list[AlarmSpec]:
    monitoring = config.monitoring
    specs = []
    for name, class_config in config.queues.items():
        floor = class_config.worker.min_tasks
        if floor == 0:  # a class that scales to zero has no floor to fall below
            continue
        specs.append(AlarmSpec(
            f"worker-{name}-tasks",
            f"Fewer than {floor} running worker tasks for class '{name}' (its minimum): tasks fail to "
            f"start or keep stopping. No data counts as breaching.",
            "worker-backlog.md", monitoring.worker_tasks, floor, "LessThanThreshold",
            (running_tasks(resources, resources.worker_service_names[name], "Minimum", f"{name} running"),),
            "breaching"))
    beat = resources.beat_service_name
    specs.append(AlarmSpec(
        "beat-tasks",
        "Celery Beat is not running exactly one task: none runs (no periodic tasks are sent) or more "
        "than one (every periodic task is sent twice). No data counts as breaching.",
        "celery-beat.md", monitoring.beat_tasks, 0, "GreaterThanThreshold",
        (running_tasks(resources, beat, "Maximum", "Beat running (max)", "most"),
         running_tasks(resources, beat, "Minimum", "Beat running (min)", "fewest")),
        "breaching", expression="IF(FILL(most, 0) > 1 OR FILL(fewest, 0) < 1, 1, 0)"))
    return specs


def tier_alarm_specs(config: EnvironmentConfig, resources: MonitoredResources) -> list[AlarmSpec]:
    """Every alarm of one environment."""
    return redis_specs(config, resources) + queue_specs(config, resources) + service_specs(config, resources)


# What an AZ power interruption of the cache is expected to set off, so it must not stop the
# experiment: the nodes of the powered-off AZ stop replicating and resynchronize afterwards (lag),
# and every client reconnects to the new primary (connections).
EXPECTED_DURING_AZ_POWER = frozenset({contract.REPLICATION_LAG_ALARM, "redis-connections"})


def fault_injection_stop_specs(specs: list[AlarmSpec]) -> list[AlarmSpec]:
    """The alarms that stop an AWS FIS experiment on the tier: every paging alarm except those the
    fault itself is expected to set off (``EXPECTED_DURING_AZ_POWER``). Tasks reaching a
    dead-letter queue, queues ageing past their objective, workers or Beat not running, Redis
    memory nearly full or evicting: each means the experiment is hurting work, not just moving it."""
    return [spec for spec in specs if spec.severity == "page" and spec.name not in EXPECTED_DURING_AZ_POWER]


"""``status``: the tier's health on one screen (or as JSON), the first command of every runbook.

It shows the replication group's state, each node's role, AZ and memory (DatabaseMemoryUsagePercentage),
each replica's lag (ReplicationLag), each class's queue depth and oldest message age
(ApproximateAgeOfOldestMessage: a CloudWatch metric, not a queue attribute), each dead-letter queue's
depth, each service's running and desired tasks, and the tier's alarms in ALARM. In redis broker mode the
classes' lines are the Redis broker's instead (what Beat publishes every minute: messages waiting and in
progress, the oldest waiting message's age, the messages in progress past the class's visibility time-out);
the SQS queues, which that mode leaves empty, are not read. In either mode it sums Beat's tick counts over the
last 15 minutes and fails when a due tick was sent by no Beat (skipped or missed), and shows Redis's biggest
databases with their share of keys without a TTL (what Beat publishes every minute from ``INFO keyspace``: the
operator's laptop cannot reach Redis). It changes nothing.
A section it cannot read is shown as unavailable with the reason; the rest is still shown.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TextIO

import broker_tier_contract as contract
from broker_tier.evidence.errors import classify
from broker_tier.evidence.report import Check, Report, utc_now
from broker_tier.ops.command import Command
from broker_tier.ops.readings import (
    ECS_DESCRIBE_LIMIT,
    MetricQuery,
    alarms_in_alarm,
    latest_values,
    queue_counts,
    window_sums,
)
from broker_tier.ops.replication_group import describe_group
from broker_tier.ops.resources import TierResources

METRIC_WINDOW = timedelta(minutes=15)
KEYSPACE_SHOWN = 3
"""The biggest databases shown on the screen (``--json`` has them all)."""
"""How far back the latest CloudWatch datapoint is looked for (ElastiCache and SQS publish every minute)."""


@dataclass
class NodeStatus:
    cluster_id: str
    role: str
    zone: str
    memory_percent: float | None = None
    """DatabaseMemoryUsagePercentage, latest minute (None: no data in the window)."""
    replication_lag_seconds: float | None = None
    """ReplicationLag, latest minute; replicas only."""


@dataclass
class QueueStatus:
    class_name: str
    queue_name: str
    queue_url: str
    dead_letter_url: str
    visible: int | None = None
    in_flight: int | None = None
    oldest_age_seconds: float | None = None
    """ApproximateAgeOfOldestMessage, latest minute (None: no data in the window)."""
    dead_letters_visible: int | None = None
    dead_letters_in_flight: int | None = None


@dataclass
class RedisBrokerStatus:
    """redis broker mode: one class's messages in Redis, as Beat last published them (None: no data in the window)."""

    class_name: str
    waiting: float | None = None
    in_progress: float | None = None
    oldest_age_seconds: float | None = None
    overdue: float | None = None
    """In the class's unacked record for longer than its visibility time-out."""


REDIS_BROKER_METRICS = {
    "waiting": contract.REDIS_BACKLOG_WAITING,
    "in_progress": contract.REDIS_BACKLOG_IN_PROGRESS,
    "oldest_age_seconds": contract.REDIS_OLDEST_MESSAGE_AGE,
    "overdue": contract.REDIS_MESSAGES_OVERDUE,
}
"""``RedisBrokerStatus`` field -> the metric Beat publishes for it."""


@dataclass
class DatabaseKeys:
    """One Redis database, as Beat last published its ``INFO keyspace`` line."""

    database: int
    keys: float | None = None
    without_ttl: float | None = None
    """``keys - expires``: keys that stay until deleted (under noeviction, they fill Redis)."""

    @property
    def without_ttl_percent(self) -> float | None:
        if not self.keys or self.without_ttl is None:
            return None
        return round(100 * self.without_ttl / self.keys, 1)


@dataclass
class ServiceStatus:
    process: str
    service_name: str
    running: int | None = None
    desired: int | None = None
    pending: int | None = None
    deployments: int | None = None
    missing: bool = False


@dataclass
class TierStatus:
    environment: str
    region: str | None
    read_at: str
    replication_group_id: str
    group_status: str | None = None
    multi_az: str | None = None
    automatic_failover: str | None = None
    nodes: list[NodeStatus] = field(default_factory=list)
    queues: list[QueueStatus] = field(default_factory=list)
    broker: str | None = None
    """``sqs`` or ``redis`` (the Compute stack's output); None: unknown, read as sqs."""
    redis_broker: list[RedisBrokerStatus] = field(default_factory=list)
    """redis broker mode only: each class's messages in Redis."""
    services: list[ServiceStatus] = field(default_factory=list)
    beat_ticks: dict[str, float] | None = None
    """Beat's tick counts over ``METRIC_WINDOW`` by metric (``TicksPublished``, ...); None: not read; {}: Beat
    published none in the window."""
    alarms_in_alarm: list[str] | None = None
    """None: unknown (no Monitoring stack, or the alarms could not be read)."""
    keyspace: list[DatabaseKeys] = field(default_factory=list)
    """Redis's databases, most keys first (empty: Beat published none in the window)."""
    unavailable: dict[str, str] = field(default_factory=dict)
    """Section name -> why it could not be read (one line)."""


class StatusReader:
    """Reads every section of a ``TierStatus``; a section that fails is recorded as unavailable."""

    def __init__(self, clients: dict, resources: TierResources, *, now: Callable[[], datetime] = utc_now) -> None:
        self.clients, self.resources, self.now = clients, resources, now
        self.errors: list[BaseException] = []

    def read(self) -> TierStatus:
        resources = self.resources
        status = TierStatus(
            environment=resources.environment,
            region=self.clients["sqs"].meta.region_name,
            read_at=self.now().isoformat(timespec="seconds"),
            replication_group_id=resources.replication_group_id,
        )
        status.queues = [
            QueueStatus(name, pair.queue_arn.rsplit(":", 1)[-1], pair.queue_url, pair.dead_letter_url)
            for name, pair in resources.queues.items()
        ]
        status.services = [ServiceStatus(process, name) for process, name in resources.service_names.items()]
        status.broker = resources.broker
        if status.broker == "redis":
            status.redis_broker = [RedisBrokerStatus(name) for name in resources.queues]
        for section, read in (
            ("replication group", self._group),
            ("queues", self._queues),
            ("metrics", self._metrics),
            ("services", self._services),
            ("beat ticks", self._beat_ticks),
            ("alarms", self._alarms),
            ("keyspace", self._keyspace),
        ):
            try:
                read(status)
            except Exception as error:  # the other sections are still worth showing
                self.errors.append(error)
                status.unavailable[section] = classify(error).line
        return status

    def _group(self, status: TierStatus) -> None:
        if not status.replication_group_id:
            return
        group = describe_group(self.clients["elasticache"], status.replication_group_id)
        status.group_status, status.multi_az, status.automatic_failover = (
            group.status,
            group.multi_az,
            group.automatic_failover,
        )
        status.nodes = [NodeStatus(node.cluster_id, node.role, node.zone) for node in group.nodes]

    def _queues(self, status: TierStatus) -> None:
        if status.broker == "redis":
            return  # the mode leaves the SQS queues empty: the Redis broker's lines come from the metrics
        sqs = self.clients["sqs"]
        for row in status.queues:
            pair = self.resources.queues[row.class_name]
            work, dead = queue_counts(sqs, pair.queue_url), queue_counts(sqs, pair.dead_letter_url)
            row.visible, row.in_flight = work["visible"], work["in_flight"]
            row.dead_letters_visible, row.dead_letters_in_flight = dead["visible"], dead["in_flight"]

    def _metrics(self, status: TierStatus) -> None:
        queries = [
            MetricQuery(
                ("memory", node.cluster_id),
                "AWS/ElastiCache",
                "DatabaseMemoryUsagePercentage",
                {"CacheClusterId": node.cluster_id},
            )
            for node in status.nodes
        ]
        queries += [
            MetricQuery(
                ("lag", node.cluster_id), "AWS/ElastiCache", "ReplicationLag", {"CacheClusterId": node.cluster_id}
            )
            for node in status.nodes
            if node.role == "replica"
        ]
        if status.broker != "redis":
            queries += [
                MetricQuery(
                    ("age", row.queue_name), "AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": row.queue_name}
                )
                for row in status.queues
            ]
        environment, queue_class = contract.REDIS_BACKLOG_DIMENSIONS
        queries += [
            MetricQuery(
                (field_name, row.class_name),
                contract.REDIS_BACKLOG_NAMESPACE,
                metric,
                {environment: status.environment, queue_class: row.class_name},
            )
            for row in status.redis_broker
            for field_name, metric in REDIS_BROKER_METRICS.items()
        ]
        if not queries:
            return
        values = latest_values(self.clients["cloudwatch"], queries, end=self.now(), window=METRIC_WINDOW)
        for node in status.nodes:
            node.memory_percent = _value(values, ("memory", node.cluster_id))
            node.replication_lag_seconds = _value(values, ("lag", node.cluster_id))
        for row in status.queues:
            row.oldest_age_seconds = _value(values, ("age", row.queue_name))
        for redis_row in status.redis_broker:
            for field_name in REDIS_BROKER_METRICS:
                setattr(redis_row, field_name, _value(values, (field_name, redis_row.class_name)))

    def _services(self, status: TierStatus) -> None:
        cluster = self.resources.cluster_name
        if not (cluster and status.services):
            return
        by_name = {row.service_name: row for row in status.services}
        names = list(by_name)
        for start in range(0, len(names), ECS_DESCRIBE_LIMIT):
            described = self.clients["ecs"].describe_services(
                cluster=cluster, services=names[start : start + ECS_DESCRIBE_LIMIT]
            )
            for service in described["services"]:
                row = by_name[service["serviceName"]]
                row.running, row.desired, row.pending = (
                    service["runningCount"],
                    service["desiredCount"],
                    service["pendingCount"],
                )
                row.deployments = len(service.get("deployments", []))
            for failure in described.get("failures", []):
                name = failure.get("arn", "").rsplit("/", 1)[-1]
                if name in by_name:
                    by_name[name].missing = True

    def _beat_ticks(self, status: TierStatus) -> None:
        """Beat's tick counts (``broker_tier_celery.beat_fence``), summed over the window."""
        dimensions = {contract.BEAT_DIMENSIONS[0]: status.environment}
        queries = [
            MetricQuery(("ticks", name), contract.BEAT_NAMESPACE, name, dimensions, statistic="Sum")
            for name in contract.BEAT_TICK_METRICS
        ]
        sums = window_sums(self.clients["cloudwatch"], queries, end=self.now(), window=METRIC_WINDOW)
        status.beat_ticks = {
            name: sums[("ticks", name)] for name in contract.BEAT_TICK_METRICS if ("ticks", name) in sums
        }

    def _alarms(self, status: TierStatus) -> None:
        if self.resources.alarm_name_prefix:
            status.alarms_in_alarm = alarms_in_alarm(self.clients["cloudwatch"], self.resources.alarm_name_prefix)

    def _keyspace(self, status: TierStatus) -> None:
        """Every database Beat publishes for this environment (ListMetrics), its latest keys and keys without TTL."""
        cloudwatch = self.clients["cloudwatch"]
        environment, database = contract.REDIS_KEYSPACE_DIMENSIONS
        numbers: set[int] = set()
        for page in cloudwatch.get_paginator("list_metrics").paginate(
            Namespace=contract.REDIS_KEYSPACE_NAMESPACE,
            MetricName=contract.REDIS_KEYSPACE_KEYS,
            Dimensions=[{"Name": environment, "Value": status.environment}],
        ):
            for metric in page["Metrics"]:
                value = {d["Name"]: d["Value"] for d in metric["Dimensions"]}.get(database, "")
                if value.isdigit():
                    numbers.add(int(value))
        queries = [
            MetricQuery(
                (metric, str(number)),
                contract.REDIS_KEYSPACE_NAMESPACE,
                metric,
                {environment: status.environment, database: str(number)},
            )
            for number in sorted(numbers)
            for metric in (contract.REDIS_KEYSPACE_KEYS, contract.REDIS_KEYSPACE_KEYS_WITHOUT_TTL)
        ]
        if not queries:
            return
        values = latest_values(cloudwatch, queries, end=self.now(), window=METRIC_WINDOW)
        rows = [
            DatabaseKeys(
                number,
                _value(values, (contract.REDIS_KEYSPACE_KEYS, str(number))),
                _value(values, (contract.REDIS_KEYSPACE_KEYS_WITHOUT_TTL, str(number))),
            )
            for number in numbers
        ]
        status.keyspace = sorted((r for r in rows if r.keys is not None), key=lambda r: (-(r.keys or 0), r.database))


def _value(values: dict, key: tuple[str, str]) -> float | None:
    found = values.get(key)
    return None if found is None else found[0]


def health_checks(status: TierStatus) -> list[Check]:
    """What ``status`` judges: a check is skipped (None) when its section could not be read."""
    services = [row for row in status.services if row.running is not None or row.missing]
    off = [
        f"{row.service_name} {'missing' if row.missing else f'{row.running}/{row.desired}'}"
        for row in services
        if row.missing or row.running != row.desired
    ]
    dead = {
        row.class_name: (row.dead_letters_visible or 0) + (row.dead_letters_in_flight or 0)
        for row in status.queues
        if row.dead_letters_visible is not None
    }
    checks = [
        Check(
            "replication_group_available",
            None if status.group_status is None else status.group_status == "available",
            f"status is {status.group_status or 'unknown'}",
        ),
        Check(
            "services_at_desired_count",
            None if not services else not off,
            f"not at desired count: {', '.join(off)}" if off else f"{len(services)} services running as desired",
        ),
        Check(
            "dead_letter_queues_empty",
            None if not dead else not any(dead.values()),
            ", ".join(f"{name}: {count}" for name, count in dead.items())
            or ("not in use in redis broker mode" if status.broker == "redis" else "no queues known"),
        ),
        Check(
            "no_alarm_in_alarm",
            None if status.alarms_in_alarm is None else not status.alarms_in_alarm,
            f"in ALARM: {', '.join(status.alarms_in_alarm) or 'none'}"
            if status.alarms_in_alarm is not None
            else "alarms unknown (no Monitoring stack, or not readable)",
        ),
    ]
    if status.broker == "redis":
        checks.append(_redis_overdue_check(status))
    checks.append(_beat_ticks_check(status))
    return checks


def _beat_ticks_check(status: TierStatus) -> Check:
    """Every tick that fell due in the window was sent by one Beat: none skipped (the fence could not be written, or
    the publish failed after the claim), none missed (due while Beat was stalled)."""
    ticks = status.beat_ticks
    if not ticks:
        why = "not read" if ticks is None else f"Beat published no tick counts in the last {_minutes()} min"
        return Check("beat_ticks_none_lost", None, why)
    lost = {name: int(ticks.get(name, 0)) for name in (contract.BEAT_TICKS_SKIPPED, contract.BEAT_TICKS_MISSED)}
    return Check(
        "beat_ticks_none_lost",
        not any(lost.values()),
        f"last {_minutes()} min: "
        + ", ".join(f"{name} {int(count)}" for name, count in ticks.items())
        + ("" if not any(lost.values()) else " (Beat's log names each lost tick: runbooks/celery-beat.md)"),
    )


def _minutes() -> int:
    return int(METRIC_WINDOW.total_seconds() // 60)


def _redis_overdue_check(status: TierStatus) -> Check:
    """redis broker mode: no class has messages in progress past its visibility time-out."""
    known = {row.class_name: int(row.overdue) for row in status.redis_broker if row.overdue is not None}
    return Check(
        "redis_broker_nothing_overdue",
        None if not known else not any(known.values()),
        ", ".join(f"{name}: {count}" for name, count in known.items())
        or "unknown (Beat published no MessagesOverdue in the window)",
    )


def _number(value: float | int | None, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}{unit}" if isinstance(value, float) else f"{value}{unit}"


def render(status: TierStatus, checks: list[Check]) -> str:
    """The one-screen view."""
    lines = [f"broker-tier {status.environment} in {status.region or '?'} at {status.read_at}"]
    group = (
        f"{status.group_status}; Multi-AZ {status.multi_az}, automatic failover {status.automatic_failover}"
        if status.group_status
        else "unknown"
    )
    lines.append(f"cache     {status.replication_group_id or '(not given)'}: {group}")
    for node in status.nodes:
        lag = f"  lag {_number(node.replication_lag_seconds, ' s')}" if node.role == "replica" else ""
        lines.append(
            f"  {node.role:<8}{node.cluster_id:<28}{node.zone:<12}memory {_number(node.memory_percent, '%')}{lag}"
        )
    if status.redis_broker:
        lines += _redis_broker_lines(status)
    elif status.queues:
        lines.append(f"queues    {'class':<14}{'visible':>8}{'in flight':>10}{'oldest':>10}{'dead letters':>14}")
        for row in status.queues:
            dead = (
                "-"
                if row.dead_letters_visible is None
                else f"{row.dead_letters_visible}"
                + (f" (+{row.dead_letters_in_flight})" if row.dead_letters_in_flight else "")
            )
            lines.append(
                f"          {row.class_name:<14}{_number(row.visible):>8}{_number(row.in_flight):>10}"
                f"{_number(row.oldest_age_seconds, ' s', 0):>10}{dead:>14}"
            )
    if status.services:
        lines.append(f"services  {'service':<34}running/desired")
        for service in status.services:
            count = (
                "missing"
                if service.missing
                else f"{_number(service.running)}/{_number(service.desired)}"
                + (f" ({service.pending} pending)" if service.pending else "")
                + (f" ({service.deployments} deployments)" if service.deployments and service.deployments > 1 else "")
            )
            lines.append(f"          {service.service_name:<34}{count}")
    if status.beat_ticks:
        counts = ", ".join(f"{name} {int(count)}" for name, count in status.beat_ticks.items())
        lines.append(f"beat      ticks in the last {_minutes()} min: {counts}")
    lines += _keyspace_lines(status)
    alarms = "unknown" if status.alarms_in_alarm is None else ", ".join(status.alarms_in_alarm) or "none"
    lines.append(f"alarms    in ALARM: {alarms}")
    for section, why in status.unavailable.items():
        lines.append(f"UNAVAILABLE {section}: {why}")
    lines += [f"{check.mark}  {check.name}: {check.detail}" for check in checks if check.passed is not True]
    return "\n".join(lines)


def _keyspace_lines(status: TierStatus) -> list[str]:
    if not status.keyspace:
        return []
    lines = [f"keyspace  {'database':<14}{'keys':>8}{'no TTL':>10}"]
    for database in status.keyspace[:KEYSPACE_SHOWN]:
        percent = database.without_ttl_percent
        share = "-" if percent is None else f"{percent:g}%"
        lines.append(f"          {'db' + str(database.database):<14}{_number(database.keys, digits=0):>8}{share:>10}")
    return lines


def _redis_broker_lines(status: TierStatus) -> list[str]:
    lines = [f"redis     {'class':<14}{'waiting':>8}{'in progress':>12}{'oldest':>10}{'overdue':>9}"]
    for row in status.redis_broker:
        lines.append(
            f"          {row.class_name:<14}{_number(row.waiting, digits=0):>8}{_number(row.in_progress, digits=0):>12}"
            f"{_number(row.oldest_age_seconds, ' s', 0):>10}{_number(row.overdue, digits=0):>9}"
        )
    return lines


def show(status_report: Report, reader: StatusReader, *, as_json: bool, out: TextIO) -> Report:
    """Read, judge and print (the verdict, then the screen; or JSON); fills ``status_report``."""
    status = reader.read()
    checks = health_checks(status)
    status_report.steady_state.extend(checks)  # shown on the screen, not again as progress lines
    status_report.measurements.update(
        {key: value for key, value in asdict(status).items() if key not in ("environment", "read_at")}
    )
    unhealthy = [check.name for check in checks if check.passed is False]
    if reader.errors:
        status_report.abort(reader.errors[0])
    elif unhealthy:
        status_report.finish("failed", f"the tier is not healthy: {', '.join(unhealthy)}")
    else:
        status_report.finish("passed")
    print(
        json.dumps(
            {"verdict": status_report.verdict, "status": asdict(status), "checks": [asdict(check) for check in checks]},
            indent=2,
            default=str,
        )
        if as_json
        else f"{status_report.verdict}\n\n{render(status, checks)}",
        file=out,
        flush=True,
    )
    return status_report


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of the screen")


def _run(args: argparse.Namespace, resources: TierResources, clients: dict) -> Report:
    report = Report("status", args.env, resources.replication_group_id or "(no cache)", dry_run=False)
    return show(report, StatusReader(clients, resources), as_json=args.json, out=sys.stdout)


COMMAND = Command(
    name="status",
    help="the tier's health on one screen: cache, queues, services, alarms",
    description="The tier's health on one screen (or --json): the cache's state, each node's role, AZ, memory and "
    "lag, each class's queue depth, oldest age and dead letters, each service's running and desired tasks, the "
    "alarms in ALARM. Reads AWS, changes nothing; exits 1 when unhealthy. The first command of every runbook.",
    add_arguments=_add_arguments,
    run=_run,
    usage="--env ENV",
    replication_group_option=True,
)

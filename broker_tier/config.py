"""The one typed configuration model of broker-tier, read from ``cdk.json`` context.

``cdk.json`` holds ``context["broker-tier"]`` with a ``defaults`` block and one block per
environment under ``environments``; each environment is ``defaults`` deep-merged with its
own block, then validated here before any construct is built. Unknown keys are rejected.
Every error names the environment, the key, the value and what is allowed.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CONTEXT_KEY = "broker-tier"

# Seconds added on top of the longest time a worker can hold a message before it acks it.
VISIBILITY_MARGIN_SECONDS = 60
SQS_MAX_VISIBILITY_SECONDS = 43_200  # 12 h, SQS's own ceiling
SQS_MAX_RETENTION_SECONDS = 1_209_600  # 14 days
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653)

# Engine -> engine version -> the only parameter-group family that version accepts.
ENGINE_FAMILIES: dict[str, dict[str, str]] = {
    "redis": {"6.2": "redis6.x", "7.0": "redis7", "7.1": "redis7"},
    "valkey": {"7.2": "valkey7", "8.0": "valkey8", "8.1": "valkey8"},
}

# Parameters the tier owns: a different value would break the guarantees it is built on.
RESERVED_PARAMETERS = {
    "maxmemory-policy": "is fixed to 'noeviction': an evicting policy silently deletes queued "
                        "tasks and results under memory pressure",
    "appendonly": "is not allowed: AOF is unsupported with Multi-AZ (use snapshots; the replica is "
                  "the durability)",
    "appendfsync": "is not allowed: AOF is unsupported with Multi-AZ",
}

_NODE_TYPE = re.compile(r"^cache\.(?P<cls>[a-z]+)(?P<gen>\d+)(?P<suffix>[a-z]*)\.(?P<size>\S+)$")
_HHMM = r"([01]\d|2[0-3]):[0-5]\d"
_DAY = r"(mon|tue|wed|thu|fri|sat|sun)"
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ConfigError(Exception):
    """A configuration that must not be synthesized. ``str()`` is the operator's message."""


class InvalidValue(ValueError):
    """A cross-field check that failed on one key of the model it was raised in."""

    def __init__(self, key: str, value: Any, allowed: str):
        super().__init__(allowed)
        self.key, self.value, self.allowed = key, value, allowed


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _window_length(start: int, end: int, period: int) -> int:
    return (end - start) % period


class NetworkConfig(_Model):
    """Where the tier runs."""

    vpc_id: str | None = Field(None, pattern=r"^vpc-[0-9a-f]{8,17}$")
    """An existing VPC to use instead of creating one. Needs ``account`` and ``region`` and
    credentials at synth time (a context look-up). Default: None (a new VPC)."""
    cidr: str = Field("10.64.0.0/16", pattern=r"^\d{1,3}(\.\d{1,3}){3}/(1[6-9]|2[0-4])$")
    """CIDR of the new VPC. Default: 10.64.0.0/16."""
    max_azs: int = Field(2, ge=2, le=3)
    """Availability zones of the new VPC (private subnets in each). Default: 2."""
    nat_gateways: int = Field(1, ge=1, le=3)
    """NAT gateways (one per AZ removes the single point of egress). Default: 1."""
    flow_log_retention_days: int = 30
    """Retention of the VPC flow logs. Default: 30."""

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return _check_log_retention(value)

    @model_validator(mode="after")
    def _nat_within_azs(self) -> "NetworkConfig":
        if self.nat_gateways > self.max_azs:
            raise InvalidValue("nat_gateways", self.nat_gateways,
                               f"at most max_azs ({self.max_azs}): one NAT gateway per AZ")
        return self


def _check_log_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"one of CloudWatch Logs' retention periods {list(LOG_RETENTION_DAYS)}")
    return value


class DatabaseLayout(_Model):
    """Which logical Redis database holds what (seed 003's layout)."""

    cache: int = Field(0, ge=0, le=15)
    """The application's cache (e.g. django-redis). Default: 0."""
    broker: int = Field(1, ge=0, le=15)
    """The Celery broker, when ``broker`` is ``redis``. Default: 1."""
    results: int = Field(2, ge=0, le=15)
    """The Celery result backend. Default: 2."""

    @model_validator(mode="after")
    def _distinct(self) -> "DatabaseLayout":
        seen: dict[int, str] = {}
        for name in ("cache", "broker", "results"):
            number = getattr(self, name)
            if number in seen:
                raise InvalidValue(name, number, f"a database not already used by '{seen[number]}'")
            seen[number] = name
        return self


class CacheConfig(_Model):
    """The ElastiCache replication group (cluster mode disabled, Multi-AZ always on)."""

    engine: Literal["redis", "valkey"] = "redis"
    """Cache engine. Default: redis."""
    engine_version: str = "7.1"
    """Engine version; must be one ElastiCache offers for ``engine``. Default: 7.1."""
    parameter_group_family: str | None = None
    """Parameter-group family; must match engine and version. Default: derived from them."""
    node_type: str = "cache.m7g.large"
    """Node type; m- or r-class only (Multi-AZ). Changed in place. Default: cache.m7g.large."""
    replicas: int = Field(1, ge=1, le=5)
    """Read replicas beside the primary (at least one for Multi-AZ). Default: 1."""
    port: int = Field(6380, ge=1024, le=65535)
    """Port; not 6379 (cdk-nag AEC5). Changing it replaces the cluster. Default: 6380."""
    replication_group_id: str | None = Field(None, pattern=r"^[a-z]([a-z0-9]|-[a-z0-9]){0,39}$")
    """Explicit id, so that CloudFormation refuses a replacement. Default: broker-tier-<env>."""
    parameters: dict[str, str] = Field(default_factory=dict)
    """Further engine parameters for the custom parameter group. Default: none."""
    snapshot_retention_days: int = Field(7, ge=1, le=35)
    """Days of automatic snapshots. Default: 7."""
    snapshot_window: str = Field("03:00-04:00", pattern=rf"^{_HHMM}-{_HHMM}$")
    """Daily snapshot window (UTC), at least 60 minutes. Default: 03:00-04:00."""
    maintenance_window: str = Field("sun:05:00-sun:06:00", pattern=rf"^{_DAY}:{_HHMM}-{_DAY}:{_HHMM}$")
    """Weekly maintenance window (UTC), at least 60 minutes. Default: sun:05:00-sun:06:00."""
    log_retention_days: int = 30
    """Retention of the slow-log and engine-log groups. Default: 30."""
    deletion_policy: Literal["snapshot", "retain", "delete"] = "snapshot"
    """What CloudFormation does to the cluster on stack deletion. Production: snapshot only.
    Default: snapshot."""
    databases: DatabaseLayout = Field(default_factory=DatabaseLayout)
    """Logical database layout. Default: cache 0, broker 1, results 2."""

    @field_validator("node_type")
    @classmethod
    def _node_type(cls, value: str) -> str:
        match = _NODE_TYPE.match(value)
        allowed = ("an m- or r-class node type such as cache.m7g.large or cache.r7g.xlarge: "
                   "Multi-AZ is always on, and t-class nodes do not give the failover behaviour "
                   "the tier relies on (seed 000)")
        if not match or match["cls"] not in ("m", "r") or match["size"] in ("micro", "small", "medium"):
            raise ValueError(allowed)
        if "d" in match["suffix"]:
            raise ValueError(allowed + "; data-tiering (…gd) types need DataTieringEnabled, which "
                                       "forces replacement, and are not supported")
        return value

    @field_validator("port")
    @classmethod
    def _port(cls, value: int) -> int:
        if value == 6379:
            raise ValueError("any port from 1024 to 65535 except the default 6379 (cdk-nag AEC5)")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return _check_log_retention(value)

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, str]) -> dict[str, str]:
        for name, setting in value.items():
            if name == "maxmemory-policy" and setting == "noeviction":
                continue
            if name in RESERVED_PARAMETERS:
                raise InvalidValue(name, setting, f"'{name}' {RESERVED_PARAMETERS[name]}")
        return value

    @model_validator(mode="after")
    def _engine_family_windows(self) -> "CacheConfig":
        versions = ENGINE_FAMILIES[self.engine]
        if self.engine_version not in versions:
            raise InvalidValue("engine_version", self.engine_version,
                               f"one of {sorted(versions)} for engine '{self.engine}'")
        family = versions[self.engine_version]
        if self.parameter_group_family not in (None, family):
            raise InvalidValue(
                "parameter_group_family", self.parameter_group_family,
                f"'{family}', the only family for {self.engine} {self.engine_version} (a family that "
                f"does not match the engine version fails the deployment)")
        snap_start, snap_end = (_minutes(t) for t in self.snapshot_window.split("-"))
        if _window_length(snap_start, snap_end, 1440) < 60:
            raise InvalidValue("snapshot_window", self.snapshot_window, "a window of at least 60 minutes")
        maint = [(_DAYS.index(part[:3]) * 1440 + _minutes(part[4:]))
                 for part in self.maintenance_window.split("-")]
        maint_length = _window_length(maint[0], maint[1], 10080)
        if maint_length < 60 or maint_length > 24 * 60:
            raise InvalidValue("maintenance_window", self.maintenance_window,
                               "a window of 60 minutes to 24 hours")
        snap_length = _window_length(snap_start, snap_end, 1440)
        for day in range(7):
            start = day * 1440 + snap_start
            if _overlaps(start, snap_length, maint[0], maint_length, 10080):
                raise InvalidValue("maintenance_window", self.maintenance_window,
                                   f"a window that does not overlap snapshot_window "
                                   f"({self.snapshot_window} daily); ElastiCache rejects overlapping windows")
        return self

    @property
    def family(self) -> str:
        return ENGINE_FAMILIES[self.engine][self.engine_version]


def _overlaps(start_a: int, length_a: int, start_b: int, length_b: int, period: int) -> bool:
    return (start_b - start_a) % period < length_a or (start_a - start_b) % period < length_b


# Fargate CPU units -> the memory sizes (MiB) a task of that size may have.
FARGATE_MEMORY: dict[int, range] = {
    256: (512, 1024, 2048),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}


class _FargateSize(_Model):
    cpu: int = 512
    """Fargate CPU units of one task. Default: 512 (256 for Beat)."""
    memory_mib: int = 1024
    """Memory of one task; must be a size Fargate offers for ``cpu``. Default: 1024 (512 for Beat)."""

    @model_validator(mode="after")
    def _fargate_combination(self) -> "_FargateSize":
        if self.cpu not in FARGATE_MEMORY:
            raise InvalidValue("cpu", self.cpu, f"one of Fargate's CPU sizes {sorted(FARGATE_MEMORY)}")
        sizes = FARGATE_MEMORY[self.cpu]
        if self.memory_mib not in sizes:
            raise InvalidValue("memory_mib", self.memory_mib,
                               f"a memory size Fargate offers with cpu {self.cpu}: {list(sizes)[0]} to "
                               f"{list(sizes)[-1]} MiB in steps of {list(sizes)[1] - list(sizes)[0]}")
        return self


class WorkerConfig(_FargateSize):
    """The Fargate service of Celery workers that consumes one latency class's queue."""

    concurrency: int = Field(2, ge=1, le=64)
    """Celery worker processes per task (``--concurrency``). Default: 2."""
    min_tasks: int = Field(1, ge=0, le=100)
    """Fewest running tasks; 0 lets the class scale to zero (it scales out on one message). Default: 1."""
    max_tasks: int = Field(4, ge=1, le=100)
    """Most running tasks. Default: 4."""
    backlog_per_task_target: int = Field(20, ge=1, le=10_000)
    """Target of visible messages per running task: acceptable latency / average task time.
    Default: 20."""

    @model_validator(mode="after")
    def _bounds(self) -> "WorkerConfig":
        if self.max_tasks < self.min_tasks:
            raise InvalidValue("max_tasks", self.max_tasks, f"at least min_tasks ({self.min_tasks})")
        return self


class BeatConfig(_FargateSize):
    """The one Celery Beat. Its count and deployment limits are fixed: two Beats send every periodic
    task twice, and a rolling deployment with maximum 200 % briefly runs two."""

    cpu: int = 256
    memory_mib: int = 512
    desired_count: int = 1
    """Fixed to 1."""
    maximum_percent: int = 100
    """Fixed to 100: the new Beat starts only after the old one stopped."""
    minimum_healthy_percent: int = 0
    """Fixed to 0: the old Beat stops before the new one starts."""

    @model_validator(mode="after")
    def _exactly_one(self) -> "BeatConfig":
        for key, fixed in (("desired_count", 1), ("maximum_percent", 100), ("minimum_healthy_percent", 0)):
            if getattr(self, key) != fixed:
                raise InvalidValue(key, getattr(self, key),
                                   f"only {fixed}: exactly one Celery Beat may run, and never two during a "
                                   f"deployment, or every periodic task is sent twice")
        return self


class ImageConfig(_Model):
    """An existing image in an ECR repository of the same account, instead of the reference worker."""

    repository_name: str = Field(pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$")
    """ECR repository name."""
    tag: str | None = Field(None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    """Image tag. Default: None (give ``tag`` or ``digest``)."""
    digest: str | None = Field(None, pattern=r"^sha256:[0-9a-f]{64}$")
    """Image digest (preferred: immutable). Default: None."""

    @model_validator(mode="after")
    def _one_reference(self) -> "ImageConfig":
        if (self.tag is None) == (self.digest is None):
            raise InvalidValue("tag", self.tag, "exactly one of 'tag' or 'digest'")
        return self


class ComputeConfig(_Model):
    """ECS Fargate services: one worker service per queue class, and one Beat."""

    broker: Literal["sqs", "redis"] = "sqs"
    """Celery broker: ``sqs`` (durable, dead-letter redrive) or ``redis`` (the layout's broker DB).
    Redis is the result backend either way. Default: sqs."""
    cpu_architecture: Literal["X86_64", "ARM64"] = "X86_64"
    """CPU architecture of the tasks (and of the reference image build). Default: X86_64."""
    image: ImageConfig | None = None
    """A team's own image. Default: None (the reference worker in ``worker/`` is built)."""
    celery_app: str = Field("broker_tier_worker.app", pattern=r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$")
    """The Celery app given to ``celery -A``. Default: broker_tier_worker.app (the reference worker)."""
    stop_timeout_seconds: int = Field(120, ge=10, le=120)
    """Seconds between SIGTERM and SIGKILL, for Celery's soft shutdown (Fargate: at most 120).
    Default: 120."""
    log_retention_days: int = 30
    """Retention of the services' log groups. Default: 30."""
    result_expires_seconds: int = Field(86_400, ge=60, le=30 * 86_400)
    """Lifetime of task results in Redis (keys without TTL filled seed 001's Redis). Default: 86400."""
    beat: BeatConfig = Field(default_factory=BeatConfig)

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return _check_log_retention(value)


class QueueClassConfig(_Model):
    """One latency class: an SQS queue, its dead-letter queue, and the task limits that size them."""

    task_time_limit_seconds: int = Field(300, ge=1, le=SQS_MAX_VISIBILITY_SECONDS)
    """Hard time limit of this class's tasks. Default: 300."""
    max_eta_seconds: int = Field(0, ge=0, le=SQS_MAX_VISIBILITY_SECONDS)
    """Longest ETA/countdown a task of this class is sent with. Default: 0."""
    visibility_timeout_seconds: int = Field(900, ge=0, le=SQS_MAX_VISIBILITY_SECONDS)
    """Queue visibility timeout; must exceed time limit + longest ETA + 60 s. Default: 900."""
    max_receive_count: int = Field(5, ge=1, le=1000)
    """Receives before SQS moves a message to the dead-letter queue. Default: 5."""
    retention_seconds: int = Field(345_600, ge=60, le=SQS_MAX_RETENTION_SECONDS)
    """Message retention of the work queue. Default: 345600 (4 days)."""
    dead_letter_retention_seconds: int = Field(SQS_MAX_RETENTION_SECONDS, ge=60, le=SQS_MAX_RETENTION_SECONDS)
    """Retention of the dead-letter queue; never shorter than the work queue's, because SQS keeps
    a message's original enqueue time when it moves it. Default: 1209600 (14 days)."""
    latency_objective_seconds: int = Field(900, ge=60, le=SQS_MAX_RETENTION_SECONDS)
    """Oldest-message age the class may reach before its age alarm fires. SQS counts messages a
    worker holds (waiting for an ETA or running with acks_late), so it must exceed
    max_eta_seconds + task_time_limit_seconds, and stay under retention_seconds. Default: 900."""
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    """The worker service of this class."""

    @model_validator(mode="after")
    def _limits(self) -> "QueueClassConfig":
        held = self.task_time_limit_seconds + self.max_eta_seconds
        needed = held + VISIBILITY_MARGIN_SECONDS
        if self.visibility_timeout_seconds < needed:
            raise InvalidValue(
                "visibility_timeout_seconds", self.visibility_timeout_seconds,
                f"at least task_time_limit_seconds ({self.task_time_limit_seconds}) + max_eta_seconds "
                f"({self.max_eta_seconds}) + {VISIBILITY_MARGIN_SECONDS} s margin = {needed}. A worker "
                f"holds a message un-acked while it waits for the ETA and while the task runs; once the "
                f"visibility timeout passes, SQS hands the same message to another worker, and the task "
                f"runs again, and again (celery#4766)")
        if needed > SQS_MAX_VISIBILITY_SECONDS:
            raise InvalidValue("max_eta_seconds", self.max_eta_seconds,
                               f"an ETA that, with the time limit and margin, fits SQS's 12 h visibility "
                               f"ceiling ({SQS_MAX_VISIBILITY_SECONDS} s); schedule longer delays with Beat")
        if self.dead_letter_retention_seconds < self.retention_seconds:
            raise InvalidValue(
                "dead_letter_retention_seconds", self.dead_letter_retention_seconds,
                f"at least retention_seconds ({self.retention_seconds}): a moved message keeps its "
                f"original enqueue time, so a shorter dead-letter retention deletes it early")
        if self.latency_objective_seconds <= held:
            raise InvalidValue(
                "latency_objective_seconds", self.latency_objective_seconds,
                f"more than max_eta_seconds ({self.max_eta_seconds}) + task_time_limit_seconds "
                f"({self.task_time_limit_seconds}) = {held}: ApproximateAgeOfOldestMessage counts the "
                f"messages workers hold while they wait for an ETA and run the task, so a lower objective "
                f"alarms on healthy work")
        if self.latency_objective_seconds >= self.retention_seconds:
            raise InvalidValue("latency_objective_seconds", self.latency_objective_seconds,
                               f"less than retention_seconds ({self.retention_seconds}): SQS deletes a message "
                               f"at that age, so the alarm could never fire before the task is lost")
        return self


def _default_queue_classes() -> dict[str, QueueClassConfig]:
    return {"interactive": QueueClassConfig(), "default": QueueClassConfig(),
            "batch": QueueClassConfig()}

# CloudWatch refuses an alarm whose evaluation range (period x evaluation periods) exceeds a day.
ALARM_MAX_EVALUATION_SECONDS = 86_400
# ElastiCache's default maxclients for Redis and Valkey (not modifiable).
REDIS_MAX_CLIENTS = 65_000


class AlarmWindow(_Model):
    """When an alarm fires: ``datapoints_to_alarm`` breaching periods out of the last
    ``evaluation_periods`` periods of ``period_seconds``."""

    period_seconds: int = 60
    """Length of one period: 60 or a multiple of 60 (these metrics are per minute). Default: 60."""
    evaluation_periods: int = Field(5, ge=1, le=1440)
    """Periods looked at. Default: 5."""
    datapoints_to_alarm: int | None = Field(None, ge=1)
    """Breaching periods among them that fire the alarm. Default: all of ``evaluation_periods``."""

    @field_validator("period_seconds")
    @classmethod
    def _period(cls, value: int) -> int:
        if value < 60 or value % 60:
            raise ValueError("60 or a multiple of 60 seconds (SQS, ElastiCache and Container Insights "
                             "publish per minute)")
        return value

    @model_validator(mode="after")
    def _window(self) -> "AlarmWindow":
        if self.datapoints_to_alarm is not None and self.datapoints_to_alarm > self.evaluation_periods:
            raise InvalidValue("datapoints_to_alarm", self.datapoints_to_alarm,
                               f"at most evaluation_periods ({self.evaluation_periods})")
        span = self.period_seconds * self.evaluation_periods
        if span > ALARM_MAX_EVALUATION_SECONDS:
            raise InvalidValue("evaluation_periods", self.evaluation_periods,
                               f"a window of at most one day: period_seconds ({self.period_seconds}) x "
                               f"evaluation_periods = {span} s > {ALARM_MAX_EVALUATION_SECONDS} s, which "
                               f"CloudWatch refuses")
        return self

    @property
    def datapoints(self) -> int:
        return self.datapoints_to_alarm or self.evaluation_periods


class RedisMemoryAlarms(AlarmWindow):
    """``DatabaseMemoryUsagePercentage`` of the fullest node. Under noeviction a full Redis
    refuses writes: warn early, page before full."""

    warning_percent: float = Field(70, gt=0, lt=100)
    """Warning threshold. Default: 70."""
    critical_percent: float = Field(85, gt=0, lt=100)
    """Critical threshold (page). Default: 85."""
    evaluation_periods: int = Field(3, ge=1, le=1440)

    @model_validator(mode="after")
    def _ordered(self) -> "RedisMemoryAlarms":
        if self.warning_percent >= self.critical_percent:
            raise InvalidValue("warning_percent", self.warning_percent,
                               f"less than critical_percent ({self.critical_percent})")
        return self


class PercentAlarm(AlarmWindow):
    """A percentage above which the alarm fires."""

    threshold_percent: float = Field(80, gt=0, lt=100)
    """Threshold. Default: 80."""


class ReplicationLagAlarm(AlarmWindow):
    """``ReplicationLag`` of the replicas: a lagging replica loses those writes in a failover."""

    threshold_seconds: float = Field(5, gt=0, le=3600)
    """Threshold. Default: 5."""


class ConnectionsAlarm(AlarmWindow):
    """``CurrConnections`` of the busiest node (a connection leak, or workers reconnecting in a loop)."""

    threshold: int = Field(10_000, ge=1, le=REDIS_MAX_CLIENTS)
    """Threshold; ElastiCache's maxclients is 65000. Default: 10000."""


class Subscription(_Model):
    """Who the alarm topic notifies."""

    protocol: Literal["email", "https", "sms"]
    """SNS protocol: email, https (a paging service's webhook) or sms."""
    endpoint: str
    """An e-mail address, an https URL, or an E.164 phone number."""

    @model_validator(mode="after")
    def _endpoint(self) -> "Subscription":
        patterns = {"email": (r"[^@\s]+@[^@\s]+\.[^@\s]+", "an e-mail address"),
                    "https": (r"https://[^\s/]+\S*", "an https:// URL"),
                    "sms": (r"\+[1-9]\d{6,14}", "an E.164 phone number such as +4915112345678")}
        pattern, allowed = patterns[self.protocol]
        if not re.fullmatch(pattern, self.endpoint):
            raise InvalidValue("endpoint", self.endpoint, f"{allowed} for protocol '{self.protocol}'")
        return self


class MonitoringConfig(_Model):
    """Alarms, their topic and the dashboard. Thresholds of the queue-age alarms are each class's
    ``latency_objective_seconds``; the dead-letter, eviction and Beat alarms have fixed thresholds."""

    subscriptions: list[Subscription] = Field(default_factory=list)
    """Endpoints subscribed to the alarm topic and to the ElastiCache events topic. Default: none."""
    runbook_base_url: str = Field("runbooks/", pattern=r"^(https://\S+/|runbooks/)$")
    """Prefix of the runbook named in every alarm description (e.g. your repository's
    ``https://.../runbooks/``). Default: runbooks/."""
    redis_memory: RedisMemoryAlarms = Field(default_factory=RedisMemoryAlarms)
    redis_engine_cpu: PercentAlarm = Field(default_factory=PercentAlarm)
    """``EngineCPUUtilization`` of the busiest node (Redis runs commands on one thread)."""
    redis_replication_lag: ReplicationLagAlarm = Field(default_factory=ReplicationLagAlarm)
    redis_connections: ConnectionsAlarm = Field(default_factory=ConnectionsAlarm)
    redis_evictions: AlarmWindow = Field(default_factory=lambda: AlarmWindow(evaluation_periods=1))
    """``Evictions`` above zero: under noeviction this means the policy was changed. Default: 1 period."""
    dead_letter: AlarmWindow = Field(default_factory=lambda: AlarmWindow(evaluation_periods=1))
    """Each dead-letter queue's ``ApproximateNumberOfMessagesVisible`` above zero. Default: 1 period."""
    queue_age: AlarmWindow = Field(default_factory=lambda: AlarmWindow(evaluation_periods=3))
    """Each work queue's ``ApproximateAgeOfOldestMessage`` above the class's latency objective.
    Default: 3 periods."""
    worker_tasks: AlarmWindow = Field(default_factory=AlarmWindow)
    """Running tasks of a worker service below its ``min_tasks`` (classes with ``min_tasks`` 0 have
    no floor and no alarm). Default: 5 periods."""
    beat_tasks: AlarmWindow = Field(default_factory=AlarmWindow)
    """Running Beat tasks other than exactly one. Default: 5 periods (a Beat deployment stops
    the old task before it starts the new one)."""


class EnvironmentConfig(_Model):
    """Everything one environment of the tier is built from."""

    name: str = Field(pattern=r"^[a-z][a-z0-9]{1,11}$")
    """Environment name (from its key in ``environments``); part of every stack and resource name."""
    account: str | None = Field(None, pattern=r"^\d{12}$")
    """AWS account. Default: None (environment-agnostic synthesis)."""
    region: str | None = Field(None, pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    """AWS region. Default: None (environment-agnostic synthesis)."""
    production: bool = False
    """Production: termination protection on, stateful resources retained, snapshot on delete.
    Default: false."""
    removal_policy: Literal["retain", "destroy"] = "retain"
    """What stack deletion does to queues, keys, the secret and log groups. Production: retain
    only. Default: retain."""
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    queues: dict[str, QueueClassConfig] = Field(default_factory=_default_queue_classes, min_length=1,
                                                max_length=10)
    """Latency classes, by name. Default: interactive, default, batch."""
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    """Workers and Beat."""
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    """Alarms, alarm topic and dashboard."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Tags on every resource. Default: none (the tier adds Project and Environment)."""

    @field_validator("queues")
    @classmethod
    def _queue_names(cls, value: dict[str, QueueClassConfig]) -> dict[str, QueueClassConfig]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9]{0,19}", name):
                raise InvalidValue(name, name, "a class name of 1-20 lowercase letters and digits, "
                                                           "starting with a letter")
        return value

    @model_validator(mode="after")
    def _production_and_lookup(self) -> "EnvironmentConfig":
        if self.production and self.removal_policy != "retain":
            raise InvalidValue("removal_policy", self.removal_policy, "'retain' in a production environment")
        if self.production and self.cache.deletion_policy != "snapshot":
            raise InvalidValue("cache.deletion_policy", self.cache.deletion_policy,
                               "'snapshot' in a production environment")
        if self.network.vpc_id and not (self.account and self.region):
            raise InvalidValue("network.vpc_id", self.network.vpc_id,
                               "only with account and region set (the VPC is looked up with credentials)")
        return self

    @property
    def replication_group_id(self) -> str:
        return self.cache.replication_group_id or f"broker-tier-{self.name}"

    @property
    def resource_prefix(self) -> str:
        """Prefix of the physical names of the tier's named resources."""
        return f"broker-tier-{self.name}"

    def stack_name(self, part: str) -> str:
        return f"BrokerTier-{self.name}-{part}"


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The keys allowed at ``loc`` inside ``model`` (for an unknown-key message)."""
    current: Any = model
    parts = list(loc[:-1])
    while parts:
        part = parts.pop(0)
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        annotation = field.annotation
        if getattr(annotation, "__origin__", None) is dict:
            annotation = annotation.__args__[1]
            if parts:
                parts.pop(0)  # the dict key (a class name)
        current = annotation
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
    return sorted(f for f in current.model_fields if f != "name")


def _format_errors(env: str, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, InvalidValue):
            key = ".".join(str(p) for p in loc + (cause.key,))
            lines.append(f"environment '{env}': {key} = {cause.value!r} is not allowed; "
                         f"allowed: {cause.allowed}")
            continue
        key = ".".join(str(p) for p in loc) or "(environment)"
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(EnvironmentConfig, loc)
            lines.append(f"environment '{env}': unknown key '{key}' (value {item['input']!r}); "
                         f"allowed keys here: {', '.join(allowed or [])}")
            continue
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"environment '{env}': {key} = {item['input']!r} is not allowed; allowed: {message}")
    return "\n".join(lines)


def parse_environment(name: str, values: Mapping[str, Any]) -> EnvironmentConfig:
    """Validate one environment's merged values; raises ConfigError with every problem found."""
    if "name" in values:
        raise ConfigError(f"environment '{name}': key 'name' is not allowed; the environment's key "
                          f"in 'environments' is its name")
    try:
        return EnvironmentConfig(name=name, **values)
    except ValidationError as error:
        raise ConfigError(_format_errors(name, error)) from None


def load_environments(context: Mapping[str, Any] | None) -> dict[str, EnvironmentConfig]:
    """Every environment declared under ``context["broker-tier"]``, validated."""
    if not isinstance(context, Mapping) or not isinstance(context.get("environments"), Mapping):
        raise ConfigError(f"cdk.json context key '{CONTEXT_KEY}' must be an object with an "
                          f"'environments' object (and optionally 'defaults')")
    unknown = set(context) - {"defaults", "environments"}
    if unknown:
        raise ConfigError(f"cdk.json context '{CONTEXT_KEY}': unknown key(s) {sorted(unknown)}; "
                          f"allowed: 'defaults', 'environments'")
    defaults = context.get("defaults") or {}
    problems, environments = [], {}
    for name, values in context["environments"].items():
        if not isinstance(values, Mapping):
            problems.append(f"environment '{name}': must be an object, got {values!r}")
            continue
        try:
            environments[name] = parse_environment(name, deep_merge(defaults, values))
        except ConfigError as error:
            problems.append(str(error))
    if problems:
        raise ConfigError("\n".join(problems))
    if not environments:
        raise ConfigError(f"cdk.json context '{CONTEXT_KEY}.environments' declares no environment")
    return environments


def select_environments(environments: Mapping[str, EnvironmentConfig],
                        selected: str | None) -> list[EnvironmentConfig]:
    """All environments, or the one named by ``-c env=NAME``."""
    if selected is None:
        return list(environments.values())
    if selected not in environments:
        raise ConfigError(f"context 'env' = {selected!r} is not allowed; allowed: one of "
                          f"{sorted(environments)} (declared in cdk.json)")
    return [environments[selected]]

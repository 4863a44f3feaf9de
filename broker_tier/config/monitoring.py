"""Alarms, their topic and the dashboard: thresholds and evaluation windows."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from broker_tier.config.base import Allowed, ConfigModel, InvalidValue, cross_key_check

# CloudWatch refuses an alarm whose evaluation range (period x evaluation periods) exceeds a day.
ALARM_MAX_EVALUATION_SECONDS = 86_400
# ElastiCache's default maxclients for Redis and Valkey (not modifiable).
REDIS_MAX_CLIENTS = 65_000
DEFAULT_RUNBOOK_BASE_URL = "https://github.com/broker-tier/broker-tier/blob/main/runbooks/"
"""Where this repository's runbooks are read on the web (the one place the default is written)."""


PeriodSeconds = Annotated[int, Allowed("60 or a multiple of 60")]
Endpoint = Annotated[str, Allowed("email: an e-mail address; https: an https:// URL; sms: an E.164 number")]


class AlarmWindow(ConfigModel):
    """When an alarm fires: ``datapoints_to_alarm`` breaching periods out of the last
    ``evaluation_periods`` periods of ``period_seconds``."""

    period_seconds: PeriodSeconds = 60
    """Length of one period: 60 or a multiple of 60 (these metrics are per minute). Default: 60."""
    evaluation_periods: int = Field(5, ge=1, le=1440)
    """Periods looked at. Default: 5."""
    datapoints_to_alarm: int | None = Field(None, ge=1)
    """Breaching periods among them that fire the alarm. Default: all of ``evaluation_periods``."""

    @field_validator("period_seconds")
    @classmethod
    def _period(cls, value: int) -> int:
        if value < 60 or value % 60:
            raise ValueError(
                "60 or a multiple of 60 seconds (SQS, ElastiCache and Container Insights publish per minute)"
            )
        return value

    @cross_key_check
    def _window(self) -> None:
        if self.datapoints_to_alarm is not None and self.datapoints_to_alarm > self.evaluation_periods:
            raise InvalidValue(
                "datapoints_to_alarm",
                self.datapoints_to_alarm,
                f"at most evaluation_periods ({self.evaluation_periods})",
            )
        span = self.period_seconds * self.evaluation_periods
        if span > ALARM_MAX_EVALUATION_SECONDS:
            raise InvalidValue(
                "evaluation_periods",
                self.evaluation_periods,
                f"a window of at most one day: period_seconds ({self.period_seconds}) x "
                f"evaluation_periods = {span} s > {ALARM_MAX_EVALUATION_SECONDS} s, which "
                f"CloudWatch refuses",
            )

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

    @cross_key_check
    def _ordered(self) -> None:
        if self.warning_percent >= self.critical_percent:
            raise InvalidValue(
                "warning_percent", self.warning_percent, f"less than critical_percent ({self.critical_percent})"
            )


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


class Subscription(ConfigModel):
    """Who the alarm topic notifies."""

    protocol: Literal["email", "https", "sms"]
    """SNS protocol: email, https (a paging service's webhook) or sms."""
    endpoint: Endpoint
    """An e-mail address, an https URL, or an E.164 phone number."""

    @cross_key_check
    def _endpoint(self) -> None:
        patterns = {
            "email": (r"[^@\s]+@[^@\s]+\.[^@\s]+", "an e-mail address"),
            "https": (r"https://[^\s/]+\S*", "an https:// URL"),
            "sms": (r"\+[1-9]\d{6,14}", "an E.164 phone number such as +4915112345678"),
        }
        pattern, allowed = patterns[self.protocol]
        if not re.fullmatch(pattern, self.endpoint):
            raise InvalidValue("endpoint", self.endpoint, f"{allowed} for protocol '{self.protocol}'")


class MonitoringConfig(ConfigModel):
    """Alarms, their topic and the dashboard. Thresholds of the queue-age alarms are each class's
    ``latency_objective_seconds``; the dead-letter, eviction and Beat alarms have fixed thresholds."""

    subscriptions: list[Subscription] = Field(default_factory=list)
    """Endpoints subscribed to the alarm topic and to the ElastiCache events topic. Default: none."""
    runbook_base_url: str = Field(DEFAULT_RUNBOOK_BASE_URL, pattern=r"^https://\S+/$")
    """Absolute URL, ending in ``/``, that every alarm description puts before its runbook's file name, so the
    link works from an e-mail or a pager (e.g. your fork's ``https://github.com/ORG/REPO/blob/main/runbooks/``).
    Default: ``DEFAULT_RUNBOOK_BASE_URL``, this repository's runbooks."""
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
    """Each class's oldest message above the class's latency objective: the work queue's
    ``ApproximateAgeOfOldestMessage`` (sqs broker), or the age of the oldest message waiting in the class's Redis
    lists that Beat publishes (redis broker). Default: 3 periods."""
    unacked_overdue: AlarmWindow = Field(default_factory=AlarmWindow)
    """redis broker: messages in a class's unacked record for longer than its visibility time-out (no worker of the
    class hands them out again). Default: 5 periods (a live worker restores them within about 100 s)."""
    beat_ticks: AlarmWindow = Field(default_factory=lambda: AlarmWindow(evaluation_periods=1))
    """Beat's fence: due ticks skipped or missed (published by no Beat), and ticks another Beat had claimed
    (more than one Beat runs). Default: 1 period."""
    worker_tasks: AlarmWindow = Field(default_factory=AlarmWindow)
    """Running tasks of a worker service below its ``min_tasks`` (classes with ``min_tasks`` 0 have
    no floor and no alarm). Default: 5 periods."""
    worker_spot_capacity: AlarmWindow = Field(default_factory=lambda: AlarmWindow(evaluation_periods=10))
    """Running tasks of a class on Fargate Spot below its desired count (tasks pending: Spot capacity is short,
    and the on-demand floor carries the class). Only classes with ``capacity.spot_percent`` above 0 have it.
    Default: 10 periods (a task scaled out starts within a minute or two; ten minutes pending is a shortage)."""
    beat_tasks: AlarmWindow = Field(default_factory=AlarmWindow)
    """Running Beat tasks other than exactly one. Default: 5 periods (a Beat deployment stops
    the old task before it starts the new one)."""

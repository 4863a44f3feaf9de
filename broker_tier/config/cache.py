"""The ElastiCache replication group: engine, nodes, parameters, windows and database layout."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from broker_tier.config.base import (
    DAY, DAYS_OF_WEEK, HHMM, MINUTES_PER_DAY, MINUTES_PER_WEEK, ConfigModel, InvalidValue, LogRetentionDays,
    minutes, window_length, windows_overlap)

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


class DatabaseLayout(ConfigModel):
    """Which logical Redis database holds what: the application's cache, the Celery broker and the
    result backend share one replication group, each in its own database."""

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


class CacheConfig(ConfigModel):
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
    snapshot_window: str = Field("03:00-04:00", pattern=rf"^{HHMM}-{HHMM}$")
    """Daily snapshot window (UTC), at least 60 minutes. Default: 03:00-04:00."""
    maintenance_window: str = Field("sun:05:00-sun:06:00", pattern=rf"^{DAY}:{HHMM}-{DAY}:{HHMM}$")
    """Weekly maintenance window (UTC), at least 60 minutes. Default: sun:05:00-sun:06:00."""
    log_retention_days: LogRetentionDays = 30
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
                   "Multi-AZ is always on, and t-class nodes are burstable (ElastiCache has no automatic "
                   "failover on t1/t2, and throttles t3/t4g to a CPU baseline once their credits are spent, "
                   "which a failover and the resynchronization after it must never depend on)")
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
        self._check_windows()
        return self

    def _check_windows(self) -> None:
        snap_start, snap_end = (minutes(t) for t in self.snapshot_window.split("-"))
        snap_length = window_length(snap_start, snap_end, MINUTES_PER_DAY)
        if snap_length < 60:
            raise InvalidValue("snapshot_window", self.snapshot_window, "a window of at least 60 minutes")
        maint = [DAYS_OF_WEEK.index(part[:3]) * MINUTES_PER_DAY + minutes(part[4:])
                 for part in self.maintenance_window.split("-")]
        maint_length = window_length(maint[0], maint[1], MINUTES_PER_WEEK)
        if maint_length < 60 or maint_length > MINUTES_PER_DAY:
            raise InvalidValue("maintenance_window", self.maintenance_window,
                               "a window of 60 minutes to 24 hours")
        for day in range(7):
            if windows_overlap(day * MINUTES_PER_DAY + snap_start, snap_length, maint[0], maint_length,
                               MINUTES_PER_WEEK):
                raise InvalidValue("maintenance_window", self.maintenance_window,
                                   f"a window that does not overlap snapshot_window "
                                   f"({self.snapshot_window} daily); ElastiCache rejects overlapping windows")

    @property
    def family(self) -> str:
        return ENGINE_FAMILIES[self.engine][self.engine_version]

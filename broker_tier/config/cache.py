"""The ElastiCache replication group: engine, nodes, parameters, windows and database layout."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from broker_tier.config.base import (
    DAY,
    DAYS_OF_WEEK,
    HHMM,
    MINUTES_PER_DAY,
    MINUTES_PER_WEEK,
    Allowed,
    ConfigModel,
    InvalidValue,
    LogRetentionDays,
    cross_key_check,
    minutes,
    window_length,
    windows_overlap,
)
from broker_tier.config.catalogues import (
    NODE_TYPES_FILE,
    PARAMETERS_FILE,
    did_you_mean,
    engine_parameters,
    node_types,
    previous_generation_node_types,
    retrieved,
)

# Engine -> engine version -> the only parameter-group family that version accepts.
ENGINE_FAMILIES: dict[str, dict[str, str]] = {
    "redis": {"6.2": "redis6.x", "7.0": "redis7", "7.1": "redis7"},
    "valkey": {"7.2": "valkey7", "8.0": "valkey8", "8.1": "valkey8"},
}

# Parameters the tier owns: a different value would break the guarantees it is built on.
RESERVED_PARAMETERS = {
    "maxmemory-policy": "is fixed to 'noeviction': an evicting policy silently deletes queued "
    "tasks and results under memory pressure",
    "appendonly": "is not allowed: AOF is unsupported with Multi-AZ (use snapshots; the replica is the durability)",
    "appendfsync": "is not allowed: AOF is unsupported with Multi-AZ",
    "cluster-enabled": "is not allowed: the tier's replication group runs with cluster mode disabled",
}

_NODE_CLASS_RULE = (
    "an m- or r-class node type such as cache.m7g.large or cache.r7g.xlarge: Multi-AZ is always on, and "
    "t-class nodes are burstable (ElastiCache has no automatic failover on t1/t2, and throttles t3/t4g to a "
    "CPU baseline once their credits are spent, which a failover and the resynchronization after it must "
    "never depend on)"
)


def _check_node_type(value: str) -> str:
    catalogue = node_types()
    node = catalogue.get(value)
    if node is None:
        if value in previous_generation_node_types():
            raise ValueError(
                f"a current-generation m- or r-class node type such as cache.m7g.large: ElastiCache "
                f"creates no new clusters on {value}, a previous-generation type"
            )
        raise ValueError(
            f"an m- or r-class node type ElastiCache offers, such as cache.m7g.large or "
            f"cache.r7g.xlarge (catalogue {NODE_TYPES_FILE.name} of {retrieved(NODE_TYPES_FILE)})"
            f"{did_you_mean(value, catalogue.keys())}"
        )
    if node.node_class not in ("m", "r"):
        raise ValueError(f"{_NODE_CLASS_RULE}; {value} is {node.category}")
    if node.data_tiering:
        raise ValueError(
            _NODE_CLASS_RULE + "; data-tiering (…gd) types need DataTieringEnabled, which forces "
            "replacement, and are not supported"
        )
    return value


NodeType = Annotated[
    str,
    AfterValidator(_check_node_type),
    Allowed(
        f"an m- or r-class node type from {NODE_TYPES_FILE.name} ({retrieved(NODE_TYPES_FILE)}), without data tiering"
    ),
]
"""A current ElastiCache node type the tier allows (m- or r-class)."""

ParameterValue = str | int
"""A parameter's value: a JSON string (``"yes"``, ``"allkeys-lru"``, ``"300"``) or a JSON integer."""

EngineParameters = Annotated[
    dict[str, ParameterValue],
    Allowed(
        f"parameters of the family in {PARAMETERS_FILE.name} ({retrieved(PARAMETERS_FILE)}), each with a value of "
        f'its type (booleans as "yes"/"no"); not {", ".join(sorted(RESERVED_PARAMETERS))}; maxmemory-policy only '
        f"noeviction"
    ),
]
EngineVersion = Annotated[
    str, Allowed("; ".join(f"{engine}: {', '.join(versions)}" for engine, versions in ENGINE_FAMILIES.items()))
]
ParameterGroupFamily = Annotated[
    str,
    Allowed(
        "the family of engine and engine_version: "
        + ", ".join(sorted({family for versions in ENGINE_FAMILIES.values() for family in versions.values()}))
    ),
]
RedisPort = Annotated[int, Allowed("1024 to 65535, except 6379")]
SnapshotWindow = Annotated[str, Allowed("HH:MM-HH:MM (UTC), at least 60 minutes, not overlapping maintenance_window")]
MaintenanceWindow = Annotated[str, Allowed("ddd:HH:MM-ddd:HH:MM (UTC), 60 minutes to 24 hours")]


def _check_parameter(name: str, value: ParameterValue) -> None:
    """Checks that hold in every family: a known name, not reserved, modifiable, a value of its type."""
    catalogue = engine_parameters()
    if name == "maxmemory-policy" and value == "noeviction":
        return
    if name in RESERVED_PARAMETERS:
        raise InvalidValue(name, value, f"'{name}' {RESERVED_PARAMETERS[name]}")
    parameter = catalogue.get(name)
    if parameter is None:
        hyphenated = name.replace("_", "-")
        hint = (
            f'; did you mean "{hyphenated}"? (parameter names use hyphens)'
            if hyphenated in catalogue
            else did_you_mean(name, catalogue.keys())
        )
        raise InvalidValue(
            name,
            value,
            f"a Valkey or Redis OSS parameter of an ElastiCache parameter group "
            f"(catalogue {PARAMETERS_FILE.name} of {retrieved(PARAMETERS_FILE)}){hint}",
        )
    if not parameter.modifiable:
        raise InvalidValue(name, value, f"no value: ElastiCache does not let a parameter group set '{name}'")
    if not parameter.accepts(value):
        raise InvalidValue(name, value, f"{parameter.allowed()} for '{name}'")


class DatabaseLayout(ConfigModel):
    """Which logical Redis database holds what: the application's cache, the Celery broker and the
    result backend share one replication group, each in its own database."""

    cache: int = Field(0, ge=0, le=15)
    """The application's cache (e.g. django-redis). Default: 0."""
    broker: int = Field(1, ge=0, le=15)
    """The Celery broker, when ``broker`` is ``redis``. Default: 1."""
    results: int = Field(2, ge=0, le=15)
    """The Celery result backend. Default: 2."""

    @cross_key_check
    def _distinct(self) -> None:
        seen: dict[int, str] = {}
        for name in ("cache", "broker", "results"):
            number = getattr(self, name)
            if number in seen:
                raise InvalidValue(name, number, f"a database not already used by '{seen[number]}'")
            seen[number] = name


class CacheConfig(ConfigModel):
    """The ElastiCache replication group (cluster mode disabled, Multi-AZ always on)."""

    engine: Literal["redis", "valkey"] = "redis"
    """Cache engine. Default: redis."""
    engine_version: EngineVersion = "7.1"
    """Engine version; must be one ElastiCache offers for ``engine``. Default: 7.1."""
    parameter_group_family: ParameterGroupFamily | None = None
    """Parameter-group family; must match engine and version. Default: derived from them."""
    node_type: NodeType = "cache.m7g.large"
    """Node type; m- or r-class only (Multi-AZ). Changed in place. Default: cache.m7g.large."""
    replicas: int = Field(1, ge=1, le=5)
    """Read replicas beside the primary (at least one for Multi-AZ). Default: 1."""
    port: RedisPort = Field(6380, ge=1024, le=65535)
    """Port; not 6379 (cdk-nag AEC5). Changing it replaces the cluster. Default: 6380."""
    replication_group_id: str | None = Field(None, pattern=r"^[a-z]([a-z0-9]|-[a-z0-9]){0,39}$")
    """Explicit id, so that CloudFormation refuses a replacement. Default: broker-tier-<env>."""
    parameters: EngineParameters = Field(default_factory=dict)
    """Further engine parameters for the custom parameter group. Default: none."""
    snapshot_retention_days: int = Field(7, ge=1, le=35)
    """Days of automatic snapshots. Default: 7."""
    snapshot_window: SnapshotWindow = Field("03:00-04:00", pattern=rf"^{HHMM}-{HHMM}$")
    """Daily snapshot window (UTC), at least 60 minutes. Default: 03:00-04:00."""
    maintenance_window: MaintenanceWindow = Field("sun:05:00-sun:06:00", pattern=rf"^{DAY}:{HHMM}-{DAY}:{HHMM}$")
    """Weekly maintenance window (UTC), at least 60 minutes. Default: sun:05:00-sun:06:00."""
    log_retention_days: LogRetentionDays = 30
    """Retention of the slow-log and engine-log groups. Default: 30."""
    deletion_policy: Literal["snapshot", "retain", "delete"] = "snapshot"
    """What CloudFormation does to the cluster on stack deletion. Production: snapshot only.
    Default: snapshot."""
    databases: DatabaseLayout = Field(default_factory=DatabaseLayout)
    """Logical database layout. Default: cache 0, broker 1, results 2."""

    @field_validator("port")
    @classmethod
    def _port(cls, value: int) -> int:
        if value == 6379:
            raise ValueError("any port from 1024 to 65535 except the default 6379 (cdk-nag AEC5)")
        return value

    @field_validator("parameters", mode="before")
    @classmethod
    def _parameter_values_are_strings_or_integers(cls, value: object) -> object:
        # Before the type check, so that a JSON boolean gets the parameter's own allowed values.
        for name, setting in value.items() if isinstance(value, dict) else ():
            if isinstance(setting, bool) or not isinstance(setting, (str, int)):
                parameter = engine_parameters().get(name)
                kind = parameter.allowed() if parameter else "a parameter value"
                raise InvalidValue(
                    name, setting, f'{kind}, written as a JSON string or integer (a boolean parameter is "yes" or "no")'
                )
        return value

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, ParameterValue]) -> dict[str, ParameterValue]:
        for name, setting in value.items():
            _check_parameter(name, setting)
        return value

    @cross_key_check
    def _engine_family(self) -> None:
        versions = ENGINE_FAMILIES[self.engine]
        if self.engine_version not in versions:
            raise InvalidValue(
                "engine_version",
                self.engine_version,
                f'one of {", ".join(json.dumps(v) for v in versions)} for engine "{self.engine}"',
            )
        family = versions[self.engine_version]
        if self.parameter_group_family not in (None, family):
            raise InvalidValue(
                "parameter_group_family",
                self.parameter_group_family,
                f'"{family}", the only family for {self.engine} {self.engine_version} (a family that '
                f"does not match the engine version fails the deployment)",
            )
        node = node_types()[self.node_type]
        if self.engine not in node.engines:
            raise InvalidValue(
                "node_type",
                self.node_type,
                f"a node type ElastiCache offers for {self.engine}: the {node.family} family runs "
                f"{' and '.join(node.engines)} only (e.g. cache.m7g.large, cache.r7g.large)",
            )
        self._check_parameters_of_family(family)
        self._check_windows()

    def _check_parameters_of_family(self, family: str) -> None:
        catalogue = engine_parameters()
        for name, value in self.parameters.items():
            parameter = catalogue.get(name)
            if parameter is None:
                continue  # only maxmemory-policy noeviction gets here, which every family has
            if family not in parameter.families:
                note = f" ({parameter.note})" if parameter.note else ""
                raise InvalidValue(
                    f"parameters.{name}",
                    value,
                    f"a parameter of family {family}: '{name}' exists only in {', '.join(parameter.families)}{note}",
                )
            if parameter.since and _version(self.engine_version) < _version(parameter.since):
                raise InvalidValue(
                    f"parameters.{name}",
                    value,
                    f"'{name}' only with {self.engine} {parameter.since} or later "
                    f"(engine_version is {self.engine_version})",
                )
        databases = self.parameters.get("databases")
        highest = max(self.databases.model_dump().values())
        if databases is not None and int(databases) <= highest:
            raise InvalidValue(
                "parameters.databases", databases, f"more than {highest}, the highest database number in 'databases'"
            )

    def _check_windows(self) -> None:
        snap_start, snap_end = (minutes(t) for t in self.snapshot_window.split("-"))
        snap_length = window_length(snap_start, snap_end, MINUTES_PER_DAY)
        if snap_length < 60:
            raise InvalidValue("snapshot_window", self.snapshot_window, "a window of at least 60 minutes")
        maint = [
            DAYS_OF_WEEK.index(part[:3]) * MINUTES_PER_DAY + minutes(part[4:])
            for part in self.maintenance_window.split("-")
        ]
        maint_length = window_length(maint[0], maint[1], MINUTES_PER_WEEK)
        if maint_length < 60 or maint_length > MINUTES_PER_DAY:
            raise InvalidValue("maintenance_window", self.maintenance_window, "a window of 60 minutes to 24 hours")
        if not any(
            windows_overlap(day * MINUTES_PER_DAY + snap_start, snap_length, maint[0], maint_length, MINUTES_PER_WEEK)
            for day in range(7)
        ):
            return
        # Blame a window the configuration sets: against the default maintenance window, the snapshot window
        # is what to change (and when defaults sets it, the problem is reported once, as defaults').
        if "maintenance_window" not in self.model_fields_set:
            raise InvalidValue(
                "snapshot_window",
                self.snapshot_window,
                f"a window that does not overlap maintenance_window ({self.maintenance_window}, "
                f"the default); ElastiCache rejects overlapping windows",
            )
        raise InvalidValue(
            "maintenance_window",
            self.maintenance_window,
            f"a window that does not overlap snapshot_window "
            f"({self.snapshot_window} daily); ElastiCache rejects overlapping windows",
        )

    @property
    def family(self) -> str:
        return ENGINE_FAMILIES[self.engine][self.engine_version]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))

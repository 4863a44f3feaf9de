"""The one typed configuration model of broker-tier, read from ``cdk.json`` context.

``cdk.json`` holds ``context["broker-tier"]`` with a ``defaults`` block and one block per
environment under ``environments``; each environment is ``defaults`` deep-merged with its own
block, then validated here before any construct is built. Unknown keys are rejected, and every
error names the environment, the key, the value and what is allowed.

Contents, by concern:

- ``base``: the errors, the strict base model, named types for recurring constraints.
- ``network``: the VPC (``NetworkConfig``).
- ``cache``: the replication group and its database layout (``CacheConfig``, ``DatabaseLayout``).
- ``queues``: the latency classes (``QueueClassConfig``).
- ``services``: workers, Beat and the image (``ComputeConfig``, ``WorkerConfig``, ``BeatConfig``).
- ``monitoring``: alarms and their topic (``MonitoringConfig``, ``AlarmWindow``, ...).
- ``fault_injection``: AWS FIS experiments for the drills (``FaultInjectionConfig``).
- ``environment``: one environment, all of the above (``EnvironmentConfig``).
- ``loading``: reading ``cdk.json`` (``load_environments``, ``select_environments``).
"""

from broker_tier.config.base import LOG_RETENTION_DAYS, ConfigError, ConfigModel, InvalidValue, LogRetentionDays
from broker_tier.config.cache import ENGINE_FAMILIES, RESERVED_PARAMETERS, CacheConfig, DatabaseLayout
from broker_tier.config.environment import EnvironmentConfig
from broker_tier.config.fault_injection import AzPowerExperimentConfig, FaultInjectionConfig
from broker_tier.config.loading import (
    CONTEXT_KEY, deep_merge, load_environments, parse_environment, select_environments)
from broker_tier.config.monitoring import (
    AlarmWindow, ConnectionsAlarm, MonitoringConfig, PercentAlarm, RedisMemoryAlarms, ReplicationLagAlarm,
    Subscription)
from broker_tier.config.network import NetworkConfig
from broker_tier.config.queues import (
    SQS_MAX_RETENTION_SECONDS, SQS_MAX_VISIBILITY_SECONDS, VISIBILITY_MARGIN_SECONDS, QueueClassConfig)
from broker_tier.config.services import FARGATE_MEMORY, BeatConfig, ComputeConfig, ImageConfig, WorkerConfig

__all__ = [
    "AlarmWindow", "AzPowerExperimentConfig", "BeatConfig", "CONTEXT_KEY", "CacheConfig", "ComputeConfig", "ConfigError", "ConfigModel",
    "ConnectionsAlarm", "DatabaseLayout", "ENGINE_FAMILIES", "EnvironmentConfig", "FARGATE_MEMORY",
    "FaultInjectionConfig", "ImageConfig",
    "InvalidValue", "LOG_RETENTION_DAYS", "LogRetentionDays", "MonitoringConfig", "NetworkConfig", "PercentAlarm",
    "QueueClassConfig", "RESERVED_PARAMETERS", "RedisMemoryAlarms", "ReplicationLagAlarm", "SQS_MAX_RETENTION_SECONDS",
    "SQS_MAX_VISIBILITY_SECONDS", "Subscription", "VISIBILITY_MARGIN_SECONDS", "WorkerConfig", "deep_merge",
    "load_environments", "parse_environment", "select_environments",
]

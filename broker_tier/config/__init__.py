"""The one typed configuration model of broker-tier, read from ``cdk.json`` context.

``cdk.json`` holds ``context["broker-tier"]`` with a ``defaults`` block and one block per
environment under ``environments``; each environment is ``defaults`` deep-merged with its own
block, then validated here before any construct is built. Unknown keys are rejected, and every
error names the environment, the key, the value and what is allowed.

Contents, by concern:

- ``base``: the errors, the strict base model, ``Allowed`` (what a key allows, in words), the rule that
  keeps checks relating several keys off ``defaults`` on its own, named types for recurring constraints.
- ``catalogues``: the dated data files in ``data/`` (ElastiCache node types and parameters, AWS Regions).
- ``describe``: a key's JSON type and what it allows, for error messages and the README reference.
- ``network``: the VPC (``NetworkConfig``).
- ``cache``: the replication group and its database layout (``CacheConfig``, ``DatabaseLayout``).
- ``queues``: the latency classes (``QueueClassConfig``).
- ``services``: workers, Beat and the image (``ComputeConfig``, ``WorkerConfig``, ``BeatConfig``).
- ``monitoring``: alarms and their topic (``MonitoringConfig``, ``AlarmWindow``, ...).
- ``fault_injection``: AWS FIS experiments for the drills (``FaultInjectionConfig``).
- ``claim_check``: task messages too big for SQS, through S3 (``ClaimCheckConfig``, ``payload_expiration_days``).
- ``environment``: one environment, all of the above (``EnvironmentConfig``).
- ``loading``: reading ``cdk.json`` as written, nulls included (``load_environments``, all environments or the
  selected one), and the context as the CDK CLI passes it (``cli_context``) or as cdk.json holds it.
"""

from broker_tier.config.base import (
    LOG_RETENTION_DAYS,
    Allowed,
    ConfigError,
    ConfigModel,
    InvalidValue,
    LogRetentionDays,
    cross_key_check,
)
from broker_tier.config.cache import ENGINE_FAMILIES, RESERVED_PARAMETERS, CacheConfig, DatabaseLayout
from broker_tier.config.claim_check import ClaimCheckConfig, payload_expiration_days
from broker_tier.config.environment import EnvironmentConfig
from broker_tier.config.fault_injection import AzPowerExperimentConfig, FaultInjectionConfig
from broker_tier.config.loading import (
    CLI_CONTEXT_ENV,
    CLI_CONTEXT_OVERFLOW_ENV,
    CONTEXT_KEY,
    DEFAULTS,
    cdk_json_context,
    cli_context,
    deep_merge,
    load_environments,
)
from broker_tier.config.monitoring import (
    AlarmWindow,
    ConnectionsAlarm,
    MonitoringConfig,
    PercentAlarm,
    RedisMemoryAlarms,
    ReplicationLagAlarm,
    Subscription,
)
from broker_tier.config.network import NetworkConfig
from broker_tier.config.queues import (
    SQS_MAX_RETENTION_SECONDS,
    SQS_MAX_VISIBILITY_SECONDS,
    VISIBILITY_MARGIN_SECONDS,
    QueueClassConfig,
)
from broker_tier.config.services import (
    FARGATE_MEMORY,
    BeatConfig,
    CapacityConfig,
    ComputeConfig,
    ImageConfig,
    WorkerConfig,
)

__all__ = [
    "AlarmWindow",
    "Allowed",
    "AzPowerExperimentConfig",
    "BeatConfig",
    "CacheConfig",
    "CapacityConfig",
    "cdk_json_context",
    "ClaimCheckConfig",
    "CLI_CONTEXT_ENV",
    "CLI_CONTEXT_OVERFLOW_ENV",
    "cli_context",
    "ComputeConfig",
    "ConfigError",
    "ConfigModel",
    "ConnectionsAlarm",
    "CONTEXT_KEY",
    "cross_key_check",
    "DatabaseLayout",
    "deep_merge",
    "DEFAULTS",
    "ENGINE_FAMILIES",
    "EnvironmentConfig",
    "FARGATE_MEMORY",
    "FaultInjectionConfig",
    "ImageConfig",
    "InvalidValue",
    "load_environments",
    "LOG_RETENTION_DAYS",
    "LogRetentionDays",
    "MonitoringConfig",
    "NetworkConfig",
    "payload_expiration_days",
    "PercentAlarm",
    "QueueClassConfig",
    "RedisMemoryAlarms",
    "ReplicationLagAlarm",
    "RESERVED_PARAMETERS",
    "SQS_MAX_RETENTION_SECONDS",
    "SQS_MAX_VISIBILITY_SECONDS",
    "Subscription",
    "VISIBILITY_MARGIN_SECONDS",
    "WorkerConfig",
]

"""One environment of the tier: everything its stacks are built from."""

from __future__ import annotations

import re
from typing import Literal

import broker_tier_contract as contract
from pydantic import Field, field_validator, model_validator

from broker_tier.config.base import ConfigModel, InvalidValue
from broker_tier.config.cache import CacheConfig
from broker_tier.config.fault_injection import FaultInjectionConfig
from broker_tier.config.monitoring import MonitoringConfig
from broker_tier.config.network import NetworkConfig
from broker_tier.config.queues import QueueClassConfig, default_queue_classes
from broker_tier.config.services import ComputeConfig


class EnvironmentConfig(ConfigModel):
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
    queues: dict[str, QueueClassConfig] = Field(default_factory=default_queue_classes, min_length=1,
                                                max_length=10)
    """Latency classes, by name. Default: interactive, default, batch."""
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    """Workers and Beat."""
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    """Alarms, alarm topic and dashboard."""
    fault_injection: FaultInjectionConfig = Field(default_factory=FaultInjectionConfig)
    """AWS FIS experiments for the drills (AZ power interruption). Default: none."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Tags on every resource. Default: none (the tier adds Project and Environment)."""

    @field_validator("queues")
    @classmethod
    def _queue_names(cls, value: dict[str, QueueClassConfig]) -> dict[str, QueueClassConfig]:
        for name in value:
            if not re.fullmatch(contract.CLASS_NAME_PATTERN, name):
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
        return self.cache.replication_group_id or contract.default_replication_group_id(self.name)

    @property
    def resource_prefix(self) -> str:
        """Prefix of the physical names of the tier's named resources."""
        return contract.resource_prefix(self.name)

    def stack_name(self, part: str) -> str:
        return contract.stack_name(self.name, part)

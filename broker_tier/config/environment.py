"""One environment of the tier: everything its stacks are built from."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

import broker_tier_contract as contract
from broker_tier.config.base import Allowed, ConfigModel, InvalidValue, cross_key_check
from broker_tier.config.cache import CacheConfig
from broker_tier.config.catalogues import REGIONS_FILE, aws_regions, did_you_mean, retrieved
from broker_tier.config.claim_check import ClaimCheckConfig
from broker_tier.config.fault_injection import FaultInjectionConfig
from broker_tier.config.monitoring import MonitoringConfig
from broker_tier.config.network import NetworkConfig
from broker_tier.config.queues import QueueClassConfig, default_queue_classes
from broker_tier.config.services import ComputeConfig

SUPPORTED_PARTITION = "aws"
"""The tier is built and checked for the commercial partition only: docs/decisions/commercial-partition-only.md."""


def _check_region(value: str) -> str:
    regions = aws_regions()
    if value not in regions:
        raise ValueError(
            f"an AWS Region name such as eu-west-1 (catalogue {REGIONS_FILE.name} of "
            f"{retrieved(REGIONS_FILE)}){did_you_mean(value, regions.keys())}"
        )
    if regions[value] != SUPPORTED_PARTITION:
        raise ValueError(
            f"a Region of the commercial partition ({SUPPORTED_PARTITION}) such as eu-west-1; {value} is in "
            f"{regions[value]}, where service principals, endpoints and services differ and the tier is not "
            f"checked (docs/decisions/commercial-partition-only.md)"
        )
    return value


RegionName = Annotated[
    str,
    AfterValidator(_check_region),
    Allowed(
        f"an AWS Region name of the commercial partition (aws) from {REGIONS_FILE.name} "
        f"({retrieved(REGIONS_FILE)}), e.g. eu-west-1; only together with account"
    ),
]
"""An AWS Region name of the commercial partition (the catalogue also lists China's and GovCloud's, refused)."""
AccountId = Annotated[str, Allowed('12 digits such as "012345678901"; only together with region')]
"""An AWS account ID, a string so that leading zeros stay. The ``Allowed`` text leaves the JSON type out:
the messages and the README state it beside the text."""
QueueClasses = Annotated[
    dict[str, QueueClassConfig],
    Allowed("1 to 10 classes, named with 1-20 lowercase letters and digits, starting with a letter"),
]
Tags = Annotated[dict[str, str], Allowed("string keys and values")]


class EnvironmentConfig(ConfigModel):
    """Everything one environment of the tier is built from."""

    name: str = Field(pattern=r"^[a-z][a-z0-9]{1,11}$")
    """Environment name (from its key in ``environments``); part of every stack and resource name."""
    account: AccountId | None = Field(None, pattern=r"^\d{12}$")
    """AWS account the stacks deploy to; set both account and region, or neither. Default: None
    (environment-agnostic synthesis)."""
    region: RegionName | None = None
    """AWS Region the stacks deploy to; set both account and region, or neither. Default: None
    (environment-agnostic synthesis)."""
    production: bool = False
    """Production: termination protection on, stateful resources retained, snapshot on delete.
    Default: false."""
    removal_policy: Literal["retain", "destroy"] = "retain"
    """What stack deletion does to queues, keys, the secret and log groups. Production: retain
    only. Default: retain."""
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    queues: QueueClasses = Field(default_factory=default_queue_classes, min_length=1, max_length=10)
    """Latency classes, by name. Default: interactive, default, batch."""
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    """Workers and Beat."""
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    """Alarms, alarm topic and dashboard."""
    fault_injection: FaultInjectionConfig = Field(default_factory=FaultInjectionConfig)
    """AWS FIS experiments for the drills (AZ power interruption). Default: none."""
    claim_check: ClaimCheckConfig = Field(default_factory=ClaimCheckConfig)
    """Task messages too big for SQS, carried through the tier's payload bucket. Default: off."""
    tags: Tags = Field(default_factory=dict)
    """Tags on every resource. Default: none (the tier adds Project and Environment)."""

    @field_validator("queues")
    @classmethod
    def _queue_names(cls, value: dict[str, QueueClassConfig]) -> dict[str, QueueClassConfig]:
        for name in value:
            if not re.fullmatch(contract.CLASS_NAME_PATTERN, name):
                raise InvalidValue(
                    name, name, "a class name of 1-20 lowercase letters and digits, starting with a letter"
                )
        return value

    @cross_key_check
    def _account_with_region(self) -> None:
        # A stack's environment is both or neither; half of one would be dropped or guessed.
        if self.account and not self.region:
            raise InvalidValue(
                "region",
                None,
                f'a region beside account "{self.account}": set both account and '
                f"region (a pinned environment), or neither (environment-agnostic)",
            )
        if self.region and not self.account:
            raise InvalidValue(
                "account",
                None,
                f'an account beside region "{self.region}": set both account and '
                f"region (a pinned environment), or neither (environment-agnostic)",
            )

    @cross_key_check
    def _production_and_lookup(self) -> None:
        if self.production and self.removal_policy != "retain":
            raise InvalidValue("removal_policy", self.removal_policy, '"retain" in a production environment')
        if self.production and self.cache.deletion_policy != "snapshot":
            raise InvalidValue(
                "cache.deletion_policy", self.cache.deletion_policy, '"snapshot" in a production environment'
            )
        if self.network.vpc_id and not self.account:
            raise InvalidValue(
                "network.vpc_id",
                self.network.vpc_id,
                "only with account and region set (the VPC is looked up with credentials)",
            )

    @cross_key_check
    def _spot_only_where_an_interruption_is_safe(self) -> None:
        # A Spot interruption is a SIGTERM with two minutes' notice: docs/decisions/fargate-spot-per-class.md.
        window = contract.soft_shutdown_seconds(self.compute.stop_timeout_seconds)
        for name, queue_class in self.queues.items():
            capacity = queue_class.worker.capacity
            if not capacity.uses_spot:
                continue
            key = f"queues.{name}.worker.capacity"
            if not queue_class.idempotent and queue_class.task_time_limit_seconds > window:
                raise InvalidValue(
                    f"{key}.spot_percent",
                    capacity.spot_percent,
                    f"0 (on-demand only) while class '{name}' is not idempotent: a Spot interruption is a "
                    f"SIGTERM with two minutes' notice, and a task that its time limit "
                    f"(task_time_limit_seconds {queue_class.task_time_limit_seconds}) cannot end within the "
                    f"soft-shutdown window ({window} s: compute.stop_timeout_seconds "
                    f"{self.compute.stop_timeout_seconds} - {contract.COLD_SHUTDOWN_SECONDS} s) is handed back "
                    f"and runs again on another worker. Set queues.{name}.idempotent to true once a second run "
                    f"of its tasks changes nothing, or a task_time_limit_seconds of at most {window}",
                )
            if self.production and capacity.on_demand_base < 1:
                raise InvalidValue(
                    f"{key}.on_demand_base",
                    capacity.on_demand_base,
                    f"at least 1 in a production environment with spot_percent {capacity.spot_percent}: while "
                    f"Spot capacity is short, the on-demand floor is what keeps class '{name}' running",
                )

    @cross_key_check
    def _claim_check_needs_sqs(self) -> None:
        if self.claim_check.enabled and self.compute.broker != "sqs":
            raise InvalidValue(
                "claim_check.enabled",
                True,
                f"false while compute.broker is {self.compute.broker!r}: the claim check carries messages over "
                f"SQS's size limit through S3, and the Redis broker has no such limit (a Redis string holds up to "
                f"512 MB); turn it off, or use compute.broker sqs",
            )

    @property
    def replication_group_id(self) -> str:
        return self.cache.replication_group_id or contract.default_replication_group_id(self.name)

    @property
    def resource_prefix(self) -> str:
        """Prefix of the physical names of the tier's named resources."""
        return contract.resource_prefix(self.name)

    def stack_name(self, part: str) -> str:
        return contract.stack_name(self.name, part)

"""Fault injection: the AWS FIS experiments the tier's own drills may start."""

from __future__ import annotations

from pydantic import Field

from broker_tier.config.base import ConfigModel

# AWS FIS: an action's duration is one minute to 12 hours (AWS FIS actions reference).
FIS_MAX_DURATION_MINUTES = 12 * 60


class AzPowerExperimentConfig(ConfigModel):
    """AWS FIS's ElastiCache AZ power interruption (``aws:elasticache:replicationgroup-interrupt-az-power``)
    on the tier's replication group, one experiment template per AZ of the network, which
    ``broker-tier-ops failover --fault az-power`` starts for the AZ of the current primary."""

    enabled: bool = False
    """Create the experiment templates, their role, the stop-condition alarm, and the tag on the
    replication group by which the experiments select it. Default: false (cdk.json turns it on in
    dev only: an experiment cuts the power of a whole AZ's cache nodes for ``duration_minutes``)."""
    duration_minutes: int = Field(5, ge=1, le=FIS_MAX_DURATION_MINUTES)
    """How long the AZ stays without power; replicas there are not replaced meanwhile, so the
    group runs with fewer nodes. 1 to 720 (AWS FIS's limits). Default: 5."""


class FaultInjectionConfig(ConfigModel):
    """Fault-injection experiments of the environment."""

    az_power: AzPowerExperimentConfig = Field(default_factory=AzPowerExperimentConfig)

"""Where the tier runs: a new VPC, or an existing one."""

from __future__ import annotations

from pydantic import Field, model_validator

from broker_tier.config.base import ConfigModel, InvalidValue, LogRetentionDays


class NetworkConfig(ConfigModel):
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
    flow_log_retention_days: LogRetentionDays = 30
    """Retention of the VPC flow logs. Default: 30."""

    @model_validator(mode="after")
    def _nat_within_azs(self) -> "NetworkConfig":
        if self.nat_gateways > self.max_azs:
            raise InvalidValue("nat_gateways", self.nat_gateways,
                               f"at most max_azs ({self.max_azs}): one NAT gateway per AZ")
        return self

"""Where the tier runs: a new VPC, or an existing one."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, Field

from broker_tier.config.base import Allowed, ConfigModel, InvalidValue, LogRetentionDays, cross_key_check

# The subnets the new VPC carves in each AZ (broker_tier.constructs.network), in this order: CDK
# allocates them one after another, each on a boundary of its own size.
PUBLIC_SUBNET_PREFIX = 24
PRIVATE_SUBNET_PREFIX = 20
# The RFC 1918 private ranges, and the VPC sizes AWS accepts.
PRIVATE_RANGES = tuple(ipaddress.IPv4Network(cidr) for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
VPC_PREFIXES = range(16, 29)


def addresses_needed(max_azs: int) -> int:
    """Addresses from the VPC's start to the end of the last subnet it carves for ``max_azs`` AZs."""
    end = 0
    for prefix in [PUBLIC_SUBNET_PREFIX] * max_azs + [PRIVATE_SUBNET_PREFIX] * max_azs:
        size = 2 ** (32 - prefix)
        end = -(-end // size) * size + size  # the next boundary of this size, then the subnet
    return end


def smallest_prefix(max_azs: int) -> int:
    """The longest VPC prefix (the smallest network) that holds the subnets of ``max_azs`` AZs."""
    return 32 - (addresses_needed(max_azs) - 1).bit_length()


def _check_cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value)
    except ipaddress.NetmaskValueError as error:
        raise ValueError(f"an IPv4 network in CIDR notation such as 10.64.0.0/16 ({error})") from None
    except ValueError as error:
        if "has host bits set" in str(error):
            raise ValueError(
                f'the network address of the block: did you mean "{ipaddress.IPv4Network(value, strict=False)}"?'
            ) from None
        raise ValueError(f"an IPv4 network in CIDR notation such as 10.64.0.0/16 ({error})") from None
    if "/" not in value:
        raise ValueError("an IPv4 network in CIDR notation with its prefix, such as 10.64.0.0/16")
    if not any(network.subnet_of(private) for private in PRIVATE_RANGES):
        raise ValueError("a private network inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 (RFC 1918)")
    if network.prefixlen not in VPC_PREFIXES:
        raise ValueError(f"a prefix from /{VPC_PREFIXES[0]} to /{VPC_PREFIXES[-1]} (the VPC sizes AWS accepts)")
    return value


Cidr = Annotated[
    str,
    AfterValidator(_check_cidr),
    Allowed(f"a private IPv4 network (RFC 1918) of /{smallest_prefix(3)} or larger, e.g. 10.64.0.0/16"),
]
"""An RFC 1918 IPv4 network in CIDR notation."""


class NetworkConfig(ConfigModel):
    """Where the tier runs."""

    vpc_id: str | None = Field(None, pattern=r"^vpc-[0-9a-f]{8,17}$")
    """An existing VPC to use instead of creating one. Needs ``account`` and ``region`` and
    credentials at synth time (a context look-up). Default: None (a new VPC)."""
    cidr: Cidr = "10.64.0.0/16"
    """CIDR of the new VPC; a /24 public and a /20 private subnet are carved in each AZ.
    Default: 10.64.0.0/16."""
    max_azs: int = Field(2, ge=2, le=3)
    """Availability zones of the new VPC (private subnets in each). Default: 2."""
    nat_gateways: int = Field(1, ge=1, le=3)
    """NAT gateways (one per AZ removes the single point of egress). Default: 1."""
    flow_log_retention_days: LogRetentionDays = 30
    """Retention of the VPC flow logs. Default: 30."""

    @cross_key_check
    def _nat_within_azs(self) -> None:
        if self.nat_gateways > self.max_azs:
            raise InvalidValue(
                "nat_gateways", self.nat_gateways, f"at most max_azs ({self.max_azs}): one NAT gateway per AZ"
            )

    @cross_key_check
    def _cidr_holds_subnets(self) -> None:
        needed = addresses_needed(self.max_azs)
        network = ipaddress.IPv4Network(self.cidr)
        if self.vpc_id is None and network.num_addresses < needed:
            prefix = smallest_prefix(self.max_azs)
            raise InvalidValue(
                "cidr",
                self.cidr,
                f"a network of /{prefix} or larger (e.g. {network.supernet(new_prefix=prefix)}) for max_azs "
                f"{self.max_azs}: the VPC gets a /{PUBLIC_SUBNET_PREFIX} public and a /{PRIVATE_SUBNET_PREFIX} "
                f"private subnet in each AZ, each on a boundary of its size, {needed} addresses in all",
            )

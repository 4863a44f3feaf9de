"""The VPC (``network``): at least two AZs, no more NAT gateways than AZs, and a private IPv4 network in CIDR
notation large enough for the subnets of every AZ."""

from __future__ import annotations

import pytest

from .config_testing import assert_refused_naming

# (environment, override, substrings the message must contain: environment, key, value, what is allowed)
INVALID = {
    "nat beyond azs": ("dev", {"network": {"nat_gateways": 3}}, ["network.nat_gateways", "3", "max_azs (2)"]),
    "one az": ("dev", {"network": {"max_azs": 1}}, ["network.max_azs", "1"]),
    # network: a private IPv4 network that holds the subnets
    "octet out of range": (
        "dev",
        {"network": {"cidr": "10.300.0.0/16"}},
        ['network.cidr = "10.300.0.0/16"', "IPv4 network", "Octet 300"],
    ),
    "host bits set": ("dev", {"network": {"cidr": "10.64.1.0/16"}}, ["network.cidr", 'did you mean "10.64.0.0/16"?']),
    "public network": ("dev", {"network": {"cidr": "8.8.0.0/16"}}, ["network.cidr", "RFC 1918"]),
    "no prefix": ("dev", {"network": {"cidr": "10.64.0.0"}}, ["network.cidr", "with its prefix"]),
    "vpc too large": ("dev", {"network": {"cidr": "10.0.0.0/12"}}, ["network.cidr", "from /16 to /28"]),
    "vpc too small for two azs": (
        "dev",
        {"network": {"cidr": "10.64.0.0/20"}},
        [
            'network.cidr = "10.64.0.0/20"',
            "/18 or larger",
            "max_azs 2",
            "/24 public and a /20 private subnet in each AZ",
        ],
    ),
    "vpc too small for three azs": (
        "prod",
        {"network": {"cidr": "10.66.0.0/19"}},
        ["environment 'prod'", "network.cidr", "/18 or larger", "max_azs 3"],
    ),
}


@pytest.mark.parametrize("env,override,expected", INVALID.values(), ids=INVALID.keys())
def test_invalid_value_fails_with_environment_key_value_and_allowed(env, override, expected):
    assert_refused_naming(env, override, expected)

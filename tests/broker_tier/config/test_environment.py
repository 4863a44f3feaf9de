"""One environment, all blocks together (``environment``): the project's cdk.json declares dev, staging and prod;
production retains its data; a VPC look-up needs account and region; account and region both or neither, in a
Region of the commercial partition; latency classes named as the contract allows."""

from __future__ import annotations

import pytest
from tier_testing import tier_context

from broker_tier.config import load_environments

from .config_testing import assert_refused_naming


def test_project_configuration_declares_dev_staging_prod():
    environments = load_environments(tier_context())
    assert {"dev", "staging", "prod"} <= set(environments)
    prod = environments["prod"]
    assert prod.production and prod.network.max_azs == 3 and prod.cache.deletion_policy == "snapshot"
    assert list(prod.queues) == ["interactive", "default", "batch"]


# (environment, override, substrings the message must contain: environment, key, value, what is allowed)
INVALID = {
    "bad class name": ("dev", {"queues": {"Batch-1": {}}}, ["queues.Batch-1", "lowercase"]),
    "vpc lookup without env": (
        "dev",
        {"network": {"vpc_id": "vpc-0123456789abcdef0"}},
        ["network.vpc_id", "account and region"],
    ),
    "production destroys": ("prod", {"removal_policy": "destroy"}, ["'prod'", "removal_policy", '"retain"']),
    "production deletes cache": (
        "prod",
        {"cache": {"deletion_policy": "delete"}},
        ["cache.deletion_policy", '"snapshot"'],
    ),
    "bad account": ("prod", {"account": "12345"}, ["account", '"12345"']),
    # account and region: both or neither, a real region
    "account without region": (
        "prod",
        {"account": "123456789012"},
        ["environment 'prod': region is missing", 'beside account "123456789012"', "set both account and region"],
    ),
    "region without account": (
        "staging",
        {"region": "eu-west-1"},
        ["environment 'staging': account is missing", 'beside region "eu-west-1"'],
    ),
    "unknown region": (
        "prod",
        {"account": "123456789012", "region": "eu-wset-1"},
        ['region = "eu-wset-1"', "AWS Region name", "aws_regions.json", 'did you mean "eu-west-1"?'],
    ),
    "china region": (
        "prod",
        {"account": "123456789012", "region": "cn-north-1"},
        ['region = "cn-north-1"', "commercial partition (aws)", "cn-north-1 is in aws-cn", "not checked"],
    ),
    "govcloud region": (
        "prod",
        {"account": "123456789012", "region": "us-gov-west-1"},
        ['region = "us-gov-west-1"', "commercial partition (aws)", "us-gov-west-1 is in aws-us-gov"],
    ),
}


@pytest.mark.parametrize("env,override,expected", INVALID.values(), ids=INVALID.keys())
def test_invalid_value_fails_with_environment_key_value_and_allowed(env, override, expected):
    assert_refused_naming(env, override, expected)

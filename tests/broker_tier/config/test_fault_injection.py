"""AWS FIS experiments (``fault_injection``): the AZ power interruption is off unless an environment turns it on
(cdk.json: dev only), for 1 to 720 minutes."""

from __future__ import annotations

import pytest
from tier_testing import tier_context

from broker_tier.config import EnvironmentConfig, load_environments

from .config_testing import assert_refused_naming

# (environment, override, substrings the message must contain: environment, key, value, what is allowed)
INVALID = {
    "az power beyond fis limit": (
        "dev",
        {"fault_injection": {"az_power": {"duration_minutes": 721}}},
        ["fault_injection.az_power.duration_minutes", "721", "1 to 720"],
    ),
    "az power zero minutes": (
        "dev",
        {"fault_injection": {"az_power": {"duration_minutes": 0}}},
        ["fault_injection.az_power.duration_minutes", "0", "1 to 720"],
    ),
    "az power unknown key": (
        "prod",
        {"fault_injection": {"az_power": {"zone": "eu-west-1a"}}},
        ["unknown key 'fault_injection.az_power.zone'", "duration_minutes, enabled"],
    ),
}


@pytest.mark.parametrize("env,override,expected", INVALID.values(), ids=INVALID.keys())
def test_invalid_value_fails_with_environment_key_value_and_allowed(env, override, expected):
    assert_refused_naming(env, override, expected)


def test_az_power_experiments_are_on_in_dev_only_and_off_by_default():
    environments = load_environments(tier_context())
    assert {name: env.fault_injection.az_power.enabled for name, env in environments.items()} == {
        "dev": True,
        "staging": False,
        "prod": False,
    }
    assert environments["dev"].fault_injection.az_power.duration_minutes == 5
    assert EnvironmentConfig(name="bare").fault_injection.az_power.enabled is False

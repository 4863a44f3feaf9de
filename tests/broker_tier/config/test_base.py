"""What every block of the model shares (``base``): strict JSON types, nothing coerced, and a JSON integer accepted
for a number; unknown keys refused, naming the nearest known key; log retention only in the periods CloudWatch
Logs accepts."""

from __future__ import annotations

import pytest
from tier_testing import tier_context

from .config_testing import assert_refused_naming, load_with, problems

# (environment, override, substrings the message must contain: environment, key, value, what is allowed)
INVALID = {
    "bad log retention": ("dev", {"cache": {"log_retention_days": 45}}, ["cache.log_retention_days", "45", "30, 60"]),
    "unknown cache key": (
        "dev",
        {"cache": {"nodetype": "cache.m7g.large"}},
        ["unknown key 'cache.nodetype'", 'did you mean key "node_type"?'],
    ),
    "unknown top-level key": ("staging", {"regoin": "eu-west-1"}, ["unknown key 'regoin'", "region"]),
    "unknown queue key": (
        "dev",
        {"queues": {"batch": {"visibility": 10}}},
        ["unknown key 'queues.batch.visibility'", "visibility_timeout_seconds"],
    ),
    # strict types: nothing coerced
    "boolean as replicas": (
        "dev",
        {"cache": {"replicas": True}},
        ["cache.replicas = true is not allowed; allowed: a JSON integer, 1 to 5"],
    ),
    "string as production": (
        "dev",
        {"production": "no"},
        ['production = "no" is not allowed; allowed: a JSON boolean (true or false)'],
    ),
    "string as port": ("dev", {"cache": {"port": "6380"}}, ['cache.port = "6380"', "a JSON integer"]),
    "fraction as integer": (
        "dev",
        {"queues": {"batch": {"max_receive_count": 2.5}}},
        ["queues.batch.max_receive_count = 2.5", "a JSON integer"],
    ),
    "number as string": ("dev", {"compute": {"celery_app": 5}}, ["compute.celery_app = 5", "a JSON string"]),
    "boolean as number": (
        "prod",
        {"monitoring": {"redis_memory": {"warning_percent": True}}},
        ["monitoring.redis_memory.warning_percent = true", "a JSON number"],
    ),
    "list as block": ("dev", {"network": []}, ["network = []", "a JSON object"]),
    "number as tag": ("dev", {"tags": {"team": 5}}, ["tags.team = 5", "a JSON string"]),
}


@pytest.mark.parametrize("env,override,expected", INVALID.values(), ids=INVALID.keys())
def test_invalid_value_fails_with_environment_key_value_and_allowed(env, override, expected):
    assert_refused_naming(env, override, expected)


def test_a_whole_number_is_accepted_for_a_number_key():
    config = load_with("prod", {"monitoring": {"redis_memory": {"warning_percent": 50}}})["prod"]
    assert config.monitoring.redis_memory.warning_percent == 50.0


def test_a_whole_number_written_with_a_decimal_point_is_refused_for_an_integer_key():
    context = tier_context()
    context["environments"]["prod"]["cache"]["replicas"] = 2.0
    assert problems(context) == [
        "environment 'prod': cache.replicas = 2.0 is not allowed; allowed: a JSON integer, 1 to 5"
    ]

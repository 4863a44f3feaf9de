"""``claim_check``: off by default, one block to turn it on, a threshold within SQS's limit, refused with the Redis
broker; and the payloads' lifetime, which outlives every message that can still need one
(docs/decisions/claim-check-for-large-payloads.md)."""

from __future__ import annotations

import pytest
from tier_testing import tier_context

import broker_tier_contract as contract
from broker_tier.config import ConfigError, QueueClassConfig, deep_merge, load_environments, payload_expiration_days


def load_with(env: str, override: dict):
    context = tier_context()
    context["environments"][env] = deep_merge(context["environments"][env], override)
    return load_environments(context)[env]


def refusal(env: str, override: dict) -> str:
    with pytest.raises(ConfigError) as raised:
        load_with(env, override)
    return str(raised.value)


def test_off_by_default_with_a_threshold_under_the_queues_limit():
    config = load_with("prod", {})
    assert config.claim_check.enabled is False
    assert config.claim_check.threshold_bytes == contract.DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES == 262_144
    assert contract.DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES < contract.SQS_MAX_MESSAGE_BYTES == 1_048_576


def test_turning_it_on_is_one_key():
    config = load_with("prod", {"claim_check": {"enabled": True, "threshold_bytes": 524_288}})
    assert (config.claim_check.enabled, config.claim_check.threshold_bytes) == (True, 524_288)


REFUSED = {
    "a threshold over the queues' limit": (
        {"claim_check": {"threshold_bytes": 1_048_577}},
        ["claim_check.threshold_bytes = 1048577 is not allowed", "to 1048576 (the queues' MaximumMessageSize)"],
    ),
    "a threshold under one SQS billing chunk": (
        {"claim_check": {"threshold_bytes": 1024}},
        ["claim_check.threshold_bytes = 1024 is not allowed", "65536 (one 64 KiB SQS billing chunk"],
    ),
    "a threshold as a string": ({"claim_check": {"threshold_bytes": "262144"}}, ["claim_check.threshold_bytes"]),
    "a misspelt key": ({"claim_check": {"enable": True}}, ["claim_check", "enable"]),
    "with the Redis broker": (
        {"compute": {"broker": "redis"}, "claim_check": {"enabled": True}},
        ["claim_check.enabled = true is not allowed", "false while compute.broker is 'redis'", "no such limit"],
    ),
}


@pytest.mark.parametrize("override,fragments", REFUSED.values(), ids=REFUSED.keys())
def test_a_bad_claim_check_is_refused_naming_the_key_the_value_and_what_is_allowed(override, fragments):
    message = refusal("dev", override)
    assert "environment 'dev'" in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from {message}"


def test_payloads_outlive_the_dead_letter_queue_and_one_redrive():
    days = 86_400
    short = QueueClassConfig(retention_seconds=2 * days, dead_letter_retention_seconds=5 * days)
    long = QueueClassConfig(retention_seconds=4 * days, dead_letter_retention_seconds=14 * days)
    # the longest dead-letter retention, then the longest work-queue retention after a redrive, then a day
    assert payload_expiration_days([short, long]) == 14 + 4 + 1
    assert payload_expiration_days([short]) == 5 + 2 + 1
    odd = QueueClassConfig(retention_seconds=days + 1, dead_letter_retention_seconds=days + 1)
    assert payload_expiration_days([odd]) == 4  # 2 days and 2 seconds, rounded up, plus a day
    for config in load_environments(tier_context()).values():
        expires = payload_expiration_days(config.queues.values()) * days
        assert expires > max(q.dead_letter_retention_seconds for q in config.queues.values())

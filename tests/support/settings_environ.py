"""A container environment as the stack sets it, for unit tests of the settings package."""

from __future__ import annotations

import json

QUEUES = {
    "interactive": "https://sqs.eu-west-1.amazonaws.com/123456789012/broker-tier-dev-interactive",
    "default": "https://sqs.eu-west-1.amazonaws.com/123456789012/broker-tier-dev-default",
}


def environ(**overrides) -> dict[str, str]:
    values = {
        "BROKER_TIER_BROKER": "sqs",
        "BROKER_TIER_QUEUE_URLS": json.dumps(QUEUES),
        "BROKER_TIER_QUEUE": "interactive",
        "BROKER_TIER_REGION": "eu-west-1",
        "BROKER_TIER_REDIS_HOST": "master.broker-tier-dev.cache.amazonaws.com",
        "BROKER_TIER_REDIS_PORT": "6380",
        "BROKER_TIER_REDIS_AUTH_TOKEN": "tok/en@",
        "BROKER_TIER_REDIS_DB_RESULTS": "2",
        "BROKER_TIER_REDIS_DB_BROKER": "1",
        "BROKER_TIER_TASK_TIME_LIMIT": "60",
        "BROKER_TIER_SOFT_SHUTDOWN_TIMEOUT": "105",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}

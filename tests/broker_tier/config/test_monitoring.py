"""Alarms and their topic (``monitoring``): thresholds in range and in order, evaluation windows CloudWatch accepts,
subscriptions with an endpoint of their protocol, and the base URL of the runbook links."""

from __future__ import annotations

import pytest
from tier_testing import tier_context

from broker_tier.config import load_environments

from .config_testing import assert_refused_naming, load_with

# (environment, override, substrings the message must contain: environment, key, value, what is allowed)
INVALID = {
    "memory warning above critical": (
        "prod",
        {"monitoring": {"redis_memory": {"warning_percent": 90}}},
        ["'prod'", "monitoring.redis_memory.warning_percent", "90", "less than critical_percent (80"],
    ),
    "memory percent of 100": (
        "dev",
        {"monitoring": {"redis_memory": {"critical_percent": 100}}},
        ["monitoring.redis_memory.critical_percent", "100", "less than 100"],
    ),
    "sub-minute period": (
        "dev",
        {"monitoring": {"queue_age": {"period_seconds": 30}}},
        ["monitoring.queue_age.period_seconds", "30", "multiple of 60"],
    ),
    "window over a day": (
        "dev",
        {"monitoring": {"dead_letter": {"period_seconds": 3600, "evaluation_periods": 25}}},
        ["monitoring.dead_letter.evaluation_periods", "25", "90000 s > 86400 s"],
    ),
    "datapoints beyond periods": (
        "dev",
        {"monitoring": {"beat_tasks": {"evaluation_periods": 3, "datapoints_to_alarm": 4}}},
        ["monitoring.beat_tasks.datapoints_to_alarm", "4", "at most evaluation_periods (3)"],
    ),
    "connections beyond maxclients": (
        "dev",
        {"monitoring": {"redis_connections": {"threshold": 70000}}},
        ["monitoring.redis_connections.threshold", "70000", "65000"],
    ),
    "negative lag": (
        "dev",
        {"monitoring": {"redis_replication_lag": {"threshold_seconds": 0}}},
        ["monitoring.redis_replication_lag.threshold_seconds", "more than 0, at most 3600"],
    ),
    "eviction threshold": (
        "dev",
        {"monitoring": {"redis_evictions": {"threshold": 5}}},
        ["unknown key 'monitoring.redis_evictions.threshold'", "period_seconds"],
    ),
    "bad email": (
        "staging",
        {"monitoring": {"subscriptions": [{"protocol": "email", "endpoint": "oncall"}]}},
        ["monitoring.subscriptions.0.endpoint", '"oncall"', "an e-mail address"],
    ),
    "plain http webhook": (
        "dev",
        {"monitoring": {"subscriptions": [{"protocol": "https", "endpoint": "http://pager.example"}]}},
        ["monitoring.subscriptions.0.endpoint", "https:// URL"],
    ),
    "unknown protocol": (
        "dev",
        {"monitoring": {"subscriptions": [{"protocol": "lambda", "endpoint": "x"}]}},
        ["monitoring.subscriptions.0.protocol", '"email"', '"https"', '"sms"'],
    ),
    "missing subscription protocol": (
        "dev",
        {"monitoring": {"subscriptions": [{"endpoint": "a@example.com"}]}},
        ["monitoring.subscriptions.0.protocol is missing", '"email"'],
    ),
    "runbook url": (
        "dev",
        {"monitoring": {"runbook_base_url": "http://wiki/runbooks"}},
        ["monitoring.runbook_base_url", "http://wiki/runbooks"],
    ),
    "relative runbook url": (
        "dev",
        {"monitoring": {"runbook_base_url": "runbooks/"}},
        ["monitoring.runbook_base_url", '"runbooks/"', "https://"],
    ),
}


@pytest.mark.parametrize("env,override,expected", INVALID.values(), ids=INVALID.keys())
def test_invalid_value_fails_with_environment_key_value_and_allowed(env, override, expected):
    assert_refused_naming(env, override, expected)


def test_runbook_links_default_to_this_repository_and_can_point_elsewhere():
    assert (
        load_environments(tier_context())["dev"].monitoring.runbook_base_url
        == "https://github.com/broker-tier/broker-tier/blob/main/runbooks/"
    )
    wiki = "https://wiki.example.com/ops/broker-tier/runbooks/"
    assert load_with("dev", {"monitoring": {"runbook_base_url": wiki}})["dev"].monitoring.runbook_base_url == wiki

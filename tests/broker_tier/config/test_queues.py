"""The latency classes (``queues``): a visibility timeout above the longest time a worker holds a message, ETAs
within SQS's visibility ceiling, a dead-letter retention no shorter than the queue's, and a latency objective
above the held time and below the retention."""

from __future__ import annotations

import pytest

from .config_testing import assert_refused_naming

# (environment, override, substrings the message must contain: environment, key, value, what is allowed)
INVALID = {
    "visibility below time limit": (
        "dev",
        {"queues": {"batch": {"visibility_timeout_seconds": 3600}}},
        ["queues.batch.visibility_timeout_seconds", "3600", "3660", "again"],
    ),
    "visibility below eta": (
        "dev",
        {"queues": {"default": {"max_eta_seconds": 7200}}},
        ["queues.default.visibility_timeout_seconds", "4200", "7560", "ETA"],
    ),
    "eta beyond sqs ceiling": (
        "dev",
        {"queues": {"default": {"max_eta_seconds": 43200, "visibility_timeout_seconds": 43200}}},
        ["queues.default.visibility_timeout_seconds", "43200"],
    ),
    "short dead-letter retention": (
        "dev",
        {"queues": {"batch": {"dead_letter_retention_seconds": 86400}}},
        ["queues.batch.dead_letter_retention_seconds", "86400", "345600", "original enqueue time"],
    ),
    "latency objective below held time": (
        "dev",
        {"queues": {"interactive": {"latency_objective_seconds": 100}}},
        ["queues.interactive.latency_objective_seconds", "100", "= 120", "healthy work"],
    ),
    "latency objective beyond retention": (
        "dev",
        {"queues": {"batch": {"latency_objective_seconds": 400000}}},
        ["queues.batch.latency_objective_seconds", "400000", "less than retention_seconds (345600)"],
    ),
}


@pytest.mark.parametrize("env,override,expected", INVALID.values(), ids=INVALID.keys())
def test_invalid_value_fails_with_environment_key_value_and_allowed(env, override, expected):
    assert_refused_naming(env, override, expected)

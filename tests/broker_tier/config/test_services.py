"""The Fargate services (``services``): exactly one Beat, never two during a deployment and without autoscaling;
CPU and memory in a combination Fargate offers; worker task bounds, the stop timeout, the broker and the image.
(Fargate Spot per class: test_capacity.py.)"""

from __future__ import annotations

import pytest

from .config_testing import assert_refused_naming

# (environment, override, substrings the message must contain: environment, key, value, what is allowed)
INVALID = {
    "second beat": (
        "prod",
        {"compute": {"beat": {"desired_count": 2}}},
        ["compute.beat.desired_count", "2", "only 1", "exactly one Celery Beat"],
    ),
    "overlapping beat deploy": (
        "dev",
        {"compute": {"beat": {"maximum_percent": 200}}},
        ["compute.beat.maximum_percent", "200", "only 100"],
    ),
    "beat min healthy": (
        "dev",
        {"compute": {"beat": {"minimum_healthy_percent": 50}}},
        ["compute.beat.minimum_healthy_percent", "only 0"],
    ),
    "beat autoscaling key": ("dev", {"compute": {"beat": {"max_tasks": 3}}}, ["unknown key 'compute.beat.max_tasks'"]),
    "fargate memory": (
        "dev",
        {"queues": {"batch": {"worker": {"cpu": 1024, "memory_mib": 1024}}}},
        ["queues.batch.worker.memory_mib", "1024", "2048 to 8192 MiB"],
    ),
    "fargate cpu": ("dev", {"queues": {"batch": {"worker": {"cpu": 300}}}}, ["queues.batch.worker.cpu", "300"]),
    "max below min": (
        "dev",
        {"queues": {"default": {"worker": {"min_tasks": 3, "max_tasks": 2}}}},
        ["queues.default.worker.max_tasks", "at least min_tasks (3)"],
    ),
    "stop timeout above fargate": (
        "dev",
        {"compute": {"stop_timeout_seconds": 300}},
        ["compute.stop_timeout_seconds = 300", "allowed: 20 to 120"],
    ),
    "unknown broker": ("dev", {"compute": {"broker": "rabbitmq"}}, ["compute.broker", '"sqs"', '"redis"']),
    "image with tag and digest": (
        "dev",
        {"compute": {"image": {"repository_name": "team/app", "tag": "v1", "digest": "sha256:" + "a" * 64}}},
        ["compute.image.tag", "exactly one of 'tag' or 'digest'"],
    ),
}


@pytest.mark.parametrize("env,override,expected", INVALID.values(), ids=INVALID.keys())
def test_invalid_value_fails_with_environment_key_value_and_allowed(env, override, expected):
    assert_refused_naming(env, override, expected)

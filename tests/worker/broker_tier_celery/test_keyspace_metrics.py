"""Beat's Redis keyspace metrics, against a real redis-server (AUTH, noeviction) and moto's CloudWatch on loopback."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from celery import Celery
from loopback import free_port
from moto_server import aws_at, moto_server
from settings_environ import environ

import broker_tier_contract as contract
from broker_tier_celery import TierEnvironment, build_settings
from broker_tier_celery.keyspace_metrics import KeyspacePublisher, keyspace, publisher_for

pytestmark = pytest.mark.xdist_group("keyspace-metrics-moto")
REGION = "eu-west-1"


@pytest.fixture(scope="module")
def moto_endpoint():
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def cloudwatch(monkeypatch, moto_endpoint):
    """boto3's clients (the publisher's and the test's) reach moto's server."""
    aws_at(monkeypatch, moto_endpoint, REGION)
    import boto3

    return boto3.client("cloudwatch", region_name=REGION)


def beat_environ(port: int, password: str, environment_name: str | None) -> dict[str, str]:
    """What the stack gives the Beat container in sqs mode (the default), pointed at the loopback node."""
    return environ(
        BROKER_TIER_QUEUE=None,
        BROKER_TIER_ENVIRONMENT=environment_name,
        BROKER_TIER_QUEUE_URLS=json.dumps({"default": "https://sqs.eu-west-1.amazonaws.com/1/q"}),
        BROKER_TIER_REDIS_HOST="127.0.0.1",
        BROKER_TIER_REDIS_PORT=str(port),
        BROKER_TIER_REDIS_TLS="false",
        BROKER_TIER_REDIS_AUTH_TOKEN=password,
        BROKER_TIER_REGION=REGION,
    )


def publisher(port: int, password: str, environment_name: str) -> KeyspacePublisher:
    variables = beat_environ(port, password, environment_name)
    app = Celery("keyspace-test")
    app.conf.update(build_settings(TierEnvironment.from_environ(variables)))
    found = publisher_for(app, TierEnvironment.from_environ(variables))
    assert found is not None
    return found


def test_beat_publishes_each_database_s_keys_and_keys_without_a_ttl_in_sqs_broker_mode(lone_redis, cloudwatch):
    cache, results = lone_redis.client(0), lone_redis.client(2)
    cache.mset({f"cache:{n}": "v" for n in range(5)})  # an app's cache that never expires
    cache.set("cache:fresh", "v", ex=600)
    results.set("celery-task-meta-1", "{}", ex=86400)
    results.set("celery-task-meta-2", "{}")  # an app that stored a result without result_expires
    environment_name = f"test{uuid.uuid4().hex[:8]}"
    assert publisher(lone_redis.port, lone_redis.password, environment_name).publish_once() is True
    names = contract.REDIS_KEYSPACE_DIMENSIONS
    found = {}
    now = datetime.now(UTC)
    for database in ("0", "2"):
        for metric in (contract.REDIS_KEYSPACE_KEYS, contract.REDIS_KEYSPACE_KEYS_WITHOUT_TTL):
            (point,) = cloudwatch.get_metric_statistics(
                Namespace=contract.REDIS_KEYSPACE_NAMESPACE,
                MetricName=metric,
                Dimensions=[{"Name": names[0], "Value": environment_name}, {"Name": names[1], "Value": database}],
                StartTime=now - timedelta(minutes=5),
                EndTime=now + timedelta(minutes=5),
                Period=3600,
                Statistics=["Maximum"],
            )["Datapoints"]
            found[(database, metric)] = (point["Maximum"], point["Unit"])
    assert found == {
        ("0", "Keys"): (6, "Count"),
        ("0", "KeysWithoutTtl"): (5, "Count"),
        ("2", "Keys"): (2, "Count"),
        ("2", "KeysWithoutTtl"): (1, "Count"),
    }


def test_a_redis_it_cannot_read_costs_one_warning_never_beat(cloudwatch, caplog):
    unreachable = publisher(free_port(), "nobody-listens-0123456789", "testunreachable")
    with caplog.at_level(logging.WARNING, logger="broker_tier.keyspace_metrics"):
        assert unreachable.publish_once() is False
    (line,) = [r.getMessage() for r in caplog.records if r.name == "broker_tier.keyspace_metrics"]
    assert line.startswith("Redis keyspace metrics could not be read from Redis: ConnectionError")
    assert line.endswith("(Beat goes on; tried again in 60 s)")


def test_outside_the_stack_no_environment_means_no_publisher_and_info_keyspace_is_read_as_redis_writes_it():
    variables = beat_environ(6380, "x" * 16, None)
    assert publisher_for(Celery("off"), TierEnvironment.from_environ(variables)) is None
    assert keyspace({"db0": {"keys": 3, "expires": 1, "avg_ttl": 5}, "db12": {"keys": 2, "expires": 2}}) == {
        0: (3, 2),
        12: (2, 0),
    }

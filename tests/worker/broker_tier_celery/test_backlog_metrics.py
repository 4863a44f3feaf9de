"""Beat's Redis backlog metrics, against a real redis-server (AUTH) and moto's CloudWatch on loopback."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from celery import Celery, signals
from celery.beat import Service
from fake_endpoint import CannedEndpoint, CannedResponse
from kombu.exceptions import OperationalError
from kombu.transport import redis as kombu_redis
from loopback import ROOT, free_port, wait_until
from moto_server import aws_at, moto_server
from settings_environ import environ

import broker_tier_contract as contract
from broker_tier.alarm_catalog import redis_queue_specs
from broker_tier.config import CONTEXT_KEY, deep_merge, load_environments
from broker_tier.rehearsal.redis_pair import RedisNode, RedisPair
from broker_tier.rehearsal.tls import ENDPOINT_HOSTNAME, make_loopback_tls
from broker_tier_celery import TierEnvironment, build_settings, configure, heartbeat
from broker_tier_celery.backlog_metrics import Backlog, BacklogPublisher, publisher_for
from broker_tier_celery.failover import REACHED_REPLICA

REDIS_PASSWORD = "backlog-test-token-0123456789"
REGION = "eu-west-1"
CLASSES = ("interactive", "batch")
PERIOD_SECONDS = 0.3
"""The tests' publication period (the contract's is a minute)."""
BROKER_DB = 1
VISIBILITY_TIMEOUTS = {"interactive": 120, "batch": 900}
THREAD_NAME = "broker-tier-backlog-metrics"

pytestmark = pytest.mark.xdist_group("backlog-metrics")  # one pytest-xdist worker starts redis and moto once


@pytest.fixture(scope="module")
def redis_node(tmp_path_factory):
    node = RedisNode(name="broker", password=REDIS_PASSWORD, workdir=tmp_path_factory.mktemp("redis"), tls=None)
    node.start()
    yield node
    node.stop()


@pytest.fixture
def broker(redis_node):
    client = redis_node.client(BROKER_DB)
    client.flushdb()
    return client


@pytest.fixture(scope="module")
def moto_endpoint():
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(monkeypatch, moto_endpoint):
    """boto3's clients (the publisher's and the test's) reach moto's server."""
    aws_at(monkeypatch, moto_endpoint, REGION)
    import boto3

    return boto3.client("cloudwatch", region_name=REGION)


def in_tmp_path_heartbeat(monkeypatch, tmp_path) -> None:
    """Beat's heartbeat (which configure's beat_init hook starts) in the test's directory, and forgotten after."""
    monkeypatch.setenv(contract.ContainerEnvironment.HEARTBEAT_DIR.name, str(tmp_path / "heartbeat"))
    monkeypatch.setattr(heartbeat, "_current", None)


@pytest.fixture
def environment_name() -> str:
    """A fresh ``Environment`` dimension per test: moto's server keeps what earlier tests published."""
    return f"test{uuid.uuid4().hex[:8]}"


@pytest.fixture
def started():
    """Publishers a test starts, stopped at its end."""
    publishers: list[BacklogPublisher] = []
    yield publishers
    for publisher in publishers:
        publisher.stop()
        if publisher.thread.is_alive():  # some tests call it without its thread
            publisher.thread.join(timeout=5)


def beat_environ(port: int, environment_name: str | None, **overrides: str | None) -> dict[str, str]:
    """What the stack gives the Beat container in redis mode (no class), pointed at the loopback node."""
    return environ(
        **{
            "BROKER_TIER_BROKER": "redis",
            "BROKER_TIER_QUEUE": None,
            "BROKER_TIER_ENVIRONMENT": environment_name,
            "BROKER_TIER_QUEUE_URLS": json.dumps({name: "unused" for name in CLASSES}),
            "BROKER_TIER_REDIS_HOST": "127.0.0.1",
            "BROKER_TIER_REDIS_PORT": str(port),
            "BROKER_TIER_REDIS_TLS": "false",
            "BROKER_TIER_REDIS_AUTH_TOKEN": REDIS_PASSWORD,
            "BROKER_TIER_REGION": REGION,
            "BROKER_TIER_VISIBILITY_TIMEOUTS": json.dumps(VISIBILITY_TIMEOUTS),
            **overrides,
        }
    )


def app_for(environ_: dict[str, str]) -> Celery:
    app = Celery("backlog-test")
    app.conf.update(build_settings(TierEnvironment.from_environ(environ_)))
    return app


def publisher(port: int, environment_name: str, started: list[BacklogPublisher]) -> BacklogPublisher:
    env = TierEnvironment.from_environ(beat_environ(port, environment_name))
    new = BacklogPublisher(
        app_for(beat_environ(port, environment_name)),
        environment=environment_name,
        classes=list(env.queue_urls),
        region=env.region,
        period_seconds=PERIOD_SECONDS,
        visibility_timeouts=env.visibility_timeouts,
    )
    started.append(new)
    return new


def statistics(cloudwatch, environment_name: str, class_name: str, metric: str) -> dict | None:
    """The minute's Maximum, Minimum and SampleCount of one metric, or None before any publication."""
    now = datetime.now(UTC)
    datapoints = cloudwatch.get_metric_statistics(
        Namespace=contract.REDIS_BACKLOG_NAMESPACE,
        MetricName=metric,
        Dimensions=[{"Name": "Environment", "Value": environment_name}, {"Name": "QueueClass", "Value": class_name}],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=5),
        Period=3600,
        Statistics=["Maximum", "Minimum", "SampleCount"],
    )["Datapoints"]
    return datapoints[0] if datapoints else None


def test_beat_publishes_each_class_waiting_messages_of_every_priority_and_its_own_unacked_record(
    redis_node, broker, aws, environment_name, started
):
    producer = app_for(beat_environ(redis_node.port, environment_name))
    for _ in range(2):
        producer.send_task("noop", queue="interactive")
    for priority in (None, None, 5, 9):  # kombu's Redis transport: a list per priority step
        producer.send_task("noop", queue="batch", priority=priority)
    sep = kombu_redis.Channel.sep
    assert (broker.llen("batch"), broker.llen(f"batch{sep}3"), broker.llen(f"batch{sep}9")) == (2, 1, 1)
    # a batch worker receives two (the plain list first) and holds them, unacknowledged, in its class's record
    worker = app_for({**beat_environ(redis_node.port, environment_name), "BROKER_TIER_QUEUE": "batch"})
    with worker.connection_for_read() as connection:
        channel = connection.default_channel
        held = [channel.basic_get("batch", no_ack=False) for _ in range(2)]
        assert all(held) and broker.hlen("unacked:batch") == 2
        broker.hset("unacked", "someone-else's", "{}")  # kombu's shared default record: no class's
        publisher(redis_node.port, environment_name, started).start()
        expected = {
            ("interactive", contract.REDIS_BACKLOG_WAITING): 2,
            ("interactive", contract.REDIS_BACKLOG_IN_PROGRESS): 0,
            ("interactive", contract.REDIS_MESSAGES_OVERDUE): 0,
            ("batch", contract.REDIS_BACKLOG_WAITING): 2,  # the two priority lists
            ("batch", contract.REDIS_BACKLOG_IN_PROGRESS): 2,
            ("batch", contract.REDIS_MESSAGES_OVERDUE): 0,  # in progress, well within the time-out
        }
        # every period: two publications of each at least, each the same counts
        found = wait_until(
            lambda: (
                all((s := statistics(aws, environment_name, *key)) and s["SampleCount"] >= 2 for key in expected)
                and {key: statistics(aws, environment_name, *key) for key in expected}
            ),
            10,
            "two publications of every metric",
        )
        for message in held:
            message.ack()
    assert {key: (s["Minimum"], s["Maximum"], s["Unit"]) for key, s in found.items()} == {
        key: (count, count, "Count") for key, count in expected.items()
    }
    metrics = aws.list_metrics(
        Namespace=contract.REDIS_BACKLOG_NAMESPACE, Dimensions=[{"Name": "Environment", "Value": environment_name}]
    )["Metrics"]
    ages = [(name, contract.REDIS_OLDEST_MESSAGE_AGE) for name in CLASSES]  # just published: seconds old, in seconds
    assert all((s := statistics(aws, environment_name, *key)) and 0 <= s["Maximum"] < 30 for key in ages)
    assert statistics(aws, environment_name, *ages[0])["Unit"] == "Seconds"
    assert {(m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in metrics} == {
        (metric, (("Environment", environment_name), ("QueueClass", name))) for name, metric in [*expected, *ages]
    }


def test_redis_is_read_like_the_broker_over_tls_with_the_auth_token_and_never_from_a_replica(tmp_path, monkeypatch):
    """The stack's Redis: TLS (certificate checked, host name too) and AUTH. A node that is not the primary, as
    the endpoint reaches until its DNS name moves after a failover, is refused, not read."""
    tls = make_loopback_tls(tmp_path / "tls")
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))  # as the rehearsal trusts its CA; in AWS, Amazon's
    pair = RedisPair.start(workdir=tmp_path / "redis", password=REDIS_PASSWORD, tls=tls)
    try:
        pair.primary.client(BROKER_DB).lpush("batch", "a message")
        readers = {
            role: BacklogPublisher(
                app_for(
                    beat_environ(
                        node.port, "dev", BROKER_TIER_REDIS_TLS="true", BROKER_TIER_REDIS_HOST=ENDPOINT_HOSTNAME
                    )
                ),
                environment="dev",
                classes=CLASSES,
                region=REGION,
            )
            for role, node in (("primary", pair.primary), ("replica", pair.replica))
        }
        wait_until(pair.in_sync, 10, "the replica to have the message")
        assert readers["primary"].read() == {"interactive": Backlog(0, 0), "batch": Backlog(1, 0)}
        with pytest.raises(OperationalError, match=REACHED_REPLICA):
            readers["replica"].read()
    finally:
        pair.stop()


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("broker_tier")]


def test_an_unreachable_redis_is_logged_once_a_period_and_the_publisher_goes_on(
    tmp_path, aws, environment_name, started, caplog
):
    caplog.set_level(logging.INFO, logger="broker_tier.backlog_metrics")
    node = RedisNode(name="late", password=REDIS_PASSWORD, workdir=tmp_path, tls=None)  # not started yet
    publisher(node.port, environment_name, started).start()
    wait_until(lambda: len(warnings(caplog)) >= 2, 10, "two periods' warnings")
    message = warnings(caplog)[0]
    assert message.startswith("Redis backlog metrics could not be read from Redis: OperationalError: ")
    assert "\n" not in message and message.endswith(f"(Beat goes on; tried again in {PERIOD_SECONDS:g} s)")
    node.start()  # Redis is back: the next period publishes
    try:
        wait_until(
            lambda: statistics(aws, environment_name, "batch", contract.REDIS_BACKLOG_WAITING),
            10,
            "a publication once Redis answers",
        )
    finally:
        node.stop()
    assert any(
        r.getMessage().startswith("Redis backlog metrics published: interactive 0 waiting")
        and r.levelno == logging.INFO
        for r in caplog.records
    )  # said once it works again


def test_a_cloudwatch_error_is_logged_once_a_period_and_the_publisher_goes_on(
    redis_node, broker, monkeypatch, environment_name, started, caplog
):
    caplog.set_level(logging.INFO, logger="broker_tier.backlog_metrics")
    with CannedEndpoint(CannedResponse(403, "", "application/cbor")) as endpoint:  # CloudWatch refuses
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        publisher(redis_node.port, environment_name, started).start()
        wait_until(lambda: len(warnings(caplog)) >= 2, 10, "two periods' warnings")
        assert warnings(caplog)[0] == (
            "Redis backlog metrics could not be published to CloudWatch: ClientError: An "
            "error occurred (403) when calling the PutMetricData operation: (Beat goes "
            f"on; tried again in {PERIOD_SECONDS:g} s)"
        )
        endpoint.response = CannedResponse(200, "", "application/cbor")  # accepted again
        wait_until(
            lambda: any(r.getMessage().startswith("Redis backlog metrics published") for r in caplog.records),
            10,
            "a publication once CloudWatch accepts it",
        )
    assert started[0].thread.is_alive()


def backlog_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == THREAD_NAME]


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"BROKER_TIER_BROKER": "sqs"}, "off (the broker is sqs, whose queues publish their own metrics)"),
        ({"BROKER_TIER_ENVIRONMENT": None}, "off (BROKER_TIER_ENVIRONMENT is not set"),
    ],
    ids=["sqs-mode", "no-environment-name"],
)
def test_nothing_starts_in_sqs_mode_or_without_the_environment_name(overrides, reason, caplog, tmp_path, monkeypatch):
    caplog.set_level(logging.INFO, logger="broker_tier.backlog_metrics")
    app = Celery("backlog-test")
    before = backlog_threads()
    configure(app, beat_environ(free_port(), "dev", **overrides))
    in_tmp_path_heartbeat(monkeypatch, tmp_path)
    # what a starting Beat sends (its scheduler opens its schedule file: the tests' own)
    signals.beat_init.send(sender=Service(app, schedule_filename=str(tmp_path / "schedule")))
    assert backlog_threads() == before
    assert any(reason in r.getMessage() for r in caplog.records)
    assert publisher_for(app, TierEnvironment.from_environ(beat_environ(free_port(), "dev", **overrides))) is None


def test_a_beat_of_another_app_starts_nothing():
    app = Celery("backlog-test")
    configure(app, beat_environ(free_port(), "dev"))
    before = backlog_threads()
    signals.beat_init.send(sender=Service(Celery("someone-else")))
    assert backlog_threads() == before


def test_celery_beat_starting_starts_the_publisher(
    redis_node, broker, aws, environment_name, started, monkeypatch, tmp_path
):
    """A real ``celery.beat.Service`` of an app the settings package configured: its ``beat_init`` starts the
    publisher, whose first publication follows at once (the contract's period applies after it)."""
    original_start = BacklogPublisher.start

    def start_and_keep(self: BacklogPublisher) -> None:
        started.append(self)  # so that the test can stop it
        original_start(self)

    monkeypatch.setattr(BacklogPublisher, "start", start_and_keep)
    in_tmp_path_heartbeat(monkeypatch, tmp_path)
    app = Celery("backlog-beat")
    configure(app, beat_environ(redis_node.port, environment_name))
    app.send_task("noop", queue="interactive")
    beat = Service(app, max_interval=0.2, schedule_filename=str(tmp_path / "schedule"), remote_control=False)
    thread = threading.Thread(target=beat.start, name="test-beat", daemon=True)
    thread.start()
    try:
        found = wait_until(
            lambda: statistics(aws, environment_name, "interactive", contract.REDIS_BACKLOG_WAITING),
            10,
            "Beat's first publication",
        )
    finally:
        beat.stop()
        thread.join(timeout=10)
    assert found["Maximum"] == 1
    assert len(started) == 1 and started[0].period_seconds == contract.REDIS_BACKLOG_PERIOD_SECONDS


def redis_mode_thresholds() -> dict[str, float]:
    """The redis-mode alarms' thresholds as the catalogue gives them for cdk.json's dev in redis broker mode."""
    context = json.loads((ROOT / "cdk.json").read_text())["context"][CONTEXT_KEY]
    context["environments"]["dev"] = deep_merge(context["environments"]["dev"], {"compute": {"broker": "redis"}})
    return {spec.name: spec.threshold for spec in redis_queue_specs(load_environments(context)["dev"])}


def rewrite_oldest(broker, queue: str, change) -> dict:
    """Rewrites the oldest message waiting in ``queue`` (kombu's right end) with ``change(payload)``."""
    payload = json.loads(broker.lindex(queue, -1))
    change(payload)
    broker.lset(queue, -1, json.dumps(payload))
    return payload


def test_an_old_message_and_one_overdue_in_progress_cross_their_alarm_thresholds(
    redis_node, broker, aws, environment_name, started
):
    thresholds = redis_mode_thresholds()
    age_threshold, overdue_threshold = thresholds["queue-batch-age"], thresholds["unacked-batch-overdue"]
    app = Celery("backlog-old-message")
    configure(app, beat_environ(redis_node.port, environment_name))  # the settings package stamps the publish time
    worker = app_for({**beat_environ(redis_node.port, environment_name), "BROKER_TIER_QUEUE": "batch"})
    with worker.connection_for_read() as connection:
        app.send_task("noop", queue="batch")
        held = connection.default_channel.basic_get("batch", no_ack=False)  # in progress from now on
        # ... since before the class's visibility time-out, as kombu scores it (the time it was received)
        broker.zadd("unacked_index:batch", {held.delivery_tag: time.time() - VISIBILITY_TIMEOUTS["batch"] - 30})
        app.send_task("noop", queue="batch")  # waiting
        stamped = json.loads(broker.lindex("batch", -1))["headers"][contract.PUBLISHED_AT_HEADER]
        assert abs(stamped - time.time()) < 30
        # the waiting message, as if published longer ago than the class's latency objective
        waited = age_threshold + 60
        rewrite_oldest(broker, "batch", lambda m: m["headers"].update({contract.PUBLISHED_AT_HEADER: stamped - waited}))
        assert publisher(redis_node.port, environment_name, started).publish_once()
        held.ack()
    age = statistics(aws, environment_name, "batch", contract.REDIS_OLDEST_MESSAGE_AGE)
    overdue = statistics(aws, environment_name, "batch", contract.REDIS_MESSAGES_OVERDUE)
    assert age_threshold < waited <= age["Maximum"] < waited + 30, (age, age_threshold)
    assert overdue["Maximum"] == 1 > overdue_threshold
    quiet = statistics(aws, environment_name, "interactive", contract.REDIS_OLDEST_MESSAGE_AGE)
    assert quiet["Maximum"] == 0  # nothing waits there: no age


def test_a_message_without_the_stamp_is_aged_from_beats_first_sight_of_it(
    redis_node, broker, environment_name, started
):
    """A producer without the settings package stamps nothing: Beat ages its message from when it first saw it,
    and forgets it once it is consumed."""
    producer = app_for(beat_environ(redis_node.port, environment_name))
    producer.send_task("noop", queue="interactive")
    rewrite_oldest(broker, "interactive", lambda m: m["headers"].pop(contract.PUBLISHED_AT_HEADER, None))
    reader = publisher(redis_node.port, environment_name, started)
    first = reader.read()["interactive"].oldest_age_seconds
    time.sleep(1.2)
    second = reader.read()["interactive"].oldest_age_seconds
    assert first < 1 and 1.1 <= second < 30
    broker.delete("interactive")
    assert reader.read()["interactive"] == Backlog(waiting=0, in_progress=0, oldest_age_seconds=0.0, overdue=0)
    assert reader.first_seen["interactive"] == {}

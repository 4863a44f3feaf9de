"""A real Celery worker and producer, configured by broker_tier_celery, against loopback servers."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from celery import Celery
from loopback import TEST_MAX_RECEIVE_COUNT, celery_worker, tier_environ, wait_until

from broker_tier_celery import settings_from_environment
from broker_tier_contract import parse_canary_ledger_line

pytestmark = pytest.mark.slow  # real worker processes (scheduled first: tests/conftest.py)


def producer(environ: dict[str, str]) -> Celery:
    app = Celery("integration-producer")
    app.conf.update(settings_from_environment(environ))
    return app


def test_sqs_task_is_consumed_by_its_class_worker_and_result_read_from_redis(
    redis_server, sqs_server, tmp_path, monkeypatch
):
    environ = tier_environ(redis_server, sqs_server, broker="sqs", queue=None)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)  # boto's credentials for the producer
    with celery_worker(
        tier_environ(redis_server, sqs_server, broker="sqs", queue="interactive"),
        "interactive",
        tmp_path / "worker.log",
    ):
        token = uuid.uuid4().hex
        result = producer(environ).send_task("broker_tier.canary", args=[token], queue="interactive")
        assert result.get(timeout=60) == {"token": token, "queue": "interactive"}
    results_db = redis_server["client_for"](2)
    assert json.loads(results_db.get(f"celery-task-meta-{result.id}"))["status"] == "SUCCESS"
    assert 0 < results_db.ttl(f"celery-task-meta-{result.id}") <= 86400  # result_expires applies
    ledger = [
        record
        for line in (tmp_path / "worker.log").read_text().splitlines()
        if (record := parse_canary_ledger_line(line)) and record["token"] == token
    ]
    assert [(r["task_id"], r["queue"]) for r in ledger] == [(result.id, "interactive")]  # ran exactly once


def test_a_task_that_keeps_failing_lands_in_the_dead_letter_queue(redis_server, sqs_server, tmp_path, monkeypatch):
    environ = tier_environ(redis_server, sqs_server, broker="sqs", queue=None)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    client, urls = sqs_server["client"], sqs_server["urls"]
    with celery_worker(
        tier_environ(redis_server, sqs_server, broker="sqs", queue="default"), "default", tmp_path / "worker.log"
    ):
        token = uuid.uuid4().hex
        task_id = producer(environ).send_task("broker_tier.always_fails", args=[token], queue="default").id

        def in_dead_letter_queue():
            messages = client.receive_message(QueueUrl=urls["default-dlq"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
            # kombu's SQS transport base64-encodes the message envelope, which carries the task id
            return [m for m in messages.get("Messages", []) if task_id in base64.b64decode(m["Body"]).decode()]

        moved = wait_until(in_dead_letter_queue, 90, "the failing task in the dead-letter queue")
    log = (tmp_path / "worker.log").read_text()
    assert log.count(f"broker-tier test failure {token}") >= TEST_MAX_RECEIVE_COUNT  # ran once per receive
    assert len(moved) == 1
    attributes = client.get_queue_attributes(QueueUrl=urls["default"], AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"


def test_a_task_routed_to_an_undeclared_queue_fails_clearly(redis_server, sqs_server):
    app = producer(tier_environ(redis_server, sqs_server, broker="sqs", queue=None))
    with pytest.raises(Exception, match="nope") as raised:
        app.send_task("broker_tier.canary", args=["x"], queue="nope")
    assert type(raised.value).__name__ in ("QueueNotFound", "UndefinedQueueException")


def test_redis_broker_mode_round_trips_through_the_broker_db(redis_server, sqs_server, tmp_path):
    environ = tier_environ(redis_server, sqs_server, broker="redis", queue=None)
    with celery_worker(
        tier_environ(redis_server, sqs_server, broker="redis", queue="interactive"),
        "interactive",
        tmp_path / "worker.log",
    ):
        token = uuid.uuid4().hex
        result = producer(environ).send_task("broker_tier.canary", args=[token], queue="interactive")
        assert result.get(timeout=60)["token"] == token
    # kombu's bookkeeping lives in the layout's broker DB (1) and nowhere else
    assert redis_server["client_for"](1).keys("_kombu.binding*")
    assert not redis_server["client_for"](0).keys("_kombu*") and not redis_server["client_for"](2).keys("_kombu*")
    assert redis_server["client_for"](2).exists(f"celery-task-meta-{result.id}")

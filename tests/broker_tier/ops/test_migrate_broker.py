"""migrate-broker: the fit checks, the move interrupted at each step (a real redis-server and moto's SQS server),
the command's dry run, and one live migration of a Redis-broker tier to SQS with real Celery workers, interrupted
and run again."""

from __future__ import annotations

import base64
import json
import os
import signal
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from celery import Celery
from loopback import REDIS_PASSWORD, celery_worker, tier_environ, wait_until

from broker_tier.evidence.report import Report
from broker_tier.ops import cli
from broker_tier.ops.migrate_broker import sqs_side
from broker_tier.ops.migrate_broker.command import redis_client
from broker_tier.ops.migrate_broker.fit import SQS_MAX_DELAY_SECONDS, TargetLimits, delay_seconds, misfit
from broker_tier.ops.migrate_broker.messages import QueuedMessage
from broker_tier.ops.migrate_broker.migration import Migration, MigrationOptions
from broker_tier.ops.migrate_broker.mover import MoveResult, RedisToSqs, SqsToRedis
from broker_tier.ops.migrate_broker.redis_side import RedisBroker, journal_key, redis_unacked_keys
from broker_tier.ops.migrate_broker.sqs_side import SqsBroker, decode_body
from broker_tier_celery import settings_from_environment
from broker_tier_contract import CANARY_TASK, SQS_MAX_MESSAGE_BYTES

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SQS = TargetLimits(
    broker="sqs", visibility_timeout_seconds=900, max_message_bytes=SQS_MAX_MESSAGE_BYTES, task_time_limit_seconds=300
)
REDIS = TargetLimits(broker="redis", visibility_timeout_seconds=900, task_time_limit_seconds=300)
UNIT_DB, LIVE_BROKER_DB, LIVE_RESULTS_DB = 9, 7, 8
"""Databases of the session's redis-server no other test uses."""


def envelope(*, task_id: str | None = None, eta: datetime | None = None, body: str = "[[], {}, {}]", **headers):
    """A task message as kombu's transports store it (Celery's message protocol 2)."""
    return {
        "body": base64.b64encode(body.encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "id": task_id or str(uuid.uuid4()),
            "task": CANARY_TASK,
            "eta": eta.isoformat() if eta else None,
            "retries": 0,
            **headers,
        },
        "properties": {"body_encoding": "base64", "delivery_tag": str(uuid.uuid4()), "priority": 0},
    }


def message(**kwargs) -> QueuedMessage:
    return QueuedMessage.parse("default", json.dumps(envelope(**kwargs)), "list 'default'")


# -- the fit checks ---------------------------------------------------------------------------------------------------
def test_a_message_over_the_queues_maximum_size_does_not_fit_sqs_and_is_named():
    big = message(body="x" * 800_000, task_id="big-one")  # about 1.45 MB once base64-encoded twice
    reason = misfit(big, SQS, NOW)
    assert reason is not None and "big-one" in reason and "MaximumMessageSize of 1,048,576" in reason
    assert "claim_check.enabled" in reason
    assert misfit(message(body="x" * 1000), SQS, NOW) is None


def test_with_the_claim_check_on_a_big_message_fits_sqs_and_redis_takes_any_size():
    big = message(body="x" * 800_000)
    claim_check = TargetLimits(**{**SQS.__dict__, "claim_check": True})
    assert misfit(big, claim_check, NOW) is None
    assert misfit(big, REDIS, NOW) is None


def test_an_eta_fits_while_delay_and_visibility_cover_its_wait():
    # SQS: up to 15 minutes hidden by DelaySeconds, then held by a worker within the visibility time-out
    near = message(eta=NOW + timedelta(seconds=SQS_MAX_DELAY_SECONDS + 500))
    assert delay_seconds(near, SQS, NOW) == SQS_MAX_DELAY_SECONDS
    assert misfit(near, SQS, NOW) is None  # held 500 + 300 + 60 <= 900
    far = message(eta=NOW + timedelta(seconds=SQS_MAX_DELAY_SECONDS + 541), task_id="far-one")
    reason = misfit(far, SQS, NOW)
    assert reason is not None and "far-one" in reason and "celery#4766" in reason
    # Redis has no delay: the whole wait is held by a worker
    assert delay_seconds(near, REDIS, NOW) == 0
    assert misfit(message(eta=NOW + timedelta(seconds=540)), REDIS, NOW) is None
    assert misfit(message(eta=NOW + timedelta(seconds=541)), REDIS, NOW) is not None
    # a task's own time limit counts instead of the class's
    assert misfit(message(eta=NOW + timedelta(seconds=540), timelimit=[400, None]), REDIS, NOW) is not None
    assert misfit(message(eta=NOW - timedelta(seconds=5)), REDIS, NOW) is None  # past: runs at once


def test_a_claim_check_reference_does_not_fit_without_the_bucket():
    reference = QueuedMessage.parse("default", json.dumps({"broker_tier_claim_check": {"bucket": "b"}}), "sqs m")
    assert "claim-check reference" in (misfit(reference, REDIS, NOW) or "")


# -- the move, interrupted at each step (real redis-server, moto's SQS server) -------------------------------------
class Interrupt:
    """A checkpoint that stops the move (as Ctrl-C or a lost connection would) the ``nth`` time ``step`` is passed."""

    def __init__(self, step: str, nth: int) -> None:
        self.step, self.nth, self.seen = step, nth, 0

    def __call__(self, step: str, message: QueuedMessage) -> None:
        if step == self.step:
            self.seen += 1
            if self.seen == self.nth:
                raise KeyboardInterrupt(f"interrupted after {step} of {message.task_id}")


@pytest.fixture
def unit_sides(redis_server, sqs_server):
    """The Redis side on a database of its own, and a fresh SQS queue of moto's server."""
    client = redis_client(f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis_server['port']}/{UNIT_DB}")
    client.flushdb()
    sqs = sqs_server["client"]
    url = sqs.create_queue(QueueName=f"mb-unit-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "900"})[
        "QueueUrl"
    ]
    yield RedisBroker(client, ["default"]), SqsBroker(sqs, {"default": url})
    sqs.delete_queue(QueueUrl=url)
    client.flushdb()


def _sqs_keys(sqs_broker: SqsBroker) -> Counter:
    keys: Counter = Counter()
    while batch := sqs_broker.receive("default"):
        for moved, receipt in batch:
            keys[moved.idempotency_key] += 1
            sqs_broker.delete("default", receipt)
    return keys


RECEIVE_VISIBILITY = 1
REDIS_TO_SQS_STEPS = ["claimed", "journalled-sending", "sent", "journalled-sent", "unstaged"]


@pytest.mark.parametrize("step", REDIS_TO_SQS_STEPS)
def test_redis_to_sqs_interrupted_at_any_step_loses_nothing_and_names_what_it_may_have_sent_twice(unit_sides, step):
    redis_broker, sqs_broker = unit_sides
    client = redis_broker.client
    sent = [envelope() for _ in range(3)]
    for item in sent[:2]:
        client.lpush("default", json.dumps(item))
    unacked = redis_unacked_keys("default")  # one a killed worker had received
    client.hset(unacked["unacked_key"], "tag-1", json.dumps([sent[2], "", "default"]))
    client.zadd(unacked["unacked_index_key"], {"tag-1": 1})
    first = MoveResult()
    with pytest.raises(KeyboardInterrupt):
        RedisToSqs(redis_broker, sqs_broker, {"default": SQS}, checkpoint=Interrupt(step, 2)).move_class(
            "default", first
        )
    again = MoveResult()
    RedisToSqs(redis_broker, sqs_broker, {"default": SQS}).move_class("default", again)
    keys = _sqs_keys(sqs_broker)
    expected = {f"{item['headers']['id']}/0" for item in sent}
    assert set(keys) == expected  # nothing lost
    twice = {key for key, count in keys.items() if count > 1}
    named = {item["key"] for item in again.possible_duplicates}
    assert twice <= named  # every duplicate is named
    assert len(twice) == (1 if step == "sent" else 0)
    # named: a stop between the journal's "sending" and its "sent" (SendMessage may or may not have happened)
    assert len(named) == (1 if step in ("journalled-sending", "sent") else 0)
    assert redis_broker.counts("default") == {"waiting": 0, "unacked": 0, "staged": 0}
    assert client.zcard(unacked["unacked_index_key"]) == 0
    assert 0 < client.ttl(journal_key("sqs")) <= 14 * 86_400


@pytest.mark.parametrize("step", REDIS_TO_SQS_STEPS)
def test_a_move_to_sqs_interrupted_at_any_step_then_rolled_back_to_redis_leaves_each_message_once(
    unit_sides, step, monkeypatch
):
    monkeypatch.setattr(sqs_side, "RECEIVE_VISIBILITY_SECONDS", RECEIVE_VISIBILITY)
    redis_broker, sqs_broker = unit_sides
    sent = [envelope() for _ in range(3)]
    for item in sent:
        redis_broker.client.lpush("default", json.dumps(item))
    with pytest.raises(KeyboardInterrupt):
        RedisToSqs(redis_broker, sqs_broker, {"default": SQS}, checkpoint=Interrupt(step, 2)).move_class(
            "default", MoveResult()
        )
    back = MoveResult()
    SqsToRedis(sqs_broker, redis_broker, {"default": REDIS}).move_class("default", back)
    in_redis = [QueuedMessage.parse("default", t, "list").task_id for t in redis_broker.client.lrange("default", 0, -1)]
    assert sorted(in_redis) == sorted(item["headers"]["id"] for item in sent)  # each once, none lost
    assert redis_broker.counts("default") == {"waiting": 3, "unacked": 0, "staged": 0}
    assert sqs_broker.counts("default") == {"visible": 0, "in_flight": 0, "delayed": 0}


@pytest.mark.parametrize("step", ["received", "pushed", "deleted"])
def test_sqs_to_redis_interrupted_at_any_step_moves_each_message_once(unit_sides, step, monkeypatch):
    monkeypatch.setattr(sqs_side, "RECEIVE_VISIBILITY_SECONDS", RECEIVE_VISIBILITY)
    redis_broker, sqs_broker = unit_sides
    sent = [envelope(priority_hint=n) for n in range(3)]
    for item in sent:
        sqs_broker.sqs.send_message(
            QueueUrl=sqs_broker.queue_urls["default"], MessageBody=base64.b64encode(json.dumps(item).encode()).decode()
        )
    with pytest.raises(KeyboardInterrupt):
        SqsToRedis(sqs_broker, redis_broker, {"default": REDIS}, checkpoint=Interrupt(step, 2)).move_class(
            "default", MoveResult()
        )
    time.sleep(RECEIVE_VISIBILITY + 0.5)  # what the first run received and did not delete is visible again
    again = MoveResult()
    SqsToRedis(sqs_broker, redis_broker, {"default": REDIS}).move_class("default", again)
    in_redis = [
        QueuedMessage.parse("default", text, "list").task_id for text in redis_broker.client.lrange("default", 0, -1)
    ]
    assert sorted(in_redis) == sorted(item["headers"]["id"] for item in sent)  # each exactly once
    assert again.possible_duplicates == []
    assert sqs_broker.counts("default") == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_with_the_claim_check_a_big_message_moves_to_sqs_as_a_reference_and_back_whole(
    unit_sides, sqs_server, monkeypatch
):
    import boto3

    from broker_tier_celery.claim_check import REFERENCE_KEY, PayloadStore
    from broker_tier_celery.environment import ClaimCheckTarget

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    region = sqs_server["client"].meta.region_name
    bucket = f"mb-payloads-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=sqs_server["endpoint"], region_name=region)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    redis_broker, plain = unit_sides
    payloads = PayloadStore(ClaimCheckTarget(bucket, 262_144, sqs_server["endpoint"]), region)
    sqs_broker = SqsBroker(plain.sqs, plain.queue_urls, payloads=payloads)
    big = envelope(body="x" * 800_000)  # over the queue's 1 MiB once kombu's base64 is counted
    redis_broker.client.lpush("default", json.dumps(big))
    claim_check = {"default": TargetLimits(**{**SQS.__dict__, "claim_check": True})}

    RedisToSqs(redis_broker, sqs_broker, claim_check).move_class("default", result := MoveResult())
    assert len(result.moved) == 1 and result.misfits == []
    (sent,) = plain.sqs.receive_message(QueueUrl=plain.queue_urls["default"], VisibilityTimeout=0)["Messages"]
    assert len(sent["Body"]) < 2_000 and REFERENCE_KEY in decode_body(sent["Body"])  # a reference, not the payload
    assert len(s3.list_objects_v2(Bucket=bucket)["Contents"]) == 1
    redis_broker.forget_journals()  # what a completed migration does (the live test checks it)

    SqsToRedis(sqs_broker, redis_broker, {"default": REDIS}).move_class("default", back := MoveResult())
    assert len(back.moved) == 1
    (whole,) = redis_broker.client.lrange("default", 0, -1)
    assert json.loads(whole) == big  # the envelope as it was: body, headers, properties


def test_sqs_to_redis_waits_for_messages_in_flight_then_moves_them(unit_sides, monkeypatch):
    monkeypatch.setattr(sqs_side, "RECEIVE_VISIBILITY_SECONDS", RECEIVE_VISIBILITY)
    redis_broker, sqs_broker = unit_sides
    url = sqs_broker.queue_urls["default"]
    sent = [envelope() for _ in range(4)]
    for item in sent:
        sqs_broker.sqs.send_message(QueueUrl=url, MessageBody=base64.b64encode(json.dumps(item).encode()).decode())
    held = sqs_broker.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=2)["Messages"]
    assert len(held) == 1  # a stopped worker's message, back after its visibility time-out
    workers = LocalWorkers()
    workers.current = "redis"
    options = MigrationOptions(target="redis", settle_seconds=0.5, poll_seconds=0.5, quiet_timeout_seconds=10)
    report = Report("migrate-broker", "loopback", "sqs -> redis", False)
    Migration(redis=redis_broker, sqs=sqs_broker, workers=workers, options=options, report=report).run()
    assert report.outcome == "passed", report.error
    assert any("in flight" in line["message"] for line in report.timeline)  # it waited for the held one
    in_redis = sorted(
        QueuedMessage.parse("default", t, "list").task_id for t in redis_broker.client.lrange("default", 0, -1)
    )
    assert in_redis == sorted(item["headers"]["id"] for item in sent)
    assert report.measurements["result"]["moved"] == 4


# -- the command ------------------------------------------------------------------------------------------------------
def test_dry_run_checks_every_queued_message_names_one_that_does_not_fit_then_plans_the_switch(
    aws, redis_server, tmp_path, monkeypatch
):
    from fake_aws import ENV, stack_body

    import broker_tier_contract as contract

    compute = contract.stack_name(ENV, contract.COMPUTE)
    outputs = {**aws.tier.compute_outputs, contract.ComputeOutputs.BROKER: "redis"}
    aws.clients["cloudformation"].update_stack(StackName=compute, TemplateBody=stack_body(outputs))
    monkeypatch.setenv("BROKER_TIER_REDIS_AUTH_TOKEN", REDIS_PASSWORD)  # never on the command line
    url = f"redis://127.0.0.1:{redis_server['port']}/{UNIT_DB}"
    client = redis_client(url)
    client.flushdb()
    client.lpush("default", json.dumps(envelope(task_id="fits")))
    client.lpush("default", json.dumps(envelope(task_id="too-far", eta=datetime.now(UTC) + timedelta(hours=2))))
    argv = ["migrate-broker", "--env", ENV, "--to", "sqs", "--dry-run", "--redis-url", url, "--report-dir"]

    assert cli.main([*argv, str(tmp_path / "refused")], clients=aws.clients) == 2
    refused = json.loads(next((tmp_path / "refused").glob("*.json")).read_text())
    assert refused["outcome"] == "refused" and refused["measurements"]["surveyed"] == 2
    assert len(refused["measurements"]["misfits"]) == 1 and "too-far" in refused["measurements"]["misfits"][0]

    client.lpop("default")  # the ETA task, left for later
    assert cli.main([*argv, str(tmp_path / "planned")], clients=aws.clients) == 0
    planned = json.loads(next((tmp_path / "planned").glob("*.json")).read_text())
    assert planned["outcome"] == "planned"
    assert any("BROKER_TIER_BROKER=sqs" in step for step in planned["plan"])  # publishers first
    assert any(f"cdk deploy {compute}" in step for step in planned["plan"])  # then the workers
    assert client.llen("default") == 1 and not client.exists(journal_key("sqs"))  # a dry run changes nothing
    client.flushdb()


# -- a live tier, moved (real Celery workers) -------------------------------------------------------------------------
class LocalWorkers:
    """The ``Workers`` of the loopback tier: the test switches the processes itself."""

    def __init__(self) -> None:
        self.current = "redis"

    def broker(self) -> str:
        return self.current

    def switch_steps(self, target: str) -> list[str]:
        return [f"the test starts the {target} workers"]


def producer(environ: dict[str, str]) -> Celery:
    app = Celery("migration-producer")
    app.conf.update(settings_from_environment(environ))
    return app


@pytest.mark.slow
def test_a_live_redis_broker_tier_moves_to_sqs_interrupted_and_run_again_with_every_task_run_once(
    redis_server, sqs_server, tmp_path, monkeypatch
):
    sqs = sqs_server["client"]
    url = sqs.create_queue(QueueName=f"mb-live-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "600"})[
        "QueueUrl"
    ]
    databases = {
        "BROKER_TIER_REDIS_DB_BROKER": str(LIVE_BROKER_DB),
        "BROKER_TIER_REDIS_DB_RESULTS": str(LIVE_RESULTS_DB),
    }

    def environ(broker: str, queue: str | None) -> dict[str, str]:
        base = tier_environ(redis_server, sqs_server, broker=broker, queue=queue)
        return {**base, **databases, "BROKER_TIER_QUEUE_URLS": json.dumps({"default": url})}

    for name, value in environ("sqs", None).items():
        monkeypatch.setenv(name, value)  # boto's credentials for the producer and the mover
    broker_db = redis_client(f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis_server['port']}/{LIVE_BROKER_DB}")
    broker_db.flushdb()
    unacked = redis_unacked_keys("default")["unacked_key"]
    tokens: dict[str, str] = {}  # token -> how it was sent

    def send(app: Celery, kind: str, **options) -> None:
        token = f"{kind}-{uuid.uuid4().hex[:8]}"
        tokens[token] = kind
        app.send_task(CANARY_TASK, args=[token], queue="default", **options)

    # 1. tasks flow in redis mode
    redis_log = tmp_path / "redis-worker.log"
    redis_producer = producer(environ("redis", None))
    with celery_worker(environ("redis", "default"), "default", redis_log, name="redis") as redis_worker:
        for _ in range(5):
            send(redis_producer, "flowed")
        wait_until(lambda: len(ledger_tokens(redis_log)) == 5, 60, "the redis worker to run 5 tasks")
        # 2. two tasks with an ETA: the worker holds them, un-acknowledged, until it dies (SIGKILL, no restore)
        for _ in range(2):
            send(redis_producer, "eta", countdown=20)
        wait_until(lambda: broker_db.hlen(unacked) == 2, 30, "the ETA tasks in the unacked record")
        os.kill(redis_worker.pid, signal.SIGKILL)
        redis_worker.wait(timeout=10)
    # 3. queued while no worker consumes Redis, then the publishers switch: the next ones wait in SQS
    for _ in range(10):
        send(redis_producer, "queued")
    redis_producer.pool.force_close_all()  # the producer's connections to the Redis broker go with its switch
    redis_producer.close()
    sqs_producer = producer(environ("sqs", None))
    for _ in range(3):
        send(sqs_producer, "after-switch")
    assert broker_db.llen("default") == 10 and broker_db.hlen(unacked) == 2

    # 4. the workers switch; the migration moves the rest, interrupted once between SendMessage and its journal
    workers = LocalWorkers()
    sqs_log = tmp_path / "sqs-worker.log"
    with celery_worker(environ("sqs", "default"), "default", sqs_log, name="sqs"):
        workers.current = "sqs"
        redis_broker = RedisBroker(broker_db, ["default"])
        sqs_broker = SqsBroker(sqs, {"default": url})
        options = MigrationOptions(
            target="sqs", task_time_limit_seconds=30, settle_seconds=1, poll_seconds=0.5, quiet_timeout_seconds=30
        )

        def migrate(name: str, **kwargs) -> Report:
            report = Report("migrate-broker", "loopback", "redis -> sqs", False)
            migration = Migration(
                redis=redis_broker, sqs=sqs_broker, workers=workers, options=options, report=report, **kwargs
            )
            try:
                return migration.run()
            finally:
                report.write(tmp_path / name)

        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            migrate("first", checkpoint=Interrupt("sent", 3))  # the 2 unacked ETA tasks, then a queued one
        second = migrate("second")
        took = time.monotonic() - started
        wait_until(lambda: set(ledger_tokens(sqs_log)) >= set(tokens) - set(ledger_tokens(redis_log)), 90, "all tasks")
        time.sleep(2)  # a duplicate, if any, runs right behind its first copy

    ran = Counter(ledger_tokens(redis_log)) + Counter(ledger_tokens(sqs_log))
    assert set(ran) == set(tokens)  # none lost
    result = second.measurements["result"]
    first = json.loads(next((tmp_path / "first").glob("*.json")).read_text())
    moved_first = first["measurements"]["result"]["moved"]
    assert moved_first == 2  # the ETA tasks, from the unacked record of the killed worker
    ran_at = {record["task_id"]: record["at"] for record in ledger_records(sqs_log)}
    for moved in first["measurements"]["result"]["messages"]:
        assert moved["from"].startswith("unacked ") and 0 < moved["delay_seconds"] <= 20
        assert ran_at[moved["task_id"]] >= datetime.fromisoformat(moved["eta"]).timestamp() - 1  # its ETA kept
    assert result["moved"] == 10 and result["already_moved"] == 0
    named = {item["key"].split("/")[0] for item in result["possible_duplicates"]}
    assert len(named) == 1  # the message sent when the first run stopped
    task_ids = {record["task_id"]: record["token"] for record in ledger_records(sqs_log)}
    twice = {token for token, count in ran.items() if count > 1}
    assert twice == {task_ids[task_id] for task_id in named}  # the one duplicate is the one the report named
    assert all(tokens[token] == "queued" for token in twice)
    assert second.outcome == "failed" and second.verification[-1].name == "no_possible_duplicate"
    assert redis_broker.counts("default") == {"waiting": 0, "unacked": 0, "staged": 0}
    assert not broker_db.exists(journal_key("sqs"))  # a completed move forgets its journal
    print(f"moved {moved_first + result['moved']}, duplicates {len(twice)}, migration {took:.1f} s")


def ledger_records(log) -> list[dict]:
    from broker_tier_contract import parse_canary_ledger_line

    return [record for line in log.read_text().splitlines() if (record := parse_canary_ledger_line(line))]


def ledger_tokens(log) -> list[str]:
    return [record["token"] for record in ledger_records(log)]

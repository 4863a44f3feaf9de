"""A worker's life on ECS with real processes: scale-in protection through a fake ECS agent on loopback,
and SIGTERM mid-task against moto's SQS server, with the prefork pool the stack runs."""

from __future__ import annotations

import signal
import time
import uuid

import pytest
from celery import Celery
from loopback import FakeEcsAgent, celery_worker, celery_workers, free_port, ledger, tier_environ, wait_until

from broker_tier_celery import settings_from_environment
from broker_tier_contract import HOLD_TASK, redis_unacked_keys

pytestmark = pytest.mark.slow  # real worker processes (scheduled first: tests/conftest.py)

# Seconds the hand-back may take, SIGTERM to the start on another worker: at most one of the first
# worker's own long polls (5 s), then the other worker's poll returns as soon as the message is visible;
# the rest is slack for a loaded 2-core machine. Without the hand-back the message stays hidden for the
# "long" queue's 600 s visibility timeout.
HAND_BACK_LIMIT_SECONDS = 15
# Seconds the held task runs: far longer than it takes to see it start and send SIGTERM (a 0.2 s poll of
# the log, then the handler's first 0.2 s tick stops it), and shorter than the 5 s soft-shutdown window,
# so a worker that let it run instead of handing it back would log it done.
HELD_SECONDS = 4.5


def worker_environ(redis_server, sqs_server, queue: str, broker: str = "sqs", **extra: str) -> dict[str, str]:
    return {
        **tier_environ(redis_server, sqs_server, broker=broker, queue=queue),
        "REMAP_SIGTERM": "SIGQUIT",  # as the stack sets it: SIGTERM starts Celery's soft shutdown
        **extra,
    }


def producer(redis_server, sqs_server, monkeypatch, broker: str = "sqs") -> Celery:
    environ = tier_environ(redis_server, sqs_server, broker=broker, queue=None)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)  # boto's credentials for the producer
    app = Celery("lifecycle-producer")
    app.conf.update(settings_from_environment(environ))
    return app


def queue_counts(sqs_server, name: str) -> tuple[int, int]:
    attributes = sqs_server["client"].get_queue_attributes(
        QueueUrl=sqs_server["urls"][name],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.mark.parametrize(
    "broker, concurrency", [("sqs", 1), ("sqs", 2), ("redis", 2)], ids=["sqs-all-busy", "sqs-poll-open", "redis"]
)
def test_sigterm_mid_task_hands_the_message_back_and_another_worker_runs_it(
    redis_server, sqs_server, tmp_path, monkeypatch, measured, broker, concurrency
):
    """With one process busy and another idle ("poll-open") the worker has a long poll open at SIGTERM:
    the hand-back waits for it to return (at most the 5 s ``wait_time_seconds``). With the Redis broker
    the message goes back from kombu's unacked hash to the list (its visibility timeout here: 180 s)."""
    app = producer(redis_server, sqs_server, monkeypatch, broker)
    # A 120 s time limit cannot end within the 5 s soft-shutdown window: the task must be handed back.
    environ = worker_environ(
        redis_server,
        sqs_server,
        "long",
        broker,
        BROKER_TIER_TASK_TIME_LIMIT="120",
        BROKER_TIER_SOFT_SHUTDOWN_TIMEOUT="5",
    )
    token = uuid.uuid4().hex
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    # Two workers, both ready before the task is sent: one takes it (the first), the other is the
    # second, already waiting for work as it would be on ECS.
    with celery_workers(environ, "long", logs, names=["a", "b"], pool="prefork", concurrency=concurrency) as workers:
        result = app.send_task(HOLD_TASK, args=[token, HELD_SECONDS], queue="long")
        wait_until(lambda: any(ledger(log, token) for log in logs), 60, "the task to start on a worker")
        first = 0 if ledger(logs[0], token) else 1
        (first_worker, first_log), second_log = (workers[first], logs[first]), logs[1 - first]
        sigterm_at = time.time()
        first_worker.send_signal(signal.SIGTERM)
        started = wait_until(lambda: ledger(second_log, token), 60, "the task to start on the second worker")
        hand_back_seconds = started[0]["at"] - sigterm_at
        first_worker.wait(timeout=30)  # the first worker ends without waiting for its task
        exit_seconds = time.time() - sigterm_at
        assert result.get(timeout=90)["hostname"] == started[0]["hostname"]
    first_text = first_log.read_text()
    print(
        f"hand-back ({broker}, {concurrency} process(es)): SIGTERM to the start on another worker in "
        f"{hand_back_seconds:.2f} s; the first worker exited {exit_seconds:.1f} s after SIGTERM"
    )
    # recorded for docs/evidence/handback-summary.json (only under --record-measurements)
    measured("hand_back_seconds", hand_back_seconds, broker=broker, concurrency=concurrency)
    measured("exit_seconds", exit_seconds, broker=broker, concurrency=concurrency)
    assert hand_back_seconds < HAND_BACK_LIMIT_SECONDS, first_text[-3000:]
    assert "handed back at once" in first_text
    # interrupted, never done: it would have been done within the 5 s window had the worker let it run
    assert [r["phase"] for r in ledger(first_log, token)] == ["start"]
    assert [r["phase"] for r in ledger(second_log, token)] == ["start", "done"]
    # Neither lost nor duplicated: nothing left in flight (a publish-again would leave the original
    # hidden), nothing in the dead-letter queue. The queue moves a message to it on its third receive
    # (maxReceiveCount 2), so the second worker receiving it proves the hand-back counted one receive.
    if broker == "sqs":
        assert queue_counts(sqs_server, "long") == (0, 0)
        assert queue_counts(sqs_server, "long-dlq") == (0, 0)
    else:  # kombu's Redis transport: the queue list and the class's unacked hash of the broker database
        broker_db = redis_server["client_for"](1)
        assert (broker_db.llen("long"), broker_db.hlen(redis_unacked_keys("long")["unacked_key"])) == (0, 0)


def test_sigterm_lets_a_task_that_can_finish_in_time_finish(redis_server, sqs_server, tmp_path, monkeypatch):
    app = producer(redis_server, sqs_server, monkeypatch)
    # A 20 s time limit ends any task started before SIGTERM within the 25 s window: it finishes here.
    environ = worker_environ(
        redis_server, sqs_server, "long", BROKER_TIER_TASK_TIME_LIMIT="20", BROKER_TIER_SOFT_SHUTDOWN_TIMEOUT="25"
    )
    token = uuid.uuid4().hex
    with celery_worker(environ, "long", tmp_path / "worker.log", pool="prefork") as worker:
        result = app.send_task(HOLD_TASK, args=[token, 4], queue="long")
        wait_until(lambda: ledger(tmp_path / "worker.log", token), 60, "the task to start")
        sigterm_at = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        exited_after = time.monotonic() - sigterm_at
    log = (tmp_path / "worker.log").read_text()
    assert "finishes here" in log and "handed back" not in log, log[-3000:]
    assert [r["phase"] for r in ledger(tmp_path / "worker.log", token)] == ["start", "done"]
    assert result.get(timeout=10)["token"] == token
    assert queue_counts(sqs_server, "long") == (0, 0)  # acknowledged (deleted), not handed back
    # the worker left once its task was done, not at the end of the 25 s window
    assert exited_after < 25, log[-3000:]


def test_scale_in_protection_is_set_while_busy_renewed_and_cleared_when_idle(
    redis_server, sqs_server, tmp_path, monkeypatch
):
    app = producer(redis_server, sqs_server, monkeypatch)
    with FakeEcsAgent() as agent:
        # renewed every second (the shortest period allowed) during a 3.5 s task: about three renewals
        environ = worker_environ(
            redis_server,
            sqs_server,
            "long",
            ECS_AGENT_URI=agent.uri,
            BROKER_TIER_TASK_TIME_LIMIT="120",
            BROKER_TIER_PROTECTION_RENEW_SECONDS="1",
        )
        token = uuid.uuid4().hex
        with celery_worker(environ, "long", tmp_path / "worker.log", pool="prefork", concurrency=2):
            assert agent.requests == []  # idle since start: nothing to protect
            result = app.send_task(HOLD_TASK, args=[token, 3.5], queue="long")
            wait_until(lambda: agent.states(), 30, "protection to be set")
            started = ledger(tmp_path / "worker.log", token)
            assert result.get(timeout=60)["token"] == token
            wait_until(lambda: agent.states()[-1] is False, 30, "protection to be cleared once idle")
        log = (tmp_path / "worker.log").read_text()
    states = agent.states()
    assert states[0] is True and states[-1] is False, log[-3000:]
    enabled = [body for _, body in agent.requests if body["ProtectionEnabled"]]
    assert len(enabled) >= 2, f"not renewed during a 3.5 s task with 1 s renewals: {agent.requests}"
    # expiry: the 120 s time limit plus a renewal period and a check, in whole minutes
    assert {body["ExpiresInMinutes"] for body in enabled} == {3}
    assert agent.requests[-1][1] == {"ProtectionEnabled": False}
    assert started and "scale-in protection set" in log and "scale-in protection cleared (idle)" in log


def test_an_unreachable_or_failing_agent_endpoint_never_stops_the_worker(
    redis_server, sqs_server, tmp_path, monkeypatch
):
    app = producer(redis_server, sqs_server, monkeypatch)
    unreachable = f"http://127.0.0.1:{free_port()}/api/task-id"  # nothing listens there
    with FakeEcsAgent() as failing:
        failing.failing = True
        for name, uri in (("unreachable", unreachable), ("failing", failing.uri)):
            environ = worker_environ(
                redis_server, sqs_server, "long", ECS_AGENT_URI=uri, BROKER_TIER_PROTECTION_RENEW_SECONDS="1"
            )
            log_path = tmp_path / f"{name}.log"
            with celery_worker(environ, "long", log_path, pool="prefork", name=name):
                tokens = [uuid.uuid4().hex for _ in range(2)]
                results = [app.send_task(HOLD_TASK, args=[token, 1.5], queue="long") for token in tokens]
                assert [r.get(timeout=60)["token"] for r in results] == tokens
            log = log_path.read_text()
            assert "scale-in protection could not be set" in log, log[-3000:]
            assert "Traceback" not in log

"""A Fargate Spot interruption, with real workers and moto's SQS server on loopback: ECS sends the task SIGTERM with
two minutes' notice (the stop timeout of 120 s, of which the soft-shutdown window is 105 s), then SIGKILL.

A class that may run on Spot is either marked idempotent, or its time limit fits in the soft-shutdown window
(``EnvironmentConfig._spot_only_where_an_interruption_is_safe``; docs/decisions/fargate-spot-per-class.md). These
tests show both halves with the stack's own settings: a task whose time limit does not fit is handed back at once
and runs on another worker, received once more and no more (nothing lost, the dead-letter queue one step closer
only); a task whose time limit fits finishes on the interrupted worker before it stops, received once."""

from __future__ import annotations

import base64
import signal
import threading
import time
import uuid

import pytest
from celery import Celery
from loopback import REGION, celery_worker, celery_workers, ledger, tier_environ, wait_until
from moto.sqs.models import SQSBackend, sqs_backends

import broker_tier_contract as contract
from broker_tier_celery import settings_from_environment
from broker_tier_contract import HOLD_TASK

pytestmark = pytest.mark.slow  # real worker processes (scheduled first: tests/conftest.py)

SPOT_NOTICE_SECONDS = 120
"""AWS's notice before a Spot task stops, and Fargate's longest stop timeout: SIGTERM, then SIGKILL after it."""
SOFT_SHUTDOWN = contract.soft_shutdown_seconds(SPOT_NOTICE_SECONDS)
BATCH_TIME_LIMIT = 3600  # the batch class of cdk.json: cannot end within the window, so it is handed back
INTERACTIVE_TIME_LIMIT = 60  # the interactive class of cdk.json: ends within the window, so it finishes
HAND_BACK_LIMIT_SECONDS = 15
"""SIGTERM to visible again: the worker's own receive in flight returns first (at most one 5 s long poll); the rest is
slack for a loaded 2-core machine. Without the hand-back the message would stay hidden for the "long" queue's 600 s."""
HELD_SECONDS = 4.0
MOTO_ACCOUNT = "123456789012"  # moto's default account, which the loopback server's queues belong to


def spot_environ(redis_server, sqs_server, time_limit: int) -> dict[str, str]:
    """The variables the stack sets, as on a Spot task of the class: its time limit, the 120 s stop timeout's window."""
    return {
        **tier_environ(redis_server, sqs_server, broker="sqs", queue="long"),
        "REMAP_SIGTERM": "SIGQUIT",
        "BROKER_TIER_TASK_TIME_LIMIT": str(time_limit),
        "BROKER_TIER_SOFT_SHUTDOWN_TIMEOUT": str(SOFT_SHUTDOWN),
    }


def producer(redis_server, sqs_server, monkeypatch) -> Celery:
    environ = tier_environ(redis_server, sqs_server, broker="sqs", queue=None)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    app = Celery("spot-producer")
    app.conf.update(settings_from_environment(environ))
    return app


class SqsWatch:
    """What moto's SQS server does with one task's message, seen from inside it (it runs in this process): each
    visibility change with its time, and the message's receive count."""

    def __init__(self, monkeypatch, task_id: str) -> None:
        self.task_id = task_id
        self.visibility_changes: list[tuple[float, int, int]] = []
        """(time, new visibility timeout, receive count so far) of each change to this task's message."""
        self._lock = threading.Lock()
        original = SQSBackend.change_message_visibility
        watch = self

        def change_message_visibility(backend, queue_name, receipt_handle, visibility_timeout):
            message = watch._message(backend, queue_name, receipt_handle)
            original(backend, queue_name, receipt_handle, visibility_timeout)
            if message is not None:
                with watch._lock:
                    watch.visibility_changes.append(
                        (time.time(), int(visibility_timeout), message.approximate_receive_count)
                    )

        monkeypatch.setattr(SQSBackend, "change_message_visibility", change_message_visibility)

    def _is_ours(self, message) -> bool:
        try:
            return self.task_id in base64.b64decode(message.body).decode(errors="replace")
        except ValueError:
            return self.task_id in message.body

    def _message(self, backend, queue_name, receipt_handle):
        for message in backend.get_queue(queue_name)._messages:
            if message.had_receipt_handle(receipt_handle) and self._is_ours(message):
                return message
        return None

    def receive_count(self, queue_name: str) -> int | None:
        """The receive count of the task's message while it is in the queue (None once it is deleted)."""
        backend = sqs_backends[MOTO_ACCOUNT][REGION]
        for message in backend.get_queue(queue_name)._messages:
            if self._is_ours(message):
                return message.approximate_receive_count
        return None


def queue_counts(sqs_server, name: str) -> tuple[int, int]:
    attributes = sqs_server["client"].get_queue_attributes(
        QueueUrl=sqs_server["urls"][name],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_a_spot_interruption_hands_a_long_task_back_at_once_and_it_runs_on_another_worker_received_once_more(
    redis_server, sqs_server, tmp_path, monkeypatch, measured
):
    app = producer(redis_server, sqs_server, monkeypatch)
    environ = spot_environ(redis_server, sqs_server, BATCH_TIME_LIMIT)
    token, task_id = uuid.uuid4().hex, uuid.uuid4().hex
    watch = SqsWatch(monkeypatch, task_id)
    queue_name = sqs_server["urls"]["long"].rsplit("/", 1)[1]
    logs = [tmp_path / "spot.log", tmp_path / "other.log"]
    # Two tasks of the class, both waiting for work: one is on Spot and gets interrupted, the other runs on.
    with celery_workers(environ, "long", logs, names=["spot", "other"], pool="prefork", concurrency=1) as workers:
        result = app.send_task(HOLD_TASK, args=[token, HELD_SECONDS], queue="long", task_id=task_id)
        wait_until(lambda: any(ledger(log, token) for log in logs), 60, "the task to start on a worker")
        first = 0 if ledger(logs[0], token) else 1
        interrupted, interrupted_log, other_log = workers[first], logs[first], logs[1 - first]
        assert watch.receive_count(queue_name) == 1  # received once, by the worker about to be interrupted
        sigterm_at = time.time()
        interrupted.send_signal(signal.SIGTERM)  # the Spot interruption notice
        started = wait_until(lambda: ledger(other_log, token), 60, "the task to start on the other worker")
        count_while_running_elsewhere = watch.receive_count(queue_name)
        interrupted.wait(timeout=SPOT_NOTICE_SECONDS)
        exited_after = time.time() - sigterm_at
        assert result.get(timeout=90)["hostname"] == started[0]["hostname"]
    hand_backs = [change for change in watch.visibility_changes if change[1] == 0]
    assert len(hand_backs) == 1, watch.visibility_changes
    visible_after = hand_backs[0][0] - sigterm_at
    elsewhere_after = started[0]["at"] - sigterm_at
    print(
        f"Spot interruption (time limit {BATCH_TIME_LIMIT} s, soft-shutdown window {SOFT_SHUTDOWN} s): message "
        f"visible again {visible_after:.2f} s after SIGTERM, the task started on the other worker after "
        f"{elsewhere_after:.2f} s; the interrupted worker exited after {exited_after:.1f} s of its "
        f"{SPOT_NOTICE_SECONDS} s notice; receive count {count_while_running_elsewhere}"
    )
    # recorded for docs/evidence/handback-summary.json (only under --record-measurements)
    context = {"time_limit": BATCH_TIME_LIMIT, "soft_shutdown": SOFT_SHUTDOWN}
    measured("visible_again_seconds", visible_after, **context)
    measured("started_elsewhere_seconds", elsewhere_after, **context)
    measured("exit_seconds", exited_after, **context)
    if count_while_running_elsewhere is not None:  # None fails the assertion below; a figure is a number
        measured("receive_count", count_while_running_elsewhere, **context)
    text = interrupted_log.read_text()
    assert "handed back at once" in text, text[-3000:]
    assert 0 <= visible_after < HAND_BACK_LIMIT_SECONDS and visible_after <= elsewhere_after < HAND_BACK_LIMIT_SECONDS
    assert exited_after < SOFT_SHUTDOWN, text[-3000:]  # long before the SIGKILL at the end of the notice
    # received by the interrupted worker, then once more by the other: the interruption counted one receive
    assert hand_backs[0][2] == 1 and count_while_running_elsewhere == 2
    assert [r["phase"] for r in ledger(interrupted_log, token)] == ["start"]
    assert [r["phase"] for r in ledger(other_log, token)] == ["start", "done"]
    assert queue_counts(sqs_server, "long") == (0, 0) and queue_counts(sqs_server, "long-dlq") == (0, 0)


def test_a_task_whose_time_limit_fits_the_notice_finishes_on_the_interrupted_worker_received_once(
    redis_server, sqs_server, tmp_path, monkeypatch, measured
):
    app = producer(redis_server, sqs_server, monkeypatch)
    environ = spot_environ(redis_server, sqs_server, INTERACTIVE_TIME_LIMIT)
    token, task_id = uuid.uuid4().hex, uuid.uuid4().hex
    watch = SqsWatch(monkeypatch, task_id)
    queue_name = sqs_server["urls"]["long"].rsplit("/", 1)[1]
    log = tmp_path / "spot.log"
    with celery_worker(environ, "long", log, pool="prefork") as worker:
        result = app.send_task(HOLD_TASK, args=[token, HELD_SECONDS], queue="long", task_id=task_id)
        wait_until(lambda: ledger(log, token), 60, "the task to start")
        assert watch.receive_count(queue_name) == 1
        sigterm_at = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=SPOT_NOTICE_SECONDS)
        exited_after = time.monotonic() - sigterm_at
    text = log.read_text()
    print(f"Spot interruption (time limit {INTERACTIVE_TIME_LIMIT} s): finished, exited after {exited_after:.1f} s")
    measured("exit_seconds", exited_after, time_limit=INTERACTIVE_TIME_LIMIT, soft_shutdown=SOFT_SHUTDOWN)
    assert "finishes here" in text and "handed back" not in text, text[-3000:]
    assert [r["phase"] for r in ledger(log, token)] == ["start", "done"]
    assert result.get(timeout=10)["token"] == token
    assert watch.visibility_changes == []  # never handed back (the worker changes a visibility only to hand back)
    assert watch.receive_count(queue_name) is None  # acknowledged: deleted after its one receive
    assert queue_counts(sqs_server, "long") == (0, 0)
    assert exited_after < INTERACTIVE_TIME_LIMIT, text[-3000:]  # once the task was done, not at the window's end

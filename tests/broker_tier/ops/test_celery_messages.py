"""Reading task name, id and arguments from the SQS bodies kombu writes (the redrive tests use real ones)."""

from __future__ import annotations

import base64
import json

from broker_tier.ops.canary import celery_sqs_message
from broker_tier.ops.celery_messages import read_celery_message


def test_protocol_2_gives_the_task_and_its_argsrepr_cut_when_shown():
    body = celery_sqs_message(task="team.charge", args=["x" * 200], task_id="id-1", queue="default", origin="a@b")
    message = read_celery_message(body)
    assert message is not None and (message.task_name, message.task_id, message.retries) == ("team.charge", "id-1", 0)
    assert len(message.arguments()) == 120 and message.arguments().endswith("…")
    assert message.arguments(None) == f"args ['{'x' * 200}'], kwargs {{}}"


def test_protocol_1_and_bodies_that_are_no_task_message():
    envelope = {
        "body": base64.b64encode(
            json.dumps({"task": "old.task", "id": "id-2", "args": [1], "kwargs": {}}).encode()
        ).decode(),
        "content-type": "application/json",
        "headers": {},
        "properties": {"body_encoding": "base64"},
    }
    message = read_celery_message(json.dumps(envelope))  # without kombu's outer base64 too
    assert message is not None and (message.task_name, message.task_id, message.args) == ("old.task", "id-2", "[1]")
    assert [read_celery_message(body) for body in ("failed task", "", base64.b64encode(b"[1, 2]").decode())] == [
        None,
        None,
        None,
    ]

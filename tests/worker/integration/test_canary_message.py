"""The drill's canary sender: a message it puts straight on SQS (boto3, no Celery) is run by a real
Celery worker configured by the settings package, and matches what Celery itself would send."""

from __future__ import annotations

import base64
import json

import pytest
from celery import Celery
from loopback import celery_worker, tier_environ, wait_until

import broker_tier_contract as contract
from broker_tier.ops.canary import CanarySender, celery_sqs_message
from broker_tier_celery import settings_from_environment
from broker_tier_contract import CANARY_TASK, parse_canary_ledger_line

pytestmark = pytest.mark.slow  # real worker processes (scheduled first: tests/conftest.py)


def decoded(body: str) -> dict:
    envelope = json.loads(base64.b64decode(body))
    envelope["body"] = json.loads(base64.b64decode(envelope["body"]))
    return envelope


def test_a_real_worker_runs_the_canary_sent_straight_to_sqs_and_logs_it_once(redis_server, sqs_server, tmp_path):
    log = tmp_path / "worker.log"
    with celery_worker(tier_environ(redis_server, sqs_server, broker="sqs", queue="interactive"), "interactive", log):
        sender = CanarySender(
            sqs_server["client"],
            queue_url=sqs_server["urls"]["interactive"],
            queue="interactive",
            run_id="canarytest",
            rate_per_second=1,
        )
        sent = sender.send()
        assert sent.error is None

        def ledger():
            return [
                record
                for line in log.read_text().splitlines()
                if (record := parse_canary_ledger_line(line)) and record["token"] == sent.token
            ]

        runs = wait_until(ledger, 60, "the canary's ledger line in the worker's output")
    assert [(run["task_id"], run["queue"]) for run in runs] == [(sent.task_id, "interactive")]
    stored = json.loads(redis_server["client_for"](2).get(f"celery-task-meta-{sent.task_id}"))
    assert stored["status"] == "SUCCESS" and stored["result"] == {"token": sent.token, "queue": "interactive"}


def test_the_message_has_the_shape_celery_gives_the_same_task(redis_server, sqs_server, monkeypatch):
    environ = tier_environ(redis_server, sqs_server, broker="sqs", queue=None)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)  # boto's credentials for the producer
    app = Celery("shape-producer")
    app.conf.update(settings_from_environment(environ))
    client, url = sqs_server["client"], sqs_server["urls"]["interactive"]
    task_id = app.send_task(CANARY_TASK, args=["token-1"], queue="interactive").id
    (message,) = wait_until(
        lambda: client.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages"),
        30,
        "Celery's message on the queue",
    )
    client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    celery = decoded(message["Body"])
    ours = decoded(
        celery_sqs_message(
            task=CANARY_TASK, args=["token-1"], task_id=task_id, queue="interactive", origin="broker-tier-ops@test"
        )
    )
    assert ours.keys() == celery.keys()
    assert ours["body"] == celery["body"]  # [args, kwargs, embed]
    # the publish time: ours always carries it; Celery's once configure() installed the stamp in the process
    stamp = contract.PUBLISHED_AT_HEADER
    assert isinstance(ours["headers"][stamp], float)
    assert ours["headers"].keys() - {stamp} == celery["headers"].keys() - {stamp}
    differ = {"origin", stamp}  # who sent it, and when
    assert {k: v for k, v in ours["headers"].items() if k not in differ} == {
        k: v for k, v in celery["headers"].items() if k not in differ
    }
    assert ours["properties"].keys() == celery["properties"].keys()
    differ = {"delivery_tag", "reply_to"}  # random per message; the producer's result queue (none for ours)
    assert {k: v for k, v in ours["properties"].items() if k not in differ} == {
        k: v for k, v in celery["properties"].items() if k not in differ
    }
    assert {k: ours[k] for k in ("content-type", "content-encoding")} == {
        k: celery[k] for k in ("content-type", "content-encoding")
    }

"""moto's server with atomic receives: consumers polling at once never get the same message, and long polls still
wait for a message and return as soon as one is sent."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from moto.sqs.models import SQSBackend
from moto_server import moto_server

from broker_tier.rehearsal.moto_receive import make_receives_atomic

MESSAGES = 60
CONSUMERS = 6


def client(endpoint: str):
    return boto3.client(
        "sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )


def test_the_patch_is_applied_once():
    make_receives_atomic()
    patched = SQSBackend.receive_message
    make_receives_atomic()
    assert SQSBackend.receive_message is patched and patched.atomic


def received_by_consumers_at_once(endpoint: str) -> list[str]:
    """Every body the consumers received, polling one queue at once and deleting what they got, as workers do."""
    sqs = client(endpoint)
    url = sqs.create_queue(QueueName="atomic", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    for start in range(0, MESSAGES, 10):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": str(n)} for n in range(start, start + 10)]
        )

    def consume(_: int) -> list[str]:
        own = client(endpoint)
        bodies: list[str] = []
        while True:
            got = own.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
            if not got:
                return bodies
            bodies += [message["Body"] for message in got]
            own.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])

    with ThreadPoolExecutor(CONSUMERS) as pool:
        return [body for bodies in pool.map(consume, range(CONSUMERS)) for body in bodies]


def test_consumers_polling_at_once_never_receive_the_same_message():
    make_receives_atomic()
    with moto_server() as endpoint:
        received = received_by_consumers_at_once(endpoint)
    assert sorted(received, key=int) == [str(n) for n in range(MESSAGES)]  # each once: none twice, none missed


def test_a_long_poll_returns_as_soon_as_a_message_is_sent_and_waits_its_time_otherwise():
    with moto_server() as endpoint:
        sqs = client(endpoint)
        url = sqs.create_queue(QueueName="long-poll")["QueueUrl"]
        started = time.monotonic()
        assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages", []) == []
        assert time.monotonic() - started >= 1.9

        threading.Timer(0.5, lambda: client(endpoint).send_message(QueueUrl=url, MessageBody="late")).start()
        started = time.monotonic()
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)["Messages"]
        assert [message["Body"] for message in got] == ["late"]
        assert time.monotonic() - started < 3  # woken by the send, not at the end of the wait

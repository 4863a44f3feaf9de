"""The claim check with real processes: moto's SQS and S3 on loopback (recording every request), a real Celery
worker configured by the settings package, and producers in this process. A 2 MiB argument runs and costs the SQS
requests of a small message; its payload is gone once the task succeeds, kept while it fails and into the
dead-letter queue; a payload that cannot be read dead-letters its message without stopping the worker; without the
claim check, the caller gets one clear error and nothing is sent."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from contextlib import ExitStack

import boto3
import pytest
from celery import Celery
from loopback import REDIS_PASSWORD, REGION, TEST_MAX_RECEIVE_COUNT, TEST_VISIBILITY_SECONDS, celery_worker, wait_until
from recording_aws import Call, RecordingMotoServer

import broker_tier_contract as contract
from broker_tier_celery import settings_from_environment
from broker_tier_celery.claim_check import REFERENCE_KEY, MessageTooLarge

# a real worker process, scheduled first, started once in one pytest-xdist worker for the module (tests/conftest.py)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("claim-check-worker")]

CLASS = "bulk"
BUCKET = "it-claim-check-payloads"
LARGE = 2 * 1024 * 1024
SQS_CHUNK = 64 * 1024
"""SQS bills each 64 KiB of a message's payload as one request."""
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


def client(service: str, endpoint: str):
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture(scope="module")
def tier(redis_server, tmp_path_factory):
    """A recording moto server with the class's queue (and dead-letter queue) and the payload bucket, and one real
    worker with the claim check on, for the whole module."""
    with ExitStack() as stack:
        aws = stack.enter_context(RecordingMotoServer())
        sqs, s3 = client("sqs", aws.endpoint), client("s3", aws.endpoint)
        dlq_url = sqs.create_queue(QueueName="it-claim-check-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName="it-claim-check",
            Attributes={
                "VisibilityTimeout": str(TEST_VISIBILITY_SECONDS),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": TEST_MAX_RECEIVE_COUNT}
                ),
            },
        )["QueueUrl"]
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        variables = contract.ContainerEnvironment
        producer_environ = {
            variables.BROKER.name: "sqs",
            variables.QUEUE_URLS.name: json.dumps({CLASS: queue_url}),
            variables.REGION.name: REGION,
            variables.SQS_ENDPOINT_URL.name: aws.endpoint,
            variables.S3_ENDPOINT_URL.name: aws.endpoint,
            variables.CLAIM_CHECK_BUCKET.name: BUCKET,
            variables.CLAIM_CHECK_THRESHOLD.name: str(contract.DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES),
            variables.REDIS_HOST.name: "127.0.0.1",
            variables.REDIS_PORT.name: str(redis_server["port"]),
            variables.REDIS_TLS.name: "false",
            variables.REDIS_AUTH_TOKEN.name: REDIS_PASSWORD,
            variables.SOFT_SHUTDOWN_TIMEOUT.name: "2",
            **CREDENTIALS,
        }
        worker_environ = {**producer_environ, variables.QUEUE.name: CLASS, variables.TASK_TIME_LIMIT.name: "30"}
        log = tmp_path_factory.mktemp("claim-check") / "worker.log"
        worker = stack.enter_context(celery_worker(worker_environ, CLASS, log))
        yield {
            "aws": aws,
            "sqs": sqs,
            "s3": s3,
            "queue_url": queue_url,
            "dlq_url": dlq_url,
            "environ": producer_environ,
            "worker": worker,
            "log": log,
        }


def producer(environ: dict[str, str]) -> Celery:
    app = Celery("claim-check-producer")
    app.conf.update(settings_from_environment(environ))
    return app


def payloads(s3) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


ONCE_PER_PRODUCER = "GetQueueAttributes"
"""Celery declares a queue on a producer's first publish to it (kombu reads its ApproximateNumberOfMessages)."""


def sqs_requests(calls: list[Call]) -> dict[str, list[tuple[int, ...]]]:
    """The SQS requests of a stretch of time by action (each with its message body sizes), without the worker's
    empty long polls (it makes them whether a task comes or not) and the producer's one declaration."""
    found: dict[str, list[tuple[int, ...]]] = {}
    for call in calls:
        empty_poll = call.action == "ReceiveMessage" and not call.body_sizes
        if call.service == "sqs" and not empty_poll and call.action != ONCE_PER_PRODUCER:
            found.setdefault(call.action, []).append(call.body_sizes)
    return found


def billed(requests: dict[str, list[tuple[int, ...]]]) -> int:
    """SQS's billed requests: one per request, and one more per further 64 KiB of a message body it carries."""
    return sum(max([1, *(-(-size // SQS_CHUNK) for size in sizes)]) for calls in requests.values() for sizes in calls)


def run_and_record(tier, app: Celery, name: str, args: list, *, offloaded: bool = False, **kwargs):
    """Runs a task and returns its result with the AWS calls made until its acknowledgement, and for an ``offloaded``
    one (its payload in S3) until its payload's deletion, which follows the SQS message's."""
    mark = tier["aws"].recorder.snapshot()
    result = app.send_task(name, args=args, kwargs=kwargs, queue=CLASS)
    value = result.get(timeout=60)

    def acknowledged() -> bool:  # the worker acknowledges just after it stores the result
        calls = tier["aws"].recorder.since(mark)
        deleted = not offloaded or any(call.service == "s3" and call.action == "DeleteObject" for call in calls)
        return "DeleteMessage" in sqs_requests(calls) and deleted

    wait_until(acknowledged, 10, f"the ack of task {result.id}")
    return value, tier["aws"].recorder.since(mark)


def test_a_2_mib_argument_runs_and_costs_the_sqs_requests_of_a_small_message(tier, monkeypatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    app = producer(tier["environ"])
    data = uuid.uuid4().hex * (LARGE // 32)  # 2 MiB of text, the task's one argument
    large, large_calls = run_and_record(tier, app, contract.PAYLOAD_TASK, [data], offloaded=True)
    assert large == {"bytes": LARGE, "sha256": hashlib.sha256(data.encode()).hexdigest()}  # arrived whole
    small, small_calls = run_and_record(tier, app, contract.CANARY_TASK, ["small"])
    assert small == {"token": "small", "queue": CLASS}

    large_sqs, small_sqs = sqs_requests(large_calls), sqs_requests(small_calls)
    assert large_sqs.keys() == small_sqs.keys() == {"SendMessage", "ReceiveMessage", "DeleteMessage"}
    assert (
        {action: len(calls) for action, calls in large_sqs.items()}
        == {action: len(calls) for action, calls in small_sqs.items()}
        == {"SendMessage": 1, "ReceiveMessage": 1, "DeleteMessage": 1}
    )
    (sent,), (received,) = large_sqs["SendMessage"][0], large_sqs["ReceiveMessage"][0]
    assert sent == received and 0 < sent < SQS_CHUNK, f"the 2 MiB task's SQS message is {sent} bytes"
    assert billed(large_sqs) == billed(small_sqs) == 3

    s3_calls = [call for call in large_calls if call.service == "s3"]
    assert [call.action for call in s3_calls] == ["PutObject", "GetObject", "DeleteObject"]
    assert len({call.key for call in s3_calls}) == 1 and s3_calls[0].key.startswith(
        contract.claim_check_key_prefix(CLASS)
    )
    assert s3_calls[0].content_length > LARGE * 4 // 3  # the envelope: the argument base64-encoded within it
    # a small message never touches S3
    assert small_calls and [call for call in small_calls if call.service == "s3"] == []
    assert wait_until(lambda: payloads(tier["s3"]) == [], 10, "the payload deleted")  # once the task succeeded


def test_without_the_claim_check_the_caller_gets_one_clear_error_and_nothing_is_sent(tier, monkeypatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    environ = {**tier["environ"]}
    del environ[contract.ContainerEnvironment.CLAIM_CHECK_BUCKET.name]  # the claim check off
    app = producer(environ)
    mark = tier["aws"].recorder.snapshot()
    with pytest.raises(MessageTooLarge) as raised:
        app.send_task(contract.PAYLOAD_TASK, args=["x" * LARGE], queue=CLASS)
    message = str(raised.value)
    assert f"its SQS message would be {raised.value.size:,} bytes" in message
    assert raised.value.size > LARGE * 16 // 9  # the argument base64-encoded twice
    assert "over the queue's limit of 1,048,576 bytes" in message
    assert "claim_check.enabled" in message and contract.PAYLOAD_TASK in message and "Nothing was sent" in message
    sent = [call for call in tier["aws"].recorder.since(mark) if call.action in ("SendMessage", "PutObject")]
    assert sent == []


def test_a_failing_task_keeps_its_payload_into_the_dead_letter_queue_and_an_unreadable_one_is_dead_lettered(
    tier, monkeypatch
):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    sqs, s3 = tier["sqs"], tier["s3"]
    failing = producer(tier["environ"]).send_task(
        contract.PAYLOAD_TASK, args=["y" * LARGE], kwargs={"fail": True}, queue=CLASS
    )
    (kept,) = wait_until(lambda: payloads(s3), 10, "the failing task's payload")
    missing_key = f"{contract.claim_check_key_prefix(CLASS)}{uuid.uuid4().hex}"
    dangling = {
        REFERENCE_KEY: {"bucket": BUCKET, "key": missing_key, "bytes": 10, "sha256": "0" * 64},
        "headers": {"id": "dangling", "task": contract.PAYLOAD_TASK},
        "properties": {},
    }
    sqs.send_message(QueueUrl=tier["queue_url"], MessageBody=base64.b64encode(json.dumps(dangling).encode()).decode())

    dead: dict[str, dict] = {}

    def both_dead_lettered():
        reply = sqs.receive_message(QueueUrl=tier["dlq_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in reply.get("Messages", []):
            body = json.loads(base64.b64decode(message["Body"]))
            dead[body["headers"]["id"]] = body
            sqs.delete_message(QueueUrl=tier["dlq_url"], ReceiptHandle=message["ReceiptHandle"])
        return {failing.id, "dangling"} <= set(dead)

    wait_until(both_dead_lettered, 60, "the failing task and the unreadable message in the dead-letter queue")
    assert dead[failing.id][REFERENCE_KEY]["key"] == kept  # dead-lettered with its reference...
    assert payloads(s3) == [kept]  # ...and its payload, for a redrive
    log = tier["log"].read_text()
    assert log.count("broker-tier payload test failure") >= TEST_MAX_RECEIVE_COUNT  # ran on every receive
    assert log.count(f"s3://{BUCKET}/{missing_key}") >= TEST_MAX_RECEIVE_COUNT  # an ERROR on every receive
    assert tier["worker"].poll() is None  # an unreadable payload does not stop the worker

"""The claim check in the settings package without a worker: its settings, the size it measures (what SQS counts),
and kombu's SQS transport with it against moto in this process: a large message round trip through S3, the payload
kept when its SQS message could not be deleted, and the payloads it refuses to take for the one that was sent.
(A real worker: tests/worker/integration/test_claim_check.py.)"""

from __future__ import annotations

import base64
import json
import logging
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from kombu import Connection
from kombu.asynchronous.aws.sqs.message import AsyncMessage
from kombu.utils.json import dumps
from moto import mock_aws
from settings_environ import environ

import broker_tier_contract as contract
from broker_tier_celery import SettingsError, TierEnvironment, settings_from_environment
from broker_tier_celery.claim_check import (
    DELIVERY_INFO_KEY,
    REFERENCE_KEY,
    TRANSPORT,
    MessageTooLarge,
    PayloadUnavailable,
    Reference,
    sqs_size,
)
from broker_tier_celery.environment import ClaimCheckTarget

pytestmark = pytest.mark.xdist_group("claim-check-moto")  # one pytest-xdist worker starts moto once (conftest.py)

REGION = "eu-west-1"
BUCKET = "broker-tier-dev-payloads-123456789012-eu-west-1"
BUCKET_VARIABLE = contract.ContainerEnvironment.CLAIM_CHECK_BUCKET.name
THRESHOLD_VARIABLE = contract.ContainerEnvironment.CLAIM_CHECK_THRESHOLD.name


# -- settings ----------------------------------------------------------------------------------------------------
def test_off_without_the_bucket_and_the_transport_checks_sizes_either_way():
    settings = settings_from_environment(environ())
    assert settings["broker_transport"] == TRANSPORT
    assert "claim_check" not in settings["broker_transport_options"]
    assert TierEnvironment.from_environ(environ()).claim_check is None


def test_on_with_the_bucket_at_the_default_threshold_or_the_stacks():
    default = TierEnvironment.from_environ(environ(**{BUCKET_VARIABLE: BUCKET})).claim_check
    assert default == ClaimCheckTarget(BUCKET, contract.DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES, None)
    settings = settings_from_environment(environ(**{BUCKET_VARIABLE: BUCKET, THRESHOLD_VARIABLE: "524288"}))
    assert settings["broker_transport_options"]["claim_check"] == {
        "bucket": BUCKET,
        "threshold_bytes": 524_288,
        "endpoint_url": None,
    }


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({BUCKET_VARIABLE: BUCKET, "BROKER_TIER_BROKER": "redis"}, "BROKER_TIER_CLAIM_CHECK_BUCKET is set with"),
        ({BUCKET_VARIABLE: BUCKET, THRESHOLD_VARIABLE: "1048577"}, "over the queues' limit of 1048576 bytes"),
        ({BUCKET_VARIABLE: BUCKET, THRESHOLD_VARIABLE: "big"}, "BROKER_TIER_CLAIM_CHECK_THRESHOLD = 'big'"),
        ({BUCKET_VARIABLE: BUCKET, THRESHOLD_VARIABLE: "0"}, "BROKER_TIER_CLAIM_CHECK_THRESHOLD = 0 is below 1"),
    ],
)
def test_a_bad_claim_check_environment_is_refused_naming_the_variable(overrides, message):
    with pytest.raises(SettingsError, match=message):
        TierEnvironment.from_environ(environ(**overrides))


# -- the size SQS counts --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "a", "ab", "abc", '{"body": "ÿ€"}', "x" * 100_001])
def test_the_size_is_the_body_kombu_sends(text):
    assert sqs_size(text, True, {}) == len(AsyncMessage().encode(text).encode())  # kombu's own encoding
    assert sqs_size(text, False, {}) == len(text.encode())


def test_the_size_counts_the_message_attributes():
    attributes = {
        "tenant": {"DataType": "String", "StringValue": "café"},
        "blob": {"DataType": "Binary", "BinaryValue": b"12"},
    }
    assert sqs_size("{}", False, attributes) == 2 + len("tenant") + len("String") + 5 + len("blob") + len("Binary") + 2


# -- kombu's SQS transport with the claim check, against moto in this process ----------------------------------------
@pytest.fixture(scope="module")
def moto():
    """moto in this process for the module (its start is the costly part), with the queue and the bucket."""
    credentials = {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": REGION}
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for name, value in credentials.items():
            patch.setenv(name, value)
        sqs, s3 = boto3.client("sqs", region_name=REGION), boto3.client("s3", region_name=REGION)
        url = sqs.create_queue(QueueName="broker-tier-dev-work")["QueueUrl"]
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield {"sqs": sqs, "s3": s3, "url": url}


@pytest.fixture
def aws(moto):
    """The module's queue and bucket, empty."""
    sqs, url = moto["sqs"], moto["url"]
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:  # (moto allows one PurgeQueue a minute, as SQS does)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    for key in objects(moto):
        moto["s3"].delete_object(Bucket=BUCKET, Key=key)
    return moto


def connection(aws, claim_check: dict | None) -> Connection:
    options = {"predefined_queues": {"work": {"url": aws["url"]}}, "region": REGION, "wait_time_seconds": 0}
    if claim_check is not None:
        options["claim_check"] = claim_check
    return Connection("sqs://", transport=TRANSPORT, transport_options=options)


ON = {"bucket": BUCKET, "threshold_bytes": contract.DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES, "endpoint_url": None}
LARGE = {"data": "z" * 200_000}
"""Over the default threshold once kombu has encoded it (about 1.8 times: 356 KB)."""


def objects(aws) -> list[str]:
    return [item["Key"] for item in aws["s3"].list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def raw_bodies(aws) -> list[dict]:
    reply = aws["sqs"].receive_message(QueueUrl=aws["url"], MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(base64.b64decode(m["Body"])) for m in reply.get("Messages", [])]


def test_a_large_message_goes_through_s3_and_comes_back_whole_and_its_payload_goes_with_the_ack(aws):
    with connection(aws, ON) as producer:
        producer.SimpleQueue("work").put(LARGE, headers={"id": "task-1", "task": "team.big"})
    ((key,),) = [objects(aws)]
    assert key.startswith("work/")
    (carried,) = raw_bodies(aws)
    assert carried[REFERENCE_KEY]["key"] == key and carried["headers"] == {"id": "task-1", "task": "team.big"}
    assert carried[REFERENCE_KEY]["bytes"] > 200_000 * 4 // 3

    with connection(aws, ON) as consumer:
        message = consumer.SimpleQueue("work").get(timeout=5)
        assert message.payload == LARGE and message.headers["id"] == "task-1"  # as sent
        assert message.delivery_info[DELIVERY_INFO_KEY]["key"] == key  # for the ack
        received = message.delivery_info["sqs_message"]["Body"]  # as received: the reference, base64-encoded
        assert json.loads(base64.b64decode(received))[REFERENCE_KEY]["key"] == key
        assert objects(aws) == [key]  # not before the ack
        message.ack()
    assert objects(aws) == [] and raw_bodies(aws) == []


def test_a_small_message_never_touches_s3(aws):
    with connection(aws, ON) as producer:
        producer.SimpleQueue("work").put({"data": "small"})
    assert objects(aws) == [] and [body.get(REFERENCE_KEY) for body in raw_bodies(aws)] == [None]


def test_a_payload_whose_sqs_message_could_not_be_deleted_stays(aws, caplog):
    with connection(aws, ON) as producer:
        producer.SimpleQueue("work").put(LARGE)
    (key,) = objects(aws)
    with connection(aws, ON) as consumer:
        message = consumer.SimpleQueue("work").get(timeout=5)
        client = consumer.default_channel.sqs(queue="work")
        refused = ClientError({"Error": {"Code": "InternalError", "Message": "try later"}}, "DeleteMessage")
        with mock.patch.object(client, "delete_message", side_effect=refused) as delete:
            message.ack()
        assert delete.call_count == 2  # once by the claim check, once by kombu's own ack, which then gives it back
    assert objects(aws) == [key]  # SQS delivers the message again: its payload is still needed


def test_without_the_claim_check_a_message_over_the_limit_raises_before_anything_is_sent(aws):
    with connection(aws, None) as producer, pytest.raises(MessageTooLarge) as raised:
        producer.SimpleQueue("work").put({"data": "q" * 620_000}, headers={"id": "task-2", "task": "team.big"})
    assert raised.value.size > contract.SQS_MAX_MESSAGE_BYTES and raised.value.limit == contract.SQS_MAX_MESSAGE_BYTES
    assert "'team.big' (id task-2) to queue 'work'" in str(raised.value)
    assert "claim_check.enabled" in str(raised.value) and BUCKET_VARIABLE in str(raised.value)
    assert raw_bodies(aws) == [] and objects(aws) == []


def test_without_the_claim_check_a_message_over_the_threshold_but_under_the_limit_is_sent_as_it_is(aws):
    with connection(aws, None) as producer:
        assert producer.default_channel.payloads is None
        assert sqs_size(dumps({"body": LARGE}), True, {}) > contract.DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES
        producer.SimpleQueue("work").put(LARGE)
    (sent,) = raw_bodies(aws)
    assert REFERENCE_KEY not in sent and objects(aws) == []


@pytest.mark.parametrize(
    "tamper,message",
    [
        (lambda ref: {**ref, "bucket": "someone-elses"}, "outside the tier's claim-check bucket"),
        (lambda ref: {**ref, "sha256": "0" * 64}, "is not the payload that was sent"),
        (lambda ref: {**ref, "key": "work/gone"}, "could not read s3://"),
        (lambda ref: {"bucket": BUCKET}, "lacks 'key'"),
    ],
    ids=["another bucket", "another payload", "no payload", "no key"],
)
def test_a_reference_it_cannot_trust_or_read_is_refused_by_name(aws, tamper, message):
    with connection(aws, ON) as producer:
        producer.SimpleQueue("work").put(LARGE)
    (carried,) = raw_bodies(aws)
    bad = {**carried, REFERENCE_KEY: tamper(carried[REFERENCE_KEY])}
    with connection(aws, ON) as consumer:
        channel = consumer.default_channel
        with pytest.raises(PayloadUnavailable, match=message):
            channel._fetch_payload({"Body": json.dumps(bad), "MessageId": "m-1"})


def test_a_worker_without_the_claim_check_leaves_a_referenced_message_naming_the_setting(aws, caplog):
    with connection(aws, ON) as producer:
        producer.SimpleQueue("work").put(LARGE)
    (carried,) = raw_bodies(aws)
    with connection(aws, None) as consumer, caplog.at_level(logging.ERROR, logger="broker_tier.claim_check"):
        channel = consumer.default_channel
        readable = channel._readable({"Body": json.dumps(carried), "MessageId": "m-2"}, "work")
    assert readable is False
    assert "message m-2 of work left in the queue" in caplog.text and "claim_check.enabled" in caplog.text


def test_the_reference_names_the_object(aws):
    reference = Reference.parse({"bucket": BUCKET, "key": "work/k", "bytes": 3, "sha256": "a" * 64})
    assert str(reference) == f"s3://{BUCKET}/work/k"


def test_kombu_answers_a_failed_receive_with_a_list_its_own_channel_cannot_read():
    """Without the fix: kombu's answer to a receive that timed out or got a 5xx kills the worker."""
    import inspect

    from kombu.asynchronous.aws.connection import AsyncAWSQueryConnection
    from kombu.transport.SQS import Channel as SqsChannel

    assert "return []" in inspect.getsource(AsyncAWSQueryConnection._on_list_ready)
    with pytest.raises(AttributeError):
        SqsChannel._on_messages_ready(object.__new__(SqsChannel), None, "default", [])


def test_a_failed_receive_is_nothing_received_and_no_round_trip(monkeypatch, caplog):
    from broker_tier_celery import heartbeat
    from broker_tier_celery.claim_check import Channel

    beats = []
    monkeypatch.setattr(heartbeat, "beat", lambda: beats.append(1))
    assert Channel._on_messages_ready(object.__new__(Channel), None, "default", []) == 0
    assert beats == [] and "nothing received, polling again" in caplog.text

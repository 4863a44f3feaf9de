"""moto's server made atomic: consumers polling at once never get the same message, long polls still wait for a
message and return as soon as one is sent, and of two conditional writes at once only one succeeds; and a receive
whose cost does not grow with the square of the queue's length, with the retention period still applied."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.sqs.models import Queue, SQSBackend, sqs_backends
from moto_server import moto_server

from broker_tier.rehearsal.moto_atomic import make_receives_atomic

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


def claims_made_at_once(endpoint: str) -> list[bool]:
    """Two conditional ``PutItem`` calls of one key at once, as two Beats claim a tick: whether each succeeded."""
    dynamodb = boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    table = f"fence-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    start = threading.Barrier(2)

    def claim(owner: str) -> bool:
        start.wait()
        try:
            dynamodb.put_item(
                TableName=table,
                Item={"key": {"S": "tick"}, "owner": {"S": owner}},
                ConditionExpression="attribute_not_exists(#key)",
                ExpressionAttributeNames={"#key": "key"},
            )
            return True
        except dynamodb.exceptions.ConditionalCheckFailedException:
            return False

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(claim, ["beat-0", "beat-1"]))


def slow_look_up(monkeypatch) -> None:
    """Widens moto's window between reading the item and writing it, so that two writes at once overlap."""
    original = Table.get_item

    def get_item(self, *args, **kwargs):
        found = original(self, *args, **kwargs)
        time.sleep(0.3)  # what it read may be stale by the time put_item writes
        return found

    monkeypatch.setattr(Table, "get_item", get_item)


def test_unpatched_two_conditional_writes_at_once_both_succeed(monkeypatch):
    """What the patch is for: moto as it ships lets both claims of one tick through."""
    with moto_server() as endpoint:
        slow_look_up(monkeypatch)
        monkeypatch.setattr(DynamoDBBackend, "put_item", DynamoDBBackend.put_item.__wrapped__)
        assert claims_made_at_once(endpoint) == [True, True]


def test_two_conditional_writes_at_once_one_succeeds(monkeypatch):
    with moto_server() as endpoint:
        slow_look_up(monkeypatch)
        assert DynamoDBBackend.put_item.atomic
        assert sorted(claims_made_at_once(endpoint)) == [False, True]


# -- the retention check of each delivered message ------------------------------------------------------------------
BACKLOG = 200


def attribute_computations_of_one_receive(endpoint: str, monkeypatch) -> int:
    """How many times moto computes a queue's attributes (each one counts every message of the queue) while one
    receive takes 10 messages off a backlog of ``BACKLOG``."""
    sqs = client(endpoint)
    url = sqs.create_queue(QueueName=f"backlog-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for _ in range(BACKLOG // 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": "m"} for n in range(10)])
    computed = []
    original = Queue.attributes

    def counted(queue):
        computed.append(1)
        return original.fget(queue)

    monkeypatch.setattr(Queue, "attributes", property(counted))
    assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]) == 10
    return len(computed)


def test_unpatched_each_delivered_message_computes_every_attribute_of_its_queue(monkeypatch):
    """What the patch is for: moto as it ships counts the whole queue again for each message it delivers."""
    with moto_server() as endpoint:
        monkeypatch.setattr(
            SQSBackend,
            "is_message_valid_based_on_retention_period",
            SQSBackend.is_message_valid_based_on_retention_period.__wrapped__,
        )
        assert attribute_computations_of_one_receive(endpoint, monkeypatch) >= 10


def test_a_receive_reads_the_retention_period_without_computing_the_queues_attributes(monkeypatch):
    with moto_server() as endpoint:
        assert SQSBackend.is_message_valid_based_on_retention_period.reads_the_period
        assert attribute_computations_of_one_receive(endpoint, monkeypatch) == 0


def test_a_message_older_than_the_retention_period_is_still_never_delivered():
    with moto_server() as endpoint:
        assert SQSBackend.is_message_valid_based_on_retention_period.reads_the_period
        sqs = client(endpoint)
        url = sqs.create_queue(QueueName="retention", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="expired")
        sqs.send_message(QueueUrl=url, MessageBody="kept")
        queue = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_queue("retention")
        expired = next(message for message in queue._messages if message.body == "expired")
        expired.sent_timestamp -= 61_000  # sent 61 s earlier: past the queue's 60 s retention period
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
        assert [message["Body"] for message in got] == ["kept"]

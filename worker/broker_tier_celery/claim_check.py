"""The claim check: a task message too big for SQS travels through the tier's S3 bucket, and the SQS message
carries a reference to it (docs/decisions/claim-check-for-large-payloads.md).

The SQS transport the settings choose in sqs mode: the hand-back transport (``sqs_handback``) and three changes.

- Sending (``_put``): the message is measured as SQS gets it (kombu's JSON envelope, base64-encoded, plus its
  message attributes). Over the threshold, the envelope is put in the bucket under the class's prefix and the SQS
  message carries a reference (bucket, key, size, SHA-256, and the task's id and name for whoever reads the queue).
  Without a claim check, a message over the queue's limit raises ``MessageTooLarge`` before anything is sent.
- Receiving (``_on_messages_ready``, ``_message_to_python``): a reference is replaced by the envelope it names,
  so Celery gets the message exactly as it was sent: id, headers, retries and ETA. A payload that cannot be read
  is left in the queue (received again after the visibility timeout, dead-lettered after maxReceiveCount), with
  an ERROR naming it.
- Acknowledging (``basic_ack``): the payload is deleted once its SQS message is (the task succeeded, or was acked
  on a time-out). A failed task stays un-acked, so its payload stays for the next receive and the dead-letter
  queue; the bucket's lifecycle rule deletes what no acknowledgement did.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

from broker_tier_celery import sqs_handback
from broker_tier_celery.environment import ClaimCheckTarget, TierEnvironment
from broker_tier_celery.naming import qualified_name
from broker_tier_contract import SQS_MAX_MESSAGE_BYTES as QUEUE_LIMIT_BYTES
from broker_tier_contract import ContainerEnvironment, claim_check_key_prefix

logger = logging.getLogger("broker_tier.claim_check")

REFERENCE_KEY = "broker_tier_claim_check"
"""The key of an SQS message body (a JSON object, base64-encoded like any) that holds a reference."""
DELIVERY_INFO_KEY = "claim_check"
"""Where a received message's reference is kept in its ``delivery_info`` (for the acknowledgement)."""
TRANSPORT_OPTION = "claim_check"
"""The key of ``broker_transport_options`` that holds the target (``transport_options``)."""
SEND_PROPERTIES = ("message_attributes", "MessageGroupId", "MessageDeduplicationId", "delay_seconds", "DelaySeconds")
"""The message properties kombu's ``_put`` turns into SendMessage parameters: a reference keeps them."""
S3_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3})
"""Bounded: a publish or a receive never waits on S3 for minutes."""

_BUCKET = ContainerEnvironment.CLAIM_CHECK_BUCKET.name
SETTING = (
    f"claim_check.enabled in the tier's cdk.json (the stack then sets {_BUCKET}; a producer outside the stack sets "
    f"it to the State stack's ClaimCheckBucketName output)"
)


class MessageTooLarge(ValueError):
    """A task message over the queue's limit, with no claim check to carry it: nothing was sent."""

    def __init__(self, *, task: str, task_id: str, queue: str, size: int, limit: int) -> None:
        super().__init__(
            f"task {task!r} (id {task_id}) to queue {queue!r}: its SQS message would be {size:,} bytes, over the "
            f"queue's limit of {limit:,} bytes (SQS MaximumMessageSize; kombu base64-encodes the message, about 1.8 "
            f"times the task's arguments as JSON). Nothing was sent. Turn on the claim check to carry it through "
            f"S3: {SETTING}; or pass a reference to the data instead of the data."
        )
        self.task, self.task_id, self.queue, self.size, self.limit = task, task_id, queue, size, limit


class PayloadUnavailable(RuntimeError):
    """A payload could not be put in, or read from, the claim-check bucket."""


@dataclass(frozen=True)
class Reference:
    """What an SQS message carries instead of a payload it could not hold."""

    bucket: str
    key: str
    bytes: int
    """Size of the stored envelope (UTF-8 JSON)."""
    sha256: str

    @classmethod
    def parse(cls, value: Any) -> Reference:
        if not isinstance(value, dict):
            raise PayloadUnavailable(f"a claim-check reference is not an object: {value!r}")
        try:
            return cls(str(value["bucket"]), str(value["key"]), int(value["bytes"]), str(value["sha256"]))
        except (KeyError, TypeError, ValueError) as error:
            raise PayloadUnavailable(f"a claim-check reference lacks {error}: {value!r}") from None

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def transport_options(env: TierEnvironment) -> dict[str, Any]:
    """The ``broker_transport_options`` entry that turns the claim check on (none when it is off)."""
    return {TRANSPORT_OPTION: asdict(env.claim_check)} if env.claim_check else {}


def sqs_size(envelope_text: str, base64_encoded: bool, attributes: dict[str, Any]) -> int:
    """Bytes SQS counts for a message: its body as sent (base64 of the UTF-8 JSON, when kombu encodes it) and each
    attribute's name, type and value."""
    raw = len(envelope_text.encode())
    body = 4 * math.ceil(raw / 3) if base64_encoded else raw
    return body + sum(
        len(name.encode()) + len(str(value.get("DataType", "")).encode()) + _value_size(value)
        for name, value in attributes.items()
    )


def _value_size(value: dict[str, Any]) -> int:
    if "BinaryValue" in value:
        return len(value["BinaryValue"])
    return len(str(value.get("StringValue", "")).encode())


_CLIENTS: dict[tuple[int, str | None, str | None], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def s3_client(region: str | None, endpoint_url: str | None) -> Any:
    """One S3 client per process, region and endpoint, made on first use: a boto3 session loads S3's service model
    (a few hundred milliseconds of CPU), and every channel of a process (Celery's producer pool has several) shares
    it. Per process id: a pool child forked from the worker makes its own, never sharing the parent's connections."""
    key = (os.getpid(), region, endpoint_url)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            config = S3_CONFIG.merge(Config(s3={"addressing_style": "path"})) if endpoint_url else S3_CONFIG
            _CLIENTS[key] = boto3.session.Session().client(
                "s3", region_name=region, endpoint_url=endpoint_url, config=config
            )
        return _CLIENTS[key]


class PayloadStore:
    """The claim-check bucket."""

    def __init__(self, target: ClaimCheckTarget, region: str | None) -> None:
        self.target, self.region = target, region

    @property
    def client(self) -> Any:
        return s3_client(self.region, self.target.endpoint_url)

    def put(self, class_name: str, envelope_text: str) -> Reference:
        data = envelope_text.encode()
        key = f"{claim_check_key_prefix(class_name)}{uuid.uuid4().hex}"
        reference = Reference(self.target.bucket, key, len(data), hashlib.sha256(data).hexdigest())
        try:
            self.client.put_object(Bucket=reference.bucket, Key=key, Body=data, ContentType="application/json")
        except (ClientError, BotoCoreError) as error:
            raise PayloadUnavailable(f"could not put the task's payload in {reference}: {error}") from error
        return reference

    def get(self, reference: Reference) -> str:
        try:
            data = self.client.get_object(Bucket=reference.bucket, Key=reference.key)["Body"].read()
        except (ClientError, BotoCoreError, OSError) as error:
            raise PayloadUnavailable(f"could not read {reference}: {error}") from error
        if len(data) != reference.bytes or hashlib.sha256(data).hexdigest() != reference.sha256:
            raise PayloadUnavailable(
                f"{reference} is not the payload that was sent ({len(data)} bytes; the reference says "
                f"{reference.bytes} bytes and SHA-256 {reference.sha256})"
            )
        return str(data.decode())

    def delete(self, reference: Reference) -> None:
        try:
            self.client.delete_object(Bucket=reference.bucket, Key=reference.key)
        except (ClientError, BotoCoreError, OSError) as error:
            logger.warning("could not delete %s (the bucket's lifecycle rule will): %s", reference, error)


_RESOLVED = "BrokerTierClaimCheck"
"""Set on a received SQS message (boto's dict) once its payload is in its body: the reference it had."""


def carrier(reference: Reference, message: dict[str, Any]) -> dict[str, Any]:
    """The SQS message that stands for ``message`` once its envelope is in the bucket: the reference, the task's id
    and name (for whoever reads the queue), and the properties kombu turns into SendMessage parameters."""
    headers = message.get("headers") or {}
    properties = message.get("properties") or {}
    return {
        REFERENCE_KEY: asdict(reference),
        "headers": {"id": headers.get("id"), "task": headers.get("task")},
        "properties": {name: properties[name] for name in SEND_PROPERTIES if name in properties},
    }


class Channel(sqs_handback.Channel):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        target = self.transport_options.get(TRANSPORT_OPTION)
        self.payloads = PayloadStore(ClaimCheckTarget(**target), self.region) if target else None

    # -- sending ---------------------------------------------------------------------------------------------------
    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> Any:
        if message.get("redelivered"):  # kombu makes it visible again instead of sending it
            return super()._put(queue, message, **kwargs)  # type: ignore[no-untyped-call]
        properties = message.get("properties") or {}
        attributes = properties.get("message_attributes") or {}
        envelope = message
        if "message_attributes" in properties:  # kombu sends them as SQS attributes, not in the body
            envelope = {**message, "properties": {k: v for k, v in properties.items() if k != "message_attributes"}}
        text = dumps(envelope)
        size = sqs_size(text, self.sqs_base64_encoding, attributes)
        if self.payloads is None or size <= self.payloads.target.threshold_bytes:
            if size > QUEUE_LIMIT_BYTES:
                headers = message.get("headers") or {}
                raise MessageTooLarge(
                    task=str(headers.get("task")),
                    task_id=str(headers.get("id")),
                    queue=queue,
                    size=size,
                    limit=QUEUE_LIMIT_BYTES,
                )
            return super()._put(queue, message, **kwargs)  # type: ignore[no-untyped-call]
        reference = self.payloads.put(self.canonical_queue_name(queue), text)  # type: ignore[no-untyped-call]
        logger.debug("task message of %d bytes for %s kept in %s", size, queue, reference)
        return super()._put(queue, carrier(reference, message), **kwargs)  # type: ignore[no-untyped-call]

    # -- receiving -------------------------------------------------------------------------------------------------
    def _reference_in(self, sqs_message: dict[str, Any]) -> Reference | None:
        text = bytes_to_str(self._decode_python_message_body(sqs_message["Body"]))  # type: ignore[no-untyped-call]
        if REFERENCE_KEY not in text:
            return None
        try:
            body = loads(text)
        except ValueError:
            return None
        return Reference.parse(body[REFERENCE_KEY]) if isinstance(body, dict) and REFERENCE_KEY in body else None

    def _fetch_payload(self, sqs_message: dict[str, Any]) -> None:
        """Put the payload a received message refers to in its body (once); raises ``PayloadUnavailable``."""
        if _RESOLVED in sqs_message:
            return
        reference = self._reference_in(sqs_message)
        if reference is None:
            return
        if self.payloads is None:
            raise PayloadUnavailable(
                f"the message refers to {reference}, and this process has no claim check to read it: {SETTING}"
            )
        if reference.bucket != self.payloads.target.bucket:
            raise PayloadUnavailable(
                f"the message refers to {reference}, outside the tier's claim-check bucket "
                f"{self.payloads.target.bucket}"
            )
        envelope = self.payloads.get(reference)
        sqs_message[_RESOLVED] = (reference, sqs_message["Body"])
        sqs_message["Body"] = envelope

    def _on_messages_ready(self, queue: Any, qname: str, messages: Any) -> Any:
        if not isinstance(messages, dict):  # a receive that timed out or failed: sqs_handback's to handle
            return super()._on_messages_ready(queue, qname, messages)
        received = messages.get("Messages") or []
        readable = [message for message in received if self._readable(message, qname)]
        if len(readable) != len(received):
            messages = {**messages, "Messages": readable}
        return super()._on_messages_ready(queue, qname, messages)

    def _readable(self, sqs_message: dict[str, Any], qname: str) -> bool:
        try:
            self._fetch_payload(sqs_message)
        except PayloadUnavailable as error:
            # left in the queue: received again after its visibility timeout, dead-lettered after maxReceiveCount
            logger.error(
                "message %s of %s left in the queue (received %s time(s)): %s",
                sqs_message.get("MessageId"),
                qname,
                sqs_message.get("Attributes", {}).get("ApproximateReceiveCount", "?"),
                error,
            )
            return False
        return True

    def _message_to_python(self, message: dict[str, Any], queue_name: str, q_url: str) -> Any:
        self._fetch_payload(message)  # the synchronous receive (drain_events) comes here directly
        payload = super()._message_to_python(message, queue_name, q_url)  # type: ignore[no-untyped-call]  # kombu
        resolved = message.pop(_RESOLVED, None)
        if resolved is None:
            return payload
        reference, carrier_body = resolved
        message["Body"] = carrier_body  # delivery_info keeps the SQS message as received, not a second payload
        if queue_name in self._noack_queues:  # kombu deleted the SQS message already
            self._delete_payload(reference)
        else:
            payload["properties"]["delivery_info"][DELIVERY_INFO_KEY] = asdict(reference)
        return payload

    # -- acknowledging ---------------------------------------------------------------------------------------------
    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> Any:
        try:
            info = self.qos.get(delivery_tag).delivery_info
            reference = Reference.parse(info[DELIVERY_INFO_KEY])
            queue_url, receipt = info["sqs_queue"], info["sqs_message"]["ReceiptHandle"]
        except (KeyError, PayloadUnavailable):
            return super().basic_ack(delivery_tag, multiple)  # type: ignore[no-untyped-call]
        routing_key = info.get("routing_key")
        try:
            self.sqs(queue=self.canonical_queue_name(routing_key) if routing_key else None).delete_message(  # type: ignore[no-untyped-call]
                QueueUrl=queue_url, ReceiptHandle=receipt
            )
        except (ClientError, BotoCoreError, OSError):
            # not deleted (or not known to be): kombu's own ack tries again and handles the error as it always does;
            # the payload stays, since SQS may deliver the message again
            return super().basic_ack(delivery_tag, multiple)  # type: ignore[no-untyped-call]
        virtual.Channel.basic_ack(self, delivery_tag, multiple)  # deleted: kombu's bookkeeping of the delivery only
        self._delete_payload(reference)
        return None

    def _delete_payload(self, reference: Reference) -> None:
        if self.payloads is not None:
            self.payloads.delete(reference)


class Transport(sqs_handback.Transport):
    Channel = Channel


TRANSPORT = qualified_name(Transport)
"""The value of Celery's ``broker_transport`` in sqs mode: the hand-back transport with the claim check."""

"""The SQS side of a move: each class's work queue, as kombu's SQS transport reads and writes it."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from broker_tier.ops.migrate_broker.fit import TargetLimits, sqs_body_bytes
from broker_tier.ops.migrate_broker.messages import QueuedMessage
from broker_tier_celery.claim_check import REFERENCE_KEY, PayloadStore, Reference, carrier

RECEIVE_VISIBILITY_SECONDS = 30
"""How long a message the mover received stays hidden: if the mover stops before deleting it, it is back after
this (and the journal tells a re-run it was moved)."""


def decode_body(body: str) -> str:
    """kombu's SQS body: base64 of the JSON envelope (``sqs_base64_encoding``, the default), or the JSON itself."""
    try:
        return base64.b64decode(body.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return body


class SqsBroker:
    """The work queues (``queue_urls`` by class); ``payloads``: the claim check's bucket when it is on (a message
    over its threshold is put there and SQS gets a reference, as the settings package's transport does)."""

    def __init__(self, sqs: Any, queue_urls: dict[str, str], *, payloads: PayloadStore | None = None) -> None:
        self.sqs, self.queue_urls, self.payloads = sqs, queue_urls, payloads

    def attributes(self, class_name: str) -> dict[str, str]:
        return self.sqs.get_queue_attributes(QueueUrl=self.queue_urls[class_name], AttributeNames=["All"])["Attributes"]

    def limits(self, class_name: str, *, claim_check: bool, task_time_limit_seconds: int) -> TargetLimits:
        attributes = self.attributes(class_name)
        return TargetLimits(
            broker="sqs",
            visibility_timeout_seconds=int(attributes["VisibilityTimeout"]),
            max_message_bytes=int(attributes["MaximumMessageSize"]),
            claim_check=claim_check,
            task_time_limit_seconds=task_time_limit_seconds,
        )

    def counts(self, class_name: str) -> dict[str, int]:
        attributes = self.attributes(class_name)
        return {
            "visible": int(attributes["ApproximateNumberOfMessages"]),
            "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
        }

    def send(self, message: QueuedMessage, *, delay_seconds: int) -> str:
        """Send the envelope as kombu would (base64 of its JSON), or a claim-check reference to it when it is over
        the threshold. Returns SQS's message id."""
        text = message.text
        if self.payloads is not None and sqs_body_bytes(message) > self.payloads.target.threshold_bytes:
            reference = self.payloads.put(message.class_name, message.text)
            text = json.dumps(carrier(reference, message.envelope))
        body = base64.b64encode(text.encode()).decode()
        response = self.sqs.send_message(
            QueueUrl=self.queue_urls[message.class_name], MessageBody=body, DelaySeconds=delay_seconds
        )
        return response["MessageId"]

    def receive(self, class_name: str) -> list[tuple[QueuedMessage, str]]:
        """Up to 10 visible messages of the class, hidden for :data:`RECEIVE_VISIBILITY_SECONDS`, with receipts. A
        claim-check reference is replaced by the envelope it names (when the claim check is on)."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_urls[class_name],
            MaxNumberOfMessages=10,
            VisibilityTimeout=RECEIVE_VISIBILITY_SECONDS,  # read at each call: tests shorten it
            WaitTimeSeconds=1,
        ).get("Messages", [])
        return [(self._resolved(class_name, item), item["ReceiptHandle"]) for item in messages]

    def _resolved(self, class_name: str, item: dict[str, Any]) -> QueuedMessage:
        message = QueuedMessage.parse(class_name, decode_body(item["Body"]), f"sqs {item['MessageId']}")
        if REFERENCE_KEY not in message.envelope or self.payloads is None:
            return message
        reference = Reference.parse(message.envelope[REFERENCE_KEY])
        return QueuedMessage.parse(class_name, self.payloads.get(reference), f"sqs {item['MessageId']} ({reference})")

    def release(self, class_name: str, receipt: str) -> None:
        """Make a received message visible again at once (one the mover leaves where it is)."""
        self.sqs.change_message_visibility(
            QueueUrl=self.queue_urls[class_name], ReceiptHandle=receipt, VisibilityTimeout=0
        )

    def delete(self, class_name: str, receipt: str) -> None:
        self.sqs.delete_message(QueueUrl=self.queue_urls[class_name], ReceiptHandle=receipt)

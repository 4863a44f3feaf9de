"""kombu's SQS transport, whose requeue makes the received message visible again instead of sending a copy
(the copy ran the task twice and counted towards the dead-letter queue: docs/decisions/sqs-hand-back-transport.md)."""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from kombu.transport.SQS import Channel as SqsChannel
from kombu.transport.SQS import Transport as SqsTransport

from broker_tier_celery import heartbeat
from broker_tier_celery.fallbacks import warn_once
from broker_tier_celery.naming import qualified_name

logger = logging.getLogger("broker_tier.handback")

RECEIPT_KEYS = ("sqs_message", "sqs_queue")
"""Where kombu's SQS channel keeps a received message's SQS record and queue URL (``delivery_info``)."""


class Channel(SqsChannel):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]  # kombu: unannotated
        if not hasattr(SqsChannel, "_on_messages_ready"):
            warn_once(
                "sqs-receive-hook",
                "kombu's SQS channel has no _on_messages_ready: the worker's heartbeat is not recorded, and its "
                "container health check will fail",
            )

    def _on_messages_ready(self, queue: Any, qname: str, messages: Any) -> Any:
        if not isinstance(messages, dict):
            # kombu 5.7 answers a receive that timed out or got a 5xx with [], then calls .get on it: the worker
            # died of an AttributeError. Nothing was received; poll again (docs/decisions/sqs-failed-receive.md).
            logger.warning(
                "a receive from %s timed out or failed on SQS's side: nothing received, polling again", qname
            )
            return 0
        heartbeat.beat()  # a receive came back from SQS: a round trip
        return super()._on_messages_ready(queue, qname, messages)  # type: ignore[no-untyped-call]  # kombu

    def _restore(self, message: Any, unwanted_delivery_info: tuple[str, ...] = RECEIPT_KEYS) -> Any:
        info = message.delivery_info
        sqs_message, queue_url = (info.get(key) for key in RECEIPT_KEYS)
        if not sqs_message or not queue_url:
            warn_once(
                "sqs-handback-receipt",
                "SQS hand-back: a requeued message carries no %s in its delivery_info: kombu publishes a copy "
                "(the original reappears after its visibility timeout and may run twice)",
                " and ".join(RECEIPT_KEYS),
            )
            return super()._restore(message, unwanted_delivery_info)  # type: ignore[no-untyped-call]
        routing_key = info.get("routing_key")
        queue = self.canonical_queue_name(routing_key) if routing_key else None
        try:
            self.sqs(queue=queue).change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=sqs_message["ReceiptHandle"], VisibilityTimeout=0
            )
        except (ClientError, BotoCoreError, OSError) as error:
            # delayed, not lost: SQS delivers it again after its visibility timeout; a copy would run as well
            logger.warning(
                "could not hand message %s back to %s (it reappears after its visibility timeout): %s",
                sqs_message.get("MessageId"),
                queue_url,
                error,
            )
            return None
        logger.info(
            "handed message %s back to %s (visible again at once; received %s time(s) so far)",
            sqs_message.get("MessageId"),
            queue_url,
            sqs_message.get("Attributes", {}).get("ApproximateReceiveCount", "?"),
        )
        return None


class Transport(SqsTransport):
    Channel = Channel


TRANSPORT = qualified_name(Transport)
"""The value of Celery's ``broker_transport`` that selects this transport."""

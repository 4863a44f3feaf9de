"""kombu's SQS transport, with a requeue that hands the received message back instead of sending a copy.

kombu's virtual transports requeue a message (a ``reject(requeue=True)``, and every message still
unacknowledged when a channel closes, e.g. at a worker's shutdown) with ``Channel._restore``, which
*publishes the message again*. On SQS that is a ``SendMessage`` of a copy, while the received original
stays in flight until its visibility timeout expires and is then delivered a second time: the task runs
twice, and the original's receive count still grows towards the dead-letter queue (kombu 5.7,
``kombu/transport/virtual/base.py``: ``QoS.reject`` and ``QoS.restore_unacked``).

Here a requeue is ``ChangeMessageVisibility(VisibilityTimeout=0)`` on the original's receipt handle:
the same message becomes visible at once, another worker receives it within its long poll, and SQS
counts exactly the receives that happened. Selected by ``configure(app)`` through Celery's
``broker_transport`` setting when the broker is SQS.
"""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError
from kombu.transport.SQS import Channel as SqsChannel
from kombu.transport.SQS import Transport as SqsTransport

from broker_tier_celery.naming import qualified_name

logger = logging.getLogger("broker_tier.handback")


class Channel(SqsChannel):
    def _restore(self, message, unwanted_delivery_info=("sqs_message", "sqs_queue")):
        info = message.delivery_info
        sqs_message, queue_url = info.get("sqs_message"), info.get("sqs_queue")
        if not sqs_message or not queue_url:
            # never received from SQS (nothing in flight to hand back): kombu's publish-again is right
            return super()._restore(message, unwanted_delivery_info)
        routing_key = info.get("routing_key")
        queue = self.canonical_queue_name(routing_key) if routing_key else None
        try:
            self.sqs(queue=queue).change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=sqs_message["ReceiptHandle"], VisibilityTimeout=0
            )
        except (ClientError, BotoCoreError, OSError) as error:
            # Not handed back: SQS delivers it again when its visibility timeout expires (delayed, not
            # lost). Never publish a copy: the original would run as well.
            logger.warning(
                "could not hand message %s back to %s (it reappears after its visibility timeout): %s",
                sqs_message.get("MessageId"),
                queue_url,
                error,
            )
            return
        logger.info(
            "handed message %s back to %s (visible again at once; received %s time(s) so far)",
            sqs_message.get("MessageId"),
            queue_url,
            sqs_message.get("Attributes", {}).get("ApproximateReceiveCount", "?"),
        )


class Transport(SqsTransport):
    Channel = Channel


TRANSPORT = qualified_name(Transport)
"""The value of Celery's ``broker_transport`` that selects this transport."""

"""Does a queued message fit the broker it moves to? Its size (SQS's MaximumMessageSize, unless the claim check
carries it) and its ETA (the class's visibility time-out must cover the wait, or the task runs twice: celery#4766).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from broker_tier.ops.migrate_broker.messages import QueuedMessage
from broker_tier_celery.claim_check import REFERENCE_KEY, sqs_size

SQS_MAX_DELAY_SECONDS = 900
"""SQS's ceiling for a message's DelaySeconds (15 minutes)."""
ACK_MARGIN_SECONDS = 60
"""What the configuration keeps between time limit + ETA and the visibility time-out (``visibility_timeout_seconds``
must exceed time limit + longest ETA + 60 s)."""
DEFAULT_TASK_TIME_LIMIT_SECONDS = 300
"""A class's ``task_time_limit_seconds`` when the configuration leaves it out (for a message without its own)."""


@dataclass(frozen=True)
class TargetLimits:
    """What one class's queue on the new broker takes."""

    broker: str
    """``sqs`` or ``redis``."""
    visibility_timeout_seconds: int
    """How long a received message may stay un-acknowledged before it is handed out again: the SQS queue's
    VisibilityTimeout, which the stack also gives kombu's Redis transport (the class's visibility_timeout_seconds)."""
    max_message_bytes: int | None = None
    """SQS's MaximumMessageSize of the queue; None for Redis (no limit)."""
    claim_check: bool = False
    """True: a message over the limit goes through the claim-check bucket (``broker_tier_celery.claim_check``)."""
    task_time_limit_seconds: int = DEFAULT_TASK_TIME_LIMIT_SECONDS
    """The class's hard time limit, for a message that carries none. Default: 300."""


def sqs_body_bytes(message: QueuedMessage) -> int:
    """Bytes SQS counts for the message as kombu sends it (base64 of the JSON envelope, no attributes)."""
    return sqs_size(message.text, True, {})


def delay_seconds(message: QueuedMessage, limits: TargetLimits, now: datetime) -> int:
    """The DelaySeconds a move to SQS sends the message with: its wait up to SQS's 15 minutes (hidden in the queue
    rather than held by a worker); 0 for Redis, which has no per-message delay."""
    if limits.broker != "sqs":
        return 0
    return min(SQS_MAX_DELAY_SECONDS, math.floor(message.seconds_to_eta(now)))


def misfit(message: QueuedMessage, limits: TargetLimits, now: datetime) -> str | None:
    """Why ``message`` cannot move to the broker of ``limits`` (None: it fits)."""
    if REFERENCE_KEY in message.envelope:
        return f"{message.describe()}: a claim-check reference, and the move was not given the bucket to read it"
    if limits.max_message_bytes is not None and not limits.claim_check:
        size = sqs_body_bytes(message)
        if size > limits.max_message_bytes:
            return (
                f"{message.describe()}: {size:,} bytes as an SQS message, over the queue's MaximumMessageSize of "
                f"{limits.max_message_bytes:,} (turn on claim_check.enabled, deploy, then move)"
            )
    wait = message.seconds_to_eta(now)
    if wait <= 0:
        return None
    held = wait - delay_seconds(message, limits, now)
    time_limit = message.time_limit() or limits.task_time_limit_seconds
    needed = math.ceil(held) + time_limit + ACK_MARGIN_SECONDS
    if needed > limits.visibility_timeout_seconds:
        return (
            f"{message.describe()}: ETA in {wait:,.0f} s; a worker would hold it {held:,.0f} s, plus its time limit "
            f"{time_limit} s and {ACK_MARGIN_SECONDS} s, {needed:,} s in all, over the visibility time-out of "
            f"{limits.visibility_timeout_seconds:,} s (it would run twice: celery#4766). Move it once its ETA is "
            f"nearer, or raise the class's visibility_timeout_seconds"
        )
    return None

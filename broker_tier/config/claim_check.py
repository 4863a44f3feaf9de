"""The claim check: task messages too big for SQS carried through an S3 bucket of the tier
(docs/decisions/claim-check-for-large-payloads.md)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated

from pydantic import Field

from broker_tier.config.base import Allowed, ConfigModel
from broker_tier.config.queues import QueueClassConfig
from broker_tier_contract import DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES, SQS_MAX_MESSAGE_BYTES

SQS_BILLING_CHUNK_BYTES = 65_536
"""SQS bills each 64 KiB of a message's payload as one request (Amazon SQS pricing)."""
SECONDS_PER_DAY = 86_400


ThresholdBytes = Annotated[
    int,
    Allowed(
        f"{SQS_BILLING_CHUNK_BYTES} (one 64 KiB SQS billing chunk: below it an S3 put and get only add cost) to "
        f"{SQS_MAX_MESSAGE_BYTES} (the queues' MaximumMessageSize)"
    ),
]


class ClaimCheckConfig(ConfigModel):
    """Task messages over a threshold go to the tier's payload bucket (S3, the tier's KMS key) and the SQS message
    carries a reference the workers follow. Off: a message over the queue's limit fails at ``apply_async`` with
    one error naming its size, the limit and this block. SQS broker mode only (the Redis broker has no such
    limit). The bucket exists either way, so turning this on or off adds or removes no stateful resource."""

    enabled: bool = False
    """Carry task messages over ``threshold_bytes`` through the payload bucket; grants the workers, Beat and the
    producer policy access to it. Only with ``compute.broker`` sqs. Default: false."""
    threshold_bytes: ThresholdBytes = Field(
        DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES, ge=SQS_BILLING_CHUNK_BYTES, le=SQS_MAX_MESSAGE_BYTES
    )
    """Size of the SQS message as sent (kombu's JSON envelope, base64-encoded: about 1.8 times the task's
    arguments as JSON) above which it goes through S3. Default: 262144 (256 KiB, the AWS SQS extended client
    libraries' default)."""


def payload_expiration_days(queues: Iterable[QueueClassConfig]) -> int:
    """Days after which the bucket's lifecycle rule deletes a payload: longer than any message can wait for it.
    A message lives at most its dead-letter queue's retention from when it was sent (SQS keeps the enqueue time
    when it dead-letters one), and a redrive out of the dead-letter queue starts a new one (SQS: "redriven
    messages are considered new messages"): one redrive into the longest work-queue retention is covered, plus
    a day."""
    classes = list(queues)
    longest = max(q.dead_letter_retention_seconds for q in classes) + max(q.retention_seconds for q in classes)
    return math.ceil(longest / SECONDS_PER_DAY) + 1

"""Reading a dead-letter queue without consuming it: every message received once, hidden while the scan runs,
and made visible again at its end (never deleted here). Why hold and not release each message at once:
docs/decisions/dead-letters-read-and-redriven-by-task.md.

What a scan does to a message: SQS adds one to its ``ApproximateReceiveCount`` (a dead-letter queue has no
redrive policy, so the count moves nothing) and hides it for at most ``hold_seconds``; the scan makes it visible
again as soon as it ends (ChangeMessageVisibility 0), and if the scan's process dies, SQS does so when the hold
runs out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError

from broker_tier.ops.celery_messages import CeleryMessage, read_celery_message

DEFAULT_HOLD_SECONDS = 120
"""How long a received dead letter stays hidden at most: long enough to read a few thousand messages and act on the
selected ones (each ReceiveMessage returns up to ten), short enough that a scan whose process dies hides nothing
for long. The scan releases every message it still holds as soon as it ends."""
RECEIVE_WAIT_SECONDS = 1
"""Long polling: an empty answer then means the queue has no visible message (a short poll samples a subset of
SQS's servers and can answer empty while messages wait)."""
BATCH = 10  # ReceiveMessage and ChangeMessageVisibilityBatch take at most ten


@dataclass
class DeadLetter:
    """One received dead letter."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str]
    """SQS's system attributes (ApproximateReceiveCount, SentTimestamp, ApproximateFirstReceiveTimestamp, ...)."""
    message_attributes: dict = field(default_factory=dict)
    celery: CeleryMessage | None = None

    @property
    def receive_count(self) -> int:
        """SQS's ApproximateReceiveCount, this scan's receive included."""
        return int(self.attributes.get("ApproximateReceiveCount", 0))

    def _time(self, name: str) -> datetime | None:
        value = self.attributes.get(name)
        return datetime.fromtimestamp(int(value) / 1000, UTC) if value else None

    @property
    def sent_at(self) -> datetime | None:
        """When it was first published (SQS keeps it through the move to the dead-letter queue)."""
        return self._time("SentTimestamp")

    @property
    def first_received_at(self) -> datetime | None:
        return self._time("ApproximateFirstReceiveTimestamp")


@dataclass
class ScanResult:
    letters: list[DeadLetter]
    stopped: str
    """``empty``: every visible message was read. Else the queue was not read to its end: ``limit``
    (``max_messages`` read), ``time`` (half the hold gone: stopped while every message read is still held) or
    ``wrapped`` (a message came back: its hold ran out)."""

    @property
    def complete(self) -> bool:
        return self.stopped == "empty"


class DeadLetterScan:
    """``with DeadLetterScan(...) as scan: result = scan.read()``; messages not ``taken`` are released on exit."""

    def __init__(
        self,
        sqs,
        queue_url: str,
        *,
        hold_seconds: int = DEFAULT_HOLD_SECONDS,
        max_messages: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sqs, self.queue_url, self.hold_seconds, self.max_messages = sqs, queue_url, hold_seconds, max_messages
        self.monotonic = monotonic
        self.held: dict[str, DeadLetter] = {}
        self.release_failures: list[str] = []

    def __enter__(self) -> DeadLetterScan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _receive(self) -> list[dict]:
        return self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=BATCH,
            VisibilityTimeout=self.hold_seconds,
            WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def read(self) -> ScanResult:
        """Receive every visible message once (up to ``max_messages``), holding each."""
        started = self.monotonic()
        while True:
            if self.max_messages is not None and len(self.held) >= self.max_messages:
                stopped = "limit"
                break
            if self.monotonic() - started > self.hold_seconds / 2:
                stopped = "time"  # the first messages would soon come back: stop while every one read is held
                break
            messages = self._receive()
            if not messages:
                stopped = "empty"
                break
            if self._hold(messages):
                stopped = "wrapped"
                break
        return ScanResult(list(self.held.values()), stopped)

    def _hold(self, messages: list[dict]) -> bool:
        """Keep each received message; true when one of them had been received before (its hold ran out)."""
        wrapped = False
        for message in messages:
            known = self.held.get(message["MessageId"])
            if known is not None:  # back already: keep its newest receipt handle
                known.receipt_handle, wrapped = message["ReceiptHandle"], True
                continue
            self.held[message["MessageId"]] = DeadLetter(
                message_id=message["MessageId"],
                receipt_handle=message["ReceiptHandle"],
                body=message["Body"],
                attributes=message.get("Attributes", {}),
                message_attributes=message.get("MessageAttributes", {}),
                celery=read_celery_message(message["Body"]),
            )
        return wrapped

    def taken(self, letter: DeadLetter) -> None:
        """``letter`` was deleted (redriven): it is no longer held, so not released."""
        self.held.pop(letter.message_id, None)

    def release(self) -> None:
        """Make every message still held visible again at once (ChangeMessageVisibility 0). A message whose release
        fails becomes visible when its hold runs out; the failures are kept in ``release_failures``."""
        letters = list(self.held.values())
        for start in range(0, len(letters), BATCH):
            batch = letters[start : start + BATCH]
            try:
                answer = self.sqs.change_message_visibility_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                        for n, letter in enumerate(batch)
                    ],
                )
            except (ClientError, BotoCoreError) as error:
                self.release_failures += [f"{letter.message_id}: {error}" for letter in batch]
                continue
            self.release_failures += [
                f"{batch[int(failed['Id'])].message_id}: {failed.get('Code')} {failed.get('Message', '')}".strip()
                for failed in answer.get("Failed", [])
            ]
        self.held.clear()

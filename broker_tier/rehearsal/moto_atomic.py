"""moto made atomic where the AWS service it stands for is: SQS's ``ReceiveMessage`` (no message received twice by
consumers polling at once) and DynamoDB's conditional writes (Beat's fence relies on them); and a receive made linear
in the queue's length. Why each: docs/decisions/moto-atomic.md.

``python -m broker_tier.rehearsal.moto_atomic -H HOST -p PORT`` runs moto's server so patched; the tests' in-process
servers call :func:`make_atomic` before they start.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from typing import Any

RECEIVING = threading.Lock()
"""One scan of the queues at a time, in this process: a scan is short, the long poll waits outside it."""
IDLE_SECONDS = 0.01
"""How long a long poll sleeps when moto's wake-up came but the scan found nothing it may deliver."""


def make_receives_atomic() -> None:
    """Patches moto's ``SQSBackend.receive_message`` (once): each scan runs under :data:`RECEIVING`, and a long poll
    is a series of such scans, each as soon as the queue has a visible message, until ``wait_seconds_timeout``."""
    from moto.sqs.models import SQSBackend

    original = SQSBackend.receive_message
    if getattr(original, "atomic", False):
        return

    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        polling_end = time.monotonic() + wait_seconds_timeout
        queue = self.get_queue(queue_name)
        while True:
            with RECEIVING:
                found = original(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            remaining = polling_end - time.monotonic()
            if found or remaining <= 0:
                return found
            woke = time.monotonic()
            queue.wait_for_messages(min(1.0, remaining))
            if time.monotonic() - woke < IDLE_SECONDS:  # visible messages, none deliverable: do not spin
                time.sleep(IDLE_SECONDS)

    receive_message.atomic = True  # type: ignore[attr-defined]
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]


WRITING = threading.Lock()
"""One DynamoDB write at a time, in this process: the condition is checked and the item written under it."""
DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


def make_conditional_writes_atomic() -> None:
    """Patches moto's ``DynamoDBBackend`` writes (once each) to run under :data:`WRITING`; the original stays
    reachable as the patch's ``__wrapped__``."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in DYNAMODB_WRITES:
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "atomic", False):
            continue

        @functools.wraps(original)
        def write(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with WRITING:
                return _original(self, *args, **kwargs)

        write.atomic = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, write)


def make_retention_check_read_the_period() -> None:
    """Patches moto's ``SQSBackend.is_message_valid_based_on_retention_period`` (once) to read the queue's retention
    period, the one attribute it needs, instead of computing them all for every message a receive delivers."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    original = SQSBackend.is_message_valid_based_on_retention_period
    if getattr(original, "reads_the_period", False):
        return

    @functools.wraps(original)
    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = self.get_queue(queue_name).message_retention_period
        return bool(retention_period + message.sent_timestamp / 1000 > unix_time())  # moto's own comparison

    is_message_valid_based_on_retention_period.reads_the_period = True  # type: ignore[attr-defined]
    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]


def make_atomic() -> None:
    """Every patch of this module."""
    make_receives_atomic()
    make_conditional_writes_atomic()
    make_retention_check_read_the_period()


def main(argv: list[str]) -> None:
    make_atomic()
    from moto.server import main as moto_server

    moto_server(argv)


if __name__ == "__main__":
    main(sys.argv[1:])

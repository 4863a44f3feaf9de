"""moto's SQS with ``ReceiveMessage`` made atomic, as SQS's is: moto checks that a message is visible and then
marks it received without a lock, so two consumers polling at once (moto's server is threaded) can both receive
the same message, a duplicate SQS itself would not make (docs/decisions/moto-atomic-receive.md).

``python -m broker_tier.rehearsal.moto_receive -H HOST -p PORT`` runs moto's server so patched; the tests' in-process
servers call :func:`make_receives_atomic` before they start.
"""

from __future__ import annotations

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


def main(argv: list[str]) -> None:
    make_receives_atomic()
    from moto.server import main as moto_server

    moto_server(argv)


if __name__ == "__main__":
    main(sys.argv[1:])

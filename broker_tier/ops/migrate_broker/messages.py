"""A task message as a broker holds it: kombu's envelope (body, headers, properties), and where it sits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class QueuedMessage:
    """One message of a class, as kombu stores it in either broker (the Redis list entry, the unacked record's
    first item, the SQS body once base64-decoded): nothing of it is changed by a move."""

    class_name: str
    envelope: dict[str, Any]
    text: str
    """The envelope as the old broker held it (JSON); what the new broker gets, byte for byte."""
    where: str
    """Where it was found: ``list <key>``, ``unacked <tag>``, ``staging`` or ``sqs <message id>``."""

    @classmethod
    def parse(cls, class_name: str, text: str | bytes, where: str) -> QueuedMessage:
        raw = text.decode() if isinstance(text, bytes) else text
        envelope = json.loads(raw)
        if not isinstance(envelope, dict):
            raise ValueError(f"{where}: not a kombu message (a JSON object): {raw[:80]!r}")
        return cls(class_name, envelope, raw, where)

    @property
    def headers(self) -> dict[str, Any]:
        return self.envelope.get("headers") or {}

    @property
    def task_id(self) -> str:
        """Celery's task id (message protocol 2 header ``id``; protocol 1 keeps it in the correlation id)."""
        properties = self.envelope.get("properties") or {}
        return str(self.headers.get("id") or properties.get("correlation_id") or "?")

    @property
    def task_name(self) -> str:
        return str(self.headers.get("task") or "?")

    @property
    def idempotency_key(self) -> str:
        """``<task id>/<retries>``: a task retried with ``self.retry()`` keeps its id and sends a new message (the
        retry count tells them apart); two messages with the same key are one task sent twice."""
        return f"{self.task_id}/{self.headers.get('retries') or 0}"

    def eta(self) -> datetime | None:
        """The ETA (``apply_async(eta=)`` or ``countdown=``) as an aware datetime; None without one."""
        value = self.headers.get("eta")
        if not value:
            return None
        eta = datetime.fromisoformat(str(value))
        return eta if eta.tzinfo else eta.replace(tzinfo=UTC)

    def seconds_to_eta(self, now: datetime) -> float:
        eta = self.eta()
        return max(0.0, (eta - now).total_seconds()) if eta else 0.0

    def time_limit(self) -> int | None:
        """The task's own hard time limit (header ``timelimit``: [hard, soft]), when the caller set one."""
        limits = self.headers.get("timelimit") or (None, None)
        return int(limits[0]) if limits and limits[0] else None

    def describe(self) -> str:
        return f"{self.task_name} {self.task_id} (class {self.class_name}, {self.where})"

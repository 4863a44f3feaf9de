"""The rehearsal's two records: what the producer published, and what the workers ran (from their canary ledger
lines, so nothing is counted on the Redis being failed over).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class Publish:
    """One ``apply_async`` call of the producer, as the caller saw it."""

    token: str
    task_id: str | None
    sent_at: float
    """Unix time the call started."""
    returned_at: float
    error: str | None
    """``Type: message`` of the exception the caller got; None when the call returned."""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(kw_only=True)
class Ledger:
    """Publishes and executions, appended to by reader threads."""

    publishes: list[Publish] = field(default_factory=list)
    executions: list[dict] = field(default_factory=list)
    """Canary ledger records: ``token``, ``task_id``, ``at`` (Unix time), ``pid``, ``worker`` (added)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def published(self, publish: Publish) -> None:
        with self._lock:
            self.publishes.append(publish)

    def executed(self, record: dict) -> None:
        with self._lock:
            self.executions.append(record)

    def snapshot(self) -> tuple[list[Publish], list[dict]]:
        with self._lock:
            return list(self.publishes), list(self.executions)

    def counts(self) -> tuple[int, int, int]:
        """``(published, publish errors, distinct tokens executed)`` so far."""
        publishes, executions = self.snapshot()
        return (len(publishes), sum(not p.ok for p in publishes), len({e["token"] for e in executions}))

    def outstanding(self) -> set[str]:
        """Tokens published without error and not executed yet."""
        publishes, executions = self.snapshot()
        executed = {e["token"] for e in executions}
        return {p.token for p in publishes if p.ok and p.token not in executed}

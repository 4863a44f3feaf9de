"""Moving each message from the old broker to the new one, copied before it is deleted, with the task's
idempotency key journalled in Redis (docs/decisions/broker-migration.md).

Redis to SQS: claim (atomically, into a staging list) -> journal ``sending`` -> SendMessage -> journal ``sent`` ->
drop from staging. A re-run finishes what the staging list holds first: ``sent`` is only dropped, anything else is
sent; one found ``sending`` may already be in SQS (the run stopped between SendMessage and its journal entry), so it
is sent again and named as a possible duplicate.
SQS to Redis: receive -> push once (the journal check, the push and the journal entry are one Redis script) ->
DeleteMessage. A re-run receives an undeleted message again and, its key journalled, only deletes it: no duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from broker_tier.ops.migrate_broker.fit import TargetLimits, delay_seconds, misfit
from broker_tier.ops.migrate_broker.messages import QueuedMessage
from broker_tier.ops.migrate_broker.redis_side import RedisBroker
from broker_tier.ops.migrate_broker.sqs_side import SqsBroker

Checkpoint = Callable[[str, QueuedMessage], None]
"""Called after each step of a message's move (its name and the message): the tests interrupt a move there."""


@dataclass
class MoveResult:
    moved: list[dict[str, Any]] = field(default_factory=list)
    """Each message the new broker got in this run: class, task, id, from where, ETA, delay."""
    already_moved: list[str] = field(default_factory=list)
    """Keys found journalled as moved by an earlier run (only dropped from the old broker now)."""
    possible_duplicates: list[dict[str, str]] = field(default_factory=list)
    """Keys sent again because an earlier run stopped between sending and journalling them, and why."""
    misfits: list[str] = field(default_factory=list)
    """Messages left on the old broker because they do not fit the new one, each with the reason."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "moved": len(self.moved),
            "already_moved": len(self.already_moved),
            "possible_duplicates": self.possible_duplicates,
            "misfits": self.misfits,
            "messages": self.moved,
        }


def _record(message: QueuedMessage, **extra: Any) -> dict[str, Any]:
    eta = message.eta()
    return {
        "class": message.class_name,
        "task": message.task_name,
        "task_id": message.task_id,
        "from": message.where,
        "eta": eta.isoformat() if eta else None,
        **extra,
    }


def _no_checkpoint(step: str, message: QueuedMessage) -> None:
    return None


class RedisToSqs:
    def __init__(
        self,
        redis: RedisBroker,
        sqs: SqsBroker,
        limits: dict[str, TargetLimits],
        *,
        checkpoint: Checkpoint = _no_checkpoint,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.redis, self.sqs, self.limits, self.checkpoint, self.now = redis, sqs, limits, checkpoint, now

    def move_class(self, class_name: str, result: MoveResult) -> None:
        """Move every message of the class: what an earlier run staged, the unacked records, then the lists."""
        for staged in self.redis.staged(class_name):
            self._deliver(staged, result)
        for entry in self.redis.unacked(class_name):
            if self._fits(entry.message, result) and self.redis.claim_unacked(entry):
                self.checkpoint("claimed", entry.message)
                self._deliver(QueuedMessage.parse(class_name, entry.message.text, entry.message.where), result)
        while (waiting := self.redis.claim_waiting(class_name)) is not None:
            self.checkpoint("claimed", waiting)
            if not self._fits(waiting, result):
                self.redis.put_back(waiting)
                return  # it is the oldest: the rest waits behind it
            self._deliver(waiting, result)

    def _fits(self, message: QueuedMessage, result: MoveResult) -> bool:
        reason = misfit(message, self.limits[message.class_name], self.now())
        if reason:
            result.misfits.append(reason)
        return reason is None

    def _deliver(self, message: QueuedMessage, result: MoveResult) -> None:
        """Send a staged message to SQS (unless the journal says an earlier run did), then drop it from staging."""
        key = message.idempotency_key
        state = self.redis.journal_state(key, "sqs")
        if state == "sent":
            result.already_moved.append(key)
        else:
            why = (
                "an earlier run stopped between SendMessage and its journal entry: SQS may hold it already, and has "
                "it again now"
                if state == "sending"
                else "an unfinished move to Redis brought it from SQS, which may still hold it"
                if self.redis.journal_state(key, "redis")
                else None
            )
            if why:
                result.possible_duplicates.append({"key": key, "why": why})
            delay = delay_seconds(message, self.limits[message.class_name], self.now())
            self.redis.journal(key, "sending", "sqs")
            self.checkpoint("journalled-sending", message)
            message_id = self.sqs.send(message, delay_seconds=delay)
            self.checkpoint("sent", message)
            self.redis.journal(key, "sent", "sqs", message_id=message_id)
            self.checkpoint("journalled-sent", message)
            result.moved.append(_record(message, delay_seconds=delay, message_id=message_id))
        self.redis.unstage(message)
        self.checkpoint("unstaged", message)


class SqsToRedis:
    def __init__(
        self,
        sqs: SqsBroker,
        redis: RedisBroker,
        limits: dict[str, TargetLimits],
        *,
        checkpoint: Checkpoint = _no_checkpoint,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sqs, self.redis, self.limits, self.checkpoint, self.now = sqs, redis, limits, checkpoint, now

    def move_class(self, class_name: str, result: MoveResult) -> None:
        """Settle what an unfinished move to SQS left staged, then receive and move the class's visible messages
        until a receive returns none."""
        for staged in self.redis.staged(class_name):
            if self.redis.journal_state(staged.idempotency_key, "sqs") == "sent":
                result.already_moved.append(staged.idempotency_key)  # SQS has it: it comes back from there
            elif self.redis.push_once(staged, frm="staging"):  # back in its list; a copy in SQS is then dropped
                result.moved.append(_record(staged))
            self.redis.unstage(staged)
        while batch := self.sqs.receive(class_name):
            for message, receipt in batch:
                self.checkpoint("received", message)
                reason = misfit(message, self.limits[class_name], self.now())
                if reason:
                    result.misfits.append(reason)
                    self.sqs.release(class_name, receipt)
                    return
                if self.redis.push_once(message, frm=message.where):
                    result.moved.append(_record(message))
                else:
                    result.already_moved.append(message.idempotency_key)
                self.checkpoint("pushed", message)
                self.sqs.delete(class_name, receipt)
                self.checkpoint("deleted", message)

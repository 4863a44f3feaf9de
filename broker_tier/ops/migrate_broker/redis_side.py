"""The Redis broker's side of a move: kombu's lists and unacked records of each class, a staging list, and the
journal of what was moved (all in the broker database, so each step is one atomic Redis command or script)."""

from __future__ import annotations

import json
from bisect import bisect
from dataclasses import dataclass
from typing import Any

from broker_tier.ops.migrate_broker.messages import QueuedMessage
from broker_tier_contract import redis_unacked_keys

PRIORITY_STEPS = (0, 3, 6, 9)
"""kombu's Redis transport keeps one list per step (``<queue>``, ``<queue>\\x06\\x163``, ...) and empties step 0
first."""
PRIORITY_SEPARATOR = "\x06\x16"
KOMBU_SHARED_UNACKED = ("unacked", "unacked_index")
"""The record kombu uses when a process has no class of its own (producers, Beat, an older worker)."""
PREFIX = "broker-tier:migrate-broker"
JOURNAL_TTL_SECONDS = 14 * 86_400
"""Longer than SQS's longest retention: a message moved twice can always be told from one never moved."""
CLIENT_NAME = "broker-tier-migrate-broker"
"""The connection name of the mover's own connections (CLIENT LIST tells them from the tier's)."""

# Claim one entry of an unacked record: only if it is still the value read, so that nothing else took it meanwhile.
_CLAIM_UNACKED = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[3], ARGV[3])
return 1
"""
# Push a message into a class's list once per idempotency key: the check, the push and the journal are one step.
_PUSH_ONCE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""


def journal_key(target: str) -> str:
    """The journal of a move to ``target`` (one per direction: a move back must not find a key moved the other way
    and take it for done). A completed move forgets both (``forget_journals``)."""
    return f"{PREFIX}:journal:to-{target}"


def staging_key(class_name: str) -> str:
    """Where a message claimed from the Redis broker waits until the new broker has it."""
    return f"{PREFIX}:staging:{class_name}"


def list_key(class_name: str, priority: int = 0) -> str:
    return f"{class_name}{PRIORITY_SEPARATOR}{priority}" if priority else class_name


def list_key_for(message: QueuedMessage) -> str:
    """The list kombu's Redis transport puts ``message`` in: by its priority property (0-9), to the step below."""
    try:
        priority = max(0, min(9, int((message.envelope.get("properties") or {}).get("priority") or 0)))
    except (TypeError, ValueError):
        priority = 0
    return list_key(message.class_name, PRIORITY_STEPS[bisect(PRIORITY_STEPS, priority) - 1])


@dataclass(frozen=True)
class UnackedEntry:
    """One message in an unacked record (received by a worker, not yet acknowledged)."""

    record: str
    index: str
    tag: str
    value: str
    message: QueuedMessage


class RedisBroker:
    """The broker database of the tier's Redis (``client`` must select it and name its connections
    :data:`CLIENT_NAME`)."""

    def __init__(self, client: Any, classes: list[str]) -> None:
        self.client, self.classes = client, classes
        self._claim_unacked = client.register_script(_CLAIM_UNACKED)
        self._push_once = client.register_script(_PUSH_ONCE)

    # -- what is there ------------------------------------------------------------------------------------------------
    def list_keys(self, class_name: str) -> list[str]:
        return [list_key(class_name, step) for step in PRIORITY_STEPS]

    def waiting(self, class_name: str) -> list[QueuedMessage]:
        """The class's queued messages, oldest first (kombu pushes on the left and pops on the right)."""
        return [
            QueuedMessage.parse(class_name, text, f"list {key!r}")
            for key in self.list_keys(class_name)
            for text in reversed(self.client.lrange(key, 0, -1))
        ]

    def unacked(self, class_name: str) -> list[UnackedEntry]:
        """The class's messages in unacked records: its own, and the shared one's entries routed to it."""
        own = redis_unacked_keys(class_name)
        entries = []
        for record, index in ((own["unacked_key"], own["unacked_index_key"]), KOMBU_SHARED_UNACKED):
            for tag, value in self.client.hgetall(record).items():
                message, _exchange, routing_key = json.loads(value)
                if record in KOMBU_SHARED_UNACKED and routing_key != class_name:
                    continue
                text = json.dumps(message)
                entries.append(
                    UnackedEntry(
                        record,
                        index,
                        tag.decode(),
                        value.decode(),
                        QueuedMessage.parse(class_name, text, f"unacked {tag.decode()}"),
                    )
                )
        return entries

    def staged(self, class_name: str) -> list[QueuedMessage]:
        return [
            QueuedMessage.parse(class_name, text, "staging")
            for text in reversed(self.client.lrange(staging_key(class_name), 0, -1))
        ]

    def survey(self, class_name: str) -> list[QueuedMessage]:
        """Every message of the class the Redis broker holds: staged by an interrupted move, unacked, waiting."""
        return (
            self.staged(class_name) + [entry.message for entry in self.unacked(class_name)] + self.waiting(class_name)
        )

    def counts(self, class_name: str) -> dict[str, int]:
        own = redis_unacked_keys(class_name)
        return {
            "waiting": sum(self.client.llen(key) for key in self.list_keys(class_name)),
            "unacked": self.client.hlen(own["unacked_key"])
            + sum(1 for entry in self.unacked(class_name) if entry.record in KOMBU_SHARED_UNACKED),
            "staged": self.client.llen(staging_key(class_name)),
        }

    def other_clients(self) -> list[str]:
        """The connections to the broker database that are not the mover's: a worker, Beat or producer still on
        this broker (each as ``addr name cmd age``)."""
        database = self.client.connection_pool.connection_kwargs.get("db", 0)
        return [
            f"{client.get('addr')} name={client.get('name') or '-'} cmd={client.get('cmd')} age={client.get('age')}s"
            for client in self.client.client_list()
            if int(client.get("db", -1)) == database and client.get("name") != CLIENT_NAME
        ]

    # -- as the old broker ------------------------------------------------------------------------------------------
    def claim_waiting(self, class_name: str) -> QueuedMessage | None:
        """Atomically move the class's oldest waiting message (highest priority first) to its staging list."""
        for key in self.list_keys(class_name):
            text = self.client.rpoplpush(key, staging_key(class_name))
            if text is not None:
                return QueuedMessage.parse(class_name, text, "staging")
        return None

    def claim_unacked(self, entry: UnackedEntry) -> bool:
        """Atomically move an unacked entry to the staging list; False if it is no longer there as it was read."""
        keys = [entry.record, entry.index, staging_key(entry.message.class_name)]
        return bool(self._claim_unacked(keys=keys, args=[entry.tag, entry.value, entry.message.text]))

    def unstage(self, message: QueuedMessage) -> None:
        """The message is on the new broker: drop it from the staging list."""
        self.client.lrem(staging_key(message.class_name), -1, message.text)

    def put_back(self, message: QueuedMessage) -> None:
        """Return a staged message to its class's list (as the oldest), e.g. one that does not fit the new broker."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.rpush(list_key_for(message), message.text)
            pipe.lrem(staging_key(message.class_name), -1, message.text)
            pipe.execute()

    # -- the journals -----------------------------------------------------------------------------------------------
    def journal_state(self, key: str, target: str) -> str | None:
        value = self.client.hget(journal_key(target), key)
        return json.loads(value)["state"] if value else None

    def journal(self, key: str, state: str, target: str, **details: Any) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(journal_key(target), key, json.dumps({"state": state, **details}))
            pipe.expire(journal_key(target), JOURNAL_TTL_SECONDS)
            pipe.execute()

    def forget_journals(self) -> None:
        """After a completed move (the old broker empty): nothing is left to finish, and the next move (perhaps
        back) starts from a clean journal."""
        self.client.delete(journal_key("sqs"), journal_key("redis"))

    # -- as the new broker ------------------------------------------------------------------------------------------
    def push_once(self, message: QueuedMessage, **details: Any) -> bool:
        """Put ``message`` in its class's list unless the journal has its key; the check, the push and the journal
        entry are one script (atomic). True: pushed now; False: it was moved before."""
        record = json.dumps({"state": "moved", **details})
        keys = [journal_key("redis"), list_key_for(message)]
        return bool(
            self._push_once(keys=keys, args=[message.idempotency_key, message.text, record, JOURNAL_TTL_SECONDS])
        )

"""What the rehearsal reads in the Redis it fails over: results, the class's queue, kombu's unacked record."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import cast

import redis

import broker_tier_contract as contract
from broker_tier.rehearsal.accounting import InFlight, RedisKeys
from broker_tier.rehearsal.command_log import TASK_ID
from broker_tier.rehearsal.redis_pair import RedisNode
from broker_tier.rehearsal.util import RehearsalError

Variables = contract.ContainerEnvironment
RESTORE_MUTEX_WAIT_SECONDS = 10.0
"""How long the restore of the unacked record waits for kombu's restore mutex: a worker's periodic scan holds it
for milliseconds (one that died holding it, until it expires: ``unacked_mutex_expire``, 300 s)."""


class BrokerState:
    """The class's keys in the broker and result databases of the containers' ``environment``."""

    def __init__(self, environment: dict[str, str], *, tls_ca_file: Path | None) -> None:
        self.environment, self.tls_ca_file = environment, tls_ca_file
        self.queue = environment[Variables.QUEUE.name]
        self.keys = contract.redis_unacked_keys(self.queue)
        self.broker_db = int(environment[Variables.REDIS_DB_BROKER.name])
        self.results_db = int(environment[Variables.REDIS_DB_RESULTS.name])

    @property
    def redis_keys(self) -> RedisKeys:
        return RedisKeys(queue=self.queue, unacked=self.keys["unacked_key"])

    def in_flight(self, node: RedisNode) -> InFlight:
        """The messages in the class's unacked record on ``node``: delivered to a worker, not yet acknowledged."""
        record = node.client(self.broker_db).hgetall(self.keys["unacked_key"])
        tags = {_text(tag): _task_ids(_text(payload)) for tag, payload in record.items()}
        return InFlight(task_ids=set().union(*tags.values()) if tags else set(), tags=tags)

    def queue_depth(self, node: RedisNode) -> dict:
        client = node.client(self.broker_db)
        queued = sum(
            client.llen(key) for key in client.scan_iter(match=f"{self.queue}*") if client.type(key) == b"list"
        )
        return {"unacked_at_end": client.hlen(self.keys["unacked_key"]) + queued, "queued_at_end": queued}

    def results_missing(self, node: RedisNode, task_ids: list[str]) -> dict[str, str]:
        """Task id -> state (``missing`` when no result) of each of ``task_ids`` whose result is not SUCCESS."""
        client = node.client(self.results_db)
        missing: dict[str, str] = {}
        for start in range(0, len(task_ids), 500):
            chunk = task_ids[start : start + 500]
            for task_id, raw in zip(chunk, client.mget([f"celery-task-meta-{i}" for i in chunk]), strict=True):
                state = "missing" if raw is None else json.loads(raw).get("status")
                if state != "SUCCESS":
                    missing[task_id] = state
        return missing

    def _kombu_connection(self):
        from urllib.parse import quote

        from kombu import Connection

        from broker_tier_celery import settings_from_environment

        settings = settings_from_environment(self.environment)
        url = settings["broker_url"]
        if self.tls_ca_file is not None:  # the URL's ssl_* query wins over ssl=
            url += f"&ssl_ca_certs={quote(str(self.tls_ca_file), safe='')}"
        return Connection(url, transport_options=settings["broker_transport_options"])

    def restore_unacked(self, node: RedisNode) -> int:
        """Put every message still in the class's unacked record back on its queue, as kombu's
        ``QoS.restore_visible`` would once its visibility timeout passed, under kombu's restore mutex. Returns how
        many it put back; a RehearsalError when the mutex stayed held (kombu's own restore would skip silently,
        and a 0 here would read as "nothing was stranded")."""
        from kombu.transport.redis import Mutex, MutexHeld

        client = node.client(self.broker_db)
        left = client.hlen(self.keys["unacked_key"])
        if not left:
            return 0
        with self._kombu_connection() as connection:  # the class's keys: its transport options
            qos = connection.default_channel.qos
            deadline = time.monotonic() + RESTORE_MUTEX_WAIT_SECONDS
            while True:
                try:
                    with Mutex(client, qos.unacked_mutex_key, qos.unacked_mutex_expire):
                        return _restore_all(client, qos)
                except MutexHeld:
                    if time.monotonic() >= deadline:
                        raise RehearsalError(
                            f"{left} message(s) in the class's unacked record could not be restored: kombu's "
                            f"restore mutex was held for over {RESTORE_MUTEX_WAIT_SECONDS:g} s, so whether they "
                            f"were stranded is unknown"
                        ) from None
                    time.sleep(0.1)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _task_ids(payload: str) -> set[str]:
    """The task id in the headers of an unacked record's entry (``[message, exchange, routing key]``)."""
    try:
        task_id = json.loads(payload)[0]["headers"]["id"]
    except (ValueError, LookupError, TypeError):
        return set(TASK_ID.findall(payload))  # not kombu's shape: any id it names
    return {task_id} if isinstance(task_id, str) else set()


def _restore_all(client: redis.Redis, qos) -> int:
    restored = 0
    tags = cast(list[bytes], client.zrange(qos.unacked_index_key, 0, -1))
    for tag in tags:
        restored += client.hexists(qos.unacked_key, tag)  # what restore_by_tag puts back
        qos.restore_by_tag(tag, client)
    return restored

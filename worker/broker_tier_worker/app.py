"""Reference Celery app of broker-tier, with a canary task that drills send and count.

``celery -A broker_tier_worker.app worker -Q <class>`` consumes one class's queue;
``celery -A broker_tier_worker.app beat`` runs the schedule.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time

from celery import Celery

from broker_tier_celery import configure
from broker_tier_contract import (
    ALWAYS_FAILS_TASK,
    CANARY_TASK,
    HOLD_TASK,
    PAYLOAD_TASK,
    ContainerEnvironment,
    canary_ledger_line,
)

app = Celery("broker_tier_worker")
configure(app)
ledger = logging.getLogger("broker_tier.canary")


def _record(task, token: str, **extra) -> dict:
    """Logs one canary ledger line for an execution of ``task`` and returns its record."""
    queue = task.request.delivery_info.get("routing_key") or os.environ.get(ContainerEnvironment.QUEUE.name, "unknown")
    record = {
        "token": token,
        "task_id": task.request.id,
        "queue": queue,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "at": round(time.time(), 3),
        **extra,
    }
    ledger.warning(canary_ledger_line(record))  # WARNING: kept whatever the worker's log level
    return record


@app.task(name=CANARY_TASK)
def canary(token: str) -> dict:
    """Records each execution in the canary ledger (one log line; see ``broker_tier_contract``), so a
    drill can tell sent from run without reading the Redis it is failing over."""
    record = _record(canary, token)
    return {"token": token, "queue": record["queue"]}


@app.task(name=HOLD_TASK, bind=True)
def hold(self, token: str, seconds: float) -> dict:
    """A long task: a ledger line with ``phase`` ``start``, ``seconds`` of waiting, one with ``phase``
    ``done``. Shutdown and scale-in drills interrupt it and count where it ran."""
    _record(self, token, phase="start")
    time.sleep(seconds)
    record = _record(self, token, phase="done")
    return {"token": token, "queue": record["queue"], "hostname": record["hostname"]}


@app.task(name=ALWAYS_FAILS_TASK)
def always_fails(token: str) -> None:
    """Fails every time: proves a failing task reaches the dead-letter queue."""
    raise RuntimeError(f"broker-tier test failure {token}")


@app.task(name=PAYLOAD_TASK)
def payload(data: str, fail: bool = False) -> dict:
    """The size and SHA-256 of ``data`` as the task received it: a large payload arrived whole. ``fail``: raises
    after that (a failed task's message stays for the next receive and the dead-letter queue)."""
    encoded = data.encode()
    digest = {"bytes": len(encoded), "sha256": hashlib.sha256(encoded).hexdigest()}
    if fail:
        raise RuntimeError(f"broker-tier payload test failure ({digest['bytes']} bytes)")
    return digest

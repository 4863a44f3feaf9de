"""The canary task the tier's failover drill sends (``broker-tier-ops failover``): keep it in your app.

The drill sends ``broker_tier_contract.CANARY_TASK`` to each class's queue and counts executions in the workers'
logs, never in the Redis it fails over: every execution logs one ledger line (``canary_ledger_line``). Without
this task, run the drill with ``--no-canary``.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from broker_tier_contract import CANARY_TASK, ContainerEnvironment, canary_ledger_line
from team_app.celery import app

ledger = logging.getLogger("broker_tier.canary")


@app.task(name=CANARY_TASK, bind=True)
def canary(self, token: str) -> dict:
    """One ledger line per execution, with the queue it came from."""
    queue = self.request.delivery_info.get("routing_key") or os.environ.get(ContainerEnvironment.QUEUE.name, "unknown")
    record = {
        "token": token,
        "task_id": self.request.id,
        "queue": queue,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "at": round(time.time(), 3),
    }
    ledger.warning(canary_ledger_line(record))  # WARNING: kept whatever the worker's log level
    return {"token": token, "queue": queue}

"""Reference Celery app of broker-tier, with a canary task that drills send and count.

``celery -A broker_tier_worker.app worker -Q <class>`` consumes one class's queue;
``celery -A broker_tier_worker.app beat`` runs the schedule.
"""

from __future__ import annotations

import os

from broker_tier_contract import ALWAYS_FAILS_TASK, CANARY_COUNTER_KEY, CANARY_TASK, ContainerEnvironment
from celery import Celery

from broker_tier_celery import configure

app = Celery("broker_tier_worker")
configure(app)


@app.task(name=CANARY_TASK)
def canary(token: str) -> dict:
    """Counts its own executions per queue in the result DB, so a drill can tell sent from run."""
    queue = canary.request.delivery_info.get("routing_key") or os.environ.get(ContainerEnvironment.QUEUE.name, "unknown")
    with app.backend.client.pipeline() as pipe:
        pipe.incr(CANARY_COUNTER_KEY.format(queue=queue))
        pipe.expire(CANARY_COUNTER_KEY.format(queue=queue), app.conf.result_expires)
        count = pipe.execute()[0]
    return {"token": token, "queue": queue, "count": count}


@app.task(name=ALWAYS_FAILS_TASK)
def always_fails(token: str) -> None:
    """Fails every time: proves a failing task reaches the dead-letter queue."""
    raise RuntimeError(f"broker-tier test failure {token}")

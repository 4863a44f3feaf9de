"""A worker's and Beat's life on ECS: scale-in protection while busy, the SIGTERM hand-back, and the heartbeats
the container health checks read (docs/decisions/container-health-checks.md).

The worker's start at ``worker_ready``, which fires only in a ``celery worker``'s main process: Beat, producers and
the pool's children are left alone. Beat's start at ``beat_init``.
"""

from __future__ import annotations

from typing import Any

from celery import bootsteps, signals
from celery.worker import state as worker_state

from broker_tier_celery import heartbeat, protection, shutdown
from broker_tier_celery.environment import TierEnvironment

SATURATION_CHECK_SECONDS = 1.0
"""How often the worker's event loop looks whether every process is busy (a heartbeat then, though it polls none)."""


def saturated(consumer: Any) -> bool:
    """Every prefetch slot holds a task: the consumer takes no message (it polls none) until one ends."""
    qos = getattr(consumer, "qos", None)
    return qos is not None and 0 < qos.value <= len(worker_state.reserved_requests)


class HeartbeatStep(bootsteps.StartStopStep):  # type: ignore[misc]  # celery has no type information
    """A consumer bootstep (started on every connection, from the event loop's timer): a heartbeat whenever every
    process is busy. The broker round trips record theirs in the transports (failover.py, sqs_handback.py)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.timer_entry: Any = None

    def start(self, parent: Any) -> None:
        heartbeat.start("worker")
        self.timer_entry = parent.timer.call_repeatedly(SATURATION_CHECK_SECONDS, self.tick, (parent,))

    def tick(self, parent: Any) -> None:
        if saturated(parent):
            heartbeat.beat()

    def stop(self, parent: Any) -> None:
        if self.timer_entry is not None:
            parent.timer.cancel(self.timer_entry)
            self.timer_entry = None

    shutdown = stop


def _beat_on_every_tick(service: Any) -> None:
    """Beat's scheduler records a heartbeat after each tick (whichever scheduler class runs)."""
    scheduler = service.scheduler
    tick = scheduler.tick

    def tick_and_beat(*args: Any, **kwargs: Any) -> Any:
        interval = tick(*args, **kwargs)
        heartbeat.beat()
        return interval

    scheduler.tick = tick_and_beat
    heartbeat.start("beat")


def install(app: Any, env: TierEnvironment) -> None:
    """Connect the worker's and Beat's hooks for ``app`` (the settings choose the hand-back SQS transport)."""
    time_limit = app.conf.task_time_limit
    keepers: list[protection.ProtectionKeeper] = []
    app.steps["consumer"].add(HeartbeatStep)

    def on_worker_ready(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        shutdown.install(sender)
        keeper = protection.keeper_for(
            env.ecs_agent_uri, time_limit_seconds=time_limit, renew_seconds=env.protection_renew_seconds
        )
        if keeper is not None:
            keepers.append(keeper)
            keeper.start()

    def on_task_received(sender: Any = None, **_: Any) -> None:
        for keeper in keepers:
            keeper.wake.set()  # protect now, not at the next check

    def on_worker_shutdown(sender: Any = None, **_: Any) -> None:
        for keeper in keepers:
            keeper.stop()

    def on_beat_init(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is app:
            _beat_on_every_tick(sender)

    uid = f"broker-tier-{id(app)}"
    signals.worker_ready.connect(on_worker_ready, weak=False, dispatch_uid=f"{uid}-ready")
    signals.task_received.connect(on_task_received, weak=False, dispatch_uid=f"{uid}-received")
    signals.worker_shutdown.connect(on_worker_shutdown, weak=False, dispatch_uid=f"{uid}-shutdown")
    signals.beat_init.connect(on_beat_init, weak=False, dispatch_uid=f"{uid}-beat-health")

"""A worker's life on ECS: scale-in protection while busy, and the SIGTERM hand-back.

Both start at ``worker_ready``, which fires only in a ``celery worker``'s main process: Beat, producers and the
pool's children are left alone.
"""

from __future__ import annotations

from typing import Any

from celery import signals

from broker_tier_celery import protection, shutdown
from broker_tier_celery.environment import TierEnvironment


def install(app: Any, env: TierEnvironment) -> None:
    """Connect the worker hooks for ``app`` (the settings choose the hand-back SQS transport)."""
    time_limit = app.conf.task_time_limit
    keepers: list[protection.ProtectionKeeper] = []

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

    uid = f"broker-tier-{id(app)}"
    signals.worker_ready.connect(on_worker_ready, weak=False, dispatch_uid=f"{uid}-ready")
    signals.task_received.connect(on_task_received, weak=False, dispatch_uid=f"{uid}-received")
    signals.worker_shutdown.connect(on_worker_shutdown, weak=False, dispatch_uid=f"{uid}-shutdown")

"""``configure(app)``: the tier's settings and every hook, composed (the one module that knows them all)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from broker_tier_celery import backlog_metrics, beat_fence, keyspace_metrics, lifecycle, reconnect
from broker_tier_celery.environment import TierEnvironment
from broker_tier_celery.settings import build_settings


def configure(app: Any, environ: Mapping[str, str] = os.environ) -> None:
    """Apply the tier's settings to a Celery app, the worker's lifecycle hooks (scale-in protection, SIGTERM
    hand-back), the publish time on every message, and Beat's hooks (the Redis broker's backlog metrics, Redis's
    keyspace metrics, the fence that publishes each due tick once)."""
    env = TierEnvironment.from_environ(environ)
    app.conf.update(build_settings(env))
    reconnect.install(app)
    lifecycle.install(app, env)
    backlog_metrics.install(app, env)
    beat_fence.install(app, env)
    keyspace_metrics.install(app, env)

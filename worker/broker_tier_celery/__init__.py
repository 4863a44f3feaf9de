"""Celery settings for an app running on broker-tier, built from what the stack hands the containers.

One import in a team's app::

    from celery import Celery
    from broker_tier_celery import configure

    app = Celery("myapp")
    configure(app)   # reads the BROKER_TIER_* environment variables (and the AUTH token secret)

Layers, each importing only those below it: ``environment`` (the container's variables, ``SettingsError``),
``naming``, ``fallbacks``, ``timeouts``, ``heartbeat``, ``periodic_metrics``; the features (``failover``,
``sqs_handback``, ``claim_check``, ``reconnect``, ``protection``, ``shutdown``, ``backlog_metrics``, ``beat_fence``,
``keyspace_metrics``, ``health``); ``lifecycle``; ``settings``; ``wiring`` (``configure``). The names below load on
first use, so that the health check (``python -m broker_tier_celery.health``) starts without importing Celery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from broker_tier_celery.environment import SettingsError, TierEnvironment
    from broker_tier_celery.settings import build_settings, settings_from_environment
    from broker_tier_celery.wiring import configure

_PUBLIC = {
    "SettingsError": "broker_tier_celery.environment",
    "TierEnvironment": "broker_tier_celery.environment",
    "build_settings": "broker_tier_celery.settings",
    "settings_from_environment": "broker_tier_celery.settings",
    "configure": "broker_tier_celery.wiring",
}

__all__ = ["SettingsError", "TierEnvironment", "build_settings", "configure", "settings_from_environment"]


def __getattr__(name: str) -> object:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'broker_tier_celery' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

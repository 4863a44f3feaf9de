"""Celery settings for an app running on broker-tier, built from what the stack hands the containers.

One import in a team's app::

    from celery import Celery
    from broker_tier_celery import configure

    app = Celery("myapp")
    configure(app)   # reads the BROKER_TIER_* environment variables (and the AUTH token secret)

Layers, each importing only those below it: ``environment`` (the container's variables, ``SettingsError``),
``naming`` and ``fallbacks``; the features (``failover``, ``sqs_handback``, ``protection``, ``shutdown``,
``backlog_metrics``, ``lifecycle``); ``settings`` (the Celery settings); ``wiring`` (``configure``).
"""

from broker_tier_celery.environment import SettingsError, TierEnvironment
from broker_tier_celery.settings import build_settings, settings_from_environment
from broker_tier_celery.wiring import configure

__all__ = ["SettingsError", "TierEnvironment", "build_settings", "configure", "settings_from_environment"]

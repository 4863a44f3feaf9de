"""Celery settings for an app running on broker-tier, built from what the stack hands the containers.

One import in a team's app::

    from celery import Celery
    from broker_tier_celery import configure

    app = Celery("myapp")
    configure(app)   # reads BROKER_TIER_* environment variables (and the AUTH token secret)
"""

from broker_tier_celery.settings import (
    SettingsError,
    TierEnvironment,
    build_settings,
    configure,
    settings_from_environment,
)

__all__ = ["SettingsError", "TierEnvironment", "build_settings", "configure", "settings_from_environment"]

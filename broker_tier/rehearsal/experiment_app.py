"""The reference worker's app with Celery settings overridden, for experiments that show what a
setting is worth (``broker-tier-ops rehearse --override NAME=JSON``): the same app and tasks,
configured by the settings package, then the overrides on top. Never used by the stack."""

from __future__ import annotations

import json
import os

from broker_tier.rehearsal.util import OVERRIDES_VARIABLE
from broker_tier_worker.app import app, canary  # noqa: F401 - the tasks the workers run

app.conf.update(json.loads(os.environ.get(OVERRIDES_VARIABLE) or "{}"))

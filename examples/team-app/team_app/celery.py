"""The team's Celery app: the tier's settings first, then the team's own routes and schedule.

``celery -A team_app.celery:app worker --queues <class>`` (what the stack runs per class) and
``celery -A team_app.celery:app beat``.
"""

from __future__ import annotations

from celery import Celery

from broker_tier_celery import configure
from team_app.routing import BEAT_SCHEDULE, TASK_ROUTES

app = Celery("team_app", include=["team_app.tasks", "team_app.canary"])
configure(app)  # broker, queues, result backend, time limits, shutdown: from the variables the stack sets
app.conf.task_routes = TASK_ROUTES
app.conf.beat_schedule = BEAT_SCHEDULE

"""Where each task runs and when Beat sends it. Plain data, without the app, so that a producer (a web app that
publishes these tasks) can use the same routes.

A queue here is a latency class of the tier (cdk.json's ``queues``: interactive, default and batch unless your
configuration says otherwise); a class the environment does not have fails the publish (``QueueNotFound``).
Each class's workers get that class's task time limit, so route a task to a class whose limit it fits.
"""

from __future__ import annotations

from datetime import timedelta

from celery.schedules import crontab

TASK_ROUTES = {
    # someone waits for it: seconds (interactive: 60 s time limit in cdk.json)
    "team_app.tasks.send_receipt": {"queue": "interactive"},
    # nobody waits, but it should not lag far behind (default: 300 s)
    "team_app.tasks.sync_inventory": {"queue": "default"},
    # long, once a night (batch: 3600 s)
    "team_app.tasks.nightly_report": {"queue": "batch"},
}
"""Celery's ``task_routes``: task name -> its class's queue. Tasks not listed go to ``default``."""

BEAT_SCHEDULE = {
    "sync-inventory": {
        "task": "team_app.tasks.sync_inventory",
        "schedule": timedelta(minutes=10),
        "args": ("all",),
    },
    "nightly-report": {
        "task": "team_app.tasks.nightly_report",
        "schedule": crontab(hour=2, minute=30),  # UTC
    },
}
"""Celery's ``beat_schedule``. The stack runs exactly one Beat, so each entry is sent once per period; Beat routes
each by ``TASK_ROUTES``, as any other publish."""

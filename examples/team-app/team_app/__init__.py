"""A team's own Celery app on broker-tier: tasks in three latency classes, a Beat schedule, and the canary the
tier's failover drill sends. ``celery -A team_app.celery:app worker|beat``."""

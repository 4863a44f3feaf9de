"""The reference worker: a minimal Celery app configured by broker_tier_celery."""

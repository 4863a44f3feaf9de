"""The Celery settings for a :class:`TierEnvironment`, per broker (why each one: docs/celery-settings.md)."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any

from kombu.entity import Queue

from broker_tier_celery import claim_check, failover
from broker_tier_celery.environment import TierEnvironment
from broker_tier_celery.timeouts import (
    BEAT_MAX_LOOP_SECONDS,
    RECONNECT_INTERVAL_MAX_SECONDS,
    REDIS_CONNECT_TIMEOUT_SECONDS,
    REDIS_SOCKET_TIMEOUT_SECONDS,
    RESULT_STORE_PAUSE_BASE_MS,
    RESULT_STORE_PAUSE_MAX_MS,
    RESULT_STORE_RETRIES,
)
from broker_tier_contract import SQS_LONG_POLL_SECONDS, redis_unacked_keys

SOFT_LIMIT_HEADROOM_SECONDS = 10
"""Seconds before the hard time limit at which SoftTimeLimitExceeded lets a task clean up."""

DEFAULT_REDIS_VISIBILITY_SECONDS = 3600
"""kombu's own default visibility timeout, for processes the stack gives none (producers, Beat)."""

REDIS_BROKER_SOCKET_TIMEOUTS = {
    "socket_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_SECONDS,
}
"""kombu's defaults are none: a silent primary would hold a publish for the kernel's TCP time-outs
(docs/decisions/redis-silent-primary.md)."""

PUBLISH_RETRY_POLICY = {
    "max_retries": 30,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": RECONNECT_INTERVAL_MAX_SECONDS,
}
"""A publish through a failover retries for about 30 s (pauses of at most 1 s, each attempt within its time-outs)."""


def _sqs_broker(env: TierEnvironment) -> dict[str, Any]:
    options: dict[str, Any] = {
        "predefined_queues": {name: {"url": url} for name, url in env.queue_urls.items()},
        # short long polls bound the SIGTERM hand-back (shutdown.py)
        "wait_time_seconds": SQS_LONG_POLL_SECONDS,
        "polling_interval": 0,
    }
    if env.region:
        options["region"] = env.region
    options.update(claim_check.transport_options(env))  # messages too big for SQS, through S3
    broker_url = "sqs://"
    if env.sqs_endpoint_url:  # a local SQS (tests); credentials still come from boto's chain
        scheme, _, host = env.sqs_endpoint_url.partition("://")
        broker_url = f"sqs://@{host}"
        options["is_secure"] = scheme == "https"
    return {
        "broker_url": broker_url,
        "broker_transport": claim_check.TRANSPORT,  # the SIGTERM hand-back and the claim check
        "broker_transport_options": options,
        # a requeue on SQS would run the task twice (docs/decisions/sqs-hand-back-transport.md)
        "task_reject_on_worker_lost": False,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # failures stay un-acked so that SQS's redrive reaches the dead-letter queue (celery#4797)
        "task_acks_on_failure": False,
        "task_acks_on_timeout": True,
    }


def _redis_broker(env: TierEnvironment) -> dict[str, Any]:
    options: dict[str, Any] = {
        # the class's own, longer than its time limit plus its longest ETA (celery#4766)
        "visibility_timeout": env.visibility_timeout or DEFAULT_REDIS_VISIBILITY_SECONDS,
        "socket_keepalive": True,
        "retry_on_timeout": True,  # once more, on a new connection through the name
        "health_check_interval": 25,
        **REDIS_BROKER_SOCKET_TIMEOUTS,
    }
    if (
        env.queue
    ):  # a worker: its class's own record of messages in progress (docs/decisions/per-class-unacked-records.md)
        options.update(redis_unacked_keys(env.queue))
    settings: dict[str, Any] = {
        "broker_url": env.redis_url(env.broker_db),
        "broker_transport": failover.BROKER_TRANSPORT_CLASS,
        "broker_transport_options": options,
        "task_reject_on_worker_lost": True,
        # cancelling ran tasks twice (docs/decisions/no-task-cancel-on-connection-loss-with-redis-broker.md)
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "task_acks_on_failure": True,
        "task_acks_on_timeout": True,
    }
    if env.redis_tls:
        settings["broker_use_ssl"] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    return settings


def _result_backend(env: TierEnvironment) -> dict[str, Any]:
    settings: dict[str, Any] = {
        # the class+url form: Celery's Redis backend with connections that follow the primary
        "result_backend": f"{failover.RESULT_BACKEND_CLASS}+{env.redis_url(env.results_db)}",
        "result_expires": env.result_expires,  # results without a TTL once filled a Redis
        "result_backend_always_retry": True,
        "result_backend_max_retries": RESULT_STORE_RETRIES,
        "result_backend_base_sleep_between_retries_ms": RESULT_STORE_PAUSE_BASE_MS,
        "result_backend_max_sleep_between_retries_ms": RESULT_STORE_PAUSE_MAX_MS,
        "redis_backend_health_check_interval": 25,
        "redis_socket_keepalive": True,
        "redis_retry_on_timeout": True,
        "redis_socket_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
        "redis_socket_connect_timeout": REDIS_CONNECT_TIMEOUT_SECONDS,
    }
    if env.redis_tls:
        settings["redis_backend_use_ssl"] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    return settings


def build_settings(env: TierEnvironment) -> dict[str, Any]:
    """The Celery settings for ``env``, as a dict for ``app.conf.update``."""
    settings: dict[str, Any] = {
        "task_queues": [Queue(name, routing_key=name) for name in env.queue_urls],
        "task_default_queue": "default" if "default" in env.queue_urls else next(iter(env.queue_urls)),
        "task_create_missing_queues": False,  # routing to an undeclared queue is an error
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,  # with acks_late, one message in hand per process
        "broker_channel_error_retry": True,  # survive ReadOnlyError after a failover (celery#7946)
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "task_publish_retry": True,
        "task_publish_retry_policy": dict(PUBLISH_RETRY_POLICY),
        "beat_max_loop_interval": BEAT_MAX_LOOP_SECONDS,  # a tick at least this often: Beat's heartbeat
        "worker_soft_shutdown_timeout": env.soft_shutdown_timeout,
        "worker_enable_soft_shutdown_on_idle": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        **_result_backend(env),
    }
    if env.task_time_limit:
        settings["task_time_limit"] = env.task_time_limit
        settings["task_soft_time_limit"] = max(1, env.task_time_limit - SOFT_LIMIT_HEADROOM_SECONDS)
    settings.update(_sqs_broker(env) if env.broker == "sqs" else _redis_broker(env))
    return settings


def settings_from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Celery settings from the ``BROKER_TIER_*`` variables of ``environ``."""
    return build_settings(TierEnvironment.from_environ(environ))

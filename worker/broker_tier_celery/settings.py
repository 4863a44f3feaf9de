"""Builds Celery configuration from the ``BROKER_TIER_*`` environment the stack sets.

Checked against Celery 5.7 / kombu 5.7 as installed (see README "Celery settings"):

- SQS broker: ``predefined_queues`` (kombu never lists, creates or deletes queues; any other queue
  name raises ``UndefinedQueueException``); visibility timeouts live on the queues themselves.
- Failures stay un-acked (``task_acks_on_failure=False``): Celery then rejects without requeue,
  which kombu's SQS transport leaves in a queue that has a RedrivePolicy, so SQS redelivers it
  and, after ``maxReceiveCount`` receives, moves it to the dead-letter queue.
- On SQS a requeueing reject sends a *copy* and leaves the original in flight (two deliveries),
  so ``task_reject_on_worker_lost`` is off there (a lost worker's message reappears after the
  visibility timeout and counts towards the DLQ) and timeouts are acked (recorded as failures).
  With the Redis broker, which has no redrive, a lost worker's message is requeued.
- ``broker_channel_error_retry``: without it workers exit with "Unrecoverable error:
  ReadOnlyError" after an ElastiCache failover (celery#7946).
- Redis connections (result backend; broker in redis mode) follow the primary through a failover:
  a replica is refused on connect and READONLY drops the connection (``failover.py``); measured
  with ``broker-tier-ops rehearse`` (README, "Failover rehearsal").
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from broker_tier_contract import SQS_LONG_POLL_SECONDS, Variable, redis_unacked_keys
from broker_tier_contract import ContainerEnvironment as Variables

# Seconds before the hard time limit at which SoftTimeLimitExceeded lets a task clean up.
SOFT_LIMIT_HEADROOM_SECONDS = 10


class SettingsError(ValueError):
    """The container's environment does not describe a usable broker tier."""


def _get(environ: Mapping[str, str], variable: Variable) -> str:
    value = environ.get(variable.name) or variable.default
    if value is None or value == "":
        raise SettingsError(
            f"environment variable {variable.name} is required: {variable.meaning} (the broker-tier stack sets it)"
        )
    return value


def _optional(environ: Mapping[str, str], variable: Variable) -> str | None:
    return environ.get(variable.name) or variable.default


def _int(environ: Mapping[str, str], variable: Variable, minimum: int = 0) -> int:
    raw = _get(environ, variable)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{variable.name} = {raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{variable.name} = {value} is below {minimum}")
    return value


def _bool(environ: Mapping[str, str], variable: Variable) -> bool:
    raw = _get(environ, variable).lower()
    if raw not in ("true", "false"):
        raise SettingsError(f"{variable.name} = {raw!r} is not 'true' or 'false'")
    return raw == "true"


@dataclass(frozen=True)
class TierEnvironment:
    """What the stack tells a container, parsed and checked."""

    broker: str
    queue_urls: dict[str, str]
    queue: str | None
    environment: str | None
    """The tier's environment name (the dimension of the Redis broker's backlog metrics); None outside the stack."""
    region: str | None
    redis_host: str
    redis_port: int
    redis_tls: bool
    redis_auth_token: str | None
    results_db: int
    broker_db: int
    task_time_limit: int | None
    visibility_timeout: int | None
    result_expires: int
    soft_shutdown_timeout: float
    sqs_endpoint_url: str | None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> TierEnvironment:
        broker = _get(environ, Variables.BROKER)
        if broker not in ("sqs", "redis"):
            raise SettingsError(f"{Variables.BROKER.name} = {broker!r} is not 'sqs' or 'redis'")
        try:
            queue_urls = json.loads(_get(environ, Variables.QUEUE_URLS))
        except json.JSONDecodeError as error:
            raise SettingsError(f"{Variables.QUEUE_URLS.name} is not JSON: {error}") from None
        if not isinstance(queue_urls, dict) or not queue_urls:
            raise SettingsError(f"{Variables.QUEUE_URLS.name} must map each queue class to its URL")
        queue = _optional(environ, Variables.QUEUE)
        if queue is not None and queue not in queue_urls:
            raise SettingsError(
                f"{Variables.QUEUE.name} = {queue!r} is not one of the declared classes {sorted(queue_urls)}"
            )
        return cls(
            broker=broker,
            queue_urls=queue_urls,
            queue=queue,
            environment=_optional(environ, Variables.ENVIRONMENT),
            # boto3 reads AWS_DEFAULT_REGION; ECS sets AWS_REGION (and the stack the tier's own variable)
            region=(
                _optional(environ, Variables.REGION)
                or environ.get("AWS_DEFAULT_REGION")
                or environ.get("AWS_REGION")
                or None
            ),
            redis_host=_get(environ, Variables.REDIS_HOST),
            redis_port=_int(environ, Variables.REDIS_PORT, minimum=1),
            redis_tls=_bool(environ, Variables.REDIS_TLS),
            redis_auth_token=_optional(environ, Variables.REDIS_AUTH_TOKEN),
            results_db=_int(environ, Variables.REDIS_DB_RESULTS),
            broker_db=_int(environ, Variables.REDIS_DB_BROKER),
            task_time_limit=(
                _int(environ, Variables.TASK_TIME_LIMIT, minimum=1)
                if _optional(environ, Variables.TASK_TIME_LIMIT)
                else None
            ),
            visibility_timeout=(
                _int(environ, Variables.VISIBILITY_TIMEOUT, minimum=1)
                if _optional(environ, Variables.VISIBILITY_TIMEOUT)
                else None
            ),
            result_expires=_int(environ, Variables.RESULT_EXPIRES, minimum=60),
            soft_shutdown_timeout=float(_int(environ, Variables.SOFT_SHUTDOWN_TIMEOUT)),
            sqs_endpoint_url=_optional(environ, Variables.SQS_ENDPOINT_URL),
        )

    def redis_url(self, db: int) -> str:
        scheme = "rediss" if self.redis_tls else "redis"
        auth = f":{quote(self.redis_auth_token, safe='')}@" if self.redis_auth_token else ""
        query = "?ssl_cert_reqs=required" if self.redis_tls else ""
        return f"{scheme}://{auth}{self.redis_host}:{self.redis_port}/{db}{query}"


def _sqs_broker(env: TierEnvironment) -> dict[str, Any]:
    options: dict[str, Any] = {
        "predefined_queues": {name: {"url": url} for name, url in env.queue_urls.items()},
        # long polling, short enough to bound the SIGTERM hand-back (broker_tier_celery.shutdown)
        "wait_time_seconds": SQS_LONG_POLL_SECONDS,
        "polling_interval": 0,
    }
    if env.region:
        options["region"] = env.region
    broker_url = "sqs://"
    if env.sqs_endpoint_url:  # a local SQS (tests); credentials still come from boto's chain
        scheme, _, host = env.sqs_endpoint_url.partition("://")
        broker_url = f"sqs://@{host}"
        options["is_secure"] = scheme == "https"
    from broker_tier_celery.sqs_handback import TRANSPORT as HANDBACK_TRANSPORT

    return {
        "broker_url": broker_url,
        # kombu's SQS transport, but a requeue (SIGTERM hand-back, a channel closing) makes the original
        # message visible again instead of sending a copy (sqs_handback.py)
        "broker_transport": HANDBACK_TRANSPORT,
        "broker_transport_options": options,
        # requeueing on SQS sends a copy while the original stays in flight (see module docstring)
        "task_reject_on_worker_lost": False,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_acks_on_failure": False,
        "task_acks_on_timeout": True,
    }


# kombu's Redis transport hands an un-acked message out again after this many seconds, when the stack gives
# none (a producer, Beat): its own default.
DEFAULT_REDIS_VISIBILITY_SECONDS = 3600

# The Redis broker's socket time-outs (kombu's defaults: none). A primary that is blackholed (packets dropped,
# no reset: some AZ failures) otherwise holds a synchronous command (a publish, an ack, the unacked record) for
# the kernel's TCP retransmission time-out (about 15 min) and a new connection for its SYN retries (about
# 127 s). They do not cut off an idle consumer: kombu 5.7 sends BRPOP with its own server-side time-out
# (``brpop_timeout``, 1 s) and reads the reply only once the socket is readable. The same values as the
# result backend's (``redis_socket_timeout``, ``redis_socket_connect_timeout``).
REDIS_BROKER_SOCKET_TIMEOUTS = {"socket_timeout": 10, "socket_connect_timeout": 5}


def _redis_broker(env: TierEnvironment) -> dict[str, Any]:
    # The class's visibility timeout, as on its SQS queue: validated to exceed the time limit plus the
    # longest ETA plus a margin, so that neither a running task nor one waiting for its ETA is handed
    # out again and run twice (celery#4766).
    options: dict[str, Any] = {
        "visibility_timeout": env.visibility_timeout or DEFAULT_REDIS_VISIBILITY_SECONDS,
        "socket_keepalive": True,
        "retry_on_timeout": True,
        "health_check_interval": 25,
    }
    if env.queue:
        # A worker's own class's record of messages in progress: kombu's default is one record per database,
        # which every worker hands out again after *its* visibility timeout, so a class with a short one
        # would re-run another class's long tasks while they still run. Beat and producers consume nothing
        # and keep kombu's default keys.
        options.update(redis_unacked_keys(env.queue))
    from broker_tier_celery.failover import BROKER_TRANSPORT_CLASS

    options.update(REDIS_BROKER_SOCKET_TIMEOUTS)
    settings: dict[str, Any] = {
        "broker_url": env.redis_url(env.broker_db),
        # connections that follow the primary through a failover (READONLY -> reconnect; see failover.py)
        "broker_transport": BROKER_TRANSPORT_CLASS,
        "broker_transport_options": options,
        "task_reject_on_worker_lost": True,
        # Off with the Redis broker: a failover drops the broker connection, and cancelling the tasks
        # in flight then (a) marks a task that had just succeeded as RETRY over its SUCCESS result
        # when the main process had not yet heard from the pool, and (b) leaves its message in the
        # unacked hash, to run again a visibility timeout later (the restore at close fails while
        # the endpoint still reaches the demoted node). Rehearsal, redis promote at 40 tasks/s: on, a
        # task ran twice in 4 of 6 runs and 2 of 14 runs left RETRY over a SUCCESS; off, 0 of 6 either.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "task_acks_on_failure": True,
        "task_acks_on_timeout": True,
    }
    if env.redis_tls:
        settings["broker_use_ssl"] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    return settings


def build_settings(env: TierEnvironment) -> dict[str, Any]:
    """The Celery settings for ``env``, as a dict for ``app.conf.update``."""
    from kombu import Queue  # imported here so the module loads without kombu for docs and tests

    from broker_tier_celery.failover import RESULT_BACKEND_CLASS

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
        "task_publish_retry_policy": {"max_retries": 10, "interval_start": 0, "interval_step": 0.5, "interval_max": 3},
        # the Redis backend with connections that follow the primary through a failover (failover.py)
        "result_backend": f"{RESULT_BACKEND_CLASS}+{env.redis_url(env.results_db)}",
        "result_expires": env.result_expires,
        "result_backend_always_retry": True,
        "result_backend_max_retries": 10,
        "redis_backend_health_check_interval": 25,
        "redis_socket_keepalive": True,
        "redis_retry_on_timeout": True,
        "redis_socket_timeout": 10,
        "redis_socket_connect_timeout": 5,
        "worker_soft_shutdown_timeout": env.soft_shutdown_timeout,
        "worker_enable_soft_shutdown_on_idle": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
    }
    if env.redis_tls:
        settings["redis_backend_use_ssl"] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    if env.task_time_limit:
        settings["task_time_limit"] = env.task_time_limit
        settings["task_soft_time_limit"] = max(1, env.task_time_limit - SOFT_LIMIT_HEADROOM_SECONDS)
    settings.update(_sqs_broker(env) if env.broker == "sqs" else _redis_broker(env))
    return settings


def settings_from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Celery settings from the ``BROKER_TIER_*`` variables of ``environ``."""
    return build_settings(TierEnvironment.from_environ(environ))


def configure(app: Any, environ: Mapping[str, str] = os.environ) -> None:
    """Apply the tier's settings to a Celery app, the worker's lifecycle hooks (ECS scale-in protection
    while busy, the SIGTERM hand-back: ``broker_tier_celery.lifecycle``) and Beat's (the Redis broker's
    backlog metrics, on which redis-mode workers scale: ``broker_tier_celery.backlog_metrics``)."""
    env = TierEnvironment.from_environ(environ)
    app.conf.update(build_settings(env))
    from broker_tier_celery import backlog_metrics, lifecycle  # need celery, which this module does not import

    lifecycle.install(app, environ)
    backlog_metrics.install(app, env)

"""What the stack tells a container (the contract's ``ContainerEnvironment``), read and checked once.

The leaf of the settings package: every other module takes a :class:`TierEnvironment`, none reads
``os.environ`` itself, and a bad value fails here, naming the variable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from broker_tier_contract import SQS_MAX_MESSAGE_BYTES, Variable
from broker_tier_contract import ContainerEnvironment as Variables

Broker = Literal["sqs", "redis"]


class SettingsError(ValueError):
    """The container's environment does not describe a usable broker tier."""


def _get(environ: Mapping[str, str], variable: Variable) -> str:
    value = environ.get(variable.name) or variable.default
    if not value:
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


def _optional_int(environ: Mapping[str, str], variable: Variable, minimum: int) -> int | None:
    return _int(environ, variable, minimum) if _optional(environ, variable) else None


def _bool(environ: Mapping[str, str], variable: Variable) -> bool:
    raw = _get(environ, variable).lower()
    if raw not in ("true", "false"):
        raise SettingsError(f"{variable.name} = {raw!r} is not 'true' or 'false'")
    return raw == "true"


def _seconds(environ: Mapping[str, str], variable: Variable, minimum: float) -> float:
    raw = _get(environ, variable)
    try:
        value = float(raw)
    except ValueError:
        value = minimum - 1
    if not value >= minimum:  # also refuses NaN
        raise SettingsError(f"{variable.name} = {raw!r} is not a number of seconds of at least {minimum:g}")
    return value


def _broker(environ: Mapping[str, str]) -> Broker:
    broker = _get(environ, Variables.BROKER)
    if broker == "sqs":
        return "sqs"
    if broker == "redis":
        return "redis"
    raise SettingsError(f"{Variables.BROKER.name} = {broker!r} is not 'sqs' or 'redis'")


def _queue_urls(environ: Mapping[str, str]) -> dict[str, str]:
    try:
        queue_urls = json.loads(_get(environ, Variables.QUEUE_URLS))
    except json.JSONDecodeError as error:
        raise SettingsError(f"{Variables.QUEUE_URLS.name} is not JSON: {error}") from None
    if not isinstance(queue_urls, dict) or not queue_urls or not all(isinstance(v, str) for v in queue_urls.values()):
        raise SettingsError(f"{Variables.QUEUE_URLS.name} must map each queue class to its URL")
    return {str(name): url for name, url in queue_urls.items()}


def _region(environ: Mapping[str, str]) -> str | None:
    # boto3 reads AWS_DEFAULT_REGION; ECS sets AWS_REGION (and the stack the tier's own variable)
    return _optional(environ, Variables.REGION) or environ.get("AWS_DEFAULT_REGION") or environ.get("AWS_REGION")


@dataclass(frozen=True)
class ClaimCheckTarget:
    """The claim check's bucket (``claim_check.py``): where messages over the threshold go, and their payloads are
    read back from."""

    bucket: str
    threshold_bytes: int
    """Size of the SQS message as sent above which its payload goes to the bucket."""
    endpoint_url: str | None = None
    """A local S3 (tests); None: AWS's."""


def _claim_check(environ: Mapping[str, str], broker: Broker) -> ClaimCheckTarget | None:
    bucket = _optional(environ, Variables.CLAIM_CHECK_BUCKET)
    if bucket is None:
        return None
    if broker != "sqs":
        raise SettingsError(
            f"{Variables.CLAIM_CHECK_BUCKET.name} is set with {Variables.BROKER.name} = {broker!r}: the claim check "
            f"carries messages over SQS's size limit, the Redis broker has none; unset it"
        )
    threshold = _int(environ, Variables.CLAIM_CHECK_THRESHOLD, minimum=1)
    if threshold > SQS_MAX_MESSAGE_BYTES:
        raise SettingsError(
            f"{Variables.CLAIM_CHECK_THRESHOLD.name} = {threshold} is over the queues' limit of "
            f"{SQS_MAX_MESSAGE_BYTES} bytes: a message between the two could be neither sent nor offloaded"
        )
    return ClaimCheckTarget(bucket, threshold, _optional(environ, Variables.S3_ENDPOINT_URL))


@dataclass(frozen=True)
class TierEnvironment:
    """What the stack tells a container, parsed and checked (``from_environ``)."""

    broker: Broker
    queue_urls: dict[str, str]
    queue: str | None
    """The class this worker consumes; None in Beat and producers."""
    environment: str | None
    """The tier's environment name (the Redis backlog metrics' dimension); None outside the stack."""
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
    ecs_agent_uri: str | None = None
    """Set by ECS inside a task; None: not on ECS (no scale-in protection)."""
    protection_renew_seconds: float = float(Variables.PROTECTION_RENEW_SECONDS.default or 300)
    claim_check: ClaimCheckTarget | None = None
    """The claim check; None: off (a message over the queue's limit fails at ``apply_async``)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> TierEnvironment:
        queue_urls = _queue_urls(environ)
        queue = _optional(environ, Variables.QUEUE)
        if queue is not None and queue not in queue_urls:
            raise SettingsError(
                f"{Variables.QUEUE.name} = {queue!r} is not one of the declared classes {sorted(queue_urls)}"
            )
        broker = _broker(environ)
        return cls(
            broker=broker,
            queue_urls=queue_urls,
            queue=queue,
            environment=_optional(environ, Variables.ENVIRONMENT),
            region=_region(environ),
            redis_host=_get(environ, Variables.REDIS_HOST),
            redis_port=_int(environ, Variables.REDIS_PORT, minimum=1),
            redis_tls=_bool(environ, Variables.REDIS_TLS),
            redis_auth_token=_optional(environ, Variables.REDIS_AUTH_TOKEN),
            results_db=_int(environ, Variables.REDIS_DB_RESULTS),
            broker_db=_int(environ, Variables.REDIS_DB_BROKER),
            task_time_limit=_optional_int(environ, Variables.TASK_TIME_LIMIT, minimum=1),
            visibility_timeout=_optional_int(environ, Variables.VISIBILITY_TIMEOUT, minimum=1),
            result_expires=_int(environ, Variables.RESULT_EXPIRES, minimum=60),
            soft_shutdown_timeout=float(_int(environ, Variables.SOFT_SHUTDOWN_TIMEOUT)),
            sqs_endpoint_url=_optional(environ, Variables.SQS_ENDPOINT_URL),
            ecs_agent_uri=_optional(environ, Variables.ECS_AGENT_URI),
            protection_renew_seconds=_seconds(environ, Variables.PROTECTION_RENEW_SECONDS, minimum=1),
            claim_check=_claim_check(environ, broker),
        )

    def redis_url(self, db: int) -> str:
        scheme = "rediss" if self.redis_tls else "redis"
        auth = f":{quote(self.redis_auth_token, safe='')}@" if self.redis_auth_token else ""
        query = "?ssl_cert_reqs=required" if self.redis_tls else ""
        return f"{scheme}://{auth}{self.redis_host}:{self.redis_port}/{db}{query}"

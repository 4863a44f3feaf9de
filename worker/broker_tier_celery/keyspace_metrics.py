"""Beat publishes Redis's ``INFO keyspace`` to CloudWatch every minute, in either broker mode: each database's keys
and how many of them have no TTL (``keys - expires``). Keys without a TTL fill a ``noeviction`` Redis unseen until
it refuses every write; ``broker-tier-ops status`` shows these figures, since the operator cannot reach Redis from
outside the VPC (docs/decisions/redis-keyspace-metrics.md).

A failure costs one period and one WARNING line, never Beat itself.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import signals

import broker_tier_contract as contract
from broker_tier_celery.environment import TierEnvironment
from broker_tier_celery.periodic_metrics import RedisReadingPublisher

logger = logging.getLogger("broker_tier.keyspace_metrics")


def keyspace(info: dict[str, Any]) -> dict[int, tuple[int, int]]:
    """Database number -> (keys, keys without a TTL), from ``INFO keyspace`` as redis-py parses it
    (``{"db0": {"keys": 3, "expires": 1, "avg_ttl": ...}}``). A database without keys is not listed by Redis."""
    found = {}
    for name, values in info.items():
        if name.startswith("db") and name[2:].isdigit() and isinstance(values, dict):
            keys = int(values.get("keys", 0))
            found[int(name[2:])] = (keys, max(0, keys - int(values.get("expires", 0))))
    return found


class KeyspacePublisher(RedisReadingPublisher[dict[int, tuple[int, int]]]):
    """Publishes :func:`keyspace` of the result backend's Redis once a period, from a daemon thread."""

    what = "Redis keyspace metrics"

    def __init__(
        self,
        app: Any,
        *,
        environment: str,
        region: str | None,
        period_seconds: float = contract.REDIS_KEYSPACE_PERIOD_SECONDS,
    ) -> None:
        super().__init__(
            thread_name="broker-tier-keyspace-metrics", region=region, period_seconds=period_seconds, logger=logger
        )
        self.app, self.environment = app, environment

    def start(self) -> None:
        logger.info(
            "Redis keyspace metrics: publishing %s and %s per database to CloudWatch (%s, Environment=%s) every %g s",
            contract.REDIS_KEYSPACE_KEYS,
            contract.REDIS_KEYSPACE_KEYS_WITHOUT_TTL,
            contract.REDIS_KEYSPACE_NAMESPACE,
            self.environment,
            self.period_seconds,
        )
        super().start()

    def read(self) -> dict[int, tuple[int, int]]:
        """``INFO keyspace`` through the result backend's client (its time-outs; every database, whichever the
        client's own)."""
        return keyspace(self.app.backend.client.info("keyspace"))

    def publish(self, databases: dict[int, tuple[int, int]], at: datetime) -> None:
        """One ``PutMetricData`` call with both metrics of every database."""
        environment_dimension, database_dimension = contract.REDIS_KEYSPACE_DIMENSIONS
        data = [
            {
                "MetricName": metric,
                "Dimensions": [
                    {"Name": environment_dimension, "Value": self.environment},
                    {"Name": database_dimension, "Value": str(number)},
                ],
                "Timestamp": at,
                "Value": value,
                "Unit": "Count",
            }
            for number, (keys, without_ttl) in sorted(databases.items())
            for metric, value in (
                (contract.REDIS_KEYSPACE_KEYS, keys),
                (contract.REDIS_KEYSPACE_KEYS_WITHOUT_TTL, without_ttl),
            )
        ]
        if data:  # an empty Redis lists no database: nothing to say
            self.cloudwatch().put_metric_data(Namespace=contract.REDIS_KEYSPACE_NAMESPACE, MetricData=data)

    def summarize(self, databases: dict[int, tuple[int, int]]) -> str:
        return "; ".join(
            f"db{number} {keys} keys, {without} without TTL" for number, (keys, without) in sorted(databases.items())
        )


def publisher_for(app: Any, env: TierEnvironment) -> KeyspacePublisher | None:
    """A publisher for ``app``'s Beat, or None (saying why) without the environment name (outside the stack)."""
    if not env.environment:
        logger.info(
            "Redis keyspace metrics: off (%s is not set: the metrics' %s dimension; the stack sets it)",
            contract.ContainerEnvironment.ENVIRONMENT.name,
            contract.REDIS_KEYSPACE_DIMENSIONS[0],
        )
        return None
    return KeyspacePublisher(app, environment=env.environment, region=env.region)


def install(app: Any, env: TierEnvironment) -> None:
    """Connect ``beat_init`` for ``app``: when its Beat starts, so does a publisher (:func:`publisher_for`)."""

    def on_beat_init(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        publisher = publisher_for(app, env)
        if publisher is not None:
            publisher.start()

    signals.beat_init.connect(on_beat_init, weak=False, dispatch_uid=f"broker-tier-{id(app)}-keyspace-beat-init")

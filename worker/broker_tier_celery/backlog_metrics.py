"""Beat publishes the Redis broker's backlog per class to CloudWatch every minute: waiting and in-progress counts
(the metrics the redis-mode worker services scale on), the age of the oldest waiting message, and the messages
overdue in the class's unacked record (what the redis-mode alarms watch). Why Beat, and how it reads:
docs/decisions/redis-backlog-metrics.md and docs/decisions/redis-broker-watched.md.

Every publisher of the settings package stamps the publish time on each message (``PUBLISHED_AT_HEADER``), which
is how the oldest message's age is known. A failure costs one period and one WARNING line, never Beat itself.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import signals

import broker_tier_contract as contract
from broker_tier_celery.environment import TierEnvironment
from broker_tier_celery.periodic_metrics import RedisReadingPublisher
from broker_tier_celery.timeouts import REDIS_CONNECT_TIMEOUT_SECONDS, REDIS_SOCKET_TIMEOUT_SECONDS

logger = logging.getLogger("broker_tier.backlog_metrics")

COUNT_UNIT = "Count"
SECONDS_UNIT = "Seconds"


@dataclass(frozen=True)
class Backlog:
    """One class's messages in the broker at one moment."""

    waiting: int
    in_progress: int
    oldest_age_seconds: float = 0.0
    """Age of the oldest waiting message (0: none waits)."""
    overdue: int | None = None
    """Messages in progress for longer than the class's visibility time-out (None: its time-out is unknown)."""


def stamp_publish_time(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """``before_task_publish``: the publish time goes with the message (a retry's new message gets a new one)."""
    if headers is not None:
        headers[contract.PUBLISHED_AT_HEADER] = round(time.time(), 3)


def _published_at(raw: bytes | str) -> tuple[float | None, str]:
    """A queued message's stamped publish time (None: not stamped) and an identity to age it by otherwise."""
    try:
        payload = json.loads(raw)
        published = payload.get("headers", {}).get(contract.PUBLISHED_AT_HEADER)
        identity = str(payload.get("properties", {}).get("delivery_tag") or "")
    except (ValueError, AttributeError):
        published, identity = None, ""
    if isinstance(published, int | float) and not isinstance(published, bool):
        return float(published), identity
    return None, identity or str(hash(raw))


class BacklogPublisher(RedisReadingPublisher[dict[str, Backlog]]):
    """Publishes every class's :class:`Backlog` once a period, from a daemon thread, until stopped."""

    what = "Redis backlog metrics"

    def __init__(
        self,
        app: Any,
        *,
        environment: str,
        classes: Sequence[str],
        region: str | None,
        period_seconds: float = contract.REDIS_BACKLOG_PERIOD_SECONDS,
        visibility_timeouts: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(
            thread_name="broker-tier-backlog-metrics", region=region, period_seconds=period_seconds, logger=logger
        )
        self.app = app
        self.environment = environment
        self.classes = tuple(classes)
        self.visibility_timeouts = dict(visibility_timeouts or {})
        self.first_seen: dict[str, dict[str, float]] = {}
        """Per class, when Beat first saw each unstamped oldest message (a producer without the settings package)."""

    def start(self) -> None:
        logger.info(
            "Redis backlog metrics: publishing %s, %s, %s and %s of classes %s to CloudWatch (%s, Environment=%s) "
            "every %g s",
            contract.REDIS_BACKLOG_WAITING,
            contract.REDIS_BACKLOG_IN_PROGRESS,
            contract.REDIS_OLDEST_MESSAGE_AGE,
            contract.REDIS_MESSAGES_OVERDUE,
            ", ".join(self.classes),
            contract.REDIS_BACKLOG_NAMESPACE,
            self.environment,
            self.period_seconds,
        )
        super().start()

    def read(self) -> dict[str, Backlog]:
        """Every class's backlog, from the broker database (raises whatever the connection raises)."""
        timeouts = {
            "socket_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
            "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_SECONDS,
        }
        with self.app.connection_for_read(transport_options=timeouts) as connection:
            connection.ensure_connection(max_retries=0)  # once: the next period tries again
            channel = connection.default_channel
            steps = channel.priority_steps
            now = time.time()
            with channel.conn_or_acquire() as client, client.pipeline(transaction=True) as pipe:
                for name in self.classes:
                    for step in steps:
                        queue = channel._q_for_pri(name, step)
                        pipe.llen(queue)
                        pipe.lindex(queue, -1)  # kombu pushes on the left and pops on the right: the oldest
                    keys = contract.redis_unacked_keys(name)
                    pipe.hlen(keys["unacked_key"])
                    # kombu scores each message in progress with the time it was received (QoS.append)
                    pipe.zcount(keys["unacked_index_key"], 0, now - self.visibility_timeouts.get(name, now))
                replies = pipe.execute()
        per_class = 2 * len(steps) + 2
        return {
            name: self._backlog(name, replies[start : start + per_class], now)
            for name, start in zip(self.classes, range(0, len(replies), per_class), strict=True)
        }

    def _backlog(self, name: str, replies: list[Any], now: float) -> Backlog:
        lists, (in_progress, overdue) = replies[:-2], replies[-2:]
        seen, oldest = self.first_seen.setdefault(name, {}), now
        current: set[str] = set()
        for raw in lists[1::2]:
            if raw is None:
                continue
            published, identity = _published_at(raw)
            if published is None:
                published = seen.setdefault(identity, now)
                current.add(identity)
            oldest = min(oldest, published)
        for identity in set(seen) - current:  # consumed since: forget it
            del seen[identity]
        return Backlog(
            waiting=sum(lists[0::2]),
            in_progress=in_progress,
            oldest_age_seconds=round(max(0.0, now - oldest), 3),
            overdue=overdue if name in self.visibility_timeouts else None,
        )

    def publish(self, backlog: dict[str, Backlog], at: datetime) -> None:
        """One ``PutMetricData`` call with every metric of every class."""
        environment_dimension, class_dimension = contract.REDIS_BACKLOG_DIMENSIONS
        data = []
        for name, counts in backlog.items():
            dimensions = [
                {"Name": environment_dimension, "Value": self.environment},
                {"Name": class_dimension, "Value": name},
            ]
            values = [
                (contract.REDIS_BACKLOG_WAITING, counts.waiting, COUNT_UNIT),
                (contract.REDIS_BACKLOG_IN_PROGRESS, counts.in_progress, COUNT_UNIT),
                (contract.REDIS_OLDEST_MESSAGE_AGE, counts.oldest_age_seconds, SECONDS_UNIT),
            ]
            if counts.overdue is not None:
                values.append((contract.REDIS_MESSAGES_OVERDUE, counts.overdue, COUNT_UNIT))
            data += [
                {"MetricName": metric, "Dimensions": dimensions, "Timestamp": at, "Value": value, "Unit": unit}
                for metric, value, unit in values
            ]
        self.cloudwatch().put_metric_data(Namespace=contract.REDIS_BACKLOG_NAMESPACE, MetricData=data)

    def summarize(self, backlog: dict[str, Backlog]) -> str:
        return "; ".join(
            f"{name} {counts.waiting} waiting (oldest {counts.oldest_age_seconds:g} s), {counts.in_progress} in "
            f"progress" + ("" if counts.overdue is None else f" ({counts.overdue} overdue)")
            for name, counts in backlog.items()
        )


def publisher_for(app: Any, env: TierEnvironment) -> BacklogPublisher | None:
    """A publisher for ``app``'s Beat, or None (saying why) outside redis mode or without the environment name."""
    if env.broker != "redis":
        logger.info("Redis backlog metrics: off (the broker is %s, whose queues publish their own metrics)", env.broker)
        return None
    if not env.environment:
        logger.info(
            "Redis backlog metrics: off (%s is not set: the metrics' %s dimension; the stack sets it)",
            contract.ContainerEnvironment.ENVIRONMENT.name,
            contract.REDIS_BACKLOG_DIMENSIONS[0],
        )
        return None
    if not env.visibility_timeouts:
        logger.info(
            "Redis backlog metrics: %s not published (%s is not set: each class's visibility time-out; the stack sets "
            "it)",
            contract.REDIS_MESSAGES_OVERDUE,
            contract.ContainerEnvironment.VISIBILITY_TIMEOUTS.name,
        )
    return BacklogPublisher(
        app,
        environment=env.environment,
        classes=list(env.queue_urls),
        region=env.region,
        visibility_timeouts=env.visibility_timeouts,
    )


def install(app: Any, env: TierEnvironment) -> None:
    """Stamp the publish time on every message this process publishes, and connect ``beat_init`` for ``app``: when
    its Beat starts, so does a publisher (:func:`publisher_for`)."""
    # once per process, whichever app publishes: the header costs a few bytes and reads the clock
    signals.before_task_publish.connect(stamp_publish_time, weak=False, dispatch_uid="broker-tier-published-at")

    def on_beat_init(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        publisher = publisher_for(app, env)
        if publisher is not None:
            publisher.start()

    signals.beat_init.connect(on_beat_init, weak=False, dispatch_uid=f"broker-tier-{id(app)}-beat-init")

"""Beat publishes the Redis broker's backlog per class (waiting, in progress) to CloudWatch every minute, the
metrics the redis-mode worker services scale on (why Beat, and how it reads: docs/decisions/redis-backlog-metrics.md).

A failure costs one period and one WARNING line, never Beat itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery import signals

import broker_tier_contract as contract
from broker_tier_celery.environment import TierEnvironment
from broker_tier_celery.timeouts import REDIS_CONNECT_TIMEOUT_SECONDS, REDIS_SOCKET_TIMEOUT_SECONDS

logger = logging.getLogger("broker_tier.backlog_metrics")

CLOUDWATCH_CONNECT_TIMEOUT_SECONDS = 5
CLOUDWATCH_READ_TIMEOUT_SECONDS = 10
"""With botocore's standard retries (3 attempts of at most 15 s, at most 3 s of back-off) a failing
publication gives up within the minute's period."""
COUNT_UNIT = "Count"


@dataclass(frozen=True)
class Backlog:
    """One class's messages in the broker at one moment."""

    waiting: int
    in_progress: int


class BacklogPublisher:
    """Publishes every class's :class:`Backlog` once a period, from a daemon thread, until stopped."""

    def __init__(
        self,
        app: Any,
        *,
        environment: str,
        classes: Sequence[str],
        region: str | None,
        period_seconds: float = contract.REDIS_BACKLOG_PERIOD_SECONDS,
    ) -> None:
        self.app = app
        self.environment = environment
        self.classes = tuple(classes)
        self.region = region
        self.period_seconds = period_seconds
        self.failing = True
        """Until the first publication, and after a failure: the next success is logged (INFO)."""
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="broker-tier-backlog-metrics", daemon=True)
        self._cloudwatch: Any = None

    def start(self) -> None:
        logger.info(
            "Redis backlog metrics: publishing %s and %s of classes %s to CloudWatch (%s, Environment=%s) every %g s",
            contract.REDIS_BACKLOG_WAITING,
            contract.REDIS_BACKLOG_IN_PROGRESS,
            ", ".join(self.classes),
            contract.REDIS_BACKLOG_NAMESPACE,
            self.environment,
            self.period_seconds,
        )
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()

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
            with channel.conn_or_acquire() as client, client.pipeline(transaction=True) as pipe:
                for name in self.classes:
                    for step in steps:
                        pipe.llen(channel._q_for_pri(name, step))
                    pipe.hlen(contract.redis_unacked_keys(name)["unacked_key"])
                counts = pipe.execute()
        per_class = len(steps) + 1
        return {
            name: Backlog(waiting=sum(counts[start : start + len(steps)]), in_progress=counts[start + len(steps)])
            for name, start in zip(self.classes, range(0, len(counts), per_class), strict=True)
        }

    def cloudwatch(self) -> Any:
        if self._cloudwatch is None:
            import boto3  # here: only Beat in redis mode needs it
            from botocore.config import Config

            self._cloudwatch = boto3.client(
                "cloudwatch",
                region_name=self.region,
                config=Config(
                    connect_timeout=CLOUDWATCH_CONNECT_TIMEOUT_SECONDS,
                    read_timeout=CLOUDWATCH_READ_TIMEOUT_SECONDS,
                    retries={"mode": "standard"},
                ),
            )
        return self._cloudwatch

    def publish(self, backlog: dict[str, Backlog], at: datetime) -> None:
        """One ``PutMetricData`` call with both metrics of every class."""
        environment_dimension, class_dimension = contract.REDIS_BACKLOG_DIMENSIONS
        data = []
        for name, counts in backlog.items():
            dimensions = [
                {"Name": environment_dimension, "Value": self.environment},
                {"Name": class_dimension, "Value": name},
            ]
            for metric, value in (
                (contract.REDIS_BACKLOG_WAITING, counts.waiting),
                (contract.REDIS_BACKLOG_IN_PROGRESS, counts.in_progress),
            ):
                data.append(
                    {
                        "MetricName": metric,
                        "Dimensions": dimensions,
                        "Timestamp": at,
                        "Value": value,
                        "Unit": COUNT_UNIT,
                    }
                )
        self.cloudwatch().put_metric_data(Namespace=contract.REDIS_BACKLOG_NAMESPACE, MetricData=data)

    def publish_once(self) -> bool:
        """Read and publish; on any failure one WARNING line and False (never raises: Beat must go on)."""
        at = datetime.now(UTC)
        try:
            backlog = self.read()
        except Exception as error:  # noqa: BLE001 - any failure costs one period, never the thread
            return self._failed("could not be read from Redis", error)
        try:
            self.publish(backlog, at)
        except Exception as error:  # noqa: BLE001 - as above
            return self._failed("could not be published to CloudWatch", error)
        summary = "; ".join(
            f"{name} {counts.waiting} waiting, {counts.in_progress} in progress" for name, counts in backlog.items()
        )
        logger.log(logging.INFO if self.failing else logging.DEBUG, "Redis backlog metrics published: %s", summary)
        self.failing = False
        return True

    def _failed(self, what: str, error: Exception) -> bool:
        self.failing = True
        detail = " ".join(str(error).split())  # one line, whatever the error's text
        logger.warning(
            "Redis backlog metrics %s: %s: %s (Beat goes on; tried again in %g s)",
            what,
            type(error).__name__,
            detail,
            self.period_seconds,
        )
        return False

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self.stopping.is_set():
            self.publish_once()
            # at a fixed rate; a period overrun (time-outs) is not made up for with a burst
            next_at = max(next_at + self.period_seconds, time.monotonic())
            self.stopping.wait(next_at - time.monotonic())


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
    return BacklogPublisher(app, environment=env.environment, classes=list(env.queue_urls), region=env.region)


def install(app: Any, env: TierEnvironment) -> None:
    """Connect ``beat_init`` for ``app``: when its Beat starts, so does a publisher (:func:`publisher_for`)."""

    def on_beat_init(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        publisher = publisher_for(app, env)
        if publisher is not None:
            publisher.start()

    signals.beat_init.connect(on_beat_init, weak=False, dispatch_uid=f"broker-tier-{id(app)}-beat-init")

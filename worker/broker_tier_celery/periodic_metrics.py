"""What Beat's metric publishers share: a daemon thread that publishes once a period at a fixed rate, a CloudWatch
client with time-outs that fit in the period, and one WARNING line per failed period (never an exception: Beat must
go on). Boto3 is imported on first use: only Beat needs it."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

Reading = TypeVar("Reading")

CLOUDWATCH_CONNECT_TIMEOUT_SECONDS = 5
CLOUDWATCH_READ_TIMEOUT_SECONDS = 10
"""With botocore's standard retries (3 attempts of at most 15 s, at most 3 s of back-off) a failing
publication gives up within the minute's period."""


def cloudwatch_client(region: str | None) -> Any:
    import boto3  # here: only Beat needs it
    from botocore.config import Config

    # a session of its own: boto3's default session is not safe to build clients from in two threads at once
    return boto3.session.Session().client(
        "cloudwatch",
        region_name=region,
        config=Config(
            connect_timeout=CLOUDWATCH_CONNECT_TIMEOUT_SECONDS,
            read_timeout=CLOUDWATCH_READ_TIMEOUT_SECONDS,
            retries={"mode": "standard"},
        ),
    )


class PeriodicPublisher:
    """Calls :meth:`publish_once` every ``period_seconds`` from a daemon thread named ``thread_name``, until
    stopped. A subclass says what it publishes (``publish_once``, which logs its own failures with :meth:`failed`)."""

    what = "Metrics"
    """How the log lines name what is published (they begin with it)."""

    def __init__(self, *, thread_name: str, region: str | None, period_seconds: float, logger: logging.Logger) -> None:
        self.region = region
        self.period_seconds = period_seconds
        self.logger = logger
        self.failing = True
        """Until the first publication, and after a failure: the next success is logged (INFO)."""
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._cloudwatch: Any = None

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()

    def cloudwatch(self) -> Any:
        if self._cloudwatch is None:
            self._cloudwatch = cloudwatch_client(self.region)
        return self._cloudwatch

    def publish_once(self) -> bool:
        raise NotImplementedError

    def succeeded(self, summary: str) -> bool:
        """One INFO line after a failure (or the first time), DEBUG otherwise."""
        self.logger.log(logging.INFO if self.failing else logging.DEBUG, "%s published: %s", self.what, summary)
        self.failing = False
        return True

    def failed(self, what: str, error: Exception) -> bool:
        self.failing = True
        detail = " ".join(str(error).split())  # one line, whatever the error's text
        self.logger.warning(
            "%s %s: %s: %s (Beat goes on; tried again in %g s)",
            self.what,
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


class RedisReadingPublisher(PeriodicPublisher, Generic[Reading]):
    """A publisher that reads something from Redis and publishes it: a subclass says how to :meth:`read`, to
    :meth:`publish` and to :meth:`summarize` a reading; a failure of either step costs one period and one line."""

    def read(self) -> Reading:
        raise NotImplementedError

    def publish(self, reading: Reading, at: datetime) -> None:
        raise NotImplementedError

    def summarize(self, reading: Reading) -> str:
        raise NotImplementedError

    def publish_once(self) -> bool:
        """Read and publish; on any failure one WARNING line and False (never raises: Beat must go on)."""
        at = datetime.now(UTC)
        try:
            reading = self.read()
        except Exception as error:  # noqa: BLE001 - any failure costs one period, never the thread
            return self.failed("could not be read from Redis", error)
        try:
            self.publish(reading, at)
        except Exception as error:  # noqa: BLE001 - as above
            return self.failed("could not be published to CloudWatch", error)
        return self.succeeded(self.summarize(reading))

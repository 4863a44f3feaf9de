"""Broker connections whose reconnection back-off stays short, so a worker reconnects within a second or so of
the endpoint's name moving to a new primary (kombu's back-off grows to 30 s between attempts)."""

from __future__ import annotations

from typing import Any

from kombu.connection import Connection

from broker_tier_celery.fallbacks import warn_once
from broker_tier_celery.timeouts import RECONNECT_INTERVAL_MAX_SECONDS


class SteadyReconnectConnection(Connection):
    """kombu's connection, with every reconnection pause capped (the consumer's, Beat's and the publish retry's)."""

    def _ensure_connection(
        self,
        errback: Any = None,
        max_retries: int | None = None,
        interval_start: float = 2,
        interval_step: float = 2,
        interval_max: float = 30,
        callback: Any = None,
        reraise_as_library_errors: bool = True,
        timeout: float | None = None,
    ) -> Any:
        cap = RECONNECT_INTERVAL_MAX_SECONDS
        return super()._ensure_connection(  # type: ignore[no-untyped-call]  # kombu: unannotated
            errback,
            max_retries,
            min(interval_start, cap),
            interval_step,
            min(interval_max, cap),
            callback,
            reraise_as_library_errors,
            timeout,
        )


def install(app: Any) -> None:
    """Make ``app`` open its broker connections with :class:`SteadyReconnectConnection` (``AMQP.Connection``)."""
    amqp = app.amqp
    if amqp.Connection is not Connection and not issubclass(amqp.Connection, SteadyReconnectConnection):
        warn_once(
            "amqp-connection",
            "the app's broker connection class is %r, not kombu's: left as it is (reconnection back-off not capped)",
            amqp.Connection,
        )
        return
    amqp.Connection = SteadyReconnectConnection

"""Broker connections whose reconnection pauses stay at most RECONNECT_INTERVAL_MAX_SECONDS."""

from __future__ import annotations

import socket

import pytest
from celery import Celery
from kombu import Connection
from kombu.exceptions import OperationalError
from kombu.utils import functional
from settings_environ import environ

from broker_tier_celery import configure, fallbacks, timeouts
from broker_tier_celery.reconnect import SteadyReconnectConnection


@pytest.fixture
def refused_url():
    with socket.socket() as probe:  # a loopback port nobody listens on: every attempt is refused at once
        probe.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{probe.getsockname()[1]}/1"


def pauses(connection_class: type[Connection], url: str, monkeypatch) -> list[float]:
    """The pauses between reconnection attempts, as Celery's consumer asks for them (errback, max_retries)."""
    slept: list[float] = []
    monkeypatch.setattr(functional, "sleep", slept.append)
    with connection_class(url) as connection, pytest.raises(OperationalError):
        connection.ensure_connection(lambda exc, interval: None, 4)
    return _group(slept)


def _group(slept: list[float]) -> list[float]:
    """kombu sleeps a pause in 1 s steps plus the remainder: the pauses, from those steps."""
    pauses, current = [], 0.0
    for step in slept:
        current += step
        if step < 1.0:  # the remainder ends a pause
            pauses.append(current)
            current = 0.0
    return pauses


def test_kombus_own_pauses_grow(refused_url, monkeypatch):
    assert pauses(Connection, refused_url, monkeypatch) == [2.0, 4.0, 6.0, 8.0]


def test_the_pauses_stay_at_the_cap(refused_url, monkeypatch):
    cap = timeouts.RECONNECT_INTERVAL_MAX_SECONDS
    assert pauses(SteadyReconnectConnection, refused_url, monkeypatch) == [cap] * 4


def test_configure_gives_the_app_connections_with_the_capped_pauses():
    app = Celery("reconnect")
    configure(app, environ())
    with app.connection_for_read() as read, app.connection_for_write() as write:
        assert isinstance(read, SteadyReconnectConnection) and isinstance(write, SteadyReconnectConnection)


def test_an_app_with_its_own_connection_class_keeps_it_with_one_warning(caplog):
    class Custom(Connection):
        pass

    fallbacks._warned.discard("amqp-connection")
    apps = [Celery("custom-a"), Celery("custom-b")]
    for app in apps:
        app.amqp.Connection = Custom
        configure(app, environ())
        assert app.amqp.Connection is Custom
    assert [r.getMessage() for r in caplog.records if r.name == "broker_tier.fallback"] == [
        f"the app's broker connection class is {Custom!r}, not kombu's: left as it is (reconnection back-off not "
        "capped)"
    ]
    fallbacks._warned.discard("amqp-connection")

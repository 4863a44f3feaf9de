"""A Redis broker that stops answering without closing the connection (a blackholed primary), on loopback.

Without socket time-outs (kombu's default) a publish to it waits for the kernel's TCP retransmission time-out
(about 15 min), a new connection for its SYN retries (about 127 s). With the settings package's time-outs it fails
within them, and the caller's retry reaches the new primary once the name has moved (test_silent_primary.py).
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import pytest
from kombu import Connection
from settings_environ import environ

from broker_tier_celery import settings_from_environment


@contextmanager
def blackholed(kind: str):
    """The port of a loopback endpoint that never answers. ``silent``: connections are established (the
    kernel completes the handshake) and nothing ever comes back, as on a connection already open when the
    packets start to vanish. ``syn-dropped``: the accept queue is full, so the kernel drops every new SYN, as
    for a new connection to a host whose packets vanish."""
    listener = socket.socket()
    held = [listener]
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0 if kind == "syn-dropped" else 16)  # never accepted: the kernel's queue is all there is
        if kind == "syn-dropped":
            held.append(socket.create_connection(listener.getsockname()))  # fills the queue (of one)
        yield listener.getsockname()[1]
    finally:
        for sock in held:
            sock.close()


@pytest.mark.parametrize("kind,time_out", [("silent", "socket_timeout"), ("syn-dropped", "socket_connect_timeout")])
def test_a_publish_to_a_blackholed_primary_fails_within_the_time_out_instead_of_hanging(kind, time_out):
    with blackholed(kind) as port:
        settings = settings_from_environment(
            environ(
                BROKER_TIER_BROKER="redis",
                BROKER_TIER_REDIS_HOST="127.0.0.1",
                BROKER_TIER_REDIS_PORT=str(port),
                BROKER_TIER_REDIS_TLS="false",
            )
        )
        # The settings' own time-out (test_settings.py). One attempt: redis-py's single retry on a time-out
        # (``retry_on_timeout``, which the settings set) makes a second one, as the publish retry and kombu's
        # connection retry make more; the time-out bounds each.
        limit = settings["broker_transport_options"][time_out]
        assert limit <= 2
        options = {**settings["broker_transport_options"], "retry_on_timeout": False}
        outcome: list[BaseException | None] = []

        def publish() -> None:
            try:
                with Connection(
                    settings["broker_url"],
                    transport=settings["broker_transport"],
                    transport_options=options,
                    connect_timeout=0.1,
                ) as connection:
                    connection.Producer().publish({"n": 1}, routing_key="default", retry=False)
                outcome.append(None)
            except Exception as error:  # noqa: BLE001 - the test says what it was
                outcome.append(error)

        started = time.monotonic()
        caller = threading.Thread(target=publish, daemon=True)  # without a time-out it would never return
        caller.start()
        caller.join(limit + 3)
        took = time.monotonic() - started
    assert outcome, f"the publish still waits after {took:.1f} s: no {time_out}"
    assert "Timeout" in str(outcome[0]), repr(outcome[0])
    assert limit - 0.2 <= took < limit + 2

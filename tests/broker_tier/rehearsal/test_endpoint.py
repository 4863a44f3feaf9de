"""The rehearsal's endpoint behaves as a DNS name in a failover: new connections follow it, open ones stay."""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from contextlib import contextmanager

import pytest

from broker_tier.rehearsal.endpoint import Endpoint


class _Named(socketserver.StreamRequestHandler):
    def handle(self):  # answers every line with the server's name: shows which node a connection reached
        for _ in self.rfile:
            self.wfile.write(self.server.name + b"\n")


@contextmanager
def node(name: bytes):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Named)
    server.daemon_threads = True
    server.name = name
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server.server_address
    finally:
        server.shutdown()
        server.server_close()


def ask(connection: socket.socket) -> bytes:
    connection.sendall(b"?\n")
    return connection.makefile("rb").readline().strip()


@pytest.fixture
def nodes():
    with node(b"a") as a, node(b"b") as b:
        endpoint = Endpoint(a)
        endpoint.start()
        yield endpoint, a, b
        endpoint.close()


def connect(endpoint: Endpoint) -> socket.socket:
    return socket.create_connection(("127.0.0.1", endpoint.port), timeout=5)


def test_moving_the_name_changes_new_connections_only(nodes):
    endpoint, a, b = nodes
    before = connect(endpoint)
    assert ask(before) == b"a"
    endpoint.point_at(b)
    after = connect(endpoint)
    assert ask(after) == b"b"
    assert ask(before) == b"a"  # an open connection stays with the node it reached, as with DNS
    assert endpoint.opened == {a: 1, b: 1}


def test_a_failed_node_has_its_connections_reset_until_the_name_moves(nodes):
    endpoint, a, b = nodes
    open_one = connect(endpoint)
    assert ask(open_one) == b"a"
    assert endpoint.fail(a) == 1
    with pytest.raises(ConnectionResetError):
        ask(open_one)
    with pytest.raises((ConnectionResetError, ConnectionAbortedError)):
        ask(connect(endpoint))  # the name still points at the dead node
    endpoint.point_at(b)
    assert ask(connect(endpoint)) == b"b"
    assert endpoint.reset_count == 2


def test_a_revived_node_is_reachable_again(nodes):
    endpoint, a, _ = nodes
    endpoint.fail(a)
    endpoint.revive(a)
    assert ask(connect(endpoint)) == b"a"


def hangs(connection: socket.socket, seconds: float = 0.5) -> bool:
    """True when a question gets no answer and no reset within ``seconds``: the peer is silent."""
    connection.settimeout(seconds)
    try:
        connection.sendall(b"?\n")
        connection.recv(64)
    except TimeoutError:
        return True
    return False  # an answer, or the connection closed (a reset raises)


def test_a_silent_node_answers_nothing_closes_nothing_and_new_connections_hang_until_the_name_moves(nodes):
    endpoint, a, b = nodes
    open_one = connect(endpoint)
    assert ask(open_one) == b"a"
    assert endpoint.silence(a) == 1
    assert hangs(open_one)  # no answer, no reset: a client waits for its own time-out
    opened_later = connect(endpoint)  # the name still points at the silent node
    assert hangs(opened_later)
    endpoint.point_at(b)
    assert ask(connect(endpoint)) == b"b"
    assert hangs(open_one) and hangs(opened_later)  # the silent node never answers again
    assert (endpoint.silenced_count, endpoint.reset_count) == (2, 0)


def test_closing_with_connections_open_logs_no_error(caplog):
    with node(b"a") as a:
        endpoint = Endpoint(a)
        endpoint.start()
        open_connection = connect(endpoint)
        assert ask(open_connection) == b"a"
        endpoint.close()
        open_connection.close()
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []

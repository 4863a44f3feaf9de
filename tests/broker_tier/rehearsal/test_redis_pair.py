"""The loopback redis-servers of the rehearsal and the tests: a port taken before the server binds it."""

from __future__ import annotations

import socket

import pytest

from broker_tier.rehearsal.redis_pair import RedisNode
from broker_tier.rehearsal.util import RehearsalError, stop_process

PASSWORD = "redis-pair-test-token-0123456789"


@pytest.fixture
def taken_port():
    """A port another process listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_first_start_whose_port_was_taken_moves_to_another_port(tmp_path, taken_port):
    node = RedisNode(name="node-a", password=PASSWORD, workdir=tmp_path, tls=None, port=taken_port)
    try:
        node.start()
        assert node.port != taken_port and node.starts == 1 and node.answers()
        assert "Address already in use" in (tmp_path / "node-a.log").read_text()
    finally:
        stop_process(node.process)


def test_a_restart_keeps_its_port_and_says_why_it_could_not_start(tmp_path):
    node = RedisNode(name="node-a", password=PASSWORD, workdir=tmp_path, tls=None)
    node.start()
    port = node.port
    stop_process(node.process)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the stopped server's closed connections
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(RehearsalError, match=r"redis-server node-a exited with 1; see .*node-a\.log"):
            node.start()
    assert node.port == port and node.starts == 1

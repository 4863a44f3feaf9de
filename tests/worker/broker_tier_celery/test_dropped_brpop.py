"""The keeper of dropped BRPOPs' sockets, against a node played over a socket pair: what it reads, what it sends
back, and what it hands on when the node refuses (a real node: test_failover.py)."""

from __future__ import annotations

import socket

import pytest

from broker_tier_celery import dropped_brpop
from broker_tier_celery.dropped_brpop import DroppedBrpops, RespError, RespReader, pack_command, popped

MESSAGE = b'{"body": "...", "properties": {"delivery_info": {"exchange": "work", "routing_key": "work"}}}'
BRPOP_REPLY = b"*2\r\n$4\r\nwork\r\n$%d\r\n%s\r\n" % (len(MESSAGE), MESSAGE)


def reply_of(*chunks: bytes):
    node, ours = socket.socketpair()
    with node, ours:
        for chunk in chunks:
            node.sendall(chunk)
        node.shutdown(socket.SHUT_WR)
        ours.settimeout(1)
        return RespReader(ours).reply()


@pytest.mark.parametrize(
    "wire, expected",
    [
        (BRPOP_REPLY, [b"work", MESSAGE]),  # RESP2 and RESP3 alike
        (b"*-1\r\n", None),  # BRPOP's time-out, RESP2
        (b"_\r\n", None),  # BRPOP's time-out, RESP3
        (b">3\r\n+message\r\n$2\r\nch\r\n$1\r\nx\r\n:5\r\n", 5),  # a push message first: skipped
        (b"|1\r\n+ttl\r\n:3\r\n:7\r\n", 7),  # an attribute describes the reply that follows
        (b"%1\r\n+k\r\n#t\r\n", [b"k", True]),
        (b"=8\r\ntxt:abcd\r\n", b"txt:abcd"),
    ],
)
def test_the_reader_reads_resp2_and_resp3_replies(wire, expected):
    assert reply_of(wire) == expected


def test_an_error_reply_is_returned_as_an_error_and_a_cut_reply_raises():
    error = reply_of(b"-UNBLOCKED force unblock from blocking operation\r\n")
    assert isinstance(error, RespError) and "UNBLOCKED" in str(error)
    with pytest.raises(ConnectionError):
        reply_of(BRPOP_REPLY[:-5])  # the node went away mid-reply
    with pytest.raises(ConnectionError):
        reply_of(b"*2\r\n$4\r\nwo", b"rk\r\n")  # split across reads, then cut
    assert reply_of(b"*2\r\n$4\r\nwo", b"rk\r\n$1\r\nm\r\n") == [b"work", b"m"]


def test_a_message_reply_is_told_from_a_time_out_or_an_error():
    assert popped([b"work", MESSAGE]) == (b"work", MESSAGE)
    assert popped(None) is None and popped(RespError("x")) is None and popped([b"work"]) is None


class Node:
    """The node's end of a dropped BRPOP's socket."""

    def __init__(self) -> None:
        self.sock, self.ours = socket.socketpair()
        self.sock.settimeout(5)

    def command(self) -> bytes:
        data = b""
        while not data.endswith(MESSAGE + b"\r\n"):
            chunk = self.sock.recv(65536)
            assert chunk, f"closed after {data!r}"
            data += chunk
        return data

    def closed(self) -> bool:
        return self.sock.recv(1) == b""


@pytest.fixture
def keeper():
    kept = DroppedBrpops()
    yield kept
    assert kept.wait_until_settled(5)


def test_a_message_for_a_dropped_brpop_is_pushed_back_where_it_was(keeper, caplog):
    node, unplaced = Node(), []
    keeper.keep(node.ours, lambda key, body: unplaced.append((key, body)))
    node.sock.sendall(BRPOP_REPLY)  # the node thaws and serves the BRPOP
    assert node.command() == pack_command(b"RPUSH", b"work", MESSAGE)  # BRPOP pops from the right
    node.sock.sendall(b":1\r\n")
    assert node.closed() and unplaced == []
    assert "put back at the head of 'work'" in caplog.text


def test_a_message_its_node_refuses_back_is_handed_on(keeper, caplog):
    node, unplaced = Node(), []
    keeper.keep(node.ours, lambda key, body: unplaced.append((key, body)))
    node.sock.sendall(BRPOP_REPLY)
    node.command()
    node.sock.sendall(b"-READONLY You can't write against a read only replica.\r\n")  # it became a replica
    assert node.closed() and unplaced == [(b"work", MESSAGE)]
    assert "refused it back (READONLY" in caplog.text


def test_a_time_out_reply_or_a_closed_node_ends_the_wait_with_nothing_sent(keeper):
    quiet, gone = Node(), Node()
    keeper.keep(quiet.ours, lambda key, body: pytest.fail("nothing was popped"))
    keeper.keep(gone.ours, lambda key, body: pytest.fail("nothing was popped"))
    assert keeper.pending() == 2
    quiet.sock.sendall(b"_\r\n")
    gone.sock.close()  # reset: a crash
    assert quiet.closed()
    assert keeper.wait_until_settled(5)


def test_a_node_silent_past_the_bound_is_given_up(keeper, monkeypatch, caplog):
    monkeypatch.setattr(dropped_brpop, "DROPPED_BRPOP_KEPT_SECONDS", 0.3)
    node = Node()
    keeper.keep(node.ours, lambda key, body: pytest.fail("nothing was popped"))
    assert keeper.wait_until_settled(5) and node.closed()
    assert "its node stayed silent; its socket is closed" in caplog.text

"""The socket of a BRPOP dropped before its reply came is kept, and a message in the reply is put back
(docs/decisions/silent-node-confirmed-by-identity.md).

Redis hands a pushed message to a blocked BRPOP at once and writes it to that client's socket. A node whose event
loop stalls (a fork for a snapshot, a long command, a starved host) reads a client's close only after it has served
what was pushed before it: closing the connection of an unanswered BRPOP, for whatever reason (the silent-node
check, a consumer restart after a failed acknowledgement, kombu's own BRPOP check, a shutdown), can lose a message
the node then pops for nobody. So such a connection hands its socket here instead of closing it: a thread waits for
the reply, pushes a message back where BRPOP took it from (RPUSH, on the same node), and closes the socket.
"""

from __future__ import annotations

import atexit
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from broker_tier_celery.timeouts import DROPPED_BRPOP_KEPT_SECONDS, REDIS_SOCKET_TIMEOUT_SECONDS

logger = logging.getLogger("broker_tier.failover")

Unplaced = Callable[[bytes, bytes], None]
"""Called with (list key, message) when a popped message could not be pushed back on its node."""

POLL_SECONDS = 0.2
"""How often the keeper's thread looks at its sockets' deadlines (and at sockets added meanwhile)."""


class RespError(Exception):
    """An error reply (``-ERR ...``)."""


@dataclass(frozen=True)
class _Push:
    """A RESP3 push message (out of band: not the reply)."""

    items: list[Any]


class RespReader:
    """Reads RESP2 and RESP3 replies from a blocking socket (its time-out bounds each read)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()

    def reply(self) -> Any:
        """The next reply (push messages skipped); an error reply is returned as a :class:`RespError`."""
        while isinstance(value := self._value(), _Push):
            pass
        return value

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("the connection was closed before the whole reply came")
        self._buffer += chunk

    def _line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    def _exact(self, size: int) -> bytes:
        while len(self._buffer) < size + 2:
            self._fill()
        data = bytes(self._buffer[:size])
        del self._buffer[: size + 2]
        return data

    def _value(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b"(", b","):  # simple string, big number, double
            return rest
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"#":
            return rest == b"t"
        if kind == b"_":
            return None
        if kind in (b"$", b"=", b"!"):  # bulk string, verbatim string, bulk error
            size = int(rest)
            data = None if size < 0 else self._exact(size)
            return RespError(data.decode(errors="replace")) if kind == b"!" and data is not None else data
        if kind in (b"*", b"~", b">", b"%", b"|"):  # array, set, push, map, attribute
            count = int(rest) * (2 if kind in (b"%", b"|") else 1)
            items = None if count < 0 else [self._value() for _ in range(count)]
            if kind == b">":
                return _Push(items or [])
            return self._value() if kind == b"|" else items  # an attribute precedes the reply it describes
        raise ValueError(f"not a RESP reply: {line[:16]!r}")


def pack_command(*args: bytes) -> bytes:
    """A command in RESP."""
    return b"".join([b"*%d\r\n" % len(args), *(b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in args)])


def popped(reply: Any) -> tuple[bytes, bytes] | None:
    """(list key, message) if ``reply`` is a BRPOP's message, None if it is its time-out or an error."""
    if isinstance(reply, list) and len(reply) == 2 and all(isinstance(item, bytes) for item in reply):
        return reply[0], reply[1]
    return None


@dataclass(eq=False)
class _Kept:
    sock: socket.socket
    until: float
    on_unplaced: Unplaced


class DroppedBrpops:
    """The kept sockets, and the thread that settles them (started when one is kept, ended when none is left)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: list[_Kept] = []
        self._thread: threading.Thread | None = None
        self._empty = threading.Condition(self._lock)

    def keep(self, sock: socket.socket, on_unplaced: Unplaced) -> None:
        """Wait for ``sock``'s BRPOP reply, put a message in it back, then close ``sock``."""
        with self._lock:
            self._kept.append(_Kept(sock, time.monotonic() + DROPPED_BRPOP_KEPT_SECONDS, on_unplaced))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="broker-tier-dropped-brpop", daemon=True)
                self._thread.start()

    def pending(self) -> int:
        with self._lock:
            return len(self._kept)

    def wait_until_settled(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for every kept socket to be settled; True if none is left."""
        with self._empty:
            return self._empty.wait_for(lambda: not self._kept, timeout)

    def forget(self) -> None:
        """In a forked child: the sockets and the thread are the parent's."""
        self._lock = threading.Lock()
        self._empty = threading.Condition(self._lock)
        self._kept, self._thread = [], None

    def _run(self) -> None:
        while True:
            with self._lock:
                kept = list(self._kept)
                if not kept:
                    self._thread = None
                    self._empty.notify_all()
                    return
            now = time.monotonic()
            for item in [item for item in kept if item.until <= now]:
                logger.warning(
                    "no reply for a dropped BRPOP in %g s: its node stayed silent; its socket is closed",
                    DROPPED_BRPOP_KEPT_SECONDS,
                )
                self._forget(item)
            waiting = [item for item in kept if item.until > now]
            for item in _readable(waiting):
                _settle(item)
                self._forget(item)

    def _forget(self, item: _Kept) -> None:
        _close(item.sock)
        with self._lock:
            self._kept.remove(item)


def _readable(kept: list[_Kept]) -> list[_Kept]:
    """Those of ``kept`` with a reply (or an error) to read, waiting up to :data:`POLL_SECONDS`."""
    if not kept:
        time.sleep(POLL_SECONDS)
        return []
    buffered = [item for item in kept if getattr(item.sock, "pending", lambda: 0)()]  # TLS: already decrypted
    if buffered:
        return buffered
    try:
        ready = select.select([item.sock for item in kept], [], [], POLL_SECONDS)[0]
    except (OSError, ValueError):  # a socket closed under us: settle each on its own
        return kept
    return [item for item in kept if item.sock in ready]


def _settle(item: _Kept) -> None:
    """Read the BRPOP's reply; push a message in it back at the head of its list on the same node."""
    reader = RespReader(item.sock)
    try:
        item.sock.settimeout(REDIS_SOCKET_TIMEOUT_SECONDS)
        message = popped(reader.reply())
    except (OSError, ValueError):  # closed or reset (a crash), or cut short: the node sent nothing to put back
        return
    if message is None:  # BRPOP's own time-out, or an error (e.g. UNBLOCKED: the node became a replica)
        return
    key, body = message
    try:
        item.sock.sendall(pack_command(b"RPUSH", key, body))  # BRPOP pops from the right: back where it was
        answer = reader.reply()
    except (OSError, ValueError) as error:
        answer = RespError(str(error) or type(error).__name__)
    if isinstance(answer, int):
        logger.warning(
            "a message came for a BRPOP dropped while its node was not answering: put back at the head of %r",
            key.decode(errors="replace"),
        )
        return
    logger.warning(
        "a message came for a BRPOP dropped while its node was not answering, and that node refused it back "
        "(%s): kept, to be put back through the endpoint's name",
        answer,
    )
    item.on_unplaced(key, body)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


dropped = DroppedBrpops()
"""This process's kept sockets."""


def _settle_before_exit() -> None:
    """A kept socket closed at exit could still lose what its node sends: wait a little for the replies."""
    if dropped.pending() and not dropped.wait_until_settled(REDIS_SOCKET_TIMEOUT_SECONDS):
        logger.warning(
            "exiting with %d dropped BRPOP(s) still unanswered: a message their node sends from now on is lost",
            dropped.pending(),
        )


atexit.register(_settle_before_exit)
os.register_at_fork(after_in_child=dropped.forget)

"""A loopback TCP forwarder standing in for the primary endpoint's DNS name, which can go silent.

Each accepted connection is piped to the node the name points at when it was opened; :meth:`point_at`
moves the name for later connections only. :meth:`blackhole` models a node whose network vanished: bytes
to and from it are dropped in both directions, nothing is closed, and a new connection while the name
still points at it is accepted and never answered. (Freezing the node's process with SIGSTOP is the
other model of silence; this forwarder then just forwards to a process that never replies.) :meth:`delay_replies`
models a node that is only slow: what it sends reaches its clients some seconds late, in order, and nothing is lost.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from dataclasses import dataclass, field

Address = tuple[str, int]
CHUNK = 65536


@dataclass(eq=False)
class _Link:
    target: Address
    client: socket.socket
    upstream: socket.socket | None
    sockets: list[socket.socket] = field(default_factory=list)


class SilentForwarder:
    """``with SilentForwarder(target) as name:`` clients connect to ``name.port``."""

    def __init__(self, target: Address) -> None:
        self.target = target
        self._silent: set[Address] = set()
        self._delays: dict[Address, float] = {}
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, name="silent-forwarder", daemon=True)

    def __enter__(self) -> SilentForwarder:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def point_at(self, target: Address) -> None:
        """The name moves: connections opened from now on reach ``target``; open ones stay where they are."""
        with self._lock:
            self.target = target

    def blackhole(self, target: Address) -> None:
        """Every byte to or from ``target`` vanishes from now on, and new connections to it hang."""
        with self._lock:
            self._silent.add(target)

    def heal(self, target: Address) -> None:
        """``target`` is reachable again for new connections (those opened while it was silent stay silent)."""
        with self._lock:
            self._silent.discard(target)

    def delay_replies(self, target: Address, seconds: float) -> None:
        """What ``target`` sends from now on reaches its clients ``seconds`` late (0: at once again); requests
        reach it at once, so it acts on them as a node whose replies are slow to come back."""
        with self._lock:
            self._delays[target] = seconds

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            for sock in link.sockets:
                _close(sock)

    def _is_silent(self, target: Address) -> bool:
        with self._lock:
            return target in self._silent

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                target = self.target
            upstream = None
            if target not in self._silent:
                try:
                    upstream = socket.create_connection(target, timeout=2)
                    upstream.settimeout(None)
                except OSError:
                    _close(client)  # as a refused connection looks: closed at once
                    continue
            link = _Link(target, client, upstream, [client] + ([upstream] if upstream else []))
            with self._lock:
                self._links.append(link)
            threading.Thread(target=self._pump, args=(link, client, upstream), daemon=True).start()
            if upstream is not None:
                replies: queue.SimpleQueue[tuple[float, bytes] | None] = queue.SimpleQueue()
                threading.Thread(target=self._pump, args=(link, upstream, None, replies), daemon=True).start()
                threading.Thread(target=self._deliver, args=(link, replies), daemon=True).start()

    def _pump(
        self,
        link: _Link,
        source: socket.socket,
        sink: socket.socket | None,
        replies: queue.SimpleQueue[tuple[float, bytes] | None] | None = None,
    ) -> None:
        """Client to node: straight to ``sink``; node to client: into ``replies``, with the time each is due."""
        try:
            while data := source.recv(CHUNK):
                if self._is_silent(link.target):
                    continue
                if replies is not None:
                    with self._lock:
                        delay = self._delays.get(link.target, 0.0)
                    replies.put((time.monotonic() + delay, data))
                elif sink is not None:
                    sink.sendall(data)
        except OSError:
            pass
        if replies is not None:
            replies.put(None)  # the node closed: the client's side closes once what was held is delivered
        else:
            self._close_link(link)

    def _deliver(self, link: _Link, replies: queue.SimpleQueue[tuple[float, bytes] | None]) -> None:
        """Send the node's replies to the client, each when it is due (in order)."""
        while (item := replies.get()) is not None:
            due, data = item
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                link.client.sendall(data)
            except OSError:
                break
        self._close_link(link)

    def _close_link(self, link: _Link) -> None:
        if not self._is_silent(link.target):  # one side closed: close the other, as a proxy does
            for sock in link.sockets:
                _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()

"""The primary endpoint on loopback: a TCP forwarder that behaves as a DNS name does in a failover.

A failover moves the name's record to the promoted node: new connections go there, open ones stay with the node
they reached (which is why clients of a demoted primary get ``READONLY``). A node can also fail loudly (``fail``:
its connections reset, new ones refused) or go silent (``silence``: nothing forwarded either way, nothing closed).
Bytes pass through untouched, so TLS runs end to end. See docs/decisions/rehearsal-silent-primary.md.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field

Address = tuple[str, int]
CONNECT_TIMEOUT_SECONDS = 2
CHUNK = 65536


@dataclass(eq=False)
class _Link:
    target: Address
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None
    pumps: list[asyncio.Future] = field(default_factory=list)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0) rather than FIN: the peer sees "connection reset by peer"."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class Endpoint:
    """A loopback listener standing in for the primary endpoint's DNS name.

    Attributes:
        port: where clients connect (set by :meth:`start`).
        target: the node the name points at now.
        opened: connections accepted, by the node they went to.
        reset_count: connections reset by :meth:`fail`.
        silenced_count: connections left hanging by :meth:`silence` (open ones, and new ones while the name
            pointed at the silent node).
    """

    def __init__(self, target: Address, *, host: str = "127.0.0.1") -> None:
        self.host, self.target = host, target
        self.port = 0
        self.opened: Counter[Address] = Counter()
        self.reset_count = 0
        self.silenced_count = 0
        self._dead: set[Address] = set()
        self._silent: set[Address] = set()
        self._hanging: list[_Link] = []
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rehearsal-endpoint", daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def start(self) -> None:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._serve, self.host, 0))
        self.port = self._server.sockets[0].getsockname()[1]

    def point_at(self, target: Address) -> None:
        """The DNS record moves: connections opened from now on reach ``target``; open ones stay put."""
        self._call(self._set_target(target))

    def fail(self, target: Address) -> int:
        """``target`` lost power: reset every connection to it, and reset new ones while the name
        still points at it. Returns the number of connections reset."""
        return self._call(self._fail(target))

    def silence(self, target: Address) -> int:
        """``target`` goes silent, for good: open connections to it stop forwarding both ways and stay open, and
        new ones opened while the name points at it are accepted and never answered. Returns the connections
        left hanging now."""
        return self._call(self._silence(target))

    def revive(self, target: Address) -> None:
        """``target`` is reachable again (a rebooted node): new connections to it are forwarded."""
        self._call(self._revive(target))

    def close(self) -> None:
        if self._server is not None:
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    # -- the event loop's side -------------------------------------------------------------
    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _set_target(self, target: Address) -> None:
        self.target = target

    async def _fail(self, target: Address) -> int:
        self._dead.add(target)
        doomed = [link for link in self._links if link.target == target]
        for link in doomed:
            self._links.discard(link)
            _reset(link.client)
            if link.upstream is not None:
                _reset(link.upstream)
        self.reset_count += len(doomed)
        return len(doomed)

    async def _silence(self, target: Address) -> int:
        self._silent.add(target)
        doomed = [link for link in self._links if link.target == target]
        for link in doomed:
            self._hang(link)
        return len(doomed)

    def _hang(self, link: _Link) -> None:
        """Stop forwarding ``link`` without closing its client side (the node's side may close: nobody hears)."""
        self._links.discard(link)
        self._hanging.append(link)
        self.silenced_count += 1
        for pump in link.pumps:
            pump.cancel()

    async def _revive(self, target: Address) -> None:
        self._dead.discard(target)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in [*self._links, *self._hanging]:
            _reset(link.client)
            if link.upstream is not None:
                _reset(link.upstream)
        self._links.clear()
        self._hanging.clear()
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._forward(reader, writer)
        except asyncio.CancelledError:  # close(): asyncio would log the cancelled connection handler as an error
            pass

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = self.target
        if target in self._silent:
            self._hang(_Link(target, writer, None))
            return
        if target in self._dead:
            self.reset_count += 1
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*target), CONNECT_TIMEOUT_SECONDS)
        except (TimeoutError, OSError):
            _reset(writer)  # as a refused connection looks to the client: reset at once
            return
        self.opened[target] += 1
        link = _Link(target, writer, up_writer)
        self._links.add(link)
        link.pumps = [
            asyncio.ensure_future(self._pump(reader, up_writer)),
            asyncio.ensure_future(self._pump(up_reader, writer)),
        ]
        try:
            await asyncio.wait(link.pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in link.pumps:
                pump.cancel()
            if link in self._links:  # one side closed: close the other (not reset by fail(), not silenced)
                self._links.discard(link)
                for side in (writer, up_writer):
                    side.close()

    @staticmethod
    async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(CHUNK):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass

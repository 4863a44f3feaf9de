"""Which node the endpoint's name leads to now, asked on a fresh connection from a thread, so that a worker leaves a
node that went silent only once the name has moved away from it (docs/decisions/silent-node-confirmed-by-identity.md).

A node is known by its ``run_id`` (``INFO server``: a new one each time the server process starts), or, where a
service leaves it out, by the address its socket reached.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from redis.utils import str_if_bytes


@dataclass(frozen=True)
class Node:
    """The node a connection reached."""

    run_id: str | None
    role: str
    """``master``, ``slave``, ... (``ROLE``)."""
    address: str | None
    """The peer of the connection's socket (``ip:port``)."""

    def is_the_same_as(self, other: Node) -> bool:
        if self.run_id and other.run_id:
            return self.run_id == other.run_id
        return self.address is not None and self.address == other.address


def node_from_replies(role_reply: Any, info_reply: Any, sock: Any) -> Node:
    """The :class:`Node` of a connection, from its ``ROLE`` and ``INFO server`` replies and its socket."""
    run_id = None
    for line in str(str_if_bytes(info_reply) or "").splitlines():
        if line.startswith("run_id:"):
            run_id = line.partition(":")[2].strip() or None
    try:
        host, port = sock.getpeername()[:2]
        address: str | None = f"{host}:{port}"
    except (OSError, AttributeError, ValueError):
        address = None
    return Node(run_id=run_id, role=str(str_if_bytes(role_reply[0])), address=address)


class Verdict(Enum):
    MOVED = "the name leads to another node, or that node is no longer the primary"
    SAME_PRIMARY = "the name still leads to that node, and it answers as the primary"
    NO_ANSWER = "nothing answered through the name"


class Probe:
    """One connection through the name, made from a daemon thread: ``connect`` returns the node that answered
    there (it raises if nothing did)."""

    def __init__(self, connect: Callable[[], Node]) -> None:
        self.started_at = time.monotonic()
        self.node: Node | None = None
        self.failure: str | None = None
        self.done = threading.Event()
        self._connect = connect
        threading.Thread(target=self._run, name="broker-tier-name-probe", daemon=True).start()

    def _run(self) -> None:
        try:
            self.node = self._connect()
        except Exception as error:  # noqa: BLE001 - whatever it is, nothing answered: say what, wait on
            self.failure = f"{type(error).__name__}: {error}"
        finally:
            self.done.set()

    def verdict(self, waited_on: Node) -> Verdict:
        """What the answer says about ``waited_on``, the node an unanswered BRPOP waits on (probe done)."""
        if self.node is None:
            return Verdict.NO_ANSWER
        if self.node.is_the_same_as(waited_on) and self.node.role == "master":
            return Verdict.SAME_PRIMARY
        return Verdict.MOVED

"""Every command a node runs for a while (Redis ``MONITOR``), to count what a split window loses and to whom."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

import redis

from broker_tier.rehearsal.redis_pair import RedisNode

_LINE = re.compile(r"^(?P<at>\d+\.\d+) \[(?P<db>\d+) [^\]]*\] (?P<command>.*)$")
_ARGUMENT = re.compile(r'"((?:[^"\\]|\\.)*)"')
TASK_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class LoggedCommand:
    at: float
    """The node's Unix time when it ran the command."""
    db: int
    arguments: tuple[str, ...]
    """As MONITOR quotes them (escapes kept): the name first, then the key."""

    @property
    def name(self) -> str:
        return self.arguments[0].upper() if self.arguments else ""

    @property
    def key(self) -> str:
        return self.arguments[1] if len(self.arguments) > 1 else ""

    def task_ids(self) -> set[str]:
        """The task ids the command's arguments name (a result key, a message's headers)."""
        return set(TASK_ID.findall(" ".join(self.arguments[1:])))


def parse(line: str) -> LoggedCommand | None:
    match = _LINE.match(line)
    if match is None:
        return None
    return LoggedCommand(float(match["at"]), int(match["db"]), tuple(_ARGUMENT.findall(match["command"])))


class CommandLog:
    """``with CommandLog(node) as log:`` records what ``node`` runs until the block ends."""

    POLL_SECONDS = 0.05
    DRAIN_SECONDS = 1.0

    def __init__(self, node: RedisNode) -> None:
        self.node = node
        self.commands: list[LoggedCommand] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: redis.Redis | None = None

    def __enter__(self) -> CommandLog:
        self._client = self.node.client()
        connection = self._client.connection_pool.get_connection()
        connection.send_command("MONITOR")
        connection.read_response()  # OK: from here on every command the node runs is sent to us
        self._thread = threading.Thread(target=self._read, args=(connection,), daemon=True, name="command-log")
        self._thread.start()
        return self

    def _read(self, connection) -> None:
        """Until stopped, then what the node had sent by then (for at most ``DRAIN_SECONDS``)."""
        drain_until: float | None = None
        try:
            while drain_until is None or time.monotonic() < drain_until:
                if connection.can_read(timeout=self.POLL_SECONDS):
                    command = parse(connection.read_response().decode(errors="replace"))
                    if command is not None:
                        self.commands.append(command)
                elif drain_until is not None:
                    return
                if drain_until is None and self._stop.is_set():
                    drain_until = time.monotonic() + self.DRAIN_SECONDS
        except (redis.ConnectionError, OSError):
            pass  # the node went away: what it ran until then is recorded
        finally:
            connection.disconnect()

    def __exit__(self, *_) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def between(self, start: float, end: float) -> list[LoggedCommand]:
        return [command for command in self.commands if start <= command.at <= end]

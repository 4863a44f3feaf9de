"""The heartbeat a worker or Beat records and its container health check reads: a file under
``BROKER_TIER_HEARTBEAT_DIR`` whose modification time is the last sign of progress (for a worker a broker round
trip, or every process busy; for Beat a tick). Touching a file costs microseconds and needs no server."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

from broker_tier_contract import ContainerEnvironment as Variables

logger = logging.getLogger("broker_tier.heartbeat")

PROCESSES = ("worker", "beat")
MIN_INTERVAL_SECONDS = 1.0
"""At most one touch a second: a busy worker's round trips come thousands of times faster."""


def heartbeat_path(process: str, environ: Mapping[str, str] = os.environ) -> Path:
    """Where ``process`` (worker or beat) records its heartbeat."""
    if process not in PROCESSES:
        raise ValueError(f"process {process!r} is not one of {', '.join(PROCESSES)}")
    variable = Variables.HEARTBEAT_DIR
    return Path(environ.get(variable.name) or variable.default or ".") / process


class Heartbeat:
    """Touches one file, at most once every ``MIN_INTERVAL_SECONDS``; never raises (a full disk must not stop work)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last = float("-inf")
        self._failing = False

    def beat(self) -> None:
        now = time.monotonic()
        if now - self._last < MIN_INTERVAL_SECONDS:
            return
        self._last = now
        try:
            os.utime(self.path)
        except FileNotFoundError:
            self._create()
        except OSError as error:
            self._failed(error)

    def _create(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
        except OSError as error:
            self._failed(error)

    def _failed(self, error: OSError) -> None:
        if not self._failing:  # one warning: the health check will say the rest
            logger.warning("cannot record the heartbeat in %s: %s", self.path, error)
        self._failing = True


_current: Heartbeat | None = None


def start(process: str, environ: Mapping[str, str] = os.environ) -> Heartbeat:
    """Record this process's heartbeats from now on (a worker's main process or Beat; others record none)."""
    global _current
    path = heartbeat_path(process, environ)
    if _current is None or _current.path != path:
        _current = Heartbeat(path)
    _current.beat()
    return _current


def beat() -> None:
    """A sign of progress: recorded if :func:`start` ran in this process, else nothing."""
    if _current is not None:
        _current.beat()


def _forget_in_child() -> None:
    """A forked pool process records nothing: only the main process's progress counts."""
    global _current
    _current = None


os.register_at_fork(after_in_child=_forget_in_child)

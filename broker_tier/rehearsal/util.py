"""Small helpers the rehearsal's pieces share: free loopback ports, waiting, its error type."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

from broker_tier.evidence.errors import OpsError

T = TypeVar("T")


class RehearsalError(OpsError):
    """The rehearsal cannot run here (a missing binary, a template it cannot mirror); nothing was measured."""


def stop_process(process: subprocess.Popen | None, *, grace_seconds: float = 10) -> None:
    """SIGTERM a process started here, SIGKILL it if it is still there after ``grace_seconds``."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace_seconds)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], T], timeout: float, what: str, *, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something true; RehearsalError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise RehearsalError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


OVERRIDES_VARIABLE = "BROKER_TIER_REHEARSAL_OVERRIDES"
"""JSON object of Celery settings an experiment puts on top of the settings package (workers and
producer); set only by ``broker-tier-ops rehearse --override``."""

"""ECS task scale-in protection while a worker has work in progress, through the ECS agent's endpoint, so that
scale-in and deployments never stop a busy task (docs/decisions/scale-in-protection-while-busy.md)."""

from __future__ import annotations

import http.client
import json
import logging
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery.worker import state as worker_state

from broker_tier_contract import ContainerEnvironment as Variables

logger = logging.getLogger("broker_tier.protection")

PROTECTION_PATH = "/task-protection/v1/state"
MIN_EXPIRY_MINUTES, MAX_EXPIRY_MINUTES = 1, 2880
DEFAULT_EXPIRY_MINUTES = 120
"""The agent's own default, used when the class has no hard time limit."""
CHECK_SECONDS = 5.0
"""Longest wait between two looks at the work in progress (a received task wakes the keeper at once)."""
REQUEST_TIMEOUT_SECONDS = 3.0


def expiry_minutes(*, time_limit_seconds: int | None, renew_seconds: float) -> int:
    """Minutes of protection that outlast any task started before the next renewal."""
    if not time_limit_seconds:
        return DEFAULT_EXPIRY_MINUTES
    minutes = math.ceil((time_limit_seconds + renew_seconds + CHECK_SECONDS) / 60)
    return max(MIN_EXPIRY_MINUTES, min(MAX_EXPIRY_MINUTES, minutes))


@dataclass
class AgentEndpoint:
    """The ECS agent's task-protection endpoint."""

    agent_uri: str

    @property
    def url(self) -> str:
        return self.agent_uri.rstrip("/") + PROTECTION_PATH

    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """PUT ``body``; the agent's JSON answer, or an exception for a transport error or a failure."""
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), method="PUT", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:  # nosec: agent URI
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:  # the agent's refusal is in the body
            raise RuntimeError(f"HTTP {error.code}: {error.read()[:500].decode(errors='replace')}") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("protection"), dict):  # {"failure"|"error": ...}
            raise RuntimeError(f"the agent did not confirm: {answer}")
        protection: dict[str, Any] = answer["protection"]
        return protection


class ProtectionKeeper:
    """Keeps the ECS task protected exactly while ``busy()`` says work is in progress."""

    def __init__(
        self, *, endpoint: AgentEndpoint, busy: Callable[[], bool], time_limit_seconds: int | None, renew_seconds: float
    ) -> None:
        self.endpoint = endpoint
        self.busy = busy
        self.renew_seconds = renew_seconds
        self.minutes = expiry_minutes(time_limit_seconds=time_limit_seconds, renew_seconds=renew_seconds)
        self.protected = False
        self.renew_at = 0.0
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="broker-tier-protection", daemon=True)

    def start(self) -> None:
        logger.info(
            "scale-in protection: on while tasks are in progress (%d min, renewed every %.0f s) via %s",
            self.minutes,
            self.renew_seconds,
            self.endpoint.url,
        )
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def check(self) -> None:
        """One look at the work in progress: protect, renew or clear as needed (never raises)."""
        busy, now = self.busy(), time.monotonic()
        if busy and (not self.protected or now >= self.renew_at):
            if self._put(
                {"ProtectionEnabled": True, "ExpiresInMinutes": self.minutes}, "renewed" if self.protected else "set"
            ):
                self.protected, self.renew_at = True, now + self.renew_seconds
        elif not busy and self.protected:
            if self._put({"ProtectionEnabled": False}, "cleared (idle)"):
                self.protected = False

    def _put(self, body: dict[str, Any], what: str) -> bool:
        try:
            answer = self.endpoint.put(body)
        except (OSError, ValueError, RuntimeError, http.client.HTTPException) as error:  # URLError is an OSError
            logger.warning(
                "scale-in protection could not be %s: %s (the worker goes on; tried again at the next check)",
                what.split(" ")[0],
                error,
            )
            return False
        logger.info("scale-in protection %s: %s", what, json.dumps(answer, sort_keys=True))
        return True

    def _run(self) -> None:
        while not self.stopping.is_set():
            self.wake.clear()  # before the check: a task received during it wakes the next wait at once
            try:
                self.check()
            except Exception:  # noqa: BLE001 - a dead thread would leave the task protected, or never again
                logger.exception(
                    "scale-in protection: unexpected error (the worker goes on; checked again in %.0f s)",
                    min(CHECK_SECONDS, self.renew_seconds),
                )
            self.wake.wait(min(CHECK_SECONDS, self.renew_seconds))


def reserved_work_in_progress() -> bool:
    """Any received task not yet finished (the main process's set: with prefork the task signals run in children)."""
    return len(worker_state.reserved_requests) > 0


def keeper_for(
    agent_uri: str | None, *, time_limit_seconds: int | None, renew_seconds: float
) -> ProtectionKeeper | None:
    """A keeper for this ECS task, or None outside ECS (no agent URI)."""
    if not agent_uri:
        logger.info("scale-in protection: off (%s is not set: not running on ECS)", Variables.ECS_AGENT_URI.name)
        return None
    return ProtectionKeeper(
        endpoint=AgentEndpoint(agent_uri),
        busy=reserved_work_in_progress,
        time_limit_seconds=time_limit_seconds,
        renew_seconds=renew_seconds,
    )

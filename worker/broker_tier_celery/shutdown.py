"""SIGTERM in a worker: stop taking messages at once, let finish what its time limit ends before the stop
deadline, hand the rest back at once (the steps and why: docs/workers.md#sigterm-hands-unfinishable-work-back-at-once).

Runs in front of Celery's own soft shutdown (``REMAP_SIGTERM=SIGQUIT``), in the main process, prefork only.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from celery.worker import state as worker_state
from kombu.asynchronous import get_event_loop

from broker_tier_celery.fallbacks import warn_once

logger = logging.getLogger("broker_tier.shutdown")

POLL_SECONDS = 0.2
"""How often, after SIGTERM, the event loop looks whether receives and the tasks left to finish are done."""


@dataclass(frozen=True)
class Decision:
    """What SIGTERM does with one received task."""

    request: Any
    hand_back: bool
    reason: str


def decide(request: Any, *, now: float, deadline: float, default_time_limit: float | None) -> Decision:
    """Hand ``request`` back unless its hard time limit ends it by ``deadline`` (both wall-clock seconds)."""
    if not request.time_start:
        return Decision(request, True, "received but not started")
    limit = (
        (request.time_limits[0] if request.time_limits else None)
        or getattr(request.task, "time_limit", None)
        or default_time_limit
    )
    if not limit:
        return Decision(request, True, "no time limit bounds it")
    ends_by = request.time_start + limit
    if ends_by <= deadline:
        return Decision(
            request,
            False,
            f"its time limit ends it {ends_by - now:.0f} s from now, within the {deadline - now:.0f} s left",
        )
    return Decision(
        request,
        True,
        f"started {now - request.time_start:.0f} s ago with a {limit:.0f} s time "
        f"limit: may run {ends_by - now:.0f} s more, past the stop deadline in "
        f"{deadline - now:.0f} s",
    )


def receives_in_flight() -> int:
    """SQS long polls this process has in flight: kombu's shared curl client's busy handles and queued requests
    (0 for the Redis broker, which has no such client)."""
    client = getattr(get_event_loop(), "_current_http_client", None)
    if client is None:
        return 0
    try:
        return len(client._curls) - len(client._free_list) + len(client._pending)
    except (AttributeError, TypeError) as error:
        warn_once(
            "receives-in-flight",
            "SIGTERM hand-back cannot count kombu's SQS receives in flight (%r): messages are handed back without "
            "waiting for this worker's own long poll, which may receive one again",
            error,
        )
        return 0


def succeeded(request: Any) -> bool | None:
    """Whether the task of ``request`` stored a SUCCESS result: a pool child stores it before it tells
    the main process, so a task can be done although the main process still counts it as running.
    None when the backend could not be read (the message is handed back: a duplicate run beats a lost
    task).

    One read, not ``backend.get_task_meta``, whose retries (``result_backend_always_retry``) would spend the
    stop timeout on the event loop."""
    try:
        return bool(request.task.backend._get_task_meta_for(request.id).get("status") == "SUCCESS")
    except Exception as error:  # noqa: BLE001 - any failure to read means "unknown", never a crash at shutdown
        logger.warning("could not read the result of %s[%s]: %r", request.name, request.id, error)
        return None


class SigtermHandBack:
    """The SIGTERM handler of one worker's main process (installed by :func:`install` at ``worker_ready``).

    A message is handed back once this worker has no receive in flight any more: SQS gives a message
    that becomes visible to any waiting long poll, and if that were this worker's own last poll (its
    consumer already cancelled) kombu would release it again, one more receive counted towards the
    dead-letter queue. The wait is at most one long poll (``wait_time_seconds``).
    """

    def __init__(self, consumer: Any, hub: Any) -> None:
        self.consumer = consumer
        self.hub = hub
        self.app = consumer.app
        self.previous = signal.getsignal(signal.SIGTERM)
        self.started_at = 0.0
        """When SIGTERM arrived (wall clock); 0 until then."""
        self.deadline = 0.0
        self.kept: list[Any] = []
        self.to_hand_back: list[tuple[Any, str]] = []
        self.sorted_out = False
        self.results_unreadable = False
        self.timer: Any = None

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.on_sigterm)

    def on_sigterm(self, signum: int, frame: Any) -> None:
        if self.started_at:  # our own (or a second) SIGTERM: Celery's own shutdown now
            self._forward(signum, frame)
            return
        self.started_at = time.time()
        self.deadline = self.started_at + float(self.app.conf.worker_soft_shutdown_timeout or 0)
        try:
            self._stop_consuming()
            # The rest happens on the event loop, which keeps acknowledging the tasks that finish. The
            # tasks are sorted out at its first tick, not here: a child may have finished a task whose
            # result the loop has not read yet, and this signal may have interrupted the loop before it did.
            self.timer = self.hub.call_repeatedly(POLL_SECONDS, self._tick)
        except Exception:  # never let a hand-back problem keep the worker from shutting down
            logger.exception("SIGTERM hand-back failed; Celery's shutdown goes on")
            self._forward(signum, frame)

    def _stop_consuming(self) -> None:
        if not hasattr(self.consumer, "task_consumer"):
            warn_once(
                "task-consumer",
                "SIGTERM hand-back: Celery's consumer has no task_consumer to cancel: messages may still be taken "
                "until Celery's own shutdown",
            )
        task_consumer = getattr(self.consumer, "task_consumer", None)
        if task_consumer is not None:
            try:
                task_consumer.cancel()
            except Exception as error:  # a broker that does not answer: Celery cancels again later
                logger.warning("could not cancel the task consumer at SIGTERM: %r", error)
        logger.warning("SIGTERM: no new messages are taken")

    def _sort_out_requests(self) -> None:
        for request in list(worker_state.reserved_requests):
            decision = decide(
                request, now=self.started_at, deadline=self.deadline, default_time_limit=self.app.conf.task_time_limit
            )
            if decision.hand_back:
                # Stop it now, so it never runs here and elsewhere at once; no retry is recorded
                # (acks_late: the message itself comes back).
                request.cancel(self.consumer.pool, emit_retry=False)
                self.to_hand_back.append((request, decision.reason))
                logger.warning("SIGTERM: task %s[%s] stopped: %s", request.name, request.id, decision.reason)
            else:
                logger.warning("SIGTERM: task %s[%s] finishes here: %s", request.name, request.id, decision.reason)
                self.kept.append(request)

    def _tick(self) -> None:
        try:
            self._step()
        except Exception:  # never let a hand-back problem keep the worker from shutting down
            logger.exception("SIGTERM hand-back failed; Celery's shutdown goes on")
            self._shut_down()

    def _step(self) -> None:
        if not self.sorted_out:
            self.sorted_out = True
            self._sort_out_requests()
            return
        overdue = time.time() >= self.deadline
        receiving = receives_in_flight()
        if self.to_hand_back and (not receiving or overdue):
            for request, reason in self.to_hand_back:
                self._hand_back(request, reason)
            self.to_hand_back.clear()
        running = any(request in worker_state.active_requests for request in self.kept)
        if overdue or not (self.to_hand_back or running or receiving):
            self._shut_down()

    def _shut_down(self) -> None:
        """Celery's own shutdown, through its SIGTERM handler (``on_sigterm`` forwards a second SIGTERM)."""
        self.timer.cancel()
        # The wait is over: Celery's cold shutdown must not wait its soft-shutdown timeout again.
        self.app.conf.worker_soft_shutdown_timeout = 0
        os.kill(os.getpid(), signal.SIGTERM)

    def _hand_back(self, request: Any, reason: str) -> None:
        if request.acknowledged:
            return
        # the backend failed once: it is not asked again for each task while the stop timeout runs out
        done = None if self.results_unreadable else succeeded(request)
        self.results_unreadable = done is None
        if done:  # it finished after all, just before it was stopped: done, not handed back
            request.acknowledge()
            logger.warning(
                "SIGTERM: task %s[%s] had stored its result before it was stopped: acknowledged",
                request.name,
                request.id,
            )
            return
        request.reject(requeue=True)
        logger.warning(
            "SIGTERM: task %s[%s] handed back at once (%.1f s after SIGTERM): %s",
            request.name,
            request.id,
            time.time() - self.started_at,
            reason,
        )

    def _forward(self, signum: int, frame: Any) -> None:
        if callable(self.previous):
            self.previous(signum, frame)
        elif self.previous == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)


def install(consumer: Any) -> SigtermHandBack | None:
    """Put the hand-back in front of Celery's SIGTERM handler; None (nothing changed) without prefork."""
    pool = getattr(consumer, "pool", None)
    if pool is None or "prefork" not in type(pool).__module__:
        logger.info(
            "SIGTERM hand-back needs the prefork pool (this worker: %s); Celery's shutdown unchanged",
            type(pool).__name__,
        )
        return None
    handler = SigtermHandBack(consumer, get_event_loop())
    handler.install()
    return handler

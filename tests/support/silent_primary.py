"""A primary that goes silent, or is only slow, under a running tier, on loopback: real redis-servers (a primary
and its replica) behind a forwarder that plays the endpoint's name, a real ``celery worker`` on the settings package,
and a producer publishing canary tasks at a steady rate. Silent: the primary is frozen (SIGSTOP) or blackholed, the
replica promoted, and the name moved ``dns_delay`` later. Slow: for a few seconds the primary's replies come late,
or it is frozen and thawed, and the name never moves. What comes out is the longest time with no task run, and what
was lost (tasks and results)."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopback import celery_workers
from silent_forwarder import SilentForwarder

from broker_tier.rehearsal.redis_pair import RedisNode, RedisPair
from broker_tier_contract import CANARY_TASK, HOLD_TASK, parse_canary_ledger_line

SILENCES = ("frozen", "blackholed")
"""SIGSTOP on the primary's process (its kernel still completes handshakes), or every byte to it dropped."""


@dataclass
class Producer:
    """Publishes one canary task every ``1 / rate`` seconds from a thread, until stopped; never bursts to catch up."""

    app: Any
    queue: str
    rate: float
    published: dict[str, float] = field(default_factory=dict)
    """token -> when its publish returned (wall clock)."""
    task_ids: dict[str, str] = field(default_factory=dict)
    """token -> its task's id (where its result is stored)."""
    errors: list[str] = field(default_factory=list)
    longest_publish: float = 0.0
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, name="silent-primary-producer", daemon=True)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self.stopping.is_set():
            token, started = uuid.uuid4().hex, time.monotonic()
            try:
                self.task_ids[token] = self.app.send_task(CANARY_TASK, args=[token], queue=self.queue).id
                self.published[token] = time.time()
            except Exception as error:  # noqa: BLE001 - every failure is a finding
                self.errors.append(f"{type(error).__name__}: {error}")
            self.longest_publish = max(self.longest_publish, time.monotonic() - started)
            next_at = max(next_at + 1 / self.rate, time.monotonic())
            self.stopping.wait(next_at - time.monotonic())


@dataclass
class Outcome:
    published: int
    publish_errors: list[str]
    lost: list[str]
    results_lost: list[str]
    """Tokens whose task ran and whose result is not in the result backend."""
    worker_exits: list[int]
    ran_twice: list[str]
    """Tokens whose task ran more than once (a publish repeated after its time-out, a redelivery)."""
    longest_stall: float
    stall_from: float
    """Seconds after the fault at which the longest stall began (negative: before it)."""
    longest_publish: float
    fault_at: float
    """When the fault began (wall clock)."""

    lost_published: list[float] = field(default_factory=list)
    """When each lost task's publish returned, in seconds after the fault."""

    def summary(self) -> str:
        lost = f"{len(self.lost)} lost"
        if self.lost_published:
            lost += " (published " + ", ".join(f"{at:+.2f} s" for at in sorted(self.lost_published)) + ")"
        fault_at = time.strftime("%H:%M:%S", time.localtime(self.fault_at)) + f".{int(self.fault_at % 1 * 1000):03d}"
        return (
            f"longest time with no task run {self.longest_stall:.2f} s (from {self.stall_from:+.2f} s after the "
            f"fault); {self.published} published, {lost}, {len(self.results_lost)} results lost, "
            f"{len(self.publish_errors)} publish errors, worker exits {self.worker_exits}, {len(self.ran_twice)} ran "
            f"twice; longest publish {self.longest_publish:.2f} s; fault at {fault_at}"
        )


def all_runs(log_paths: list[Path]) -> dict[str, list[float]]:
    """token -> every time a worker ran its canary task (wall clock, from the ledger lines)."""
    runs: dict[str, list[float]] = {}
    for path in log_paths:
        for line in path.read_text().splitlines():
            record = parse_canary_ledger_line(line)
            if record and record.get("phase") != "start":  # a held task's run counts once, as it ends
                runs.setdefault(record["token"], []).append(record["at"])
    return runs


def first_runs(log_paths: list[Path]) -> dict[str, float]:
    """token -> first time a worker ran its canary task."""
    return {token: min(times) for token, times in all_runs(log_paths).items()}


def longest_gap(times: list[float], start: float, end: float) -> tuple[float, float]:
    """The longest interval in [start, end] with none of ``times`` in it: (length, its beginning)."""
    points = [start, *sorted(t for t in times if start < t < end), end]
    length, begins = max((b - a, a) for a, b in zip(points, points[1:], strict=False))
    return length, begins


def _results_missing(producer: Producer, ran: set[str], results_of: Callable[[list[str]], list[Any]]) -> list[str]:
    """Tokens that ran and whose result the backend does not hold (a task's result is stored as it ends)."""
    tokens = sorted(ran & set(producer.task_ids))
    stored = results_of([producer.task_ids[token] for token in tokens])
    return [token for token, value in zip(tokens, stored, strict=True) if value is None]


def run_through_a_fault(
    *,
    worker_environ: dict[str, str],
    producer_app: Any,
    queue: str,
    workdir: Path,
    fault: Callable[[Producer, list[Path]], None],
    results_of: Callable[[list[str]], list[Any]],
    rate: float = 10.0,
    steady_seconds: float = 2.0,
    after_seconds: float = 10.0,
    drain_seconds: float = 30.0,
    workers: int = 1,
) -> Outcome:
    """Run workers and a producer, call ``fault(producer, worker logs)`` (it returns once the fault is in place, or
    over), publish ``after_seconds`` more, then wait until every task ran or ``drain_seconds`` passed.

    :param results_of: the results of the given task ids, None where none is stored (read once all ran).
    """
    logs = [workdir / f"worker-{n}.log" for n in range(workers)]
    producer = Producer(producer_app, queue, rate)
    with celery_workers(
        worker_environ, queue, logs, names=[f"w{n}" for n in range(workers)], pool="prefork", concurrency=2
    ) as processes:
        producer.thread.start()
        time.sleep(steady_seconds)
        fault_at = time.time()
        fault(producer, logs)
        time.sleep(after_seconds)
        producer.stopping.set()
        producer.thread.join(timeout=60)
        deadline = time.monotonic() + drain_seconds
        while set(producer.published) - set(first_runs(logs)) and time.monotonic() < deadline:
            time.sleep(0.2)
        drained_at = time.time()  # every task ran (a stall lasts until then), or the drain gave up
        # a task's result is stored just after its ledger line: give the last ones a moment on a loaded machine
        results_by = time.monotonic() + 5
        while _results_missing(producer, set(first_runs(logs)), results_of) and time.monotonic() < results_by:
            time.sleep(0.2)
        exits = [code for code in (process.poll() for process in processes) if code is not None]
    every_run = all_runs(logs)
    runs = {token: min(times) for token, times in every_run.items()}
    stall, stall_begins = longest_gap(list(runs.values()), fault_at - 1, drained_at)
    return Outcome(
        published=len(producer.published),
        publish_errors=producer.errors,
        lost=sorted(set(producer.published) - set(runs)),
        results_lost=_results_missing(producer, set(runs), results_of),
        worker_exits=exits,
        ran_twice=sorted(token for token, times in every_run.items() if len(times) > 1),
        longest_stall=stall,
        stall_from=stall_begins - fault_at,
        longest_publish=producer.longest_publish,
        fault_at=fault_at,
        lost_published=[producer.published[token] - fault_at for token in set(producer.published) - set(runs)],
    )


def results_on(node: RedisNode, db: int) -> Callable[[list[str]], list[Any]]:
    """Reads Celery's stored results (``celery-task-meta-<id>``) from ``node``'s database ``db``."""

    def results_of(task_ids: list[str]) -> list[Any]:
        with node.client(db) as client:
            return list(client.mget([f"celery-task-meta-{task_id}" for task_id in task_ids])) if task_ids else []

    return results_of


def silence_the_primary(
    *,
    pair: RedisPair,
    name: SilentForwarder,
    silence: str,
    dns_delay: float,
    results_db: int,
    on_fault: Callable[[], None] | None = None,
    **run: Any,
) -> Outcome:
    """Silence the primary, promote the replica, move the name ``dns_delay`` later (``run``: see
    :func:`run_through_a_fault`)."""
    if silence not in SILENCES:
        raise ValueError(f"silence {silence!r} is not one of {SILENCES}")
    old, new = pair.primary, pair.replica
    assert old.process is not None

    def fault(producer: Producer, logs: list[Path]) -> None:
        if silence == "frozen":
            os.kill(old.process.pid, signal.SIGSTOP)
        else:
            name.blackhole(old.address)
        new.promote()
        if on_fault is not None:
            on_fault()
        time.sleep(dns_delay)
        name.point_at(new.address)

    try:
        return run_through_a_fault(fault=fault, results_of=results_on(new, results_db), **run)
    finally:
        if silence == "frozen":
            os.kill(old.process.pid, signal.SIGCONT)  # so that it can be stopped


SLOWNESSES = ("delayed", "frozen")
"""Every reply of the primary's reaches its clients some seconds late (a congested path, a proxy), or its process
stops answering for a while (SIGSTOP, then SIGCONT: a fork for a snapshot, a long command, a starved host)."""


def slow_the_primary(
    *,
    pair: RedisPair,
    name: SilentForwarder,
    slowness: str,
    pause_seconds: float,
    results_db: int,
    reply_delay: float = 3.5,
    hold_seconds: float | None = 2.0,
    **run: Any,
) -> Outcome:
    """For ``pause_seconds`` the primary is slow (``slowness``: its replies come ``reply_delay`` late, or it is
    frozen), and it stays the primary: the name never moves. A task holding a worker process for ``hold_seconds``
    starts up to a second before (None: none), so that its result is stored while the node is slow; the delay is
    random, as a stall's moment is (``run``: see :func:`run_through_a_fault`)."""
    if slowness not in SLOWNESSES:
        raise ValueError(f"slowness {slowness!r} is not one of {SLOWNESSES}")
    node = pair.primary
    assert node.process is not None
    pid = node.process.pid

    def fault(producer: Producer, logs: list[Path]) -> None:
        if hold_seconds is not None:
            _start_a_held_task(producer, logs, hold_seconds)
            time.sleep(random.uniform(0, min(1.0, hold_seconds / 2)))
        if slowness == "frozen":
            os.kill(pid, signal.SIGSTOP)
        else:
            name.delay_replies(node.address, reply_delay)
        try:
            time.sleep(pause_seconds)
        finally:
            if slowness == "frozen":
                os.kill(pid, signal.SIGCONT)
            else:
                name.delay_replies(node.address, 0)

    return run_through_a_fault(fault=fault, results_of=results_on(node, results_db), **run)


def _start_a_held_task(producer: Producer, logs: list[Path], seconds: float) -> None:
    """Publish a task that holds a worker process for ``seconds``, and return once it has started."""
    token = uuid.uuid4().hex
    producer.task_ids[token] = producer.app.send_task(HOLD_TASK, args=[token, seconds], queue=producer.queue).id
    deadline = time.monotonic() + 10
    while not any(token in path.read_text() for path in logs) and time.monotonic() < deadline:
        time.sleep(0.01)

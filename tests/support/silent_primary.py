"""A primary that goes silent under a running tier, on loopback: real redis-servers (a primary and its replica)
behind a forwarder that plays the endpoint's name, a real ``celery worker`` on the settings package, and a producer
publishing canary tasks at a steady rate. The primary is frozen (SIGSTOP) or blackholed, the replica promoted, and
the name moved ``dns_delay`` later; what comes out is the longest time with no task run, and what was lost."""

from __future__ import annotations

import os
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

from broker_tier.rehearsal.redis_pair import RedisPair
from broker_tier_contract import CANARY_TASK, parse_canary_ledger_line

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
                self.app.send_task(CANARY_TASK, args=[token], queue=self.queue)
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
    worker_exits: list[int]
    longest_stall: float
    stall_from: float
    """Seconds after the fault at which the longest stall began (negative: before it)."""
    longest_publish: float
    fault_at: float
    """When the primary went silent (wall clock)."""

    def summary(self) -> str:
        return (
            f"longest time with no task run {self.longest_stall:.2f} s (from {self.stall_from:+.2f} s after the "
            f"fault); {self.published} published, {len(self.lost)} lost, {len(self.publish_errors)} publish "
            f"errors, worker exits {self.worker_exits}; longest publish {self.longest_publish:.2f} s; fault at "
            f"{time.strftime('%H:%M:%S', time.localtime(self.fault_at))}.{int(self.fault_at % 1 * 1000):03d}"
        )


def first_runs(log_paths: list[Path]) -> dict[str, float]:
    """token -> first time a worker ran its canary task (wall clock, from the ledger lines)."""
    runs: dict[str, float] = {}
    for path in log_paths:
        for line in path.read_text().splitlines():
            record = parse_canary_ledger_line(line)
            if record:
                runs[record["token"]] = min(runs.get(record["token"], record["at"]), record["at"])
    return runs


def longest_gap(times: list[float], start: float, end: float) -> tuple[float, float]:
    """The longest interval in [start, end] with none of ``times`` in it: (length, its beginning)."""
    points = [start, *sorted(t for t in times if start < t < end), end]
    length, begins = max((b - a, a) for a, b in zip(points, points[1:], strict=False))
    return length, begins


def silence_the_primary(
    *,
    pair: RedisPair,
    name: SilentForwarder,
    worker_environ: dict[str, str],
    producer_app: Any,
    queue: str,
    workdir: Path,
    silence: str,
    dns_delay: float,
    rate: float = 10.0,
    steady_seconds: float = 2.0,
    after_seconds: float = 10.0,
    drain_seconds: float = 30.0,
    workers: int = 1,
    on_fault: Callable[[], None] | None = None,
) -> Outcome:
    """Run a worker and a producer, silence the primary, promote the replica, move the name ``dns_delay`` later."""
    if silence not in SILENCES:
        raise ValueError(f"silence {silence!r} is not one of {SILENCES}")
    logs = [workdir / f"worker-{n}.log" for n in range(workers)]
    old, new = pair.primary, pair.replica
    assert old.process is not None
    producer = Producer(producer_app, queue, rate)
    with celery_workers(
        worker_environ, queue, logs, names=[f"w{n}" for n in range(workers)], pool="prefork", concurrency=2
    ) as processes:
        producer.thread.start()
        time.sleep(steady_seconds)
        fault_at = time.time()
        if silence == "frozen":
            os.kill(old.process.pid, signal.SIGSTOP)
        else:
            name.blackhole(old.address)
        new.promote()
        if on_fault is not None:
            on_fault()
        time.sleep(dns_delay)
        name.point_at(new.address)
        time.sleep(after_seconds)
        producer.stopping.set()
        producer.thread.join(timeout=60)
        deadline = time.monotonic() + drain_seconds
        while set(producer.published) - set(first_runs(logs)) and time.monotonic() < deadline:
            time.sleep(0.2)
        drained_at = time.time()  # every task ran (a stall lasts until then), or the drain gave up
        exits = [code for code in (process.poll() for process in processes) if code is not None]
    if silence == "frozen":
        os.kill(old.process.pid, signal.SIGCONT)  # so that it can be stopped
    runs = first_runs(logs)
    stall, stall_begins = longest_gap(list(runs.values()), fault_at - 1, drained_at)
    return Outcome(
        published=len(producer.published),
        publish_errors=producer.errors,
        lost=sorted(set(producer.published) - set(runs)),
        worker_exits=exits,
        longest_stall=stall,
        stall_from=stall_begins - fault_at,
        longest_publish=producer.longest_publish,
        fault_at=fault_at,
    )

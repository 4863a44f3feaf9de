"""memory-full: the rehearsal's Redis filled to its ``maxmemory`` under ``noeviction`` by keys without a TTL (an
app's cache that never expires), and what the tier's memory alarms would have seen.

ElastiCache's ``DatabaseMemoryUsagePercentage`` is ``used_memory / maxmemory`` of ``INFO memory`` (AWS:
"Metrics for Valkey and Redis OSS"); the alarms take its Maximum per period. A rehearsal lasts seconds, so each
CloudWatch period is played as ``ALARM_TIME_SCALE`` times shorter (a minute as a second): the report says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from broker_tier.rehearsal.redis_pair import RedisNode

MAXMEMORY_BYTES = 8 * 2**20
"""The rehearsal nodes' ``maxmemory`` for memory-full: small, so a few hundred writes fill it (an idle node with the
workers connected uses about 1-2 MiB of it)."""
FILL_KEY_PREFIX = "rehearsal:memory-full:"
"""The keys the fault writes (without a TTL) into the app-cache database, and deletes to free the memory."""
FILL_CHUNK_BYTES = 64 * 2**10
FILL_PACE_SECONDS = 0.01
"""One chunk per pace: 8 MiB fill in about a second, so the samples show the climb."""
TOP_UP_SECONDS = 0.02
"""While full, a write is tried this often: memory comes back (clients' buffers shrink; with the Redis broker every
message taken off a queue frees some), which an app writing its cache would take again at once."""
SAMPLE_SECONDS = 0.1
ALARM_TIME_SCALE = 60.0
"""A CloudWatch period of ``period_seconds`` is played as ``period_seconds / ALARM_TIME_SCALE`` rehearsal seconds
(60 s -> 1 s)."""


def used_and_max(node: RedisNode) -> tuple[int, int]:
    info = node.control.info("memory")
    return int(info["used_memory"]), int(info["maxmemory"])


def limit_memory(nodes: Iterable[RedisNode], maxmemory_bytes: int) -> None:
    """``CONFIG SET maxmemory`` on every node (the policy is already ``noeviction``, as the tier's parameter group)."""
    for node in nodes:
        node.control.config_set("maxmemory", maxmemory_bytes)


@dataclass
class Fill:
    """What filling wrote, and when the node first refused a write."""

    keys: int = 0
    bytes: int = 0
    full_at: float = 0.0
    refusal: str = ""
    """The error the node answered a write with once full (what every client's write gets)."""
    top_ups: int = 0
    """Writes taken again while full (memory came back for a moment)."""


def fill_until_refused(client: redis.Redis, fill: Fill, *, timeout: float = 30.0) -> Fill:
    """Write chunks without a TTL until the node answers OOM (``noeviction``)."""
    payload = b"x" * FILL_CHUNK_BYTES
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.set(f"{FILL_KEY_PREFIX}{fill.keys}", payload)
        except redis.exceptions.OutOfMemoryError as error:
            fill.full_at, fill.refusal = time.time(), f"{type(error).__name__}: {error}"
            return fill
        fill.keys, fill.bytes = fill.keys + 1, fill.bytes + len(payload)
        time.sleep(FILL_PACE_SECONDS)
    raise TimeoutError(f"the node took {fill.bytes} bytes in {timeout:g} s without refusing a write: no maxmemory?")


def hold_full(client: redis.Redis, fill: Fill, until: float) -> None:
    """Keep the node full until ``until`` (Unix time): take back any memory that comes free, as an app would."""
    small = b"x" * 1024
    while time.time() < until:
        try:
            client.set(f"{FILL_KEY_PREFIX}{fill.keys}", small)
            fill.keys, fill.bytes, fill.top_ups = fill.keys + 1, fill.bytes + len(small), fill.top_ups + 1
        except redis.exceptions.OutOfMemoryError:
            time.sleep(TOP_UP_SECONDS)


def free(client: redis.Redis) -> int:
    """Delete the fill's keys (``DEL`` is allowed on a full node); returns how many."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{FILL_KEY_PREFIX}*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            deleted += int(client.delete(*batch))
            batch = []
    if batch:
        deleted += int(client.delete(*batch))
    return deleted


@dataclass
class MemorySampler:
    """Samples a node's ``used_memory / maxmemory`` every ``SAMPLE_SECONDS`` from a daemon thread (the node is
    asked for at each sample: a fault may move the primary)."""

    node: Callable[[], RedisNode]
    samples: list[tuple[float, float]] = field(default_factory=list)
    """(Unix time, percent)."""
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="rehearsal-memory-sampler")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            try:
                used, maximum = used_and_max(self.node())
            except (redis.RedisError, OSError):
                self.errors += 1
                continue
            if maximum:
                self.samples.append((time.time(), 100.0 * used / maximum))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


@dataclass(frozen=True, kw_only=True)
class AlarmRule:
    """One memory alarm as configured (``monitoring.redis_memory``), its periods scaled to the rehearsal."""

    name: str
    threshold_percent: float
    period_seconds: float
    """Scaled: rehearsal seconds per period."""
    evaluation_periods: int
    datapoints_to_alarm: int


def memory_alarm_rules(environment: str, cdk_json: Path) -> list[AlarmRule]:
    """The warning and critical memory alarms of ``environment`` in ``cdk_json``, periods scaled."""
    import json

    from broker_tier.config import CONTEXT_KEY, load_environments

    context = json.loads(cdk_json.read_text())["context"]
    memory = load_environments(context.get(CONTEXT_KEY), only=environment)[environment].monitoring.redis_memory
    return [
        AlarmRule(
            name=f"redis-memory-{level}",
            threshold_percent=threshold,
            period_seconds=memory.period_seconds / ALARM_TIME_SCALE,
            evaluation_periods=memory.evaluation_periods,
            datapoints_to_alarm=memory.datapoints,
        )
        for level, threshold in (("warning", memory.warning_percent), ("critical", memory.critical_percent))
    ]


def alarm_transitions(samples: list[tuple[float, float]], rule: AlarmRule, *, origin: float) -> list[tuple[float, str]]:
    """When ``rule`` would have gone to ALARM and back to OK: CloudWatch's Maximum per period from ``origin``,
    ``GreaterThanThreshold``, ``datapoints_to_alarm`` breaching of the last ``evaluation_periods`` (a period
    without a sample is missing data, which the tier's memory alarms treat as missing: it neither breaches nor
    clears). Each transition is at the end of the period that decided it."""
    periods: dict[int, float] = {}
    for at, percent in samples:
        index = int((at - origin) // rule.period_seconds)
        periods[index] = max(periods.get(index, 0.0), percent)
    transitions: list[tuple[float, str]] = []
    state = "OK"
    for index in range(min(periods, default=0), max(periods, default=-1) + 1):
        window = [periods.get(i) for i in range(index - rule.evaluation_periods + 1, index + 1)]
        breaching = sum(value is not None and value > rule.threshold_percent for value in window)
        new_state = "ALARM" if breaching >= rule.datapoints_to_alarm else "OK"
        if index in periods and new_state != state:
            state = new_state
            transitions.append((origin + (index + 1) * rule.period_seconds, state))
    return transitions


def memory_figures(
    samples: list[tuple[float, float]], rules: list[AlarmRule], *, origin: float, full: tuple[float, float]
) -> tuple[dict, list[tuple[float, str]]]:
    """The report's memory figures, and the alarm transitions to mark on the timeline."""
    full_at, freed_at = full
    figures: dict = {
        "memory_samples": len(samples),
        "memory_percent_max": round(max((p for _, p in samples), default=0.0), 1),
        "memory_percent_before_fault": round(max((p for at, p in samples if at < origin), default=0.0), 1),
        "memory_full_measured_seconds": round(freed_at - full_at, 2),
        "memory_alarm_time_scale": f"1 CloudWatch period of {rules[0].period_seconds * ALARM_TIME_SCALE:g} s is "
        f"played as {rules[0].period_seconds:g} s"
        if rules
        else None,
    }
    marks: list[tuple[float, str]] = []
    start = samples[0][0] if samples else origin
    for rule in rules:
        transitions = alarm_transitions(samples, rule, origin=start)
        level = rule.name.rsplit("-", 1)[-1]
        first = next((at for at, state in transitions if state == "ALARM"), None)
        cleared = next((at for at, state in transitions if state == "OK" and first and at > first), None)
        figures[f"memory_{level}_threshold_percent"] = rule.threshold_percent
        figures[f"memory_{level}_alarm_after_full_seconds"] = None if first is None else round(first - full_at, 2)
        figures[f"memory_{level}_alarm_ok_after_freed_seconds"] = (
            None if cleared is None else round(cleared - freed_at, 2)
        )
        figures[f"memory_{level}_alarms_fired"] = sum(state == "ALARM" for _, state in transitions)
        marks += [(at, f"{rule.name} {state}") for at, state in transitions]
    return figures, marks

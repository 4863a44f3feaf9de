"""From the ledger, the fault's times and the final state of the queues to the report's figures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from broker_tier.evidence import task_accounting
from broker_tier.evidence.task_accounting import SAMPLE
from broker_tier.rehearsal.command_log import LoggedCommand
from broker_tier.rehearsal.injection import Strike
from broker_tier.rehearsal.ledger import Publish
from broker_tier.rehearsal.workers import WorkerExit

WARM_UP_SECONDS = 1.0
"""The first second of publishing is left out of the throughput before the fault (start-up)."""
STALL_SHOWN_SECONDS = 1.0
"""Stretches without a first run at least this long are listed (and drawn) as stalls."""
RESULT_KEY_PREFIX = "celery-task-meta-"
RESULT_WRITES = ("SET", "SETEX", "PSETEX", "SETNX", "MSET")
PUSHES = ("LPUSH", "RPUSH", "LPUSHX", "RPUSHX")


@dataclass(frozen=True, kw_only=True)
class Window:
    """The rehearsal's times (Unix): publishing started and stopped, and what the fault did."""

    publishing_started: float
    publishing_stopped: float
    fault: Strike
    steady_until: float | None = None
    """End of the steady phase (workers paused for a backlog after it); default: the fault."""


@dataclass(frozen=True, kw_only=True)
class RedisKeys:
    """Where the class's messages live in the broker's Redis (redis mode)."""

    queue: str
    unacked: str


@dataclass(kw_only=True)
class InFlight:
    """Tasks in flight when the replica was promoted: their messages in its unacked record (redis mode)."""

    task_ids: set[str] = field(default_factory=set)
    tags: dict[str, set[str]] = field(default_factory=dict)
    """Delivery tag -> the task ids its message names (to read an acknowledgement in the command log)."""


def _rate(times: list[float], start: float, end: float) -> float | None:
    if end - start <= 0:
        return None
    return round(sum(start <= t < end for t in times) / (end - start), 2)


def first_runs(executions: list[dict]) -> dict[str, float]:
    return task_accounting.first_runs((e["token"], e["at"]) for e in executions)


def resume_seconds(publishes: list[Publish], executions: list[dict], window: Window) -> float | None:
    """From the name's move to the first run of a task published after the fault (``task_accounting``)."""
    return task_accounting.resume_seconds(
        {p.token: p.sent_at for p in publishes},
        [(e["token"], e["at"]) for e in executions],
        fault_at=window.fault.struck_at,
        recovered_at=window.fault.recovered_at,
    )


def stalls(executions: list[dict], window: Window) -> list[tuple[float, float]]:
    """(start, end) of every stretch of at least ``STALL_SHOWN_SECONDS`` without a first run, from the fault on."""
    gaps = task_accounting.stalls(first_runs(executions).values(), start=window.fault.struck_at)
    return [(round(end - length, 2), end) for length, end in gaps if length >= STALL_SHOWN_SECONDS]


def split_window_losses(
    commands: Iterable[LoggedCommand], keys: RedisKeys | None, in_flight: InFlight
) -> dict[str, set[str]]:
    """Task ids whose write the old primary took in the split window, by kind: ``tasks`` (a publish),
    ``deliveries`` (a worker took the message), ``acks`` (a worker acknowledged it), ``results``."""
    lost: dict[str, set[str]] = {"tasks": set(), "deliveries": set(), "acks": set(), "results": set()}
    for command in commands:
        if command.name in RESULT_WRITES and command.key.startswith(RESULT_KEY_PREFIX):
            lost["results"] |= command.task_ids()
        elif keys is None:
            continue
        elif command.name in PUSHES and command.key.startswith(keys.queue):
            lost["tasks"] |= command.task_ids()
        elif command.name in ("HSET", "HMSET", "HSETNX") and command.key == keys.unacked:
            lost["deliveries"] |= command.task_ids()
        elif command.name == "HDEL" and command.key == keys.unacked:
            for tag in command.arguments[2:]:
                lost["acks"] |= in_flight.tags.get(tag, set())
    return lost


def _split_window(publishes, executions, window, results_missing, keys, in_flight) -> dict:
    """What the split window lost, by kind, and which losses of the run it explains."""
    lost = split_window_losses(window.fault.window_commands, keys, in_flight)
    token_of = {p.task_id: p.token for p in publishes} | {e["task_id"]: e["token"] for e in executions}
    mine = {kind: sorted(token_of[i] for i in ids if i in token_of) for kind, ids in lost.items()}
    explained_results = set(results_missing) & lost["results"]
    return {
        "split_window_lost": {kind: len(tokens) for kind, tokens in mine.items()},
        "split_window_lost_sample": {kind: tokens[:SAMPLE] for kind, tokens in mine.items() if tokens},
        "results_lost_to_split_window": len(explained_results),
        "results_lost_outside_split_window": len(set(results_missing) - explained_results),
        "_redelivery_explained": in_flight.task_ids | lost["deliveries"] | lost["acks"],
    }


def _duplicates(duplicated: list[str], publishes: list[Publish], explained_task_ids: set[str]) -> dict:
    """Duplicates of tasks in flight at the fault (counted and named) and the others."""
    task_of = {p.token: p.task_id for p in publishes}
    in_flight = [token for token in duplicated if task_of.get(token) in explained_task_ids]
    others = [token for token in duplicated if token not in in_flight]
    return {
        "duplicated_in_flight": len(in_flight),
        "duplicated_in_flight_sample": in_flight[:SAMPLE],
        "duplicated_not_in_flight": len(others),
        "duplicated_not_in_flight_sample": others[:SAMPLE],
    }


def account(
    *,
    publishes: list[Publish],
    executions: list[dict],
    window: Window,
    results_missing: dict[str, str],
    worker_exits: list[WorkerExit],
    keys: RedisKeys | None = None,
    in_flight: InFlight | None = None,
) -> dict:
    """The figures every rehearsal report holds (docs/rehearsal.md, "The report")."""
    in_flight = in_flight or InFlight()
    runs = Counter(e["token"] for e in executions)
    failed = [p for p in publishes if not p.ok]
    lost, duplicated = task_accounting.lost_and_duplicated(
        (p.token for p in publishes if p.ok), (e["token"] for e in executions)
    )
    split = _split_window(publishes, executions, window, results_missing, keys, in_flight)
    explained = split.pop("_redelivery_explained")
    times = [e["at"] for e in executions]
    fault = window.fault
    shown_stalls = stalls(executions, window)
    return {
        "published": len(publishes),
        "publish_errors": len(failed),
        "publish_error_kinds": dict(Counter((p.error or "").split(":")[0] for p in failed)),
        "publish_error_messages": [message for message, _ in Counter(p.error for p in failed).most_common(3)],
        "longest_publish_call_seconds": round(max((p.returned_at - p.sent_at for p in publishes), default=0), 2),
        "executed": len(runs),
        "executions": len(executions),
        "lost": len(lost),
        "lost_sample": lost[:SAMPLE],
        "duplicated": len(duplicated),
        "duplicated_sample": duplicated[:SAMPLE],
        **_duplicates(duplicated, publishes, explained),
        "in_flight_at_fault": len(in_flight.task_ids),
        "executed_despite_publish_error": len({p.token for p in failed} & set(runs)),
        "results_lost": len(results_missing),
        "results_lost_states": dict(Counter(results_missing.values())),
        "results_lost_sample": sorted(results_missing)[:SAMPLE],
        **split,
        "worker_restarts": len(worker_exits),
        "worker_exit_reasons": [f"{x.task}: {x.reason}" for x in worker_exits],
        "resume_seconds": resume_seconds(publishes, executions, window),
        # from the apply_async call's return: the caller's wait is longest_publish_call_seconds
        "max_delay_seconds": task_accounting.max_delay_seconds(
            {p.token: p.returned_at for p in publishes if p.ok}, first_runs(executions)
        ),
        "longest_stall_seconds": task_accounting.longest_stall(first_runs(executions).values(), start=fault.struck_at),
        "stalls": [
            {"from_fault_seconds": round(start - fault.struck_at, 2), "seconds": round(end - start, 2)}
            for start, end in shown_stalls
        ],
        "throughput_before": _rate(
            times, window.publishing_started + WARM_UP_SECONDS, window.steady_until or fault.struck_at
        ),
        "throughput_after": _rate(times, fault.recovered_at, window.publishing_stopped),
    }

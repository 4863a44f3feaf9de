"""From the ledger, the fault's times and the final state of the queues to the report's figures."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from broker_tier.rehearsal.faults import FaultRecord
from broker_tier.rehearsal.ledger import Publish
from broker_tier.rehearsal.workers import WorkerExit

SAMPLE = 10
"""How many example tokens a figure lists next to its count."""
WARM_UP_SECONDS = 1.0
"""The first second of publishing is left out of the throughput before the fault (start-up)."""


@dataclass(frozen=True, kw_only=True)
class Window:
    """The rehearsal's times (Unix): publishing started and stopped, the fault struck and recovered."""

    publishing_started: float
    publishing_stopped: float
    fault: FaultRecord
    steady_until: float | None = None
    """End of the steady phase (workers paused for a backlog after it); default: the fault."""


def _rate(times: list[float], start: float, end: float) -> float | None:
    if end - start <= 0:
        return None
    return round(sum(start <= t < end for t in times) / (end - start), 2)


def resume_seconds(publishes: list[Publish], executions: list[dict], window: Window) -> float | None:
    """From the endpoint reaching a writable primary to the first execution of a task published
    after the fault struck; None when none ran."""
    fault = window.fault
    after_fault = {p.token for p in publishes if p.sent_at >= fault.struck_at}
    firsts = [e["at"] for e in executions if e["token"] in after_fault and e["at"] >= fault.recovered_at]
    return round(min(firsts) - fault.recovered_at, 2) if firsts else None


def longest_stall(executions: list[dict], window: Window) -> float:
    """The longest time without any execution between the fault and the end of publishing."""
    start, end = window.fault.struck_at, window.publishing_stopped
    times = sorted(e["at"] for e in executions if start <= e["at"] <= end)
    points = [start, *times, end]
    return round(max(b - a for a, b in zip(points, points[1:])), 2)


def account(*, publishes: list[Publish], executions: list[dict], window: Window, results_missing: dict[str, str],
            worker_exits: list[WorkerExit]) -> dict:
    """The figures every rehearsal report holds (see the README's "Failover rehearsal")."""
    runs = Counter(e["token"] for e in executions)
    published_ok = {p.token for p in publishes if p.ok}
    failed = [p for p in publishes if not p.ok]
    lost = sorted(published_ok - set(runs))
    duplicated = sorted(token for token, count in runs.items() if count > 1)
    times = [e["at"] for e in executions]
    fault = window.fault
    return {
        "published": len(publishes),
        "publish_errors": len(failed),
        "publish_error_kinds": dict(Counter(p.error.split(":")[0] for p in failed)),
        "publish_error_messages": [message for message, _ in Counter(p.error for p in failed).most_common(3)],
        "longest_publish_call_seconds": round(max((p.returned_at - p.sent_at for p in publishes), default=0), 2),
        "executed": len(runs),
        "executions": len(executions),
        "lost": len(lost),
        "lost_sample": lost[:SAMPLE],
        "duplicated": len(duplicated),
        "duplicated_sample": duplicated[:SAMPLE],
        "executed_despite_publish_error": len({p.token for p in failed} & set(runs)),
        "results_lost": len(results_missing),
        "results_lost_states": dict(Counter(results_missing.values())),
        "results_lost_sample": sorted(results_missing)[:SAMPLE],
        "worker_restarts": len(worker_exits),
        "worker_exit_reasons": [f"{x.task}: {x.reason}" for x in worker_exits],
        "resume_seconds": resume_seconds(publishes, executions, window),
        "longest_stall_seconds": longest_stall(executions, window),
        "throughput_before": _rate(times, window.publishing_started + WARM_UP_SECONDS,
                                   window.steady_until or fault.struck_at),
        "throughput_after": _rate(times, fault.recovered_at, window.publishing_stopped),
    }

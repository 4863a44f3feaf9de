"""From the ledger, the fault's times and the final state of the queues to the report's figures."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from broker_tier.evidence import task_accounting
from broker_tier.evidence.task_accounting import SAMPLE
from broker_tier.rehearsal.faults import FaultRecord
from broker_tier.rehearsal.ledger import Publish
from broker_tier.rehearsal.workers import WorkerExit

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
    after the fault struck; None when none ran (``task_accounting.resume_seconds``)."""
    return task_accounting.resume_seconds(
        {p.token: p.sent_at for p in publishes},
        [(e["token"], e["at"]) for e in executions],
        fault_at=window.fault.struck_at,
        recovered_at=window.fault.recovered_at,
    )


def longest_stall(executions: list[dict], window: Window) -> float | None:
    """The longest time without a task's first run from the fault on (``task_accounting.longest_stall``)."""
    first = task_accounting.first_runs((e["token"], e["at"]) for e in executions)
    return task_accounting.longest_stall(first.values(), start=window.fault.struck_at)


def account(
    *,
    publishes: list[Publish],
    executions: list[dict],
    window: Window,
    results_missing: dict[str, str],
    worker_exits: list[WorkerExit],
) -> dict:
    """The figures every rehearsal report holds (see the README's "Failover rehearsal")."""
    runs = Counter(e["token"] for e in executions)
    failed = [p for p in publishes if not p.ok]
    lost, duplicated = task_accounting.lost_and_duplicated(
        (p.token for p in publishes if p.ok), (e["token"] for e in executions)
    )
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
        # from the apply_async call's return: the caller's wait is longest_publish_call_seconds
        "max_delay_seconds": task_accounting.max_delay_seconds(
            {p.token: p.returned_at for p in publishes if p.ok},
            task_accounting.first_runs((e["token"], e["at"]) for e in executions),
        ),
        "longest_stall_seconds": longest_stall(executions, window),
        "throughput_before": _rate(
            times, window.publishing_started + WARM_UP_SECONDS, window.steady_until or fault.struck_at
        ),
        "throughput_after": _rate(times, fault.recovered_at, window.publishing_stopped),
    }

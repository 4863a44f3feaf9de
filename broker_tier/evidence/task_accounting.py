"""Counting tasks through a fault, one definition for the local rehearsal and the AWS drill.

Both send tasks (the canary) before, during and after a fault, and read back a ledger of their runs
that does not live on the Redis being failed over. From those two lists they report the same
figures, computed here: lost, duplicated, how soon work resumed, the longest stall, and the longest delay
before a task first ran.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

SAMPLE = 10
"""How many example tokens a report lists next to a count (lost, duplicated, ...)."""
RESUME_GOAL_SECONDS = 2.0
"""The SQS broker's goal: work resumes within 2 s of the primary endpoint moving to the new primary."""


def lost_and_duplicated(sent_ok: Iterable[str], runs: Iterable[str]) -> tuple[list[str], list[str]]:
    """Tokens sent without error that never ran, and tokens that ran more than once (sorted)."""
    counts: dict[str, int] = {}
    for token in runs:
        counts[token] = counts.get(token, 0) + 1
    lost = sorted(set(sent_ok) - set(counts))
    duplicated = sorted(token for token, count in counts.items() if count > 1)
    return lost, duplicated


def resume_seconds(
    sent_at: Mapping[str, float], runs: Iterable[tuple[str, float]], *, fault_at: float, recovered_at: float | None
) -> float | None:
    """From ``recovered_at`` (the endpoint moved to a writable primary) to the first run, at or after it, of a
    task sent at or after ``fault_at``; None when there is no such run or no recovery time. A task sent before
    the fault and run late (a backlog draining) does not count: it shows the queue, not the new primary."""
    if recovered_at is None:
        return None
    after_fault = {token for token, at in sent_at.items() if at >= fault_at}
    firsts = [at for token, at in runs if token in after_fault and at >= recovered_at]
    return round(min(firsts) - recovered_at, 2) if firsts else None


def stalls(first_runs: Iterable[float], *, start: float) -> list[tuple[float, float]]:
    """``(length, ends_at)`` of every stretch without a run from ``start`` (the fault) on: to the first run
    after it, then between consecutive runs. Pass first runs only: a task run again is not progress."""
    points = [start, *sorted(t for t in first_runs if t >= start)]
    return [(round(b - a, 2), b) for a, b in zip(points, points[1:], strict=False)]


def longest_stall(first_runs: Iterable[float], *, start: float) -> float | None:
    """The longest time without a (first) run from ``start`` on; None when nothing ran after it."""
    return max((length for length, _ in stalls(first_runs, start=start)), default=None)


def first_runs(runs: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Each token's first run time."""
    first: dict[str, float] = {}
    for token, at in runs:
        first[token] = min(at, first.get(token, at))
    return first


def max_delay_seconds(published_at: Mapping[str, float], first_run: Mapping[str, float]) -> float | None:
    """The longest time from a task's publish (``published_at``, by token) to its first run, over the tasks
    that ran; None when none did. Lost and duplicated miss a task held in flight until a visibility time-out
    and then run once: this figure does not."""
    delays = [first_run[token] - at for token, at in published_at.items() if token in first_run]
    return round(max(delays), 2) if delays else None

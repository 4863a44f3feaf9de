"""What a rehearsal must show: each goal is a report figure and the most it may be.

The goal sets are put together per fault in ``faults``; ``check_goals`` checks them and ``blind_goals`` names a
goal the run's set-up would make unable to fail (the rehearsal refuses such a run rather than pass it).
Why the bounds are what they are: docs/decisions/rehearsal-goals.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from broker_tier.evidence.report import Check
from broker_tier.evidence.task_accounting import RESUME_GOAL_SECONDS

STALL_MARGIN_SECONDS = 5.0
"""A stall, and a task's wait from publish to first run, may exceed what the run imposes (the DNS delay and any
backlog) by this much: a client's time-outs must notice a dead primary within it."""
IMPOSED = ("dns_delay_seconds", "backlog_seconds")
"""Figures a run imposes that stall and delay bounds follow (``full_seconds``, memory-full's, is another)."""


@dataclass(frozen=True)
class Goal:
    figure: str
    at_most: float
    why: str
    plus: tuple[str, ...] = ()
    """Figures of the run (its options) added to ``at_most``: the bound follows what the run imposes."""

    def bound(self, figures: Mapping) -> float:
        return self.at_most + sum(figures.get(name) or 0 for name in self.plus)

    def check(self, figures: Mapping) -> Check:
        """Passes when the figure was measured and is within the bound; a figure never measured fails."""
        value, bound = figures.get(self.figure), self.bound(figures)
        of = "".join(f" + {name} {figures.get(name) or 0:g}" for name in self.plus)
        measured = "not measured" if value is None else f"measured {value}"
        return Check(
            f"{self.figure} <= {bound:g}",
            value is not None and value <= bound,
            f"{self.why}: {measured}" + (f" (bound {self.at_most:g}{of})" if of else ""),
            value,
        )


LOST = Goal("lost", 0, "every task published without an error runs")
PUBLISH_ERRORS = Goal("publish_errors", 0, "no caller of apply_async sees an error")
WORKER_EXITS = Goal("worker_restarts", 0, "no worker exits")
STALL = Goal(
    "longest_stall_seconds",
    STALL_MARGIN_SECONDS,
    "work stops no longer than the name's move (and any backlog) plus "
    f"{STALL_MARGIN_SECONDS:g} s: each client notices the dead primary and reconnects",
    plus=IMPOSED,
)
MAX_DELAY = Goal(
    "max_delay_seconds",
    STALL_MARGIN_SECONDS,
    "no task waits in flight for a visibility time-out: each first runs within the name's move (and any backlog) "
    f"plus {STALL_MARGIN_SECONDS:g} s of its publish",
    plus=IMPOSED,
)
RESULTS = Goal(
    "results_lost_outside_split_window",
    0,
    "every result is readable afterwards, but those written to the old primary in the split window",
)
DUPLICATED = Goal("duplicated", 0, "no task runs twice")
UNACKED = Goal("unacked_at_end", 0, "nothing is left in flight to run again or to dead-letter")
DEAD_LETTERED = Goal("dead_lettered", 0, "no healthy task reaches the dead-letter queue")
RESUME = Goal(
    "resume_seconds", RESUME_GOAL_SECONDS, f"work resumes within {RESUME_GOAL_SECONDS:g} s of the name's move"
)
RESUME_AFTER_SILENCE = Goal(
    "resume_seconds",
    STALL_MARGIN_SECONDS,
    f"work resumes within {STALL_MARGIN_SECONDS:g} s of the name's move (clients must first time out on the "
    "silent node)",
)
DUPLICATED_NOT_IN_FLIGHT = Goal(
    "duplicated_not_in_flight",
    0,
    "a task runs twice only if it was in flight at the fault (its message in the unacked record when the "
    "replica was promoted, or taken or acknowledged on the old primary in the split window)",
)
STRANDED = Goal(
    "stranded_until_visibility_timeout",
    0,
    "no message is left in kombu's unacked record never having run (it would wait a whole visibility timeout)",
)

PUBLISH_ERRORS_UNCLEAR = Goal(
    "publish_errors_not_naming_memory",
    0,
    "a caller refused while Redis is full gets an error that says so (Redis's OOM answer, naming maxmemory), never "
    "a hang or another error",
)
LEFT_UNACKED = Goal(
    "restored_from_unacked",
    0,
    "nothing is left in kombu's unacked record at the end (a delivery or acknowledgement the full Redis refused)",
)
RESULTS_AFTER_MEMORY_BACK = Goal(
    "results_lost_after_memory_back", 0, "every result written once the memory is back is readable"
)
MEMORY_ALARM = Goal(
    "memory_critical_alarm_after_full_seconds",
    0,
    "the critical memory alarm, sampled as CloudWatch would (periods scaled), fires while Redis is full",
    plus=("full_seconds",),
)
MEMORY_FULL = (LOST, PUBLISH_ERRORS_UNCLEAR, WORKER_EXITS, RESULTS_AFTER_MEMORY_BACK, MEMORY_ALARM)
"""Both brokers, memory-full."""

EVERY_FAILOVER = (LOST, PUBLISH_ERRORS, WORKER_EXITS, STALL, MAX_DELAY, RESULTS)
"""Both brokers, every fault that fails the primary over."""
SQS_ONLY = (DUPLICATED, UNACKED, DEAD_LETTERED)
REDIS_ONLY = (DUPLICATED_NOT_IN_FLIGHT, STRANDED)


def check_goals(goals: tuple[Goal, ...], figures: Mapping) -> list[Check]:
    """One check per goal, after one that the tier worked at all before the fault."""
    before = figures.get("throughput_before")
    return [
        Check(
            "tasks_ran_before_the_fault",
            bool(before),
            "the tier worked before the fault (otherwise nothing below means anything)",
            before,
        ),
        *(goal.check(figures) for goal in goals),
    ]


def blind_goals(goals: tuple[Goal, ...], options: Mapping) -> list[str]:
    """Why a goal could not fail with these run options (the figures the run imposes, and the SQS queue's
    ``visibility_timeout_seconds``); empty when every goal can fail. (With the Redis broker a message held in
    flight waits for the rehearsal's restore of the unacked record: ``STRANDED`` catches it directly.)"""
    visibility = options.get("visibility_timeout_seconds")
    if MAX_DELAY not in goals or visibility is None:
        return []
    bound = MAX_DELAY.bound(options)
    if visibility > bound:
        return []
    return [
        f"--visibility-timeout {visibility:g} is not above the max-delay bound ({bound:g} s): a message held in "
        f"flight would come back within the bound and pass; allowed: above {bound:g}"
    ]

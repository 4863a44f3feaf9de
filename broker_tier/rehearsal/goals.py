"""What a rehearsal must show for each broker mode and fault.

Each goal is a report figure and the most it may be (for ``max_delay_seconds``, plus the waits the run
imposes). A figure a mode has no goal for is reported as measured: that is the price of the mode (README,
"Failover rehearsal").
"""

from __future__ import annotations

from dataclasses import dataclass

from broker_tier.evidence.report import Check
from broker_tier.evidence.task_accounting import RESUME_GOAL_SECONDS

MAX_DELAY_MARGIN_SECONDS = 10.0
"""``max_delay_seconds`` may exceed the wait the rehearsal imposes (the DNS delay, and the backlog it queued
behind paused workers) by this much. A task published during the fault waits for the endpoint's name to move,
then for a worker to reconnect and take it: seconds (measured with the 5 s DNS delay, 13 full runs: sqs
promote 4.7-4.9 s, sqs power-loss 0.03-0.3 s, redis promote and power-loss 2.1-2.4 s from the publish call's
return, which in redis mode itself waits out the DNS delay). A message held in flight until a visibility time-out
and then run once (which lost, duplicated and unacked_at_end all miss) waits far longer: the rehearsal's
SQS visibility time-out is 20 s, so with the 5 s DNS delay such a message exceeds the bound by 5 s or more;
in redis mode it waits until the rehearsal restores the unacked hash, after the drain time-out (60 s)."""


@dataclass(frozen=True)
class Goal:
    figure: str
    at_most: float
    why: str
    plus: tuple[str, ...] = ()
    """Figures of the run (its options) added to ``at_most``: the bound follows what the run imposes."""

    def bound(self, figures: dict) -> float:
        return self.at_most + sum(figures.get(name) or 0 for name in self.plus)


_MAX_DELAY = Goal(
    "max_delay_seconds",
    MAX_DELAY_MARGIN_SECONDS,
    "no task waits in flight for a visibility time-out: each first runs within the DNS delay (and any "
    f"backlog) plus {MAX_DELAY_MARGIN_SECONDS:g} s of its publish",
    plus=("dns_delay_seconds", "backlog_seconds"),
)
_NONE_STRANDED = Goal(
    "stranded_until_visibility_timeout",
    0,
    "no message is left in kombu's unacked hash never having run (it would wait a whole visibility "
    "timeout, an hour or more)",
)

_SQS_FAILOVER = (
    Goal("lost", 0, "every task published without an error runs"),
    Goal("duplicated", 0, "no task runs twice"),
    Goal("publish_errors", 0, "no caller of apply_async sees an error"),
    Goal("results_lost", 0, "every result is readable afterwards"),
    Goal("unacked_at_end", 0, "nothing is left in flight to run again or to dead-letter"),
    Goal("dead_lettered", 0, "no healthy task reaches the dead-letter queue"),
    Goal("worker_restarts", 0, "no worker exits"),
    Goal("resume_seconds", RESUME_GOAL_SECONDS, "work resumes within 2 s of the endpoint moving"),
    _MAX_DELAY,
)
_REDIS_PROMOTE = (
    Goal("lost", 0, "every task published without an error runs"),
    Goal("publish_errors", 0, "no caller of apply_async sees an error"),
    Goal("results_lost", 0, "every result is readable afterwards"),
    Goal("worker_restarts", 0, "no worker exits"),
    _MAX_DELAY,
    _NONE_STRANDED,
)
_REDIS_POWER_LOSS = (
    Goal("worker_restarts", 0, "no worker exits (kombu's reconnect must not crash the consumer)"),
    _MAX_DELAY,
    _NONE_STRANDED,
)

GOALS: dict[tuple[str, str], tuple[Goal, ...]] = {
    ("sqs", "promote"): _SQS_FAILOVER,
    ("sqs", "power-loss"): _SQS_FAILOVER,
    ("redis", "promote"): _REDIS_PROMOTE,
    ("redis", "power-loss"): _REDIS_POWER_LOSS,
    ("sqs", "reboot"): (),
    ("redis", "reboot"): (),
}


def check_goals(broker: str, fault: str, figures: dict) -> list[Check]:
    """One check per goal; a figure that is None (never measured, e.g. work never resumed) fails."""
    checks = [
        Check(
            "tasks_ran_before_the_fault",
            bool(figures.get("throughput_before")),
            "the tier worked before the fault (otherwise nothing below means anything)",
            figures.get("throughput_before"),
        )
    ]
    for goal in GOALS[(broker, fault)]:
        value, bound = figures.get(goal.figure), goal.bound(figures)
        passed = value is not None and value <= bound
        of = "".join(f" + {name} {figures.get(name) or 0:g}" for name in goal.plus)
        checks.append(
            Check(
                f"{goal.figure} <= {bound:g}",
                passed,
                f"{goal.why}: measured {value}" + (f" (bound {goal.at_most:g}{of})" if of else ""),
                value,
            )
        )
    if not GOALS[(broker, fault)]:
        checks.append(Check("measured_only", None, f"{fault} has no goal in {broker} mode: the figures are its price"))
    return checks

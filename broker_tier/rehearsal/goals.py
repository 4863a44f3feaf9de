"""What a rehearsal must show for each broker mode and fault.

Each goal is a report figure and the most it may be. A figure a mode has no goal for is reported
as measured: that is the price of the mode (README, "Failover rehearsal").
"""

from __future__ import annotations

from dataclasses import dataclass

from broker_tier.ops.report import Check
from broker_tier.ops.task_accounting import RESUME_GOAL_SECONDS


@dataclass(frozen=True)
class Goal:
    figure: str
    at_most: float
    why: str


_SQS_FAILOVER = (
    Goal("lost", 0, "every task published without an error runs"),
    Goal("duplicated", 0, "no task runs twice"),
    Goal("publish_errors", 0, "no caller of apply_async sees an error"),
    Goal("results_lost", 0, "every result is readable afterwards"),
    Goal("unacked_at_end", 0, "nothing is left in flight to run again or to dead-letter"),
    Goal("dead_lettered", 0, "no healthy task reaches the dead-letter queue"),
    Goal("worker_restarts", 0, "no worker exits"),
    Goal("resume_seconds", RESUME_GOAL_SECONDS, "work resumes within 2 s of the endpoint moving"),
)
_REDIS_PROMOTE = (
    Goal("lost", 0, "every task published without an error runs"),
    Goal("publish_errors", 0, "no caller of apply_async sees an error"),
    Goal("results_lost", 0, "every result is readable afterwards"),
    Goal("worker_restarts", 0, "no worker exits"),
)
_REDIS_POWER_LOSS = (
    Goal("worker_restarts", 0, "no worker exits (kombu's reconnect must not crash the consumer)"),
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
    checks = [Check("tasks_ran_before_the_fault", bool(figures.get("throughput_before")),
                    "the tier worked before the fault (otherwise nothing below means anything)",
                    figures.get("throughput_before"))]
    for goal in GOALS[(broker, fault)]:
        value = figures.get(goal.figure)
        passed = value is not None and value <= goal.at_most
        checks.append(Check(f"{goal.figure} <= {goal.at_most:g}", passed, f"{goal.why}: measured {value}", value))
    if not GOALS[(broker, fault)]:
        checks.append(Check("measured_only", None, f"{fault} has no goal in {broker} mode: the figures are its price"))
    return checks

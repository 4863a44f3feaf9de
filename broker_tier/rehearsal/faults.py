"""The rehearsal's faults, one record each: the CLI's choices and help, ``scripts/rehearse-all.sh``, the docs'
tables and the goals all come from here. Adding one: docs/rehearsal.md, "Adding a fault".

``python -m broker_tier.rehearsal.faults`` prints the names, one a line (what the series script loops over).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from broker_tier.rehearsal import goals as g
from broker_tier.rehearsal import injection, memory
from broker_tier.rehearsal.util import RehearsalError

BROKERS = ("sqs", "redis")
"""``sqs``: SQS queues (moto), Redis holds results. ``redis``: Redis is broker and result backend."""


@dataclass(frozen=True, kw_only=True)
class RehearsalFault:
    name: str
    help: str
    """One line for ``--help``."""
    what_happens: str
    """The docs' description (Markdown)."""
    name_moves: bool
    """Whether the endpoint's name moves to the promoted replica (after ``--dns-delay``)."""
    recovered: str = ""
    """How the timeline names the moment the fault is over; default: "name moved" or "node back"."""
    inject: Callable[[injection.FaultTarget, injection.FaultSettings], injection.Strike]
    goals: Mapping[str, tuple[g.Goal, ...]]
    """Broker -> the goals a run must meet (every broker of ``BROKERS``; a test holds that)."""
    series_options: Mapping[str, Any] = field(default_factory=dict)
    """Options the series (``scripts/rehearse-all.sh``) runs this fault with, on top of its own."""
    maxmemory_bytes: int | None = None
    """The nodes' ``maxmemory`` for this fault (set when the pair starts); None: unlimited."""


FAILOVER_GOALS = {"sqs": (*g.EVERY_FAILOVER, *g.SQS_ONLY, g.RESUME), "redis": (*g.EVERY_FAILOVER, *g.REDIS_ONLY)}

FAULTS: tuple[RehearsalFault, ...] = (
    RehearsalFault(
        name="promote",
        help="as TestFailover: the replica is promoted, the old primary demoted --split-window later",
        what_happens="what TestFailover does: the replica is promoted (`REPLICAOF NO ONE`); the old primary keeps "
        "taking writes for `--split-window`, then becomes its replica and loses them; writes on connections still "
        "open to it get `READONLY`",
        name_moves=True,
        inject=injection.promote,
        goals=FAILOVER_GOALS,
    ),
    RehearsalFault(
        name="power-loss",
        help="the primary goes silent (nothing answered, nothing closed, new connections hang); the replica is "
        "promoted",
        what_happens="an AZ that loses power or network: the endpoint stops forwarding to the primary in both "
        "directions without closing anything, new connections to it hang, it never answers again; the replica is "
        "promoted",
        name_moves=True,
        inject=injection.power_loss,
        goals={
            "sqs": (*g.EVERY_FAILOVER, *g.SQS_ONLY, g.RESUME_AFTER_SILENCE),
            "redis": (*g.EVERY_FAILOVER, *g.REDIS_ONLY),
        },
    ),
    RehearsalFault(
        name="crash",
        help="the primary's process dies: connections reset, new ones refused; the replica is promoted",
        what_happens="the primary's process dies (SIGKILL): its connections are reset and new ones refused until "
        "the name moves; the replica is promoted",
        name_moves=True,
        inject=injection.crash,
        goals=FAILOVER_GOALS,
    ),
    RehearsalFault(
        name="reboot",
        help="the primary restarts empty, no failover (what runbooks/never-reboot-the-primary.md forbids)",
        what_happens="the primary restarts empty, no failover; its replica resynchronizes from it and empties too "
        "(`runbooks/never-reboot-the-primary.md`): what it destroys is measured, not a goal",
        name_moves=False,
        inject=injection.reboot,
        goals={broker: (g.PUBLISH_ERRORS, g.WORKER_EXITS) for broker in BROKERS},
        series_options={"backlog_seconds": 5.0},
    ),
    RehearsalFault(
        name="memory-full",
        help="the primary fills to its maxmemory (noeviction) with keys without a TTL in the app-cache database, "
        "stays full --full-for seconds, then they are deleted",
        what_happens="an app's cache without a TTL fills Redis to `maxmemory` (8 MiB here) under `noeviction`, as in "
        "the incident the tier's memory alarms exist for: for `--full-for` seconds every write is refused "
        "(`OOM command not allowed`), then the keys are deleted; no failover. The report shows when the memory "
        "alarms would fire (`DatabaseMemoryUsagePercentage`, the configured thresholds, a minute played as a "
        "second)",
        name_moves=False,
        inject=injection.memory_full,
        goals={
            "sqs": (*g.MEMORY_FULL, g.UNACKED),
            "redis": (*g.MEMORY_FULL, g.LEFT_UNACKED, g.STRANDED),
        },
        maxmemory_bytes=memory.MAXMEMORY_BYTES,
        recovered="memory freed",
    ),
)
BY_NAME: dict[str, RehearsalFault] = {fault.name: fault for fault in FAULTS}


def recovered_label(fault: RehearsalFault) -> str:
    return fault.recovered or ("name moved" if fault.name_moves else "node back")


def fault_named(name: str) -> RehearsalFault:
    if name not in BY_NAME:
        raise RehearsalError(f"--fault {name!r} is not allowed; allowed: {', '.join(BY_NAME)}")
    return BY_NAME[name]


def goals_for(broker: str, name: str) -> tuple[g.Goal, ...]:
    """The goals of ``name`` in ``broker`` mode; a RehearsalError (never a KeyError) for an unknown pair."""
    fault = fault_named(name)
    if broker not in fault.goals:
        raise RehearsalError(f"--broker {broker!r} is not allowed for {name}; allowed: {', '.join(fault.goals)}")
    return fault.goals[broker]


def main() -> int:
    print("\n".join(fault.name for fault in FAULTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the failover drill asks of a fault, and the little it gives one: the fault never sees the drill."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from broker_tier.evidence.report import Check
from broker_tier.ops.replication_group import GroupState


class FaultAborted(Exception):
    """The fault ended badly on its own (an experiment failed): the drill stops and says why."""


@dataclass(frozen=True, kw_only=True)
class FaultContext:
    """Everything a drill fault may use: the AWS clients it calls, the tier's fault resources, a way to speak."""

    elasticache: Any
    fis: Any
    az_power_template_ids: tuple[str, ...]
    """The Monitoring stack's AZ power experiment templates (empty when not deployed)."""
    failover_budget: int
    """TestFailover calls allowed in a rolling 24 h."""
    drill_label: str
    """Tags what the fault starts, so it can be traced to this drill."""
    say: Callable[[str], None]
    now: Callable[[], datetime]


class DrillFault(Protocol):
    """A way to make the primary fail over, as the drill runs it: steady state, plan, inject, follow, verify."""

    name: str
    extra_timeout_seconds: float
    """Added to the drill's time-out (a fault that lasts, e.g. an experiment's duration)."""
    detects_role_change: bool
    """True: ElastiCache may publish no "failover completed" event for it, so the drill also watches the roles."""
    expected_alarms: frozenset[str]
    """Alarms (without the tier's prefix) the fault itself sets off; they do not fail the drill."""

    def steady_state(self, group: GroupState) -> list[Check]: ...

    def plan(self, group: GroupState) -> str: ...

    def inject(self, group: GroupState) -> None: ...

    def status(self) -> str:
        """A suffix for the drill's progress line; raises FaultAborted when the fault ended badly."""
        ...

    def finished(self) -> bool: ...

    def verification(self) -> list[Check]: ...

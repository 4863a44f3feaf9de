"""ElastiCache TestFailover as a fault of the failover drill."""

from __future__ import annotations

from datetime import timedelta

from broker_tier.evidence.report import Check
from broker_tier.ops.drill_faults.interface import FaultContext
from broker_tier.ops.replication_group import FAILOVER_CALLED, GroupState, events_since


class ElastiCacheTestFailover:
    """TestFailover on the group's node group; refused when the rolling 24 h budget of calls is spent."""

    name = "test-failover"
    extra_timeout_seconds = 0.0
    detects_role_change = False  # its events are the signal
    expected_alarms: frozenset[str] = frozenset()  # a failover of a healthy group sets off no alarm

    def __init__(self, context: FaultContext) -> None:
        self.context = context

    def steady_state(self, group: GroupState) -> list[Check]:
        return [self.check_failover_budget()]

    def check_failover_budget(self) -> Check:
        end = self.context.now()
        calls = [
            e
            for e in events_since(
                self.context.elasticache, end - timedelta(hours=24), end, source_type="replication-group"
            )
            if FAILOVER_CALLED.search(e["Message"])
        ]
        budget = self.context.failover_budget
        return Check(
            "test_failover_budget",
            len(calls) < budget,
            f"{len(calls)} TestFailover call(s) in the last 24 h; budget {budget}",
            len(calls),
        )

    def plan(self, group: GroupState) -> str:
        return (
            f"TestFailover on {group.group_id}, node group {group.node_group_id} "
            f"(primary {group.the_primary.cluster_id} in {group.the_primary.zone})"
        )

    def inject(self, group: GroupState) -> None:
        self.context.elasticache.test_failover(ReplicationGroupId=group.group_id, NodeGroupId=group.node_group_id)
        self.context.say(f"TestFailover called for node group {group.node_group_id}")

    def status(self) -> str:
        return ""

    def finished(self) -> bool:
        return True

    def verification(self) -> list[Check]:
        return []

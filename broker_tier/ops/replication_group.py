"""Reading a cluster-mode-disabled replication group: its nodes, roles and zones, and its events."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from broker_tier.evidence.errors import OpsError

# Event texts vary between engine versions ("Failover from primary node P to replica node R
# completed", older "Failover to replica node R completed"): match loosely.
FAILOVER_CALLED = re.compile(r"test failover api called", re.IGNORECASE)
FAILOVER_COMPLETED = re.compile(r"failover\b.*\bcompleted", re.IGNORECASE)


@dataclass(frozen=True)
class Node:
    cluster_id: str
    zone: str
    role: str  # "primary" or "replica"


@dataclass(frozen=True)
class GroupState:
    """What the commands need from DescribeReplicationGroups."""

    group_id: str
    status: str
    multi_az: str
    automatic_failover: str
    node_group_id: str
    nodes: tuple[Node, ...]
    arn: str | None = None

    @classmethod
    def from_response(cls, group: dict) -> GroupState:
        (node_group, *others) = group["NodeGroups"]
        if others:
            raise ValueError(
                f"{group['ReplicationGroupId']} has {len(others) + 1} node groups; the tier uses "
                f"cluster mode disabled (one node group)"
            )
        nodes = tuple(
            Node(m["CacheClusterId"], m.get("PreferredAvailabilityZone", "?"), m.get("CurrentRole", "?"))
            for m in node_group["NodeGroupMembers"]
        )
        return cls(
            group["ReplicationGroupId"],
            group["Status"],
            group.get("MultiAZ", "disabled"),
            group.get("AutomaticFailover", "disabled"),
            node_group["NodeGroupId"],
            nodes,
            group.get("ARN"),
        )

    @property
    def primary(self) -> Node | None:
        return next((node for node in self.nodes if node.role == "primary"), None)

    @property
    def the_primary(self) -> Node:
        """The primary; refused (nothing changed) when the group has none, which the steady state checks first."""
        if self.primary is None:
            raise OpsError(f"{self.group_id} has no primary node ({self.describe()})")
        return self.primary

    @property
    def replicas(self) -> list[Node]:
        return [node for node in self.nodes if node.role == "replica"]

    def node(self, cluster_id: str) -> Node | None:
        return next((node for node in self.nodes if node.cluster_id == cluster_id), None)

    def describe(self) -> str:
        return ", ".join(f"{n.cluster_id} {n.role} in {n.zone}" for n in self.nodes)


def describe_group(elasticache, group_id: str) -> GroupState:
    (group,) = elasticache.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"]
    return GroupState.from_response(group)


def events_since(
    elasticache, start: datetime, end: datetime | None = None, *, source_type: str | None = None
) -> list[dict]:
    """ElastiCache events from ``start`` on (DescribeEvents keeps 14 days), oldest first."""
    params: dict[str, Any] = {"StartTime": start}
    if end is not None:
        params["EndTime"] = end
    if source_type:
        params["SourceType"] = source_type
    events = [
        event for page in elasticache.get_paginator("describe_events").paginate(**params) for event in page["Events"]
    ]
    return sorted(events, key=lambda event: event["Date"])


def wait_until_available(elasticache, group_id: str, *, delay_seconds: float, timeout_seconds: float) -> None:
    """boto3's ``replication_group_available`` waiter, bounded by ``timeout_seconds``."""
    attempts = max(1, math.ceil(timeout_seconds / max(delay_seconds, 1)))
    elasticache.get_waiter("replication_group_available").wait(
        ReplicationGroupId=group_id, WaiterConfig={"Delay": delay_seconds, "MaxAttempts": attempts}
    )

"""The faults a rehearsal injects into its Redis pair and endpoint.

- ``promote``: what ElastiCache's TestFailover does. The replica is promoted (``REPLICAOF NO ONE``)
  and the old primary becomes its replica, so writes on connections still open to it get
  ``READONLY``; the endpoint's name moves to the new primary after the DNS delay.
- ``power-loss``: the primary's node disappears (SIGKILL) and its connections are reset, as in an AZ
  power interruption (AWS FIS's ElastiCache action); the replica is promoted and the name moves
  after the DNS delay. Writes the replica had not received are gone (asynchronous replication).
- ``reboot``: the primary restarts empty with no failover, the hazard
  ``runbooks/never-reboot-the-primary.md`` forbids: its replica resynchronizes from it and empties
  too. The name never moves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from broker_tier.rehearsal.endpoint import Endpoint
from broker_tier.rehearsal.redis_pair import RedisNode, RedisPair, wait_for_role
from broker_tier.rehearsal.util import wait_until

Say = Callable[[str], None]


@dataclass(kw_only=True)
class FaultRecord:
    """When a fault struck and when the endpoint reached a writable primary again (Unix times)."""

    name: str
    struck_at: float
    recovered_at: float = 0.0
    """The endpoint moved (promote, power-loss) or the rebooted node answered again (reboot)."""
    details: dict = field(default_factory=dict)


def _before(pair: RedisPair, name: str) -> FaultRecord:
    keys = pair.primary.key_counts()
    # bytes of the primary's writes its replica had not received a moment before the fault
    lag = max(0, pair.primary.replication_offset() - pair.replica.replication_offset())
    return FaultRecord(
        name=name, struck_at=time.time(), details={"keys_before": keys, "replication_lag_bytes_before_fault": lag}
    )


def _move_endpoint(record: FaultRecord, endpoint: Endpoint, node: RedisNode, *, dns_delay: float, say: Say) -> None:
    """The DNS name moves to ``node`` ``dns_delay`` seconds after the fault struck."""
    time.sleep(max(0.0, record.struck_at + dns_delay - time.time()))
    endpoint.point_at(node.address)
    record.recovered_at = time.time()
    say(f"endpoint now points at {node.name}")


def promote(pair: RedisPair, endpoint: Endpoint, *, dns_delay: float, say: Say) -> FaultRecord:
    record = _before(pair, "promote")
    old, new = pair.primary, pair.replica
    promoted_at = new.promote()
    demoted_at = old.follow(new)
    pair.swap_roles()
    # what the old primary took after its replica was promoted: acknowledged, never replicated, gone
    record.details["writes_lost_to_replication_bytes"] = max(0, demoted_at - promoted_at)
    say(
        f"{new.name} promoted; {old.name} demoted to its replica (open connections to it now get READONLY); "
        f"endpoint moves in {dns_delay:g} s"
    )
    _move_endpoint(record, endpoint, new, dns_delay=dns_delay, say=say)
    wait_for_role(old, "slave")
    return record


def power_loss(pair: RedisPair, endpoint: Endpoint, *, dns_delay: float, say: Say) -> FaultRecord:
    record = _before(pair, "power-loss")
    dead, survivor = pair.primary, pair.replica
    reset = endpoint.fail(dead.address)
    last_offset = dead.replication_offset()  # exact: no client reaches it any more
    dead.kill()
    promoted_at = survivor.promote()
    pair.swap_roles()
    record.details["connections_reset"] = reset
    record.details["writes_lost_to_replication_bytes"] = max(0, last_offset - promoted_at)
    say(
        f"{dead.name} lost power ({reset} connections reset); {survivor.name} promoted; endpoint moves in "
        f"{dns_delay:g} s"
    )
    _move_endpoint(record, endpoint, survivor, dns_delay=dns_delay, say=say)
    return record


def reboot(pair: RedisPair, endpoint: Endpoint, *, dns_delay: float, say: Say) -> FaultRecord:
    """``dns_delay`` is unused: a reboot does not fail over, the name stays where it is."""
    record = _before(pair, "reboot")
    node = pair.primary
    reset = endpoint.fail(node.address)
    node.kill()
    say(f"{node.name} (primary) rebooting: {reset} connections reset, no failover")
    node.start()  # empty: nothing is persisted, as on an ElastiCache node without AOF
    endpoint.revive(node.address)
    record.recovered_at = time.time()
    record.details["connections_reset"] = reset
    wait_until(pair.in_sync, 30, "the replica to resynchronize from the rebooted primary")
    record.details["keys_after_reboot"] = {"primary": node.key_counts(), "replica": pair.replica.key_counts()}
    say(
        f"{node.name} back, empty; its replica resynchronized from it: keys now {node.key_counts() or 'none'} "
        f"(before: {record.details['keys_before'] or 'none'})"
    )
    return record


FAULTS: dict[str, Callable[..., FaultRecord]] = {"promote": promote, "power-loss": power_loss, "reboot": reboot}

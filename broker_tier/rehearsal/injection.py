"""How each rehearsal fault is injected into the Redis pair and the endpoint (the records are in ``faults``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from broker_tier.rehearsal import memory
from broker_tier.rehearsal.command_log import CommandLog, LoggedCommand
from broker_tier.rehearsal.endpoint import Endpoint
from broker_tier.rehearsal.redis_pair import RedisNode, RedisPair, wait_for_role
from broker_tier.rehearsal.util import wait_until

Say = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class FaultTarget:
    """What a fault acts on, and who hears about it."""

    pair: RedisPair
    endpoint: Endpoint
    say: Say
    on_promoted: Callable[[RedisNode], None] = lambda node: None
    """Called with the new primary before any client reaches it (the runner notes what was in flight then)."""


@dataclass(frozen=True, kw_only=True)
class FaultSettings:
    dns_delay_seconds: float
    """From the fault to the endpoint's name moving."""
    split_window_seconds: float
    """promote: how long both nodes take writes (the replica promoted, the old primary not yet demoted)."""
    full_seconds: float = 5.0
    """memory-full: how long the primary stays full before the keys that filled it are deleted."""
    cache_database: int = 0
    """memory-full: the app-cache database (the State stack's ``RedisDatabases``), where the keys go."""


@dataclass(kw_only=True)
class Strike:
    """What a fault did, and when (Unix times)."""

    name: str
    struck_at: float
    recovered_at: float = 0.0
    """The endpoint's name moved (promote, power-loss, crash) or the rebooted node answered again (reboot)."""
    split_window: tuple[float, float] | None = None
    """promote: from just before the replica's promotion to the old primary's demotion."""
    window_commands: list[LoggedCommand] = field(default_factory=list)
    """Every command the old primary ran in ``split_window`` (MONITOR): what asynchronous replication loses."""
    details: dict = field(default_factory=dict)
    shaded: list[tuple[float, float, str]] = field(default_factory=list)
    """Periods the timeline shades besides the split window (memory-full: the full period)."""


def _before(pair: RedisPair, name: str) -> Strike:
    keys = pair.primary.key_counts()
    # bytes of the primary's writes its replica had not received a moment before the fault
    lag = max(0, pair.primary.replication_offset() - pair.replica.replication_offset())
    return Strike(
        name=name, struck_at=time.time(), details={"keys_before": keys, "replication_lag_bytes_before_fault": lag}
    )


def _move_endpoint(strike: Strike, target: FaultTarget, node: RedisNode, *, dns_delay: float) -> None:
    """The DNS name moves to ``node`` ``dns_delay`` seconds after the fault struck."""
    time.sleep(max(0.0, strike.struck_at + dns_delay - time.time()))
    target.endpoint.point_at(node.address)
    strike.recovered_at = time.time()
    target.say(f"endpoint now points at {node.name}")


def promote(target: FaultTarget, settings: FaultSettings) -> Strike:
    """TestFailover: the replica is promoted, the old primary demoted ``split_window_seconds`` later."""
    pair = target.pair
    strike = _before(pair, "promote")
    old, new = pair.primary, pair.replica
    with CommandLog(old) as log:
        window_start = time.time()
        promoted_at = new.promote()
        time.sleep(settings.split_window_seconds)
        demoted_at = old.follow(new)
        window_end = time.time()
    pair.swap_roles()
    target.on_promoted(new)
    strike.split_window = (window_start, window_end)
    strike.window_commands = log.between(window_start, window_end)
    strike.details["split_window_measured_seconds"] = round(window_end - window_start, 4)
    # what the old primary took after its replica was promoted: acknowledged, never replicated, gone
    strike.details["writes_lost_to_replication_bytes"] = max(0, demoted_at - promoted_at)
    target.say(
        f"{new.name} promoted; {old.name} demoted to its replica {settings.split_window_seconds * 1000:g} ms later "
        f"(open connections to it now get READONLY); endpoint moves in {settings.dns_delay_seconds:g} s"
    )
    _move_endpoint(strike, target, new, dns_delay=settings.dns_delay_seconds)
    wait_for_role(old, "slave")
    return strike


def power_loss(target: FaultTarget, settings: FaultSettings) -> Strike:
    """The primary goes silent for good: nothing answered, nothing closed; the replica is promoted."""
    pair, endpoint = target.pair, target.endpoint
    strike = _before(pair, "power-loss")
    dead, survivor = pair.primary, pair.replica
    hanging = endpoint.silence(dead.address)
    last_offset = dead.replication_offset()  # exact: no client reaches it any more
    dead.kill()  # it never answers again; the endpoint forwards nothing to it, so nobody sees it go
    promoted_at = survivor.promote()
    pair.swap_roles()
    target.on_promoted(survivor)
    strike.details["connections_silenced"] = hanging
    strike.details["writes_lost_to_replication_bytes"] = max(0, last_offset - promoted_at)
    target.say(
        f"{dead.name} went silent ({hanging} open connections now hang, new ones too); {survivor.name} promoted; "
        f"endpoint moves in {settings.dns_delay_seconds:g} s"
    )
    _move_endpoint(strike, target, survivor, dns_delay=settings.dns_delay_seconds)
    return strike


def crash(target: FaultTarget, settings: FaultSettings) -> Strike:
    """The primary's process dies: its connections reset, new ones refused; the replica is promoted."""
    pair, endpoint = target.pair, target.endpoint
    strike = _before(pair, "crash")
    dead, survivor = pair.primary, pair.replica
    reset = endpoint.fail(dead.address)
    last_offset = dead.replication_offset()  # exact: no client reaches it any more
    dead.kill()
    promoted_at = survivor.promote()
    pair.swap_roles()
    target.on_promoted(survivor)
    strike.details["connections_reset"] = reset
    strike.details["writes_lost_to_replication_bytes"] = max(0, last_offset - promoted_at)
    target.say(
        f"{dead.name} crashed ({reset} connections reset); {survivor.name} promoted; endpoint moves in "
        f"{settings.dns_delay_seconds:g} s"
    )
    _move_endpoint(strike, target, survivor, dns_delay=settings.dns_delay_seconds)
    return strike


def reboot(target: FaultTarget, settings: FaultSettings) -> Strike:
    """The primary restarts empty with no failover; the name stays (``settings`` unused)."""
    pair, endpoint = target.pair, target.endpoint
    strike = _before(pair, "reboot")
    node = pair.primary
    reset = endpoint.fail(node.address)
    node.kill()
    target.say(f"{node.name} (primary) rebooting: {reset} connections reset, no failover")
    node.start()  # empty: nothing is persisted, as on an ElastiCache node without AOF
    endpoint.revive(node.address)
    strike.recovered_at = time.time()
    strike.details["connections_reset"] = reset
    wait_until(pair.in_sync, 30, "the replica to resynchronize from the rebooted primary")
    strike.details["keys_after_reboot"] = {"primary": node.key_counts(), "replica": pair.replica.key_counts()}
    target.say(
        f"{node.name} back, empty; its replica resynchronized from it: keys now {node.key_counts() or 'none'} "
        f"(before: {strike.details['keys_before'] or 'none'})"
    )
    return strike


def memory_full(target: FaultTarget, settings: FaultSettings) -> Strike:
    """The primary fills to its ``maxmemory`` with keys without a TTL in the app-cache database, stays full for
    ``full_seconds`` (``noeviction``: every write refused), then those keys are deleted. No failover."""
    node = target.pair.primary
    strike = _before(target.pair, "memory-full")
    client = node.client(settings.cache_database)
    fill = memory.fill_until_refused(client, memory.Fill())
    target.say(
        f"{node.name} full: {fill.keys} keys without a TTL ({fill.bytes / 2**20:.1f} MiB) in database "
        f"{settings.cache_database}; writes now get {fill.refusal!r}; held for {settings.full_seconds:g} s"
    )
    memory.hold_full(client, fill, fill.full_at + settings.full_seconds)
    deleted = memory.free(client)
    strike.recovered_at = time.time()
    strike.shaded.append((fill.full_at, strike.recovered_at, "Redis full (noeviction)"))
    strike.details.update(
        memory_full_at=fill.full_at,
        memory_fill_keys=fill.keys,
        memory_fill_bytes=fill.bytes,
        memory_fill_top_ups=fill.top_ups,
        memory_refusal=fill.refusal,
        memory_keys_deleted=deleted,
    )
    target.say(f"memory freed: {deleted} keys deleted")
    return strike

"""Each due tick of each schedule entry published at most once, however many Beats run
(docs/decisions/beat-fence.md).

Before it publishes a due tick, Beat claims it in a DynamoDB table with a conditional write keyed by
``<entry name>@<canonical tick time>``; only the Beat whose write creates the item publishes. Two Beats started at
different times agree on the tick: a crontab (or solar) entry's tick is its scheduled occurrence, and an interval
entry runs at whole multiples of its period since the Unix epoch (a 60 s entry on the minute), so that both see the
same slots. A tick that cannot be claimed (the table unreachable) is skipped: logged and counted, never published
unfenced (the design errs towards at most once). A tick that fell due while Beat was stalled is claimed as missed
once Beat runs again, so the count of ticks published by no Beat is known. Beat publishes the counts to CloudWatch
every minute (``BEAT_NAMESPACE``), where the alarms watch them.
"""

from __future__ import annotations

import enum
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from celery import signals
from celery.schedules import BaseSchedule, crontab, schedstate
from celery.schedules import schedule as interval_schedule
from celery.utils.time import maybe_make_aware

import broker_tier_contract as contract
from broker_tier_celery.environment import TierEnvironment
from broker_tier_celery.periodic_metrics import PeriodicPublisher

logger = logging.getLogger("broker_tier.beat_fence")

FENCE_CONNECT_TIMEOUT_SECONDS = 1
FENCE_READ_TIMEOUT_SECONDS = 2
FENCE_ATTEMPTS = 2
"""A claim gives up within about 2 x (1 + 2) s: DynamoDB answers in milliseconds, and Beat's loop waits meanwhile."""
FENCE_PAUSE_SECONDS = 10.0
"""After a claim that failed, further claims fail at once for this long (skipped, counted): with many entries due
together an unreachable table would otherwise stall Beat past its health check."""
FENCE_RETENTION_SECONDS = 2 * 86_400
"""A fence item expires (DynamoDB TTL) two days after its tick: far longer than any Beat waits to claim a tick."""
GAP_TICKS_CHECKED = 100
"""At most this many ticks that fell due while Beat was stalled are claimed as missed one by one; older ones are
counted as missed without a claim."""
OCCURRENCES_LOOKED_AT = 10_000
"""A crontab entry's occurrences since its last run are enumerated up to this many (a week of minutes)."""


class Outcome(enum.StrEnum):
    """What a fence item says of its tick."""

    PUBLISHED = "published"
    SKIPPED = "skipped"
    MISSED = "missed"


class Claim(enum.Enum):
    CLAIMED = "claimed"
    """This Beat wrote the item: it alone acts on the tick."""
    TAKEN = "taken"
    """The item existed: another Beat claimed the tick first."""
    UNAVAILABLE = "unavailable"
    """The table could not be written: nobody knows who has the tick."""


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    detail: str = ""
    """The owner of a taken tick, or the error that made the fence unavailable."""


# -- canonical ticks --------------------------------------------------------------------------------
def _aware(moment: datetime) -> datetime:
    aware: datetime = maybe_make_aware(moment)  # a naive time is UTC (Celery's own rule)
    return aware


def _timestamp(moment: datetime) -> float:
    return _aware(moment).timestamp()


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def tick_key(entry_name: str, tick: datetime) -> str:
    """The fence item's key: ``<entry>@<tick, ISO 8601 UTC to the millisecond>``."""
    return f"{entry_name}@{tick.astimezone(UTC).isoformat(timespec='milliseconds')}"


@dataclass(frozen=True)
class DueTicks:
    """The ticks of one entry that fell due since its last run."""

    current: datetime
    """The latest: the one published now."""
    gap: tuple[datetime, ...] = ()
    """Earlier ones (oldest first) that fell due while Beat was stalled, at most ``GAP_TICKS_CHECKED``."""
    unchecked: int = 0
    """Earlier ones still, counted only."""


def _aligned(period: float, last: float, now: float) -> DueTicks | None:
    first, latest = math.floor(last / period) + 1, math.floor(now / period)
    if latest < first:
        return None
    gap = range(max(first, latest - GAP_TICKS_CHECKED), latest)
    return DueTicks(
        current=_utc(latest * period),
        gap=tuple(_utc(slot * period) for slot in gap),
        unchecked=max(0, latest - GAP_TICKS_CHECKED - first),
    )


def next_occurrence(schedule: BaseSchedule, after: datetime) -> datetime:
    """The schedule's first occurrence after ``after``, to the second (a crontab's to the minute): Celery gives it as
    a delay from its own clock, so rounding takes that clock's reading away."""
    moment = _timestamp(schedule.now()) + schedule.remaining_estimate(after).total_seconds()
    unit = 60 if isinstance(schedule, crontab) else 1
    return _utc(round(moment / unit) * unit)


def due_ticks(schedule: BaseSchedule, since: datetime, now: datetime) -> DueTicks | None:
    """The ticks of an entry that fell due after ``since`` (its last run, or the last tick handled) and at most
    ``now``: an interval entry's slots, a crontab's (or any other schedule's) occurrences; None: none."""
    last, moment = _timestamp(since), _timestamp(now)
    if isinstance(schedule, interval_schedule):
        return _aligned(schedule.run_every.total_seconds(), last, moment)
    occurrences: list[datetime] = []
    after = since
    while len(occurrences) < OCCURRENCES_LOOKED_AT:
        found = next_occurrence(schedule, after)
        if found.timestamp() > moment or found.timestamp() <= last or (occurrences and found <= occurrences[-1]):
            break
        occurrences.append(found)
        after = found
    if not occurrences:
        return None
    earlier = occurrences[:-1]
    return DueTicks(
        current=occurrences[-1],
        gap=tuple(earlier[-GAP_TICKS_CHECKED:]),
        unchecked=max(0, len(earlier) - GAP_TICKS_CHECKED),
    )


def aligned_is_due(schedule: interval_schedule, last_run_at: datetime, now: float) -> schedstate:
    """An interval entry is due once a multiple of its period since the epoch passed after its last run; the next
    check is at the next multiple."""
    period = schedule.run_every.total_seconds()
    slot = math.floor(now / period)
    wait = (slot + 1) * period - now
    return schedstate(slot > math.floor(_timestamp(last_run_at) / period), wait)


# -- the fence ----------------------------------------------------------------------------------
class DynamoFence:
    """Conditional ``PutItem`` on the fence table: the first write of a key wins."""

    def __init__(self, table: str, *, region: str | None, owner: str | None = None) -> None:
        self.table = table
        self.region = region
        self.owner = owner or f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self.paused_until = 0.0
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            import boto3  # here: only Beat needs it
            from botocore.config import Config

            self._client = boto3.session.Session().client(
                "dynamodb",
                region_name=self.region,
                config=Config(
                    connect_timeout=FENCE_CONNECT_TIMEOUT_SECONDS,
                    read_timeout=FENCE_READ_TIMEOUT_SECONDS,
                    retries={"mode": "standard", "total_max_attempts": FENCE_ATTEMPTS},
                ),
            )
        return self._client

    def _item(self, key: str, outcome: Outcome, tick: datetime) -> dict[str, dict[str, str]]:
        name, outcome_, owner, claimed_at, expires_at = contract.BEAT_FENCE_ATTRIBUTES
        return {
            name: {"S": key},
            outcome_: {"S": outcome.value},
            owner: {"S": self.owner},
            claimed_at: {"N": f"{time.time():.3f}"},
            expires_at: {"N": str(int(tick.timestamp()) + FENCE_RETENTION_SECONDS)},
        }

    def claim(self, key: str, outcome: Outcome, tick: datetime) -> ClaimResult:
        """Create the tick's item, unless it exists. Never raises."""
        if time.monotonic() < self.paused_until:
            return ClaimResult(Claim.UNAVAILABLE, "the fence failed moments ago (paused)")
        try:
            self.client().put_item(
                TableName=self.table,
                Item=self._item(key, outcome, tick),
                ConditionExpression="attribute_not_exists(#key)",
                ExpressionAttributeNames={"#key": contract.BEAT_FENCE_KEY},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as error:  # noqa: BLE001 - any failure is a skipped tick, never Beat's end
            return self._refused(error, outcome)
        return ClaimResult(Claim.CLAIMED)

    def _refused(self, error: Exception, outcome: Outcome) -> ClaimResult:
        response = getattr(error, "response", None) or {}
        if response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            old = response.get("Item") or {}
            owner = old.get("owner", {}).get("S", "")
            if owner == self.owner and old.get("outcome", {}).get("S") == outcome.value:
                # our own write, whose answer was lost and retried (a Beat never claims one tick twice)
                return ClaimResult(Claim.CLAIMED)
            return ClaimResult(Claim.TAKEN, f"{old.get('outcome', {}).get('S', '?')} by {owner or '?'}")
        self.paused_until = time.monotonic() + FENCE_PAUSE_SECONDS
        return ClaimResult(Claim.UNAVAILABLE, f"{type(error).__name__}: {' '.join(str(error).split())}")

    def record_skipped(self, key: str, tick: datetime) -> None:
        """Our claim's item says skipped, not published (best effort: the ledger's truth, not the fence's)."""
        try:
            self.client().put_item(
                TableName=self.table,
                Item=self._item(key, Outcome.SKIPPED, tick),
                ConditionExpression="#owner = :me",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":me": {"S": self.owner}},
            )
        except Exception as error:  # noqa: BLE001 - the log line and the count say it already
            logger.debug("could not record tick %s as skipped: %s", key, error)


# -- counts ---------------------------------------------------------------------------------------
@dataclass
class TickCounts:
    """Ticks by what became of them, since the last publication to CloudWatch (thread-safe)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(contract.BEAT_TICK_METRICS, 0))
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(contract.BEAT_TICK_METRICS, 0))
    """Since Beat started (for logs and tests)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, metric: str, count: int = 1) -> None:
        with self.lock:
            self.counts[metric] += count
            self.totals[metric] += count

    def take(self) -> dict[str, int]:
        with self.lock:
            taken, self.counts = self.counts, dict.fromkeys(contract.BEAT_TICK_METRICS, 0)
        return taken

    def give_back(self, taken: dict[str, int]) -> None:
        with self.lock:
            for metric, count in taken.items():
                self.counts[metric] += count


class TickMetricsPublisher(PeriodicPublisher):
    """Publishes the :class:`TickCounts` of each period to CloudWatch (zeros too: a flat line is news)."""

    what = "Beat tick metrics"

    def __init__(
        self,
        counts: TickCounts,
        *,
        environment: str,
        region: str | None,
        period_seconds: float = contract.REDIS_BACKLOG_PERIOD_SECONDS,
    ) -> None:
        super().__init__(
            thread_name="broker-tier-beat-tick-metrics", region=region, period_seconds=period_seconds, logger=logger
        )
        self.counts = counts
        self.environment = environment

    def publish_once(self) -> bool:
        at, taken = datetime.now(UTC), self.counts.take()
        dimensions = [{"Name": contract.BEAT_DIMENSIONS[0], "Value": self.environment}]
        try:
            self.cloudwatch().put_metric_data(
                Namespace=contract.BEAT_NAMESPACE,
                MetricData=[
                    {"MetricName": name, "Dimensions": dimensions, "Timestamp": at, "Value": count, "Unit": "Count"}
                    for name, count in taken.items()
                ],
            )
        except Exception as error:  # noqa: BLE001 - a period's failure, never the thread's end
            self.counts.give_back(taken)  # counted in the next publication instead
            return self.failed("could not be published to CloudWatch", error)
        return self.succeeded(", ".join(f"{name} {count}" for name, count in taken.items()))


# -- Beat's scheduler, fenced -----------------------------------------------------------------------
class FencedScheduling:
    """Replaces a running scheduler's ``is_due`` (interval entries: aligned to the epoch) and ``apply_entry`` (claim,
    then publish) on the instance, whichever scheduler class Beat runs."""

    def __init__(self, fence: DynamoFence, counts: TickCounts, *, clock: Callable[[], float] = time.time) -> None:
        self.fence = fence
        self.counts = counts
        self.clock = clock
        self.handled: dict[str, datetime] = {}
        """Per entry, the last tick this Beat handled: never handled twice, whatever its last run says."""

    def install(self, scheduler: Any) -> None:
        original_is_due = scheduler.is_due

        def is_due(entry: Any) -> Any:
            if isinstance(entry.schedule, interval_schedule):
                return aligned_is_due(entry.schedule, entry.last_run_at, self.clock())
            return original_is_due(entry)

        def apply_entry(entry: Any, producer: Any = None) -> None:
            self.apply_entry(scheduler, entry, producer)

        scheduler.is_due = is_due
        scheduler.apply_entry = apply_entry
        logger.info(
            "Beat fence: each due tick is claimed in DynamoDB table %s before it is published (owner %s); interval "
            "entries run at multiples of their period since the epoch",
            self.fence.table,
            self.fence.owner,
        )

    def apply_entry(self, scheduler: Any, entry: Any, producer: Any) -> None:
        """``Scheduler.apply_entry``, fenced: ``entry`` still carries the last run before this one (``reserve``
        advanced the schedule's copy)."""
        now, since, handled = _utc(self.clock()), _aware(entry.last_run_at), self.handled.get(entry.name)
        ticks = due_ticks(entry.schedule, since if handled is None else max(since, handled), now)
        if ticks is None:
            if handled is not None:  # its last tick was handled already (a run that began just before a boundary)
                logger.debug("Scheduler: %s has no tick due after %s", entry.name, handled)
                return
            ticks = DueTicks(current=_utc(round(now.timestamp())))  # a schedule with no occurrences to name
        self.handled[entry.name] = ticks.current
        key = tick_key(entry.name, ticks.current)
        result = self.fence.claim(key, Outcome.PUBLISHED, ticks.current)
        if result.claim is Claim.CLAIMED:
            self._publish(scheduler, entry, producer, key, ticks.current)
        elif result.claim is Claim.TAKEN:
            self.counts.add(contract.BEAT_TICKS_FENCED_OFF)
            logger.info("Scheduler: tick %s of %s not sent: already claimed (%s)", key, entry.task, result.detail)
        else:
            self.counts.add(contract.BEAT_TICKS_SKIPPED)
            logger.warning(
                "Scheduler: tick %s of %s SKIPPED, not sent: the fence could not be written (%s); sending it unfenced "
                "could run it twice",
                key,
                entry.task,
                result.detail,
            )
        self._claim_gap(entry, ticks)

    def _publish(self, scheduler: Any, entry: Any, producer: Any, key: str, tick: datetime) -> None:
        logger.info("Scheduler: Sending due task %s (%s), tick %s", entry.name, entry.task, key)
        headers = {**(entry.options.get("headers") or {}), contract.TICK_HEADER: key}
        entry.options = {**entry.options, "headers": headers}  # this run's copy only (reserve made the next)
        try:
            scheduler.apply_async(entry, producer=producer, advance=False)
        except Exception as error:  # noqa: BLE001 - Celery's own apply_entry logs and goes on, as this does
            self._not_sent(key, tick, entry, f"claimed, but the publish failed: {error}")
        except BaseException:  # Beat stopping: its SIGTERM handler raises SystemExit wherever Beat is
            self._not_sent(key, tick, entry, "claimed, but Beat stopped before it was sent")
            raise
        else:
            self.counts.add(contract.BEAT_TICKS_PUBLISHED)

    def _not_sent(self, key: str, tick: datetime, entry: Any, why: str) -> None:
        self.counts.add(contract.BEAT_TICKS_SKIPPED)
        logger.error("Scheduler: tick %s of %s SKIPPED: %s", key, entry.task, why)
        self.fence.record_skipped(key, tick)

    def _claim_gap(self, entry: Any, ticks: DueTicks) -> None:
        """Ticks that fell due while this Beat was stalled: each one nobody claimed is claimed as missed."""
        missed = []
        for tick in ticks.gap:
            key = tick_key(entry.name, tick)
            result = self.fence.claim(key, Outcome.MISSED, tick)
            if result.claim is Claim.CLAIMED:
                missed.append(key)
            elif result.claim is Claim.UNAVAILABLE:
                missed.append(f"{key} (not verifiable: {result.detail})")
        if missed or ticks.unchecked:
            self.counts.add(contract.BEAT_TICKS_MISSED, len(missed) + ticks.unchecked)
            logger.warning(
                "Scheduler: %d tick(s) of %s MISSED: they fell due while this Beat was stalled and no Beat sent them: "
                "%s%s",
                len(missed) + ticks.unchecked,
                entry.name,
                ", ".join(missed),
                f" (and {ticks.unchecked} earlier ones)" if ticks.unchecked else "",
            )


def install(app: Any, env: TierEnvironment) -> None:
    """Connect ``beat_init`` for ``app``: its Beat's scheduler is fenced when the stack names a fence table, and its
    tick counts are published when the environment name is known."""

    def on_beat_init(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        if not env.beat_fence_table:
            logger.info(
                "Beat fence: off (%s is not set; the stack sets it): a second Beat would send every tick again",
                contract.ContainerEnvironment.BEAT_FENCE_TABLE.name,
            )
            return
        counts = TickCounts()
        FencedScheduling(DynamoFence(env.beat_fence_table, region=env.region), counts).install(sender.scheduler)
        if env.environment:
            TickMetricsPublisher(counts, environment=env.environment, region=env.region).start()

    signals.beat_init.connect(on_beat_init, weak=False, dispatch_uid=f"broker-tier-{id(app)}-beat-fence")


__all__ = [
    "Claim",
    "ClaimResult",
    "DueTicks",
    "DynamoFence",
    "FencedScheduling",
    "Outcome",
    "TickCounts",
    "TickMetricsPublisher",
    "aligned_is_due",
    "due_ticks",
    "install",
    "next_occurrence",
    "tick_key",
]

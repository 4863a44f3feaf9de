"""Beat's fence: canonical ticks two Beats agree on, the DynamoDB claim (moto's server on loopback), and real Celery
schedulers that publish each due tick once, skip (logged, counted, published to CloudWatch) the ticks they cannot
claim, and claim as missed the ticks that fell due while they were stalled. Two real Beat processes through a Redis
failover: tests/worker/integration/test_two_beats.py."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from celery import Celery
from celery.beat import Scheduler
from celery.schedules import crontab, schedule
from fake_endpoint import CannedEndpoint, CannedResponse
from loopback import free_port
from moto_server import aws_at, moto_server

import broker_tier_contract as contract
from broker_tier_celery import beat_fence
from broker_tier_celery.beat_fence import (
    GAP_TICKS_CHECKED,
    Claim,
    DynamoFence,
    FencedScheduling,
    Outcome,
    TickCounts,
    TickMetricsPublisher,
    aligned_is_due,
    due_ticks,
    tick_key,
)

REGION = "eu-west-1"
pytestmark = pytest.mark.xdist_group("beat-fence-moto")  # one pytest-xdist worker starts moto once
APP = Celery("fence-test")
APP.conf.update(timezone="UTC", enable_utc=True)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- canonical ticks ----------------------------------------------------------------------------------
def test_two_beats_started_at_different_times_agree_on_each_interval_tick():
    every_minute = schedule(timedelta(seconds=60), app=APP)
    # one Beat started at :10.3, the other at :47.9: both due once 12:01:00 passed, and it is the same tick
    for last_run, now in (
        (at("2026-01-01T12:00:10.3"), at("2026-01-01T12:01:00.02")),
        (at("2026-01-01T12:00:47.9"), at("2026-01-01T12:01:00.9")),
    ):
        ticks = due_ticks(every_minute, last_run, now)
        assert ticks is not None and (ticks.current, ticks.gap, ticks.unchecked) == (at("2026-01-01T12:01:00"), (), 0)
    assert tick_key("report", at("2026-01-01T12:01:00")) == "report@2026-01-01T12:01:00.000+00:00"
    # due exactly when a multiple of the period since the epoch passed after the last run; else the wait to it
    last = at("2026-01-01T12:00:10.3")
    assert aligned_is_due(every_minute, last, at("2026-01-01T12:00:59.5").timestamp()) == (False, pytest.approx(0.5))
    assert aligned_is_due(every_minute, last, at("2026-01-01T12:01:00.25").timestamp()) == (True, pytest.approx(59.75))


def test_crontab_ticks_are_the_scheduled_minute_whichever_beat_computes_them():
    quarter_hours = crontab(minute="*/15", app=APP)
    now = datetime.now(UTC)
    due = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    for last_run in (due - timedelta(minutes=15) + timedelta(seconds=0.2), due - timedelta(minutes=9, seconds=31)):
        ticks = due_ticks(quarter_hours, last_run, now)
        assert ticks is not None and (ticks.current, ticks.gap) == (due, ())
    # a Beat stalled for an hour: the latest occurrence is the tick, the three before it the gap
    ticks = due_ticks(quarter_hours, due - timedelta(minutes=60) + timedelta(seconds=1), now)
    assert (
        ticks is not None
        and ticks.current == due
        and ticks.gap == tuple(due - timedelta(minutes=15 * n) for n in (3, 2, 1))
    )


def test_a_long_stall_claims_the_latest_gap_ticks_and_counts_the_older_ones():
    every_second = schedule(timedelta(seconds=1), app=APP)
    now = at("2026-01-01T12:10:00.4")
    ticks = due_ticks(every_second, now - timedelta(seconds=500), now)
    assert ticks is not None and ticks.current == at("2026-01-01T12:10:00")
    assert len(ticks.gap) == GAP_TICKS_CHECKED and ticks.gap[-1] == at("2026-01-01T12:09:59")
    assert ticks.unchecked == 499 - GAP_TICKS_CHECKED  # 499 whole seconds passed before the current one


# -- the fence, against moto's DynamoDB -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moto_endpoint():
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(monkeypatch, moto_endpoint):
    aws_at(monkeypatch, moto_endpoint, REGION)
    return moto_endpoint


def create_fence_table(name: str) -> None:
    """The table as the State stack declares it (key and TTL; encryption and billing are the stack's tests')."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": contract.BEAT_FENCE_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": contract.BEAT_FENCE_KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": contract.BEAT_FENCE_TTL_ATTRIBUTE},
    )


@pytest.fixture
def table(aws, request) -> str:
    name = f"fence-{request.node.name[:40].replace('[', '-').replace(']', '')}-{time.time_ns() % 10**6}"
    create_fence_table(name)
    return name


def fence_items(table: str) -> dict[str, dict]:
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=table)["Items"]
    return {item["tick"]["S"]: {name: next(iter(value.values())) for name, value in item.items()} for item in items}


def test_the_first_claim_of_a_tick_wins_and_a_lost_answer_is_not_taken_for_a_rival(table):
    tick = at("2026-01-01T12:01:00")
    first, second = DynamoFence(table, region=REGION, owner="beat-a"), DynamoFence(table, region=REGION, owner="beat-b")
    assert first.claim("report@1", Outcome.PUBLISHED, tick).claim is Claim.CLAIMED
    taken = second.claim("report@1", Outcome.PUBLISHED, tick)
    assert (taken.claim, taken.detail) == (Claim.TAKEN, "published by beat-a")
    # a retried write whose first answer was lost finds its own item: still ours
    assert first.claim("report@1", Outcome.PUBLISHED, tick).claim is Claim.CLAIMED
    (item,) = fence_items(table).values()
    assert set(item) == set(contract.BEAT_FENCE_ATTRIBUTES)
    assert (item["outcome"], item["owner"]) == ("published", "beat-a")
    assert int(item["expires_at"]) == int(tick.timestamp()) + beat_fence.FENCE_RETENTION_SECONDS


def test_an_unreachable_table_makes_the_claim_unavailable_and_pauses_the_fence(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    fence = DynamoFence("fence", region=REGION, owner="beat-a")
    started = time.monotonic()
    result = fence.claim("report@1", Outcome.PUBLISHED, at("2026-01-01T12:01:00"))
    took = time.monotonic() - started
    assert result.claim is Claim.UNAVAILABLE and "EndpointConnectionError" in result.detail
    assert took < beat_fence.FENCE_ATTEMPTS * (beat_fence.FENCE_CONNECT_TIMEOUT_SECONDS + 1) + 2
    # the next claims fail at once: a Beat with many entries due does not stall past its health check
    started = time.monotonic()
    assert fence.claim("report@2", Outcome.PUBLISHED, at("2026-01-01T12:02:00")).claim is Claim.UNAVAILABLE
    assert time.monotonic() - started < 0.1


# -- real schedulers ---------------------------------------------------------------------------------------------
def scheduler_app(name: str) -> Celery:
    """Celery with the in-memory broker (shared by the process's apps) and one entry due every second."""
    app = Celery(name, broker="memory://", backend="disabled://")
    app.conf.update(
        timezone="UTC",
        beat_schedule={"every-second": {"task": "fence.tick", "schedule": 1.0}},
        beat_max_loop_interval=1,
    )
    return app


def run_scheduler(scheduler: Scheduler, until: float, done=lambda: False) -> None:
    """Beat's loop (``Service.start``), until ``until`` or ``done()``."""
    while (remaining := until - time.monotonic()) > 0 and not done():
        time.sleep(min(max(scheduler.tick(), 0.0), remaining, 0.5))


def published_ticks(app: Celery) -> list[str]:
    """The tick header of every message the schedulers published, drained from the in-memory queue."""
    found = []
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        while (message := channel.basic_get("celery", no_ack=True)) is not None:
            found.append(message.headers[contract.TICK_HEADER])
    return found


def test_two_schedulers_publish_each_due_tick_once(table):
    app = scheduler_app("two-schedulers")
    published_ticks(app)  # an empty queue to start with
    counts = [TickCounts(), TickCounts()]
    schedulers = []
    for number, count in enumerate(counts):
        scheduler = Scheduler(app, lazy=False)
        FencedScheduling(DynamoFence(table, region=REGION, owner=f"beat-{number}"), count).install(scheduler)
        schedulers.append(scheduler)
    until = time.monotonic() + 15  # a bound for a loaded machine; three ticks take three seconds

    def done() -> bool:
        return sum(count.totals[contract.BEAT_TICKS_PUBLISHED] for count in counts) >= 3

    threads = [threading.Thread(target=run_scheduler, args=(s, until, done)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    ticks = published_ticks(app)
    claims = fence_items(table)
    assert len(ticks) >= 3, ticks
    assert sorted(ticks) == sorted(set(ticks))  # none twice
    assert set(ticks) == {key for key, item in claims.items() if item["outcome"] == "published"}
    assert all(key.startswith("every-second@") and key.endswith(".000+00:00") for key in ticks)  # whole seconds
    published = sum(count.totals[contract.BEAT_TICKS_PUBLISHED] for count in counts)
    fenced_off = sum(count.totals[contract.BEAT_TICKS_FENCED_OFF] for count in counts)
    # the other found at least one taken (how many depends on how the two threads are scheduled on a loaded machine)
    assert published == len(ticks) and fenced_off >= 1


def warnings_of(caplog) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == "broker_tier.beat_fence"
    ]


def cloudwatch_sum(environment: str, metric: str) -> float:
    now = datetime.now(UTC)
    datapoints = boto3.client("cloudwatch", region_name=REGION).get_metric_statistics(
        Namespace=contract.BEAT_NAMESPACE,
        MetricName=metric,
        Dimensions=[{"Name": "Environment", "Value": environment}],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=5),
        Period=3600,
        Statistics=["Sum"],
    )["Datapoints"]
    return sum(point["Sum"] for point in datapoints)


def test_a_tick_the_fence_cannot_claim_is_skipped_logged_counted_and_published_to_cloudwatch(aws, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="broker_tier.beat_fence")
    app = scheduler_app("skipping")
    published_ticks(app)
    counts = TickCounts()
    with CannedEndpoint(CannedResponse(500, '{"__type": "InternalServerError"}', "application/x-amz-json-1.0")) as down:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", down.url)  # DynamoDB fails; CloudWatch is moto's
        scheduler = Scheduler(app, lazy=False)
        FencedScheduling(DynamoFence("fence", region=REGION, owner="beat-a"), counts).install(scheduler)
        lost = (contract.BEAT_TICKS_SKIPPED, contract.BEAT_TICKS_MISSED)
        run_scheduler(scheduler, time.monotonic() + 15, lambda: sum(counts.totals[m] for m in lost) >= 2)
        attempts = down.requests
    skipped, missed = counts.totals[contract.BEAT_TICKS_SKIPPED], counts.totals[contract.BEAT_TICKS_MISSED]
    assert published_ticks(app) == []  # never sent unfenced
    # each due tick skipped, or (when the first claim's retries outlasted a second) missed: none unaccounted for
    assert skipped >= 1 and skipped + missed >= 2 and counts.totals[contract.BEAT_TICKS_PUBLISHED] == 0
    assert 1 <= attempts <= beat_fence.FENCE_ATTEMPTS  # then paused: the later ticks fail at once
    lines = warnings_of(caplog)
    assert len([x for x in lines if "SKIPPED, not sent: the fence could not be written" in x]) == skipped
    assert len(lines) == skipped + (1 if missed else 0), lines
    environment = f"fence{time.time_ns() % 10**8}"
    assert TickMetricsPublisher(counts, environment=environment, region=REGION).publish_once()
    assert cloudwatch_sum(environment, contract.BEAT_TICKS_SKIPPED) == skipped
    assert cloudwatch_sum(environment, contract.BEAT_TICKS_MISSED) == missed
    assert cloudwatch_sum(environment, contract.BEAT_TICKS_PUBLISHED) == 0


def test_ticks_that_fell_due_while_a_beat_was_stalled_are_claimed_as_missed_unless_another_beat_sent_them(
    table, caplog
):
    caplog.set_level(logging.INFO, logger="broker_tier.beat_fence")
    app = scheduler_app("stalled")
    published_ticks(app)
    scheduler = Scheduler(app, lazy=False)
    counts, clock = TickCounts(), [time.time()]
    FencedScheduling(DynamoFence(table, region=REGION, owner="stalled"), counts, clock=lambda: clock[0]).install(
        scheduler
    )
    entry = scheduler.schedule["every-second"]
    now = int(clock[0])
    entry.last_run_at = datetime.fromtimestamp(now - 5.5, UTC)  # stalled since 5.5 s ago
    # another Beat sent one of the ticks in between
    DynamoFence(table, region=REGION, owner="other").claim(
        tick_key("every-second", datetime.fromtimestamp(now - 3, UTC)), Outcome.PUBLISHED, at("2026-01-01T00:00:00")
    )
    clock[0] = now + 0.2
    scheduler.apply_entry(entry, producer=scheduler.producer)
    claims = fence_items(table)
    outcomes = {key.split("@")[1][11:19]: item["outcome"] for key, item in claims.items()}
    stamp = lambda seconds: datetime.fromtimestamp(now - seconds, UTC).strftime("%H:%M:%S")  # noqa: E731
    assert outcomes == {
        stamp(0): "published",
        stamp(1): "missed",
        stamp(2): "missed",
        stamp(3): "published",  # the other Beat's
        stamp(4): "missed",
        stamp(5): "missed",
    }
    assert counts.totals[contract.BEAT_TICKS_MISSED] == 4 and counts.totals[contract.BEAT_TICKS_PUBLISHED] == 1
    (line,) = [x for x in warnings_of(caplog) if "MISSED" in x]
    assert line.startswith("Scheduler: 4 tick(s) of every-second MISSED")
    assert json.dumps(published_ticks(app)) == json.dumps([tick_key("every-second", datetime.fromtimestamp(now, UTC))])


def test_a_run_that_began_just_before_a_boundary_does_not_handle_the_next_tick_twice(table):
    """Celery's reserve() stamps the run's start: a run that began a moment before a boundary and claimed the tick
    after it must not claim (and send) that tick again on its next run."""
    app = scheduler_app("boundary")
    published_ticks(app)
    scheduler = Scheduler(app, lazy=False)
    counts, clock = TickCounts(), [0.0]
    FencedScheduling(DynamoFence(table, region=REGION, owner="edge"), counts, clock=lambda: clock[0]).install(scheduler)
    entry, boundary = scheduler.schedule["every-second"], float(int(time.time()))
    entry.last_run_at, clock[0] = datetime.fromtimestamp(boundary - 1.2, UTC), boundary + 0.001
    scheduler.apply_entry(entry, producer=scheduler.producer)
    entry.last_run_at, clock[0] = datetime.fromtimestamp(boundary - 0.001, UTC), boundary + 0.4
    scheduler.apply_entry(entry, producer=scheduler.producer)
    assert published_ticks(app) == [tick_key("every-second", datetime.fromtimestamp(boundary, UTC))]
    assert counts.totals[contract.BEAT_TICKS_PUBLISHED] == 1

"""A primary that goes silent (frozen or blackholed; the name moves to the promoted replica later): with either broker
no time without a task run longer than the name's move plus 5 s, nothing lost, no publish error, no worker exit.
A primary that is only slow (its replies late, or frozen and thawed; the name never moves): nothing lost either
(docs/decisions/silent-node-confirmed-by-identity.md)."""

from __future__ import annotations

import os

import pytest
from celery import Celery
from loopback import REDIS_PASSWORD, tier_environ
from silent_forwarder import SilentForwarder
from silent_primary import silence_the_primary, slow_the_primary

import broker_tier_contract as contract
from broker_tier.rehearsal.redis_pair import RedisPair
from broker_tier_celery import settings_from_environment

pytestmark = pytest.mark.slow  # real worker processes and a redis pair (scheduled first: tests/conftest.py)

STALL_ALLOWANCE_SECONDS = 5.0
"""The goal: no time without a task run longer than the name's move plus this."""
RESULTS_DB = 2
"""``BROKER_TIER_REDIS_DB_RESULTS`` of :func:`tier_environ`."""


@pytest.fixture
def pair(tmp_path):
    pair = RedisPair.start(workdir=tmp_path / "pair", password=REDIS_PASSWORD, tls=None)
    yield pair
    pair.stop()


@pytest.fixture
def name(pair):
    with SilentForwarder(pair.primary.address) as forwarder:
        yield forwarder


@pytest.mark.parametrize(
    "broker, silence, dns_delay",
    # 2 s: the worker notices the silence after the name moved; 6 s: before, so it reconnects to the silent node
    # (and fails) until the name moves
    [("redis", "frozen", 2.0), ("redis", "blackholed", 6.0), ("sqs", "frozen", 2.0)],
)
def test_a_silent_primary_stalls_work_no_longer_than_the_names_move_plus_5_s(
    broker, silence, dns_delay, pair, name, sqs_server, tmp_path, monkeypatch
):
    queue = "long" if broker == "sqs" else "default"  # SQS: no redelivery by visibility time-out in the test
    environ = tier_environ({"port": name.port}, sqs_server, broker=broker, queue=None)
    for variable, value in environ.items():
        monkeypatch.setenv(variable, value)  # boto's credentials for the producer
    producer = Celery("silent-primary-producer")
    producer.conf.update(settings_from_environment(environ))
    outcome = silence_the_primary(
        pair=pair,
        name=name,
        results_db=RESULTS_DB,
        worker_environ={
            **tier_environ({"port": name.port}, sqs_server, broker=broker, queue=queue),
            contract.ContainerEnvironment.HEARTBEAT_DIR.name: str(tmp_path / "heartbeat"),
        },
        producer_app=producer,
        queue=queue,
        workdir=tmp_path,
        silence=silence,
        dns_delay=dns_delay,
        after_seconds=dns_delay + STALL_ALLOWANCE_SECONDS + 1,  # past the bound: a longer stall shows in full
        drain_seconds=float(os.environ.get("SILENT_PRIMARY_DRAIN_SECONDS", 30)),
    )
    print(f"{broker}, primary {silence}, name moved after {dns_delay:g} s: {outcome.summary()}")
    assert outcome.published > 50
    assert (outcome.lost, outcome.results_lost, outcome.publish_errors, outcome.worker_exits) == ([], [], [], [])
    assert outcome.longest_stall <= dns_delay + STALL_ALLOWANCE_SECONDS, outcome.summary()


def waiting_producer(environ: dict[str, str]) -> Celery:
    """A producer with kombu's and Celery's defaults (no socket time-out, so no publish is ever repeated): a team's
    app that does not use the settings package. A publish made while the node stalls is answered once it thaws."""
    settings = settings_from_environment(environ)
    producer = Celery("slow-primary-waiting-producer", broker=settings["broker_url"])
    producer.conf.update(task_queues=settings["task_queues"], task_create_missing_queues=False)
    return producer


def tier_producer(environ: dict[str, str]) -> Celery:
    """A producer on the settings package: 2 s socket time-out, one more try on a new connection."""
    producer = Celery("slow-primary-tier-producer")
    producer.conf.update(settings_from_environment(environ))
    return producer


PAUSE_SECONDS = 6.0
"""How long the primary is slow: longer than the old silence threshold (an unanswered BRPOP dropped 2 s past its
1 s time-out), and than redis-py's own two tries of a result's SET (2 s each, and a new connection's handshake):
Celery's retry stores it."""
REPLY_DELAY_SECONDS = 4.0
"""How late a slow primary's replies come: past the old silence threshold (3 s), so that the old check dropped
every BRPOP whose reply was on its way, and lost the message in it."""


@pytest.mark.parametrize(
    "slowness, make_producer",
    # delayed: fails with the old check (the message served to a dropped BRPOP is lost); the waiting producer
    # publishes each message once, so a repeated publish cannot cover a loss
    [("delayed", waiting_producer), ("frozen", tier_producer)],
)
def test_a_primary_that_is_only_slow_loses_nothing(slowness, make_producer, pair, name, sqs_server, tmp_path):
    """For longer than an unanswered BRPOP is waited for without a probe, the primary's replies come 4 s late (the
    probe through the name gets none either), or it is frozen and thawed; the name never moves. A worker that
    closed its BRPOP connection meanwhile lost the message the node served to it (with the old check, which went
    by time alone, one message in each run). A task ends while the node is slow: its
    result is stored."""
    environ = tier_environ({"port": name.port}, sqs_server, broker="redis", queue=None)
    outcome = slow_the_primary(
        pair=pair,
        name=name,
        slowness=slowness,
        pause_seconds=PAUSE_SECONDS,
        reply_delay=REPLY_DELAY_SECONDS,
        results_db=RESULTS_DB,
        worker_environ={
            **tier_environ({"port": name.port}, sqs_server, broker="redis", queue="default"),
            contract.ContainerEnvironment.HEARTBEAT_DIR.name: str(tmp_path / "heartbeat"),
        },
        producer_app=make_producer(environ),
        queue="default",
        workdir=tmp_path,
        after_seconds=3.0,
        drain_seconds=float(os.environ.get("SILENT_PRIMARY_DRAIN_SECONDS", 30)),
    )
    print(f"redis, primary {slowness} for {PAUSE_SECONDS:g} s, {make_producer.__name__}: {outcome.summary()}")
    assert outcome.published > 20
    assert (outcome.lost, outcome.results_lost, outcome.publish_errors, outcome.worker_exits) == ([], [], [], [])
    assert outcome.longest_stall <= PAUSE_SECONDS + STALL_ALLOWANCE_SECONDS, outcome.summary()

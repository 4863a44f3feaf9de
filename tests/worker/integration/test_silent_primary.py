"""A primary that goes silent (frozen or blackholed; the name moves to the promoted replica later): with either broker
no time without a task run longer than the name's move plus 5 s, nothing lost, no publish error, no worker exit."""

from __future__ import annotations

import os

import pytest
from celery import Celery
from loopback import REDIS_PASSWORD, tier_environ
from silent_forwarder import SilentForwarder
from silent_primary import silence_the_primary

import broker_tier_contract as contract
from broker_tier.rehearsal.redis_pair import RedisPair
from broker_tier_celery import settings_from_environment

pytestmark = pytest.mark.slow  # real worker processes and a redis pair (scheduled first: tests/conftest.py)

STALL_ALLOWANCE_SECONDS = 5.0
"""The goal: no time without a task run longer than the name's move plus this."""


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
    assert (outcome.lost, outcome.publish_errors, outcome.worker_exits) == ([], [], [])
    assert outcome.longest_stall <= dns_delay + STALL_ALLOWANCE_SECONDS, outcome.summary()

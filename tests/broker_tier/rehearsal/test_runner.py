"""The rehearsal's own bookkeeping: how a run that stops part-way is reported, and the restore of kombu's
unacked hash in redis mode (against a real redis-server)."""

from __future__ import annotations

import io
import tempfile
import threading

import pytest
from kombu import Connection
from settings_environ import environ

import broker_tier_contract as contract
from broker_tier.evidence.report import Report
from broker_tier.rehearsal import broker_state
from broker_tier.rehearsal.broker_state import BrokerState
from broker_tier.rehearsal.redis_pair import RedisNode
from broker_tier.rehearsal.runner import Rehearsal, RehearsalOptions
from broker_tier.rehearsal.util import RehearsalError
from broker_tier_celery import settings_from_environment


def rehearsal(tmp_path, **options) -> Rehearsal:
    report = Report(command="rehearse", environment="dev", target="test", dry_run=False, stream=io.StringIO())
    return Rehearsal(RehearsalOptions(workdir=tmp_path, **options), report)


def test_a_rehearsal_error_once_publishing_started_is_reported_as_aborted_not_refused(tmp_path, monkeypatch):
    run = rehearsal(tmp_path)
    monkeypatch.setattr(run, "set_up", lambda: (None, {}, {}))
    monkeypatch.setattr(run, "start_workers", lambda *_: None)
    monkeypatch.setattr(run, "start_producer", lambda *_: None)
    monkeypatch.setattr(run, "progress", lambda *_, **__: None)

    def fault_under_way(*_):
        raise RehearsalError("timed out after 10 s waiting for node-a to report role slave")

    monkeypatch.setattr(run, "queued", fault_under_way)
    report = run.run()  # the CLI would classify a raised RehearsalError as refused: "nothing was changed"
    assert (report.outcome, report.exit_code) == ("aborted", 3)
    assert report.error.startswith("RehearsalError: timed out after 10 s waiting for node-a to report role slave")


def test_a_rehearsal_error_before_publishing_is_raised_for_the_cli_to_report_as_refused(tmp_path, monkeypatch):
    run = rehearsal(tmp_path)

    def no_redis_server():
        raise RehearsalError("redis-server is not installed")

    monkeypatch.setattr(run, "set_up", no_redis_server)
    with pytest.raises(RehearsalError, match="redis-server is not installed"):
        run.run()


def test_a_rehearsal_refused_before_publishing_leaves_no_temporary_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    report = Report(command="rehearse", environment="dev", target="test", dry_run=False, stream=io.StringIO())
    run = Rehearsal(RehearsalOptions(), report)  # no --workdir: a temporary one
    assert run.workdir.parent == tmp_path

    def no_redis_server():
        raise RehearsalError("redis-server is not installed")

    monkeypatch.setattr(run, "set_up", no_redis_server)
    with pytest.raises(RehearsalError):
        run.run()
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def node(lone_redis):
    """A lone redis-server (tests/conftest.py)."""
    return lone_redis


KEYS = contract.redis_unacked_keys("default")
TASK_ID = "0f0e0d0c-0000-4000-8000-000000000001"
"""The record of messages in progress of class ``default``'s workers."""


def _left_unacked(node: RedisNode) -> dict[str, str]:
    """A message a worker of class ``default`` took and never acknowledged (it vanished): in its class's
    unacked hash. Returns the containers' variables of a redis-mode tier on ``node``."""
    variables = environ(
        BROKER_TIER_BROKER="redis",
        BROKER_TIER_QUEUE="default",
        BROKER_TIER_REDIS_HOST="127.0.0.1",
        BROKER_TIER_REDIS_PORT=str(node.port),
        BROKER_TIER_REDIS_TLS="false",
        BROKER_TIER_REDIS_AUTH_TOKEN=node.password,
    )
    settings = settings_from_environment(variables)
    with Connection(settings["broker_url"], transport_options=settings["broker_transport_options"]) as connection:
        channel = connection.default_channel
        connection.SimpleQueue("default").put({"n": 1}, headers={"id": TASK_ID})  # as Celery's task protocol
        assert channel.basic_get("default", no_ack=False) is not None
        channel.do_restore = False  # as the worker vanished: nothing restores it at close
    assert node.client(1).hlen(KEYS["unacked_key"]) == 1
    return variables


def test_the_restore_waits_for_kombus_restore_mutex_and_counts_what_it_put_back(tmp_path, node):
    variables = _left_unacked(node)
    scan = node.client(1).lock(KEYS["unacked_mutex_key"], timeout=300, thread_local=False)  # a worker's scan holds it
    assert scan.acquire(blocking=False)
    threading.Timer(1.0, scan.release).start()
    state = BrokerState(variables, tls_ca_file=None)
    assert state.restore_unacked(node) == 1  # kombu's restore_visible would have put back nothing
    assert (node.client(1).hlen(KEYS["unacked_key"]), node.client(1).llen("default")) == (0, 1)


def test_a_restore_mutex_held_for_good_is_an_error_not_a_count_of_zero(tmp_path, node, monkeypatch):
    variables = _left_unacked(node)
    assert (
        node.client(1).lock(KEYS["unacked_mutex_key"], timeout=300).acquire(blocking=False)
    )  # a worker died holding it
    monkeypatch.setattr(broker_state, "RESTORE_MUTEX_WAIT_SECONDS", 0.5)
    with pytest.raises(
        RehearsalError,
        match="1 message.s. in the class's unacked record could not be restored: kombu's "
        "restore mutex was held for over 0.5 s, so whether they were stranded is unknown",
    ):
        BrokerState(variables, tls_ca_file=None).restore_unacked(node)
    assert node.client(1).hlen(KEYS["unacked_key"]) == 1


def test_what_was_in_flight_is_read_from_the_unacked_record_with_each_message_s_task(node):
    variables = _left_unacked(node)
    in_flight = BrokerState(variables, tls_ca_file=None).in_flight(node)
    ((tag, task_ids),) = in_flight.tags.items()
    assert tag and task_ids == in_flight.task_ids == {TASK_ID}

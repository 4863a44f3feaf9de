"""The worker lifecycle parts of the settings package that need no worker: decisions, expiry, wiring."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from celery import Celery
from loopback import FakeEcsAgent
from settings_environ import environ

from broker_tier_celery import SettingsError, configure, sqs_handback
from broker_tier_celery.claim_check import TRANSPORT
from broker_tier_celery.failover import BROKER_TRANSPORT_CLASS
from broker_tier_celery.protection import AgentEndpoint, ProtectionKeeper, expiry_minutes, keeper_for
from broker_tier_celery.shutdown import decide, receives_in_flight, succeeded

NOW = 1_000_000.0


def request(*, started_ago: float | None, limit: float | None = None, task_limit: float | None = None):
    return SimpleNamespace(
        time_start=None if started_ago is None else NOW - started_ago,
        time_limits=(limit, None),
        task=SimpleNamespace(time_limit=task_limit),
    )


@pytest.mark.parametrize(
    "req, default, hand_back, why",
    [
        (request(started_ago=None), 60, True, "not started"),
        (request(started_ago=10), None, True, "no time limit"),
        (request(started_ago=10), 100, False, "ends it 90 s from now, within the 105 s left"),
        (request(started_ago=10), 300, True, "may run 290 s more, past the stop deadline in 105 s"),
        (request(started_ago=10, limit=30), 300, False, "ends it 20 s"),  # the message's own limit wins
        (request(started_ago=10, task_limit=30), 300, False, "ends it 20 s"),  # then the task's
    ],
)
def test_sigterm_keeps_only_what_its_time_limit_ends_before_the_deadline(req, default, hand_back, why):
    decision = decide(req, now=NOW, deadline=NOW + 105, default_time_limit=default)
    assert decision.hand_back is hand_back and why in decision.reason


def test_no_event_loop_means_no_receive_in_flight():
    assert receives_in_flight() == 0


@pytest.mark.parametrize(
    "limit, renew, minutes",
    [
        (300, 300, 11),  # 300 + 300 + 5 s check -> 10.08 min -> 11
        (60, 300, 7),
        (3600, 300, 66),
        (1, 1, 1),  # never below the agent's minimum
        (43_200 * 4, 300, 2880),  # never above its maximum (48 h)
        (None, 300, 120),  # no time limit: the agent's default
    ],
)
def test_protection_expiry_outlasts_a_task_started_just_before_a_renewal(limit, renew, minutes):
    assert expiry_minutes(time_limit_seconds=limit, renew_seconds=renew) == minutes


def test_no_agent_uri_means_no_protection():
    assert keeper_for(None, time_limit_seconds=60, renew_seconds=300) is None
    keeper = keeper_for("http://169.254.170.2/api/abc", time_limit_seconds=60, renew_seconds=300)
    assert keeper.endpoint.url == "http://169.254.170.2/api/abc/task-protection/v1/state"


class RecordingEndpoint(AgentEndpoint):
    def __init__(self, fail: bool = False):
        super().__init__("http://agent.invalid")
        self.bodies, self.fail = [], fail

    def put(self, body):
        if self.fail:
            raise OSError("connection refused")
        self.bodies.append(body)
        return {"ProtectionEnabled": body["ProtectionEnabled"]}


def test_keeper_protects_when_busy_renews_after_its_period_and_clears_when_idle(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("broker_tier_celery.protection.time.monotonic", lambda: clock[0])
    busy = [False]
    endpoint = RecordingEndpoint()
    keeper = ProtectionKeeper(endpoint=endpoint, busy=lambda: busy[0], time_limit_seconds=60, renew_seconds=30)
    keeper.check()
    assert endpoint.bodies == []  # idle and unprotected: nothing to say
    busy[0] = True
    keeper.check()
    clock[0] = 29
    keeper.check()  # within the renewal period: no call
    clock[0] = 30
    keeper.check()
    busy[0] = False
    keeper.check()
    keeper.check()
    on = {"ProtectionEnabled": True, "ExpiresInMinutes": 2}
    assert endpoint.bodies == [on, on, {"ProtectionEnabled": False}]


def test_keeper_survives_a_failing_endpoint_and_tries_again(caplog):
    endpoint = RecordingEndpoint(fail=True)
    keeper = ProtectionKeeper(endpoint=endpoint, busy=lambda: True, time_limit_seconds=60, renew_seconds=30)
    keeper.check()
    assert keeper.protected is False and "could not be set: connection refused" in caplog.text
    endpoint.fail = False
    keeper.check()  # the next check sets it
    assert keeper.protected is True and len(endpoint.bodies) == 1


@pytest.mark.parametrize("garbled", ["truncated", "not-an-object"])
def test_keeper_survives_an_agent_answer_it_cannot_read(garbled, caplog):
    with FakeEcsAgent() as agent:
        agent.garbled = garbled
        keeper = ProtectionKeeper(
            endpoint=AgentEndpoint(agent.uri), busy=lambda: True, time_limit_seconds=60, renew_seconds=30
        )
        keeper.check()
        assert keeper.protected is False and "could not be set" in caplog.text
        agent.garbled = None
        keeper.check()
        assert keeper.protected is True and agent.states() == [True]


def test_keeper_thread_outlives_an_unexpected_error(caplog):
    answers = iter([KeyError("reserved_requests changed under us")])

    def busy():
        error = next(answers, None)
        if error:
            raise error
        return True

    with FakeEcsAgent() as agent:
        keeper = ProtectionKeeper(endpoint=AgentEndpoint(agent.uri), busy=busy, time_limit_seconds=60, renew_seconds=1)
        keeper.start()
        deadline = time.monotonic() + 5
        while not agent.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        keeper.stop()
        # the first check raised; the PUT came from a later one: the thread went on
        assert agent.states()[:1] == [True] and "unexpected error" in caplog.text


def test_configure_selects_the_hand_back_transport_for_sqs_and_the_failover_one_for_redis():
    sqs_app, redis_app = Celery("sqs"), Celery("redis")
    configure(sqs_app, environ())
    configure(redis_app, environ(BROKER_TIER_BROKER="redis"))
    assert sqs_app.conf.broker_transport == TRANSPORT
    assert redis_app.conf.broker_transport == BROKER_TRANSPORT_CLASS
    with sqs_app.connection_for_read() as connection:  # the hand-back transport, with the claim check
        assert isinstance(connection.transport, sqs_handback.Transport)
        assert type(connection.transport).__module__ == "broker_tier_celery.claim_check"


@pytest.mark.parametrize("value", ["0", "soon", "-5"])
def test_a_bad_renewal_period_is_refused_naming_the_variable(value):
    with pytest.raises(SettingsError, match=f"BROKER_TIER_PROTECTION_RENEW_SECONDS = '{value}'"):
        configure(Celery("bad"), environ(BROKER_TIER_PROTECTION_RENEW_SECONDS=value))


def backend_answering(answer):
    def get_task_meta_for(task_id):
        if isinstance(answer, Exception):
            raise answer
        return answer

    return SimpleNamespace(
        id="t-1", name="x", task=SimpleNamespace(backend=SimpleNamespace(_get_task_meta_for=get_task_meta_for))
    )


@pytest.mark.parametrize(
    "answer, done",
    [
        ({"status": "SUCCESS", "result": 1}, True),  # stored by the child before the main process knew: acknowledge
        ({"status": "PENDING"}, False),
        ({"status": "FAILURE"}, False),
        (ConnectionError("result backend down"), None),  # unknown: hand back (a duplicate beats a loss)
    ],
)
def test_a_task_counts_as_done_only_with_a_stored_success(answer, done):
    assert succeeded(backend_answering(answer)) is done


def test_an_unreachable_result_backend_is_asked_once_without_its_retries():
    """The settings retry result-backend operations (result_backend_always_retry, about 30 s of retries against a
    refused port); at SIGTERM one read must do."""
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = Celery("unreachable")
    configure(
        app,
        environ(BROKER_TIER_REDIS_HOST="127.0.0.1", BROKER_TIER_REDIS_PORT=str(port), BROKER_TIER_REDIS_TLS="false"),
    )
    assert app.conf.result_backend_always_retry and app.conf.result_backend_max_retries >= 100
    request = SimpleNamespace(id="t-1", name="x", task=SimpleNamespace(backend=app.backend))
    started = time.monotonic()
    assert succeeded(request) is None
    assert time.monotonic() - started < 2


def test_a_failing_hand_back_still_lets_celery_shut_the_worker_down(monkeypatch, caplog):
    import signal as signals

    from broker_tier_celery import shutdown

    kills, timers = [], []
    monkeypatch.setattr(shutdown.os, "kill", lambda pid, sig: kills.append(sig))
    monkeypatch.setattr(shutdown.signal, "getsignal", lambda sig: signals.SIG_IGN)
    hub = SimpleNamespace(
        call_repeatedly=lambda delay, callback: timers.append(callback) or SimpleNamespace(cancel=lambda: None)
    )
    conf = SimpleNamespace(worker_soft_shutdown_timeout=105, task_time_limit=60)
    handler = shutdown.SigtermHandBack(SimpleNamespace(app=SimpleNamespace(conf=conf), task_consumer=None), hub)

    def broken(*_, **__):
        raise RuntimeError("result backend exploded")

    monkeypatch.setattr(handler, "_sort_out_requests", broken)
    handler.on_sigterm(signals.SIGTERM, None)
    assert kills == [] and len(timers) == 1  # nothing decided inside the signal handler
    timers[0]()  # the event loop's first tick
    assert kills == [signals.SIGTERM] and conf.worker_soft_shutdown_timeout == 0
    assert "SIGTERM hand-back failed" in caplog.text


def test_after_one_failed_read_the_rest_are_handed_back_without_asking(monkeypatch):
    from broker_tier_celery import shutdown

    monkeypatch.setattr(shutdown.signal, "getsignal", lambda sig: None)
    conf = SimpleNamespace(worker_soft_shutdown_timeout=105, task_time_limit=60)
    handler = shutdown.SigtermHandBack(SimpleNamespace(app=SimpleNamespace(conf=conf), task_consumer=None), None)
    handler.started_at = time.time()  # SIGTERM received
    reads, rejected = [], []

    def request(task_id):
        def read(_):
            reads.append(task_id)
            raise ConnectionError("result backend down")

        return SimpleNamespace(
            id=task_id,
            name="x",
            acknowledged=False,
            task=SimpleNamespace(backend=SimpleNamespace(_get_task_meta_for=read)),
            reject=lambda requeue: rejected.append(task_id),
        )

    for task_id in ("t-1", "t-2", "t-3"):
        handler._hand_back(request(task_id), "cannot finish before the deadline")
    assert reads == ["t-1"] and rejected == ["t-1", "t-2", "t-3"]

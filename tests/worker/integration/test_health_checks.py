"""The container health checks against real processes: a worker whose broker goes silent turns unhealthy, a worker
busy with a long task stays healthy, a Beat that stops ticking turns unhealthy; each checked with the very command
the contract gives the task definitions. The tests' stale bound is 5 s (the contract's: 60 s)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from celery import Celery
from health_checking import run_health_check
from loopback import ROOT, celery_worker, ledger, tier_environ, wait_until
from silent_forwarder import SilentForwarder

import broker_tier_contract as contract
from broker_tier_celery import settings_from_environment

pytestmark = pytest.mark.slow  # real worker and Beat processes (scheduled first: tests/conftest.py)

STALE_SECONDS = 5
"""Over a live idle Redis worker's longest gap between heartbeats (a BRPOP answered every second, recorded at most
once a second), so an idle worker stays healthy; short, so the tests take seconds."""
NOTICED_WITHIN_SECONDS = STALE_SECONDS + 2
"""The bound, one second of heartbeat granularity, and one of this test's polling."""


def health_environ(tmp_path) -> dict[str, str]:
    variables = contract.ContainerEnvironment
    return {variables.HEARTBEAT_DIR.name: str(tmp_path / "heartbeat"), variables.HEARTBEAT_STALE_SECONDS.name: "5"}


def redis_worker_environ(node, port: int, sqs_server, tmp_path) -> dict[str, str]:
    return {
        **tier_environ({"port": port}, sqs_server, broker="redis", queue="default"),
        contract.ContainerEnvironment.REDIS_AUTH_TOKEN.name: node.password,
        "REMAP_SIGTERM": "SIGQUIT",
        **health_environ(tmp_path),
    }


def healthy(process: str, environ: dict[str, str]) -> bool:
    return run_health_check(process, environ).returncode == 0


def seconds_until_unhealthy(process: str, environ: dict[str, str], limit: float) -> float:
    started = time.monotonic()
    wait_until(lambda: not healthy(process, environ), limit, f"the {process} to turn unhealthy")
    return time.monotonic() - started


def test_a_worker_whose_broker_goes_silent_turns_unhealthy_within_the_bound(lone_redis, sqs_server, tmp_path):
    with SilentForwarder(lone_redis.address) as name:
        environ = redis_worker_environ(lone_redis, name.port, sqs_server, tmp_path)
        with celery_worker(environ, "default", tmp_path / "worker.log", pool="prefork"):
            wait_until(lambda: healthy("worker", environ), 10, "the worker's first heartbeat")
            time.sleep(STALE_SECONDS + 1)
            assert healthy("worker", environ), "an idle worker on a live broker turned unhealthy"
            name.blackhole(lone_redis.address)  # its packets vanish; the name never moves
            took = seconds_until_unhealthy("worker", environ, NOTICED_WITHIN_SECONDS + 5)
            name.heal(lone_redis.address)  # reachable again: the worker can stop as usual
    assert took <= NOTICED_WITHIN_SECONDS, f"unhealthy only {took:.1f} s after the broker went silent"


def test_a_worker_busy_with_a_long_task_stays_healthy(lone_redis, sqs_server, tmp_path, monkeypatch):
    environ = redis_worker_environ(lone_redis, lone_redis.port, sqs_server, tmp_path)
    producer = Celery("health-producer")
    producer.conf.update(settings_from_environment({**environ, contract.ContainerEnvironment.QUEUE.name: ""}))
    token, log = uuid.uuid4().hex, tmp_path / "worker.log"
    # one process: while it holds the task, the worker polls no broker (kombu pauses its BRPOP)
    with celery_worker(environ, "default", log, pool="prefork", concurrency=1):
        result = producer.send_task(contract.HOLD_TASK, args=[token, STALE_SECONDS * 2], queue="default")
        wait_until(lambda: ledger(log, token), 30, "the long task to start")
        verdicts, checked_at = [], []
        while not result.ready():
            verdicts.append(healthy("worker", environ))
            checked_at.append(time.monotonic())
            time.sleep(0.5)
        assert result.get(timeout=5)["token"] == token
    assert len(verdicts) >= 3 and all(verdicts), verdicts
    # healthy throughout, for longer than the bound: its heartbeats came from being busy, not from polling
    assert checked_at[-1] - checked_at[0] > STALE_SECONDS + 1


def test_beat_that_stops_ticking_turns_unhealthy(sqs_server, redis_server, tmp_path):
    environ = {**tier_environ(redis_server, sqs_server, broker="sqs", queue=None), **health_environ(tmp_path)}
    command = [sys.executable, "-m", "celery", "-A", "broker_tier_worker.app", "beat", "--loglevel", "INFO"]
    # ticks every second (the settings: at least every 10 s), so that a 5 s bound tells ticking from stopped
    command += ["--max-interval", "1", "--schedule", str(tmp_path / "schedule")]
    with open(tmp_path / "beat.log", "w") as log:
        beat = subprocess.Popen(
            command,
            env={**os.environ, **environ, "PYTHONPATH": str(ROOT / "worker")},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        wait_until(lambda: healthy("beat", environ), 30, "Beat's first tick")
        time.sleep(STALE_SECONDS + 1)
        assert healthy("beat", environ), (tmp_path / "beat.log").read_text()[-2000:]
        beat.send_signal(signal.SIGSTOP)  # hung: alive, no tick
        took = seconds_until_unhealthy("beat", environ, NOTICED_WITHIN_SECONDS + 5)
    finally:
        beat.send_signal(signal.SIGCONT)
        beat.terminate()
        beat.wait(timeout=30)
    assert took <= NOTICED_WITHIN_SECONDS, f"unhealthy only {took:.1f} s after Beat stopped"

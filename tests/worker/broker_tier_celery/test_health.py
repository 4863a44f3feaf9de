"""The container health check's command and the heartbeat it reads (with real processes:
integration/test_health_checks.py)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from health_checking import run_health_check

import broker_tier_contract as contract
from broker_tier_celery import health, heartbeat, lifecycle, timeouts

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def environ(tmp_path) -> dict[str, str]:
    return {contract.ContainerEnvironment.HEARTBEAT_DIR.name: str(tmp_path / "heartbeat")}


def test_the_timing_is_within_ecs_limits_and_the_bound_outlasts_a_failover():
    assert 5 <= contract.HEALTH_CHECK_INTERVAL_SECONDS <= 300
    assert 2 <= contract.HEALTH_CHECK_TIMEOUT_SECONDS <= 60 and contract.HEALTH_CHECK_TIMEOUT_SECONDS < (
        contract.HEALTH_CHECK_INTERVAL_SECONDS
    )
    assert 1 <= contract.HEALTH_CHECK_RETRIES <= 10
    assert 0 <= contract.HEALTH_CHECK_START_PERIOD_SECONDS <= 300
    # a live worker's longest quiet time (one SQS long poll), plus a failover: the name's move (50 s allowed)
    # and the seconds a worker takes to follow it
    worker = contract.SQS_LONG_POLL_SECONDS + 50 + timeouts.stall_after_the_name_moves_seconds()
    # Beat: a tick at least every BEAT_MAX_LOOP_SECONDS, and a tick's publish retrying through a failover
    beat = timeouts.BEAT_MAX_LOOP_SECONDS + 30
    assert max(worker, beat) <= contract.HEARTBEAT_STALE_SECONDS


@pytest.mark.parametrize("process", ["worker", "beat"])
def test_the_command_is_the_package_module_for_each_process(process):
    assert contract.health_check_command(process) == ["CMD", "python", "-m", "broker_tier_celery.health", process]


def test_the_command_refuses_another_process():
    with pytest.raises(ValueError, match="'flower' is not 'worker' or 'beat'"):
        contract.health_check_command("flower")


def test_no_heartbeat_is_unhealthy(environ):
    checked = run_health_check("worker", environ)
    assert checked.returncode == 1 and "worker: no heartbeat at" in checked.stderr


def test_a_fresh_heartbeat_is_healthy_and_a_stale_one_is_not(environ):
    heartbeat.Heartbeat(heartbeat.heartbeat_path("beat", environ)).beat()
    fresh = run_health_check("beat", environ)
    assert fresh.returncode == 0 and fresh.stdout.startswith("beat: heartbeat ")
    stale = time.time() - contract.HEARTBEAT_STALE_SECONDS - 5
    os.utime(heartbeat.heartbeat_path("beat", environ), (stale, stale))
    old = run_health_check("beat", environ)
    assert old.returncode == 1 and f"over {contract.HEARTBEAT_STALE_SECONDS} s" in old.stderr
    assert run_health_check("worker", environ).returncode == 1  # each process has its own heartbeat


def test_a_shorter_bound_for_tests(environ):
    heartbeat.Heartbeat(heartbeat.heartbeat_path("worker", environ)).beat()
    now = time.time() + 3
    assert health.check("worker", environ=environ, now=now).healthy
    shorter = {**environ, contract.ContainerEnvironment.HEARTBEAT_STALE_SECONDS.name: "2"}
    assert health.check("worker", environ=shorter, now=now).reason.startswith("worker: last broker round trip 3 s")


def test_a_wrong_argument_is_a_usage_error(environ):
    checked = run_health_check("worker", environ)  # the real one first, for the contrast
    assert checked.returncode == 1
    assert health.main(["flower"]) == 2 and health.main([]) == 2


def test_the_command_imports_neither_celery_nor_kombu(environ):
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, runpy; sys.argv = ['health', 'worker']\n"
            "try:\n    runpy.run_module('broker_tier_celery.health', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('celery', 'kombu', 'redis', 'boto3') if m in sys.modules))",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT / "worker"), **environ},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert probe.stdout.strip().splitlines()[-1] == "[]", probe.stderr


def test_heartbeats_are_recorded_at_most_once_a_second(tmp_path, monkeypatch):
    beats = heartbeat.Heartbeat(tmp_path / "worker")
    touched = []
    monkeypatch.setattr(heartbeat.os, "utime", lambda path: touched.append(path))
    for _ in range(100):
        beats.beat()
    assert touched == [tmp_path / "worker"]  # the first only
    later = time.monotonic() + heartbeat.MIN_INTERVAL_SECONDS
    monkeypatch.setattr(heartbeat.time, "monotonic", lambda: later)
    beats.beat()
    assert touched == [tmp_path / "worker"] * 2


def test_a_heartbeat_that_cannot_be_written_warns_once_and_never_raises(tmp_path, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    beats = heartbeat.Heartbeat(blocked / "worker")
    with caplog.at_level(logging.WARNING, logger="broker_tier.heartbeat"):
        for _ in range(3):
            beats._last = float("-inf")  # past the once-a-second limit
            beats.beat()
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"cannot record the heartbeat in {blocked}/worker"
    ]


def test_only_a_started_process_records_and_a_forked_child_does_not(environ):
    heartbeat._current = None
    heartbeat.beat()  # not started: nothing
    path = heartbeat.heartbeat_path("worker", environ)
    assert not path.exists()
    heartbeat.start("worker", environ)
    assert path.exists()
    child = os.fork()
    if child == 0:  # a prefork pool child
        os._exit(0 if heartbeat._current is None else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0
    heartbeat._current = None


@pytest.mark.parametrize(
    "prefetch, reserved, busy",
    [(2, 2, True), (2, 1, False), (1, 1, True), (0, 0, False)],
)
def test_a_worker_is_saturated_when_every_prefetch_slot_holds_a_task(prefetch, reserved, busy, monkeypatch):
    monkeypatch.setattr(lifecycle.worker_state, "reserved_requests", set(range(reserved)))
    assert lifecycle.saturated(SimpleNamespace(qos=SimpleNamespace(value=prefetch))) is busy
    assert lifecycle.saturated(SimpleNamespace(qos=None)) is False  # between connections

"""Helpers for the integration tests: real processes on loopback (redis-server, moto, Celery workers)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
REDIS_PASSWORD = "integration-auth-token-0123456789"
REGION = "eu-west-1"
# Short visibility and receive count so a failing task reaches the DLQ within seconds.
TEST_VISIBILITY_SECONDS = 2
TEST_MAX_RECEIVE_COUNT = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def tier_environ(redis_server, sqs_server, *, broker: str, queue: str | None) -> dict[str, str]:
    """The BROKER_TIER_* variables the stack would set, pointed at the loopback servers."""
    environ = {
        "BROKER_TIER_BROKER": broker,
        "BROKER_TIER_QUEUE_URLS": json.dumps({n: sqs_server["urls"][n] for n in ("interactive", "default")}),
        "BROKER_TIER_REGION": REGION,
        "BROKER_TIER_SQS_ENDPOINT_URL": sqs_server["endpoint"],
        "BROKER_TIER_REDIS_HOST": "127.0.0.1",
        "BROKER_TIER_REDIS_PORT": str(redis_server["port"]),
        "BROKER_TIER_REDIS_TLS": "false",  # loopback only; the stack always sets true
        "BROKER_TIER_REDIS_AUTH_TOKEN": REDIS_PASSWORD,
        "BROKER_TIER_REDIS_DB_RESULTS": "2",
        "BROKER_TIER_REDIS_DB_BROKER": "1",
        "BROKER_TIER_TASK_TIME_LIMIT": "30",
        "BROKER_TIER_SOFT_SHUTDOWN_TIMEOUT": "2",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
    }
    if queue:
        environ["BROKER_TIER_QUEUE"] = queue
    return environ


@contextmanager
def celery_worker(environ: dict[str, str], queue: str, log_path: Path):
    """A real `celery worker` process consuming ``queue`` with the settings package."""
    env = {**os.environ, **environ, "PYTHONPATH": str(ROOT / "worker")}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "broker_tier_worker.app", "worker", "--queues", queue,
             "--pool", "solo", "--loglevel", "INFO", "--hostname", f"{queue}@integration", "--without-mingle",
             "--without-gossip"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait_until(lambda: "ready." in log_path.read_text() or process.poll() is not None, 60, "the worker")
        if process.poll() is not None:
            raise AssertionError(f"worker exited:\n{log_path.read_text()[-3000:]}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()

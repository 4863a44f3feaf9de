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

import pytest

from broker_tier_contract import WORKER_EVENT_OPTIONS

ROOT = Path(__file__).resolve().parents[2]
REDIS_PASSWORD = "integration-auth-token-0123456789"
REGION = "eu-west-1"
# Short visibility and receive count so a failing task reaches the DLQ within seconds.
TEST_VISIBILITY_SECONDS = 2
TEST_MAX_RECEIVE_COUNT = 2
REFERENCE_APP = "broker_tier_worker.app"
"""What ``celery -A`` loads unless a test says otherwise: the reference worker."""
# The work queues of the loopback SQS, with their visibility timeouts: "long" keeps a received message
# hidden for ten minutes, so only a hand-back (not the timeout) makes it visible again within a test.
WORK_QUEUES = {"interactive": TEST_VISIBILITY_SECONDS, "default": TEST_VISIBILITY_SECONDS, "long": 600}


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


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A ``redis-server`` on loopback with AUTH and ``noeviction``, for the whole session (tests/conftest.py)."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/test.sh installs it: scripts/ensure-redis.sh)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--requirepass",
            REDIS_PASSWORD,
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory-policy",
            "noeviction",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port, password=REDIS_PASSWORD)

    def ready():
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    wait_until(ready, 10, "redis-server to answer PING")
    yield {
        "port": port,
        "client_for": lambda db: redis.Redis(host="127.0.0.1", port=port, db=db, password=REDIS_PASSWORD),
    }
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def sqs_server():
    """moto's SQS server on loopback with the work queues of ``WORK_QUEUES`` and their dead-letter queues, for the
    whole session (tests/conftest.py); receives and conditional writes atomic, as SQS's and DynamoDB's are."""
    import boto3
    from moto_server import moto_server  # it imports this module

    with moto_server() as endpoint:
        client = boto3.client(
            "sqs",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        urls = {}
        for name, visibility_seconds in WORK_QUEUES.items():
            dlq_url = client.create_queue(QueueName=f"it-{name}-dlq")["QueueUrl"]
            dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            urls[name] = client.create_queue(
                QueueName=f"it-{name}",
                Attributes={
                    "VisibilityTimeout": str(visibility_seconds),
                    "RedrivePolicy": json.dumps(
                        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": TEST_MAX_RECEIVE_COUNT}
                    ),
                },
            )["QueueUrl"]
            urls[f"{name}-dlq"] = dlq_url
        yield {"endpoint": endpoint, "client": client, "urls": urls}


def tier_environ(redis_server, sqs_server, *, broker: str, queue: str | None) -> dict[str, str]:
    """The BROKER_TIER_* variables the stack would set, pointed at the loopback servers."""
    environ = {
        "BROKER_TIER_BROKER": broker,
        "BROKER_TIER_QUEUE_URLS": json.dumps({n: sqs_server["urls"][n] for n in WORK_QUEUES}),
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
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    if queue:
        environ["BROKER_TIER_QUEUE"] = queue
    return environ


def _start_celery_worker(
    environ: dict[str, str],
    queue: str,
    log_path: Path,
    *,
    pool: str,
    concurrency: int,
    name: str,
    celery: list[str] | None,
    app_dir: Path | None,
    app: str,
) -> subprocess.Popen:
    env = {**os.environ, **environ}
    if app_dir is None:
        env["PYTHONPATH"] = str(ROOT / "worker")
    else:
        env.pop("PYTHONPATH", None)
    with open(log_path, "w") as log:
        return subprocess.Popen(
            [
                *(celery or [sys.executable, "-m", "celery"]),
                "-A",
                app,
                "worker",
                "--queues",
                queue,
                "--pool",
                pool,
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
                "--hostname",
                f"{queue.replace(',', '+')}@{name}",
                *WORKER_EVENT_OPTIONS,  # as the task definitions run it
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=app_dir or ROOT,
        )


def _wait_until_ready(process: subprocess.Popen, log_path: Path) -> None:
    wait_until(lambda: "ready." in log_path.read_text() or process.poll() is not None, 60, "the worker")
    if process.poll() is not None:
        raise AssertionError(f"worker exited:\n{log_path.read_text()[-3000:]}")


def _stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM every process still running (their shutdowns overlap), then wait for each; SIGKILL after 30 s."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def celery_workers(
    environ: dict[str, str],
    queue: str,
    log_paths: list[Path],
    *,
    names: list[str],
    pool: str = "solo",
    concurrency: int = 1,
    celery: list[str] | None = None,
    app_dir: Path | None = None,
    app: str = REFERENCE_APP,
):
    """Real `celery worker` processes consuming ``queue`` with the settings package, one per log path,
    started together (their start-ups overlap) and all ready when this yields their processes.

    :param names: the node names' host parts (two workers on one queue need two names).
    :param pool: Celery's pool; the stack runs ``prefork`` (the default of ``celery worker``).
    :param celery: the command that runs Celery. Default: this interpreter's ``python -m celery``.
    :param app_dir: run there with no PYTHONPATH, as the image does (Celery imports the app from its
        working directory). Default: the repository, importing the worker packages from ``worker/``.
    :param app: what ``celery -A`` loads. Default: the reference worker.
    """
    processes: list[subprocess.Popen] = []
    try:
        for log_path, name in zip(log_paths, names, strict=True):
            processes.append(
                _start_celery_worker(
                    environ,
                    queue,
                    log_path,
                    pool=pool,
                    concurrency=concurrency,
                    name=name,
                    celery=celery,
                    app_dir=app_dir,
                    app=app,
                )
            )
        for process, log_path in zip(processes, log_paths, strict=True):
            _wait_until_ready(process, log_path)
        yield processes
    finally:
        _stop(processes)


@contextmanager
def celery_worker(
    environ: dict[str, str],
    queue: str,
    log_path: Path,
    *,
    pool: str = "solo",
    concurrency: int = 1,
    name: str = "integration",
    celery: list[str] | None = None,
    app_dir: Path | None = None,
    app: str = REFERENCE_APP,
):
    """One real `celery worker` process (see :func:`celery_workers`), ready when this yields it. ``queue`` may name
    several, comma-separated."""
    with celery_workers(
        environ,
        queue,
        [log_path],
        names=[name],
        pool=pool,
        concurrency=concurrency,
        celery=celery,
        app_dir=app_dir,
        app=app,
    ) as (process,):
        yield process


def ledger(log_path: Path, token: str) -> list[dict]:
    """The canary ledger records of ``token`` in a worker's log, in order."""
    from broker_tier_contract import parse_canary_ledger_line

    return [
        record
        for line in log_path.read_text().splitlines()
        if (record := parse_canary_ledger_line(line)) and record["token"] == token
    ]


class LoopbackHttpServer:
    """An HTTP server on a free loopback port, serving ``handler`` from a thread while the ``with`` block runs."""

    def __init__(self, handler: type) -> None:
        import http.server
        import threading

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def reply(handler, status: int, body: bytes, content_type: str) -> None:
    """Send one complete HTTP response from a ``BaseHTTPRequestHandler``."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class FakeEcsAgent(LoopbackHttpServer):
    """The ECS agent's task-protection endpoint on loopback: records every PUT, answers like the agent.

    ``failing = True`` makes it answer HTTP 500 with the agent's error shape (and record nothing);
    ``garbled`` makes it answer 200 with a body cut short (``"truncated"``) or JSON that is not an object
    (``"not-an-object"``), and record nothing.
    """

    def __init__(self) -> None:
        import http.server

        agent = self
        self.requests: list[tuple[float, dict]] = []
        self.failing = False
        self.garbled: str | None = None

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if agent.garbled == "truncated":  # promises 100 bytes, sends 2: http.client.IncompleteRead
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    self.wfile.write(b'{"')
                    self.close_connection = True
                    return
                if agent.garbled == "not-an-object":
                    return reply(self, 200, b"42", "application/json")
                if not self.path.endswith("/task-protection/v1/state") or agent.failing:
                    answer, status = {"error": {"Code": "ServerException", "Message": "fake agent failing"}}, 500
                else:
                    agent.requests.append((time.monotonic(), body))
                    answer, status = (
                        {
                            "protection": {
                                "ProtectionEnabled": body["ProtectionEnabled"],
                                "TaskArn": "arn:aws:ecs:eu-west-1:111111111111:task/c/t",
                            }
                        },
                        200,
                    )
                reply(self, status, json.dumps(answer).encode(), "application/json")

            def log_message(self, *args):
                pass

        super().__init__(Handler)
        self.uri = f"{self.base_url}/api/task-id"

    def states(self) -> list[bool]:
        return [body["ProtectionEnabled"] for _, body in self.requests]

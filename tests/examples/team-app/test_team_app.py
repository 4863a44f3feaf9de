"""The team example (examples/team-app) installed as its Dockerfile does and run on the tier's settings: its tasks
land in their classes' queues and run, its Beat sends every entry of its schedule, and the canary sent the way the
failover drill sends it runs and logs its ledger line. Real processes: a ``redis-server``, moto's SQS server, and
Beat and a worker started from the image's packages, in its /app, with the ``celery_app`` of the README's
``cdk.json`` lines; the queues and variables made by the example's ``run_locally.py``, and Beat and the producer run,
as the README's "Run it locally" gives them (tests/examples/team-app/test_run_locally.py holds the rest of it)."""

from __future__ import annotations

import ast
import base64
import collections
import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery import Celery
from loopback import REDIS_PASSWORD, REGION, celery_worker, ledger, wait_until
from team_example import EXAMPLE, readme_compute

import broker_tier_contract as contract
from broker_tier.ops.canary import celery_sqs_message
from broker_tier.tools.image_check import stage_application, stage_build_context
from broker_tier_celery import settings_from_environment

pytestmark = pytest.mark.slow  # a pip install (shared per run), real Beat and worker processes

CLASSES = ("interactive", "default", "batch")
"""The latency classes of cdk.json, which the example routes to."""
ARGUMENTS = {
    "team_app.tasks.send_receipt": ["A-1001", "ada@example.com"],
    "team_app.tasks.sync_inventory": ["warehouse-2"],
    "team_app.tasks.nightly_report": ["2025-01-31"],
}
"""One call of each routed task."""
VARIABLES = contract.ContainerEnvironment


def load_routing(app_dir: Path):
    """``team_app/routing.py`` as staged in the image (plain data: loading it starts no app)."""
    spec = importlib.util.spec_from_file_location("team_app_routing_under_test", app_dir / "team_app" / "routing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def team_image(image_venvs, tmp_path_factory):
    """The example's build context with broker-tier's files copied in (the README's step), its packages (both pip
    layers; the tier's shared with the reference worker's test) and its /app."""
    root = tmp_path_factory.mktemp("team-image")
    context = stage_build_context(EXAMPLE, root / "context")
    return SimpleNamespace(
        python=image_venvs.python_for(context),
        app_dir=stage_application(root / "app", context=context),
        context=context,  # the README's my-app/: run_locally.py beside the copied contract
    )


def local_run_environ(team_image, local_run, redis_server, sqs_server, tmp_path) -> dict[str, str]:
    """The README's ``python run_locally.py ...`` from the image's packages in the copied folder, pointed at the
    session's servers (the README's ports replaced; their Redis has a password, and the queues' names an environment
    of their own), and the variables of the file it writes, as the README's ``set -a; . ./local.env`` reads them."""
    env_file = tmp_path / "local.env"
    _, script, *arguments = local_run.with_options(
        local_run.command("python", "run_locally.py"),
        redis_port=str(redis_server["port"]),
        sqs_endpoint=sqs_server["endpoint"],
        env_file=str(env_file),
        redis_password=REDIS_PASSWORD,
        environment=f"team{uuid.uuid4().hex[:8]}",
        region=REGION,
    )
    subprocess.run(
        [str(team_image.python), script, *arguments],
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        cwd=team_image.context,
        check=True,
        capture_output=True,
        timeout=60,
    )
    exported = [shlex.split(line) for line in env_file.read_text().splitlines() if line.startswith("export ")]
    return dict(assignment.split("=", 1) for _, assignment in exported)


def queued(sqs, url: str) -> int:
    return int(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )


def dead_lettered(sqs, url: str) -> int:
    """Messages in the dead-letter queue of a queue's redrive policy."""
    policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    dead_letters = sqs.get_queue_url(QueueName=json.loads(policy)["deadLetterTargetArn"].rsplit(":", 1)[1])
    return queued(sqs, dead_letters["QueueUrl"])


def seed_overdue_schedule(path: Path, beat_schedule: dict, overdue_by: timedelta) -> None:
    """A Beat schedule file whose every entry last ran ``overdue_by`` ago, written by Celery's own scheduler: the
    example's Beat then sends each at its first tick instead of after its period (ten minutes, a night)."""
    from celery.beat import PersistentScheduler

    seeder = Celery("schedule-seed")  # UTC and no time zone, as the example's app
    seeder.conf.beat_schedule = beat_schedule
    scheduler = PersistentScheduler(app=seeder, schedule_filename=str(path))
    for entry in scheduler.schedule.values():
        entry.last_run_at -= overdue_by
    scheduler.close()


def waiting_tasks(sqs, url: str) -> list[str]:
    """The task names of the messages waiting in a queue, read without taking them (visibility 0). Each read counts
    as a receive towards the queue's redrive policy (a batch message received three times is dead-lettered at the
    next receive): call it once the queue holds what it should."""
    names = []
    for _ in range(3):  # moto answers a receive with some of the visible messages, not always all
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        names = sorted(json.loads(base64.b64decode(m["Body"]))["headers"]["task"] for m in messages.get("Messages", []))
        if len(names) == queued(sqs, url):
            break
    return names


@contextmanager
def celery_beat(command: list[str], environ: dict[str, str], app_dir: Path, log_path: Path):
    with open(log_path, "w") as log:
        beat = subprocess.Popen(
            command,
            env={**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **environ},
            cwd=app_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield beat
    finally:
        beat.send_signal(signal.SIGTERM)
        beat.wait(timeout=30)


def test_the_team_app_runs_its_routed_tasks_its_beat_schedule_and_the_drills_canary(
    team_image, local_run, redis_server, sqs_server, tmp_path, monkeypatch
):
    celery_app = readme_compute()["celery_app"]  # what the stack runs with `celery -A`
    routing = load_routing(team_image.app_dir)
    assert set(ARGUMENTS) == set(routing.TASK_ROUTES), "give each routed task its arguments above"
    environ = {
        **local_run_environ(team_image, local_run, redis_server, sqs_server, tmp_path),
        # the test's own: where the health check below reads, the image's ENV, a shutdown that does not wait 105 s
        VARIABLES.HEARTBEAT_DIR.name: str(tmp_path / "heartbeat"),
        "REMAP_SIGTERM": "SIGQUIT",
        VARIABLES.SOFT_SHUTDOWN_TIMEOUT.name: "2",
    }
    queues = json.loads(environ[VARIABLES.QUEUE_URLS.name])
    assert list(queues) == list(CLASSES)
    python = str(team_image.python)
    for name, value in environ.items():  # the producer's boto3 reads its credentials from the environment
        monkeypatch.setenv(name, value)

    # a producer with the tier's settings and the team's routes (docs/deploying.md's producer)
    producer = Celery("team-producer")
    producer.conf.update(settings_from_environment(environ))
    producer.conf.task_routes = routing.TASK_ROUTES
    results = {name: producer.send_task(name, args=args) for name, args in ARGUMENTS.items()}
    # the canary, as the drill sends it: straight to each class's queue
    canaries = {name: uuid.uuid4().hex for name in CLASSES}
    for name, token in canaries.items():
        body = celery_sqs_message(
            task=contract.CANARY_TASK, args=[token], task_id=str(uuid.uuid4()), queue=name, origin="drill@test"
        )
        sqs_server["client"].send_message(QueueUrl=queues[name], MessageBody=body)

    # what each class's queue must hold: what was routed to it, and only that (what that class's workers run)
    expected = collections.defaultdict(list)
    for name in ARGUMENTS:
        expected[routing.TASK_ROUTES[name]["queue"]].append(name)
    for entry in routing.BEAT_SCHEDULE.values():
        expected[routing.TASK_ROUTES[entry["task"]]["queue"]].append(entry["task"])
    for name in CLASSES:
        expected[name].append(contract.CANARY_TASK)
    expected_waiting = {name: sorted(tasks) for name, tasks in expected.items()}

    def waiting() -> dict[str, list[str]]:
        return {name: waiting_tasks(sqs_server["client"], url) for name, url in queues.items()}

    # Beat, with every entry of the schedule overdue: it sends each once, routed by the team's routes
    schedule = tmp_path / "celerybeat-schedule"
    seed_overdue_schedule(schedule, routing.BEAT_SCHEDULE, timedelta(days=2))
    beat_log = tmp_path / "beat.log"
    _, *beat_arguments = local_run.with_options(
        local_run.command("celery", "-A", celery_app, "beat"), schedule=str(schedule)
    )
    beat_command = [python, "-m", "celery", *beat_arguments]  # the README's command, with this test's schedule
    counts = {name: len(tasks) for name, tasks in expected_waiting.items()}
    with celery_beat(beat_command, environ, team_image.app_dir, beat_log):
        # counted, not read: every read is a receive towards the queues' redrive policy
        wait_until(
            lambda: {name: queued(sqs_server["client"], url) for name, url in queues.items()} == counts,
            30,
            "Beat's schedule in the queues",
        )
    assert waiting() == expected_waiting
    sent = re.findall(r"Sending due task (\S+) ", beat_log.read_text())
    assert sorted(sent) == sorted(routing.BEAT_SCHEDULE)  # each entry once

    # one worker for the three classes (the stack runs one service per class): everything runs
    worker_log = tmp_path / "worker.log"
    with celery_worker(
        environ,
        local_run.option(local_run.command("celery", "-A", celery_app, "worker"), "--queues"),
        worker_log,
        pool="prefork",
        name="team",
        celery=[python, "-m", "celery"],
        app_dir=team_image.app_dir,
        app=celery_app,
    ):
        outcomes = {name: result.get(timeout=60) for name, result in results.items()}
        # the README's producer, as written, from the image's packages in /app
        produced = subprocess.run(
            [python, "-c", local_run.producer],
            env={**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **environ},
            cwd=team_image.app_dir,
            capture_output=True,
            text=True,
            timeout=90,
        )
        expected[routing.TASK_ROUTES["team_app.tasks.send_receipt"]["queue"]].append("team_app.tasks.send_receipt")
        finished = sum(len(tasks) for tasks in expected.values())
        wait_until(
            lambda: len(re.findall(r"Task \S+\[[0-9a-f-]+\] succeeded", worker_log.read_text())) >= finished,
            60,
            f"the worker to finish all {finished} tasks",
        )
        # the container health check, as the task definitions run it, from the image's packages and /app
        _, program, *arguments = contract.health_check_command("worker")
        checked = subprocess.run(
            [python if program == "python" else program, *arguments],
            env={**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **environ},
            cwd=team_image.app_dir,
            capture_output=True,
            text=True,
            timeout=30,
        )
    log = worker_log.read_text()

    assert outcomes["team_app.tasks.send_receipt"] == {"order_id": "A-1001", "email": "ada@example.com"}
    assert produced.returncode == 0, produced.stderr[-3000:]
    assert ast.literal_eval(produced.stdout.strip()) == {"order_id": "A-1001", "email": "ada@example.com"}
    assert outcomes["team_app.tasks.sync_inventory"] == {"scope": "warehouse-2"}
    # the team's own pin (humanize), from the image's second layer
    assert outcomes["team_app.tasks.nightly_report"]["summary"] == "2025-01-31: 12,345 orders, 48.0 MB exported"
    ran = collections.Counter(re.findall(r"Task (\S+)\[[0-9a-f-]+\] succeeded", log))
    assert ran == collections.Counter(task for tasks in expected.values() for task in tasks)
    for name, token in canaries.items():
        assert [record["queue"] for record in ledger(worker_log, token)] == [name]
    assert "broker_tier_celery.claim_check:Transport" in log  # configure(app) from the staged settings package
    # no message reached a dead-letter queue, though the test's reads count as receives towards the redrive policy
    assert {name: dead_lettered(sqs_server["client"], url) for name, url in queues.items()} == dict.fromkeys(CLASSES, 0)
    assert checked.returncode == 0 and checked.stdout.startswith("worker: heartbeat "), checked

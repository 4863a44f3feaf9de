"""Dead letters listed by task and redriven by task, against moto's server (SQS, CloudWatch Logs, CloudFormation):
real Celery messages published through the settings package and dead-lettered by the queue's redrive policy, the
worker's log lines as Celery writes them; an interrupted selective redrive (a real SIGKILL between its steps, and a
process that dies on either side of SendMessage) and its rerun.

moto's server has no ListMessageMoveTasks: a botocore ``before-call`` handler answers it with no task running."""

from __future__ import annotations

import base64
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore.config import Config
from celery.app.trace import LOG_FAILURE, LOG_RECEIVED
from fake_aws import create_stack_with_outputs
from loopback import wait_until
from moto_server import moto_server

import broker_tier_contract as contract
from broker_tier.ops import redrive_journal
from broker_tier.ops.aws import SEND_ONCE
from broker_tier.ops.cli import main
from broker_tier.ops.selective_redrive import REDRIVEN_FROM_ATTRIBUTE

pytestmark = pytest.mark.slow  # long polls and a killed process: scheduled first (tests/conftest.py)
REGION = "eu-west-1"
CLASS = "default"
CHARGE, EMAIL = "team.charge", "team.email"
CARD = "4111-1111-1111-1111"
"""An argument that must not show unless asked (--show-args)."""
HOLD = "2"
"""Seconds a killed run keeps its dead letters hidden (the rerun waits for them)."""
_ENVIRONMENTS = itertools.count(1)


def no_move_task(**_):
    """What ListMessageMoveTasks answers when no move task ran (moto's server lacks the call)."""
    return SimpleNamespace(status_code=200, headers={}), {"Results": []}


def aws_clients(endpoint: str) -> dict:
    def client(service: str, **config):
        made = boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(**config),
        )
        made.meta.events.register("before-call.sqs.ListMessageMoveTasks", no_move_task)
        return made

    clients = {name: client(name) for name in ("cloudformation", "sqs", "logs")}
    clients[SEND_ONCE] = client("sqs", retries={"total_max_attempts": 1})
    return clients


@pytest.fixture(scope="module")
def server():
    with moto_server() as endpoint:
        yield endpoint


@dataclass
class Tier:
    env: str
    endpoint: str
    clients: dict
    queue_url: str
    dead_letter_url: str
    log_group: str
    task_ids: dict[str, list[str]]
    """Task ids by task name, in publishing order."""
    bodies: dict[str, str]
    """The SQS body of each task id's message, as Celery sent it."""
    reports: Path

    def run(self, *argv: str) -> tuple[int, dict]:
        code = main([*argv, "--report-dir", str(self.reports)], clients=self.clients)
        latest = max(self.reports.glob("*.json"), key=lambda path: path.stat().st_mtime_ns)
        return code, json.loads(latest.read_text())

    def visible(self, url: str) -> int:
        attributes = self.clients["sqs"].get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def drain(self, url: str) -> list[dict]:
        """Every message of ``url``, received and deleted (the work queue: what workers would run)."""
        found = []
        while (
            messages := self.clients["sqs"]
            .receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"])
            .get("Messages")
        ):
            for message in messages:
                self.clients["sqs"].delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            found += messages
        return found

    def log(self, *lines: str) -> None:
        now = int(time.time() * 1000)
        self.clients["logs"].put_log_events(
            logGroupName=self.log_group,
            logStreamName="celery/celery/0123456789abcdef",
            logEvents=[{"timestamp": now + n, "message": line} for n, line in enumerate(lines)],
        )


def task_id_of(body: str) -> str:
    return json.loads(base64.b64decode(body))["headers"]["id"]


def worker_line(level: str, process: str, text: str) -> str:
    """A line as the worker writes it with Celery's default ``worker_log_format``."""
    return f"[{datetime.now(UTC):%Y-%m-%d %H:%M:%S},000: {level}/{process}] {text}"


def publish(tier_environ: dict[str, str], count: dict[str, int]) -> dict[str, list[str]]:
    """Publish through the settings package, as a team's app does; the task ids by name."""
    from celery import Celery

    from broker_tier_celery import settings_from_environment

    app = Celery("team-app")
    app.conf.update(settings_from_environment(tier_environ))
    ids = {
        name: [app.send_task(name, args=[f"order-{n}", CARD], queue=CLASS).id for n in range(times)]
        for name, times in count.items()
    }
    app.close()
    return ids


@pytest.fixture
def tier(server, lone_redis, tmp_path, monkeypatch) -> Tier:
    """A class's queues (redrive after one receive), its worker log group and the State stack's outputs; five
    Celery tasks published and dead-lettered; the worker's log lines for them (charge failed, email's failure
    not logged)."""
    env = f"dl{next(_ENVIRONMENTS)}"
    clients = aws_clients(server)
    sqs = clients["sqs"]
    dead_url = sqs.create_queue(QueueName=contract.dead_letter_queue_name(env, CLASS))["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": 1})
    url = sqs.create_queue(QueueName=contract.queue_name(env, CLASS), Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    outputs = {contract.StateOutputs.REPLICATION_GROUP_ID: contract.default_replication_group_id(env)}
    for kind, (queue_url, queue_arn) in {"Queue": (url, arn), "DeadLetterQueue": (dead_url, dead_arn)}.items():
        outputs[contract.queue_output_id(kind, CLASS, "Url")] = queue_url
        outputs[contract.queue_output_id(kind, CLASS, "Arn")] = queue_arn
    create_stack_with_outputs(clients["cloudformation"], contract.stack_name(env, contract.STATE), outputs)
    log_group = contract.service_log_group_name(env, contract.worker_process(CLASS))
    clients["logs"].create_log_group(logGroupName=log_group)
    clients["logs"].create_log_stream(logGroupName=log_group, logStreamName="celery/celery/0123456789abcdef")
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    ids = publish(
        {
            "BROKER_TIER_BROKER": "sqs",
            "BROKER_TIER_QUEUE_URLS": json.dumps({CLASS: url}),
            "BROKER_TIER_REGION": REGION,
            "BROKER_TIER_SQS_ENDPOINT_URL": server,
            "BROKER_TIER_REDIS_HOST": "127.0.0.1",
            "BROKER_TIER_REDIS_PORT": str(lone_redis.port),
            "BROKER_TIER_REDIS_TLS": "false",
            "BROKER_TIER_REDIS_AUTH_TOKEN": lone_redis.password,
            "BROKER_TIER_REDIS_DB_RESULTS": "2",
            "BROKER_TIER_REDIS_DB_BROKER": "1",
            "BROKER_TIER_SOFT_SHUTDOWN_TIMEOUT": "2",
        },
        {CHARGE: 3, EMAIL: 2},
    )
    bodies = {}
    while (
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        != "0"
    ):  # a worker's receive each; the next receive finds the count spent and moves it (redrive policy)
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        ):
            bodies[task_id_of(message["Body"])] = message["Body"]
    tier = Tier(env, server, clients, url, dead_url, log_group, ids, bodies, tmp_path / "reports")
    assert tier.visible(dead_url) == 5 and sorted(bodies) == sorted(ids[CHARGE] + ids[EMAIL])
    tier.log(
        *(worker_line("INFO", "MainProcess", LOG_RECEIVED % {"name": CHARGE, "id": task}) for task in ids[CHARGE]),
        *(worker_line("INFO", "MainProcess", LOG_RECEIVED % {"name": EMAIL, "id": task}) for task in ids[EMAIL]),
        *(
            worker_line(
                "ERROR",
                "ForkPoolWorker-1",
                LOG_FAILURE
                % {
                    "name": CHARGE,
                    "id": task,
                    "description": "raised unexpected",
                    "exc": "ValueError('card declined')",
                },
            )
            for task in ids[CHARGE]
        ),
    )
    return tier


def test_dead_letters_are_listed_by_task_with_their_failure_and_stay(tier, capsys):
    code, report = tier.run("dead-letters", "--env", tier.env, "--queue-class", CLASS)
    out = capsys.readouterr().out
    assert code == 0, out
    verdict, _, listing = out.partition("\n\n")
    assert verdict == report["verdict"] and verdict.startswith(
        f"5 dead letters of {contract.dead_letter_queue_name(tier.env, CLASS)}"
    )
    assert f"by task: {CHARGE} x3, {EMAIL} x2" in verdict and "none was deleted" in verdict
    groups = listing.split(f"\n{EMAIL}: 2\n")
    assert f"\n{CHARGE}: 3\n" in groups[0] and len(groups) == 2
    assert groups[0].count("failure at ") == 3 and "raised unexpected: ValueError('card declined')" in groups[0]
    assert "failure" not in groups[1]  # no failure logged for the e-mails
    for task in tier.task_ids[CHARGE] + tier.task_ids[EMAIL]:
        assert f"  {task}  receives 2  sent " in listing  # the worker's receive, then this listing's
    assert CARD not in out and CARD not in json.dumps(report)  # arguments only when asked for
    assert tier.visible(tier.dead_letter_url) == 5  # made visible again at once, nothing deleted

    code, report = tier.run("dead-letters", "--env", tier.env, "--queue-class", CLASS, "--json", "--show-args")
    listed = json.loads(capsys.readouterr().out)
    assert code == 0 and listed["verdict"] == report["verdict"] and listed["complete"] is True
    (charge,) = [row for row in listed["groups"][CHARGE] if row["task_id"] == tier.task_ids[CHARGE][0]]
    assert charge["receive_count"] == 3 and charge["arguments"] == f"args ['order-0', '{CARD}'], kwargs {{}}"
    assert charge["failure"] == "raised unexpected: ValueError('card declined')"
    assert charge["first_received_at"] == charge["last_received_at"] and charge["worker_receives_logged"] == 1
    assert tier.visible(tier.dead_letter_url) == 5


DRIVER = """
import os, signal, sys
from broker_tier.ops import cli, redrive_journal
kill_after, argv = sys.argv[1], sys.argv[2:]
record = redrive_journal.RedriveJournal.record
def record_then_die(journal, step, message_id, **details):
    record(journal, step, message_id, **details)
    if step == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind: the messages it holds stay hidden
redrive_journal.RedriveJournal.record = record_then_die
make_clients = cli.make_clients
def with_move_tasks_answered(*args):
    clients, target = make_clients(*args)
    for client in clients.values():
        client.meta.events.register(
            "before-call.sqs.ListMessageMoveTasks",
            lambda **_: (type("Http", (), {"status_code": 200, "headers": {}})(), {"Results": []}),
        )
    return clients, target
cli.make_clients = with_move_tasks_answered
sys.exit(cli.main(argv))
"""


def redriven(tier: Tier) -> list[dict]:
    return tier.drain(tier.queue_url)


def test_a_redrive_by_task_killed_between_send_and_delete_completes_on_rerun_without_a_second_send(tier, capsys):
    selected = ["redrive", "--env", tier.env, "--queue-class", CLASS, "--task-name", CHARGE]
    code, report = tier.run(*selected, "--dry-run")
    assert code == 0 and report["outcome"] == "planned" and report["verdict"].startswith("Dry run of")
    assert "read AWS (" in report["verdict"] and "ReceiveMessage" in report["verdict"]
    assert "send 3 dead letters of task name team.charge" in report["plan"][0]
    assert tier.visible(tier.dead_letter_url) == 5 and tier.visible(tier.queue_url) == 0

    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            DRIVER,
            redrive_journal.SENT,
            *selected,
            "--hold",
            HOLD,
            "--report-dir",
            str(tier.reports),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tier.reports.parent),
            "AWS_ENDPOINT_URL": tier.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        },
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (journal,) = (tier.reports / "redrive-journals").glob("*.jsonl")
    steps = [json.loads(line)["step"] for line in journal.read_text().splitlines()]
    assert steps == [redrive_journal.SENDING, redrive_journal.SENT]  # killed right after SQS took the copy
    wait_until(lambda: tier.visible(tier.dead_letter_url) == 5, 30, "the killed run's hold to run out")

    code, report = tier.run(*selected)
    assert code == 0, report
    assert report["measurements"]["completed_from_interrupted_run"] == 1 and report["measurements"]["moved"] == 2
    copies = redriven(tier)
    assert sorted(task_id_of(message["Body"]) for message in copies) == sorted(tier.task_ids[CHARGE])  # once each
    assert all(message["Body"] == tier.bodies[task_id_of(message["Body"])] for message in copies)  # as Celery sent it
    assert all(REDRIVEN_FROM_ATTRIBUTE in message["MessageAttributes"] for message in copies)
    assert tier.visible(tier.dead_letter_url) == 2  # the e-mails stay
    capsys.readouterr()


class ProcessDied(BaseException):
    """The process stops there: no handler of the command catches it (a crash, as far as the journal knows)."""


def die_at(monkeypatch, step: str, *, before_recording: bool) -> None:
    record = redrive_journal.RedriveJournal.record

    def record_or_die(journal, recorded, message_id, **details):
        if recorded == step and before_recording:
            raise ProcessDied(step)
        record(journal, recorded, message_id, **details)
        if recorded == step:
            raise ProcessDied(step)

    monkeypatch.setattr(redrive_journal.RedriveJournal, "record", record_or_die)


def test_an_uncertain_send_is_never_repeated_unasked(tier, monkeypatch, capsys):
    first, second = tier.task_ids[CHARGE][:2]
    by_id = ["redrive", "--env", tier.env, "--queue-class", CLASS, "--task-id"]

    # died after announcing the send, before SendMessage: not sent, and the rerun cannot know it
    with monkeypatch.context() as dying:
        die_at(dying, redrive_journal.SENDING, before_recording=False)
        with pytest.raises(ProcessDied):
            tier.run(*by_id, first)
    code, report = tier.run(*by_id, first)
    assert code == 1 and [entry["task_id"] for entry in report["measurements"]["uncertain"]] == [first]
    assert tier.visible(tier.queue_url) == 0 and tier.visible(tier.dead_letter_url) == 5  # not lost, not sent
    code, report = tier.run("redrive", "--env", tier.env, "--queue-class", CLASS)  # a move would send it too
    assert code == 2 and "no_selective_redrive_half_done" in json.dumps(report["steady_state"])
    code, report = tier.run(*by_id, first, "--resend-uncertain")
    assert code == 0 and report["measurements"]["completed_from_interrupted_run"] == 1

    # died after SendMessage, before recording it: sent, and only the worker's log can say so
    with monkeypatch.context() as dying:
        die_at(dying, redrive_journal.SENT, before_recording=True)
        with pytest.raises(ProcessDied):
            tier.run(*by_id, second)
    code, report = tier.run(*by_id, second)
    assert code == 1 and [entry["task_id"] for entry in report["measurements"]["uncertain"]] == [second]
    tier.log(worker_line("INFO", "MainProcess", LOG_RECEIVED % {"name": CHARGE, "id": second}))  # a worker got it
    code, report = tier.run(*by_id, second)
    assert code == 0 and report["measurements"]["uncertain"] == []
    assert sorted(task_id_of(message["Body"]) for message in redriven(tier)) == sorted([first, second])
    assert tier.visible(tier.dead_letter_url) == 3

    # died after DeleteMessage, before recording it: nothing left to do, and the journal must not block a move
    third = tier.task_ids[CHARGE][2]
    with monkeypatch.context() as dying:
        die_at(dying, redrive_journal.DELETED, before_recording=True)
        with pytest.raises(ProcessDied):
            tier.run(*by_id, third)
    code, report = tier.run(*by_id, third)
    assert code == 0 and [entry["task_id"] for entry in report["measurements"]["closed_as_gone"]] == [third]
    assert [task_id_of(message["Body"]) for message in redriven(tier)] == [third]
    code, report = tier.run("redrive", "--env", tier.env, "--queue-class", CLASS, "--dry-run")
    assert code == 0 and report["outcome"] == "planned"  # the journal holds nothing half done
    capsys.readouterr()

"""SQS on loopback: moto's server with the class's queues and redrive as the State template has them; only the
visibility timeout is shortened, so a message left un-acked comes back (or is dead-lettered) within the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from broker_tier.rehearsal.definition import REHEARSAL_REGION, QueueDefinition
from broker_tier.rehearsal.util import free_port, stop_process, wait_until

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "rehearsal", "AWS_SECRET_ACCESS_KEY": "rehearsal"}
"""moto accepts any credentials; in ECS they come from the task role."""


@dataclass(kw_only=True)
class LocalSqs:
    """A moto server process (made atomic where AWS is: ``moto_atomic``) and the queues created on it."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    urls: dict[str, str] = field(default_factory=dict)
    """Queue name -> URL."""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):
        return boto3.client(
            "sqs",
            endpoint_url=self.endpoint,
            region_name=REHEARSAL_REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "moto.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "broker_tier.rehearsal.moto_atomic", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        client = self.client()

        def answers() -> bool:
            try:
                client.list_queues()
                return True
            except Exception:  # noqa: BLE001 - not listening yet
                return False

        wait_until(answers, 30, "moto's server to answer")

    def create(self, queue: QueueDefinition, *, visibility_timeout_seconds: int) -> None:
        """The class's dead-letter queue and work queue, with its redrive after ``maxReceiveCount``."""
        client = self.client()
        dead_letter_url = client.create_queue(QueueName=queue.dead_letter_name)["QueueUrl"]
        dead_letter_arn = client.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.urls[queue.dead_letter_name] = dead_letter_url
        self.urls[queue.name] = client.create_queue(
            QueueName=queue.name,
            Attributes={
                "VisibilityTimeout": str(visibility_timeout_seconds),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": queue.max_receive_count}
                ),
            },
        )["QueueUrl"]

    def depth(self, queue_name: str) -> dict[str, int]:
        attributes = self.client().get_queue_attributes(
            QueueUrl=self.urls[queue_name],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return {
            "visible": int(attributes["ApproximateNumberOfMessages"]),
            "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        }

    def stop(self) -> None:
        stop_process(self.process)

"""Session fixtures for the integration tests: redis-server and moto's SQS server on loopback."""

from __future__ import annotations

import json
import shutil
import subprocess

import boto3
import pytest
import redis
from loopback import REDIS_PASSWORD, REGION, TEST_MAX_RECEIVE_COUNT, WORK_QUEUES, free_port, wait_until


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
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
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "sqs", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    urls = {}
    for name, visibility_seconds in WORK_QUEUES.items():
        dlq_url = client.create_queue(QueueName=f"it-{name}-dlq")["QueueUrl"]
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
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
    server.stop()

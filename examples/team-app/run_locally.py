"""The queues and variables to run this app's worker, Beat and producers outside the stack (README.md, "Run it
locally"), against a local ``redis-server`` and moto's SQS server (``moto_server``).

    python run_locally.py --redis-port 6380 --sqs-endpoint http://127.0.0.1:5001 --env-file local.env
    set -a; . ./local.env; set +a

It creates, on the SQS endpoint, each latency class's queue and its dead-letter queue as the tier's State stack
does: named by the contract (``broker_tier_contract.queue_name`` and ``dead_letter_queue_name``, in the environment
``--environment``), with the class's visibility timeout and retention, SQS's largest message size, and a redrive
policy that moves a message to the dead-letter queue after the class's ``maxReceiveCount`` receives. kombu never
creates or lists queues: without this step a publish or a worker fails on the missing queue. It then writes (with
``--env-file``) or prints the variables a worker, Beat and a producer need, each a ``export NAME=value`` line in
shell quoting. Run it again for the same servers: it finds the queues it created and writes the same variables.

The contract names the queues but does not hold the classes' limits: ``CLASSES`` below are cdk.json's ``queues`` as
shipped (a test compares them); change them with your environment's. Standard library, boto3 and the contract only
(all in the image's packages and beside ``team_app/`` after the README's copy step).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import boto3

import broker_tier_contract as contract

VARIABLES = contract.ContainerEnvironment


@dataclass(frozen=True)
class LatencyClass:
    """The limits of one latency class that its queues and its workers are given (cdk.json's ``queues.<class>``)."""

    task_time_limit_seconds: int
    visibility_timeout_seconds: int
    max_receive_count: int
    retention_seconds: int = 345_600
    dead_letter_retention_seconds: int = 1_209_600


CLASSES = {
    "interactive": LatencyClass(task_time_limit_seconds=60, visibility_timeout_seconds=300, max_receive_count=5),
    "default": LatencyClass(task_time_limit_seconds=300, visibility_timeout_seconds=4200, max_receive_count=5),
    "batch": LatencyClass(task_time_limit_seconds=3600, visibility_timeout_seconds=3900, max_receive_count=3),
}
"""cdk.json's latency classes as shipped, in its order: the queues ``routing.TASK_ROUTES`` routes to."""

ENVIRONMENT = "local"
"""The environment name in the queues' names (``broker-tier-local-<class>``)."""
REGION = "us-east-1"
DUMMY_CREDENTIAL = "testing"
"""boto3 signs every request, moto's too, so it needs credentials; moto accepts any."""


def sqs_client(endpoint: str, region: str = REGION):
    """boto3's SQS client for ``endpoint``, with moto's dummy credentials (none of yours is read or sent)."""
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=DUMMY_CREDENTIAL,
        aws_secret_access_key=DUMMY_CREDENTIAL,
    )


def create_queues(client, environment: str = ENVIRONMENT, classes: Mapping[str, LatencyClass] = CLASSES) -> dict:
    """Each class's dead-letter queue, then its queue with the redrive policy to it; the queues' URLs by class."""
    urls = {}
    for name, limits in classes.items():
        dead_letters = client.create_queue(
            QueueName=contract.dead_letter_queue_name(environment, name),
            Attributes={
                "MessageRetentionPeriod": str(limits.dead_letter_retention_seconds),
                "MaximumMessageSize": str(contract.SQS_MAX_MESSAGE_BYTES),
            },
        )["QueueUrl"]
        dead_letters_arn = client.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        urls[name] = client.create_queue(
            QueueName=contract.queue_name(environment, name),
            Attributes={
                "VisibilityTimeout": str(limits.visibility_timeout_seconds),
                "MessageRetentionPeriod": str(limits.retention_seconds),
                "MaximumMessageSize": str(contract.SQS_MAX_MESSAGE_BYTES),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dead_letters_arn, "maxReceiveCount": limits.max_receive_count}
                ),
            },
        )["QueueUrl"]
    return urls


def local_environment(
    queue_urls: Mapping[str, str],
    *,
    redis_port: int,
    sqs_endpoint: str,
    redis_host: str = "127.0.0.1",
    redis_password: str | None = None,
    task_time_limit: int,
    region: str = REGION,
) -> dict[str, str]:
    """The variables the stack would give a container, for the local servers (the stack also sets others, whose
    defaults hold here: the Redis databases, result expiry, soft shutdown)."""
    environ = {
        VARIABLES.BROKER.name: "sqs",
        VARIABLES.QUEUE_URLS.name: json.dumps(dict(queue_urls)),
        VARIABLES.REGION.name: region,
        VARIABLES.SQS_ENDPOINT_URL.name: sqs_endpoint,
        VARIABLES.REDIS_HOST.name: redis_host,
        VARIABLES.REDIS_PORT.name: str(redis_port),
        # the stack always speaks TLS to ElastiCache; a plain redis-server answers no TLS handshake
        VARIABLES.REDIS_TLS.name: "false",
        VARIABLES.TASK_TIME_LIMIT.name: str(task_time_limit),
        "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIAL,
        "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIAL,
        "AWS_DEFAULT_REGION": region,
    }
    if redis_password:
        environ[VARIABLES.REDIS_AUTH_TOKEN.name] = redis_password
    return environ


def shell_lines(environ: Mapping[str, str], comments: Iterable[str] = ()) -> list[str]:
    """``# comment`` lines, then one ``export NAME=value`` line per variable (POSIX shell quoting)."""
    return [*(f"# {comment}" for comment in comments), *(f"export {n}={shlex.quote(v)}" for n, v in environ.items())]


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-port", type=int, required=True, help="the port of the local redis-server")
    parser.add_argument("--redis-host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument("--redis-password", help="the redis-server's requirepass, if it has one")
    parser.add_argument("--sqs-endpoint", required=True, help="moto_server's URL, e.g. http://127.0.0.1:5001")
    parser.add_argument("--environment", default=ENVIRONMENT, help=f"in the queues' names (default: {ENVIRONMENT})")
    parser.add_argument("--region", default=REGION, help=f"default: {REGION}")
    parser.add_argument(
        "--task-time-limit",
        type=int,
        help="seconds (default: the longest class's limit, so that one worker can run every class's tasks; a class's "
        "own workers on ECS get that class's limit)",
    )
    parser.add_argument("--env-file", type=Path, help="write the variables there (default: print them)")
    args = parser.parse_args(argv)
    endpoint = urlsplit(args.sqs_endpoint)
    if endpoint.scheme not in ("http", "https") or not endpoint.hostname:
        parser.error(f"--sqs-endpoint {args.sqs_endpoint!r} is not an http:// or https:// URL")
    if args.task_time_limit is not None and args.task_time_limit < 1:
        parser.error("--task-time-limit must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    urls = create_queues(sqs_client(args.sqs_endpoint, args.region), args.environment)
    limit = args.task_time_limit or max(limits.task_time_limit_seconds for limits in CLASSES.values())
    environ = local_environment(
        urls,
        redis_port=args.redis_port,
        sqs_endpoint=args.sqs_endpoint,
        redis_host=args.redis_host,
        redis_password=args.redis_password,
        task_time_limit=limit,
        region=args.region,
    )
    comments = [
        "written by run_locally.py: a local run of the team's app (README.md, 'Run it locally')",
        "each class's own time limit, as its workers on ECS get it: "
        + ", ".join(f"{name} {limits.task_time_limit_seconds} s" for name, limits in CLASSES.items()),
    ]
    text = "\n".join(shell_lines(environ, comments)) + "\n"
    if args.env_file is None:
        sys.stdout.write(text)
    else:
        args.env_file.write_text(text)
        print(f"{len(urls)} queues with their dead-letter queues at {args.sqs_endpoint}; variables in {args.env_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``broker-tier-ops migrate-broker``: its options, and how they become a :class:`Migration`."""

from __future__ import annotations

import argparse
import os
from typing import Any
from urllib.parse import urlsplit

import redis

from broker_tier.evidence.report import Report
from broker_tier.ops.command import Command, number, positive
from broker_tier.ops.migrate_broker.migration import BROKERS, Migration, MigrationOptions
from broker_tier.ops.migrate_broker.redis_side import CLIENT_NAME, RedisBroker
from broker_tier.ops.migrate_broker.sqs_side import SqsBroker
from broker_tier.ops.migrate_broker.workers import DeployedWorkers
from broker_tier.ops.resources import OpsError, TierResources
from broker_tier_celery.claim_check import PayloadStore
from broker_tier_celery.environment import ClaimCheckTarget
from broker_tier_contract import DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES, ContainerEnvironment

AUTH_TOKEN_VARIABLE = ContainerEnvironment.REDIS_AUTH_TOKEN.name
"""The Redis AUTH token comes from this variable (the settings package's), never from the command line."""
REDIS_TIMEOUT_SECONDS = 10


def redis_client(url: str) -> Any:
    """A client of the broker database named :data:`CLIENT_NAME`, with the token of :data:`AUTH_TOKEN_VARIABLE`."""
    options: dict[str, Any] = {
        "client_name": CLIENT_NAME,
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
    }
    if os.environ.get(AUTH_TOKEN_VARIABLE):
        options["password"] = os.environ[AUTH_TOKEN_VARIABLE]
    return redis.Redis.from_url(url, **options)


def _redis_url(args: argparse.Namespace, resources: TierResources) -> str:
    if args.redis_url:
        # a URL without a database path means --redis-db's (redis-py would take 0: the app cache's)
        return (
            args.redis_url
            if urlsplit(args.redis_url).path.strip("/")
            else f"{args.redis_url.rstrip('/')}/{args.redis_db}"
        )
    if not resources.redis_endpoint or not resources.redis_port:
        raise OpsError("the State stack names no Redis endpoint: give --redis-url")
    return f"rediss://{resources.redis_endpoint}:{resources.redis_port}/{args.redis_db}"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = MigrationOptions(target="sqs")
    parser.add_argument("--to", required=True, choices=BROKERS, help="the broker the tier moves to")
    parser.add_argument(
        "--redis-url",
        help="the broker database without the token, e.g. rediss://HOST:PORT/1 (default: the State stack's "
        f"primary endpoint; without a database, --redis-db's); the token is read from {AUTH_TOKEN_VARIABLE}",
    )
    parser.add_argument(
        "--redis-db",
        type=number(int, at_least=0),
        default=int(ContainerEnvironment.REDIS_DB_BROKER.default or 1),
        help="the broker database (default: %(default)s, the State stack's RedisDatabases broker=)",
    )
    parser.add_argument(
        "--claim-check-bucket",
        help="with claim_check.enabled: the State stack's ClaimCheckBucketName (a message over the threshold moves "
        "through it; without it such a message does not fit SQS)",
    )
    parser.add_argument(
        "--task-time-limit",
        type=positive(int),
        default=defaults.task_time_limit_seconds,
        metavar="SECONDS",
        help="the classes' task_time_limit_seconds, for a message without its own (default: %(default)s)",
    )
    for option, attribute, text in (
        ("--switch-timeout", "switch_timeout_seconds", "how long to wait for the workers' deploy"),
        ("--quiet-timeout", "quiet_timeout_seconds", "how long to wait for the old broker to have no consumer"),
        ("--settle", "settle_seconds", "how long the old broker must stay empty"),
        ("--poll", "poll_seconds", "interval of the waits"),
    ):
        parser.add_argument(
            option,
            dest=attribute,
            type=positive(float),
            default=getattr(defaults, attribute),
            metavar="SECONDS",
            help=f"{text} (default: %(default)s)",
        )


def _run(args: argparse.Namespace, resources: TierResources, clients: dict) -> Report:
    queue_urls = {name: pair.queue_url for name, pair in sorted(resources.queues.items())}
    if not queue_urls:
        raise OpsError(f"the State stack of {args.env} names no queue: is it deployed?")
    region = clients["sqs"].meta.region_name
    payloads = (
        PayloadStore(ClaimCheckTarget(args.claim_check_bucket, DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES), region)
        if args.claim_check_bucket
        else None
    )
    options = MigrationOptions(
        target=args.to,
        claim_check=payloads is not None,
        task_time_limit_seconds=args.task_time_limit,
        switch_timeout_seconds=args.switch_timeout_seconds,
        quiet_timeout_seconds=args.quiet_timeout_seconds,
        settle_seconds=args.settle_seconds,
        poll_seconds=args.poll_seconds,
    )
    report = Report("migrate-broker", args.env, f"{options.source} -> {options.target}", args.dry_run)
    migration = Migration(
        redis=RedisBroker(redis_client(_redis_url(args, resources)), list(queue_urls)),
        sqs=SqsBroker(clients["sqs"], queue_urls, payloads=payloads),
        workers=DeployedWorkers(clients["cloudformation"], args.env),
        options=options,
        report=report,
    )
    return migration.run()


COMMAND = Command(
    name="migrate-broker",
    help="move queued tasks between the Redis broker and SQS around the deploy",
    description="Moves a live tier's queued tasks from the Redis broker to SQS, or back, around the deploy that "
    "switches the broker (runbooks/broker-redis-to-sqs.md): publishers first, then workers; ids, headers and ETAs "
    "kept; run again after an interruption, it finishes without losing or repeating a task.",
    add_arguments=_add_arguments,
    run=_run,
    dry_run=True,
    usage="--env ENV --to sqs|redis",
)

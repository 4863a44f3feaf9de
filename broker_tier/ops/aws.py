"""The AWS session of ``broker-tier-ops``: region, profile, retries, time-outs, and the clients."""

from __future__ import annotations

import os
from dataclasses import dataclass

import boto3
import botocore.session
from botocore.config import Config

SERVICES = ("cloudformation", "elasticache", "cloudwatch", "sqs", "ecs", "logs", "fis")
SEND_ONCE = "sqs-send-once"
"""The clients' key of an SQS client that makes each call once: boto3's retry of a SendMessage whose answer was lost
would put a second copy in the queue (the selective redrive sends with it)."""
DEFAULT_MAX_ATTEMPTS = 8
"""Attempts per call (boto3's standard retry mode: exponential back-off with jitter, throttling-aware),
unless AWS_MAX_ATTEMPTS or the profile's ``max_attempts`` says otherwise."""
CONNECT_TIMEOUT_SECONDS = 10
"""botocore waits 60 s by default; an unreachable endpoint should fail within a minute, not eight."""
READ_TIMEOUT_SECONDS = 30

REGION_HELP = "AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION, else the profile's)"
PROFILE_HELP = "AWS profile (default: AWS_PROFILE, else boto3's credential chain)"


@dataclass(frozen=True)
class AwsTarget:
    """Where the commands talk to: the resolved region, and where it came from."""

    region: str | None
    region_source: str
    profile: str | None
    max_attempts: int


def resolve_region(cli_region: str | None, session: botocore.session.Session) -> tuple[str | None, str]:
    """``(region, source)``: --region, else AWS_REGION, else botocore's own chain (AWS_DEFAULT_REGION, profile)."""
    if cli_region:
        return cli_region, "--region"
    if os.environ.get("AWS_REGION"):
        return os.environ["AWS_REGION"], "AWS_REGION"
    region = session.get_config_variable("region")
    if region:
        source = "AWS_DEFAULT_REGION" if os.environ.get("AWS_DEFAULT_REGION") == region else "the profile"
        return region, source
    return None, "none"


def make_clients(region: str | None, profile: str | None) -> tuple[dict, AwsTarget]:
    """The boto3 clients of ``SERVICES`` (by service name), and the target they talk to.

    Raises botocore's NoRegionError when no region is found, ProfileNotFound for an unknown profile.
    """
    core = botocore.session.Session(profile=profile)
    region, source = resolve_region(region, core)
    configured_attempts = core.get_config_variable("max_attempts")
    max_attempts = configured_attempts or DEFAULT_MAX_ATTEMPTS
    retries = {"mode": core.get_config_variable("retry_mode") or "standard", "total_max_attempts": max_attempts}
    config = Config(
        retries=retries,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        user_agent_extra="broker-tier-ops",
    )
    session = boto3.Session(botocore_session=core, region_name=region)
    clients = {name: session.client(name, config=config) for name in SERVICES}
    clients[SEND_ONCE] = session.client(
        "sqs", config=config.merge(Config(retries={**retries, "total_max_attempts": 1}))
    )
    return clients, AwsTarget(
        region=clients[SERVICES[0]].meta.region_name,
        region_source=source,
        profile=profile or os.environ.get("AWS_PROFILE"),
        max_attempts=max_attempts,
    )

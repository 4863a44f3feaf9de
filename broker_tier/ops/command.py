"""What a ``broker-tier-ops`` subcommand is: its name, its own options, and how it runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import broker_tier_contract as contract
from broker_tier.evidence.report import Report
from broker_tier.ops.resources import TierResources

ENV_REQUIRED, ENV_OPTIONAL = "required", "optional"


@dataclass(frozen=True, kw_only=True)
class Command:
    """One subcommand. For an AWS command the CLI adds the shared options the command says it reads
    (``--env``, ``--replication-group-id``, ``--dry-run``) and finds the environment's resources; for every
    command it writes the report ``run`` returns, and turns any exception into a one-line cause, an exit code
    and a report (``broker_tier.evidence.errors``): a command need not handle errors itself. A command that
    changes something calls ``Report.plan_steps`` right before the change, so that a failure after it is
    reported as ``aborted`` (exit 3)."""

    name: str
    """The subcommand, e.g. ``failover``."""
    help: str
    """One line for the top-level ``--help``; also the command's own description unless ``description`` is set."""
    description: str = ""
    """The command's own ``--help`` text above its options (what it needs, what it does). Default: ``help``."""
    add_arguments: Callable[[argparse.ArgumentParser], None]
    """Adds the command's own options."""
    run: Callable[[argparse.Namespace, Any, Any], Report]
    """Runs it against the discovered resources (``TierResources``) with the boto3 clients (a dict by service
    name); an offline command gets None for both."""
    aws: bool = True
    """False: the command runs offline (no credentials, no stacks read); the CLI adds none of the
    AWS options and makes no client."""
    env: str | None = ENV_REQUIRED
    """An AWS command's ``--env``: ``ENV_REQUIRED``, ``ENV_OPTIONAL`` (the command can be told its resources
    otherwise) or None (no such option). Default: required."""
    replication_group_option: bool = False
    """The command acts on the cache: it takes ``--replication-group-id`` instead of the State stack's output.
    Default: false."""
    dry_run: bool = False
    """The command changes something and takes ``--dry-run`` (check and plan, change nothing). Default: false."""
    usage: str = ""
    """The options of the one-line usage after ``broker-tier-ops <name>`` (the required ones; ``[options]`` is
    appended). Default: none."""
    resources: Callable[[argparse.Namespace, dict], TierResources] | None = None
    """How an AWS command finds what it acts on, from its options and the clients. Default: None (the
    outputs of the stacks of ``--env``; ``--replication-group-id`` overrides the cache)."""


def environment_name(text: str) -> str:
    """An argparse type: a name the tier's stack names can carry (``BrokerTier-<env>-State``)."""
    if contract.parse_stack_name(contract.stack_name(text, contract.STATE)) is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: not an environment name (lowercase letters and digits, starting with a letter, as in cdk.json)"
        )
    return text


def number(
    kind: type, *, above: float | None = None, at_least: float | None = None, at_most: float | None = None
) -> Callable[[str], float]:
    """An argparse type: a number of ``kind`` within the given bounds, with a message that states them."""
    bounds = [
        text
        for text in (
            f"above {above:g}" if above is not None else None,
            f"{at_least:g} or more" if at_least is not None else None,
            f"at most {at_most:g}" if at_most is not None else None,
        )
        if text
    ]

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text}: not a number") from None
        if (
            (above is not None and value <= above)
            or (at_least is not None and value < at_least)
            or (at_most is not None and value > at_most)
        ):
            raise argparse.ArgumentTypeError(f"{text}: must be {' and '.join(bounds)}")
        return value

    return parse


def positive(kind: type, upper: float | None = None) -> Callable[[str], float]:
    """An argparse type: a number above 0 (and at most ``upper``)."""
    return number(kind, above=0, at_most=upper)


def non_negative(kind: type) -> Callable[[str], float]:
    """An argparse type: a number of at least 0."""
    return number(kind, at_least=0)

"""What a ``broker-tier-ops`` subcommand is: its name, its own options, and how it runs."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

from broker_tier.ops.report import Report
from broker_tier.ops.resources import TierResources


@dataclass(frozen=True, kw_only=True)
class Command:
    """One subcommand. For an AWS command the CLI adds the options every such command shares
    (``--env``, ``--dry-run``, ...) and discovers the environment's resources; for every command it
    writes the report ``run`` returns."""

    name: str
    """The subcommand, e.g. ``failover``."""
    help: str
    """One line for ``--help``."""
    add_arguments: Callable[[argparse.ArgumentParser], None]
    """Adds the command's own options."""
    run: Callable[[argparse.Namespace, TierResources | None, dict | None], Report]
    """Runs it against the discovered resources with the boto3 clients (by service name); an
    offline command gets None for both."""
    aws: bool = True
    """False: the command runs offline (no credentials, no stacks read); the CLI adds none of the
    AWS options and makes no client."""


def positive(kind: type, upper: float | None = None) -> Callable[[str], float]:
    """An argparse type: a number above 0 (and at most ``upper``)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text}: not a number") from None
        if value <= 0 or (upper is not None and value > upper):
            raise argparse.ArgumentTypeError(f"{text}: must be above 0" + (f" and at most {upper}" if upper else ""))
        return value
    return parse


def non_negative(kind: type) -> Callable[[str], float]:
    """An argparse type: a number of at least 0."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text}: not a number") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text}: must be 0 or more")
        return value
    return parse

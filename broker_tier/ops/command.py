"""What a ``broker-tier-ops`` subcommand is: its name, its own options, and how it runs."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

from broker_tier.ops.report import Report
from broker_tier.ops.resources import TierResources


@dataclass(frozen=True, kw_only=True)
class Command:
    """One subcommand. The CLI adds the options every command shares (``--env``, ``--dry-run``, ...),
    discovers the environment's resources, and writes the report ``run`` returns."""

    name: str
    """The subcommand, e.g. ``failover``."""
    help: str
    """One line for ``--help``."""
    add_arguments: Callable[[argparse.ArgumentParser], None]
    """Adds the command's own options."""
    run: Callable[[argparse.Namespace, TierResources, dict], Report]
    """Runs it against the discovered resources with the boto3 clients (by service name)."""


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

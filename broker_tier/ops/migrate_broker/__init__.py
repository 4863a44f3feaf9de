"""Moving a live tier from one broker to the other (``broker-tier-ops migrate-broker``;
docs/decisions/broker-migration.md): fit checks, the switch, and a resumable move of every queued message."""

from broker_tier.ops.migrate_broker.command import COMMAND

__all__ = ["COMMAND"]

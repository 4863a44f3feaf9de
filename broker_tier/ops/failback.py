"""Fail back to a preferred node (and AZ) with Multi-AZ on: a replica can't be promoted while
Multi-AZ is enabled, so disable Multi-AZ, promote, wait, and restore the original Multi-AZ and
automatic-failover settings, even when a step in between fails (AWS's promote-replica runbook)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from broker_tier.evidence.errors import OpsError
from broker_tier.evidence.report import Check, Report
from broker_tier.ops.command import Command, positive
from broker_tier.ops.replication_group import GroupState, describe_group, wait_until_available
from broker_tier.ops.resources import TierResources


@dataclass(frozen=True)
class FailbackOptions:
    primary_cluster_id: str | None = None
    """The node to promote. Default: None (use ``preferred_az``)."""
    preferred_az: str | None = None
    """Promote the replica in this AZ. Default: None (use ``primary_cluster_id``)."""
    timeout_seconds: float = 1800
    """Per wait for 'available'. Default: 1800."""
    poll_seconds: float = 15
    """Waiter interval. Default: 15."""


def choose_target(group: GroupState, options: FailbackOptions) -> str:
    if options.primary_cluster_id:
        if group.node(options.primary_cluster_id) is None:
            raise OpsError(
                f"--primary-cluster-id {options.primary_cluster_id} is not a node of {group.group_id}; "
                f"nodes: {group.describe()}"
            )
        return options.primary_cluster_id
    in_zone = [n for n in group.nodes if n.zone == options.preferred_az]
    if not in_zone:
        raise OpsError(
            f"--preferred-az {options.preferred_az}: no node of {group.group_id} is there; nodes: {group.describe()}"
        )
    return next((n for n in in_zone if n.role == "primary"), in_zone[0]).cluster_id


class Failback:
    def __init__(self, elasticache, group_id: str, options: FailbackOptions, report: Report) -> None:
        self.elasticache, self.group_id, self.options, self.report = elasticache, group_id, options, report

    def _modify(self, description: str, **changes) -> None:
        self.report.say(f"ModifyReplicationGroup {changes}: {description}")
        self.elasticache.modify_replication_group(ReplicationGroupId=self.group_id, ApplyImmediately=True, **changes)
        self._wait()

    def _wait(self) -> None:
        self.report.say("waiting for 'available' (boto3 waiter replication_group_available)")
        wait_until_available(
            self.elasticache,
            self.group_id,
            delay_seconds=self.options.poll_seconds,
            timeout_seconds=self.options.timeout_seconds,
        )

    def run(self) -> Report:
        """Run the command (or, when the report is a dry run, only plan it) and return its report."""
        report = self.report
        try:
            before = describe_group(self.elasticache, self.group_id)
            report.say(f"{self.group_id}: {before.describe()}")
            target = choose_target(before, self.options)
            original = {
                "MultiAZEnabled": before.multi_az == "enabled",
                "AutomaticFailoverEnabled": before.automatic_failover == "enabled",
            }
            report.measurements.update({"target_primary": target, "original_settings": original})
            node = before.node(target)
            if node is None:
                raise OpsError(f"{target} is not a node of {self.group_id} ({before.describe()})")
            ready = report.add_checks(
                report.steady_state,
                [
                    Check("replication_group_available", before.status == "available", f"status is {before.status}"),
                    Check(
                        "target_is_a_replica",
                        node.role != "primary",
                        f"{target} is {node.role} in {node.zone}",
                    ),
                ],
            )
            if node.role == "primary":
                report.finish("passed", f"nothing to do: {target} is already the primary")
                return report
            if not ready:
                report.finish("refused", "the steady state does not hold; nothing was changed")
                return report
            if report.plan_steps(
                [
                    "ModifyReplicationGroup MultiAZEnabled=false (ApplyImmediately); wait for available",
                    f"ModifyReplicationGroup PrimaryClusterId={target}; wait for available",
                    f"ModifyReplicationGroup MultiAZEnabled={original['MultiAZEnabled']}, "
                    f"AutomaticFailoverEnabled={original['AutomaticFailoverEnabled']} (restore, also after a failed "
                    f"step); wait for available",
                ]
            ):
                return report
            self._fail_back(target, original)
        except Exception as error:  # its cause, remedy and exit code: broker_tier.evidence.errors
            report.abort(error)
        return report

    def _fail_back(self, target: str, original: dict[str, bool]) -> None:
        report = self.report
        error: Exception | None = None
        try:
            if original["MultiAZEnabled"]:
                self._modify("a replica cannot be promoted while Multi-AZ is on", MultiAZEnabled=False)
            self._modify(f"promote {target}", PrimaryClusterId=target)
        except (ClientError, BotoCoreError, WaiterError) as failure:
            error = failure
            report.say(f"step failed: {failure}; restoring the original settings")
        finally:
            restored = self._restore(original)
        after = describe_group(self.elasticache, self.group_id)
        report.add_checks(
            report.verification,
            [
                Check(
                    "target_is_primary",
                    after.primary is not None and after.primary.cluster_id == target,
                    f"primary is {after.primary.cluster_id if after.primary else 'none'}",
                ),
                Check(
                    "settings_restored",
                    restored
                    and after.multi_az == _flag(original["MultiAZEnabled"])
                    and after.automatic_failover == _flag(original["AutomaticFailoverEnabled"]),
                    f"MultiAZ {after.multi_az}, AutomaticFailover {after.automatic_failover} "
                    f"(originally {_flag(original['MultiAZEnabled'])}, {_flag(original['AutomaticFailoverEnabled'])})",
                ),
            ],
        )
        failed = [c.name for c in report.verification if c.passed is False]
        if error is not None:
            report.abort(error)
        else:
            report.finish("failed" if failed else "passed", f"not held: {', '.join(failed)}" if failed else None)

    def _restore(self, original: dict[str, bool]) -> bool:
        try:
            self._wait()
            self._modify("restore the original settings", **original)
            return True
        except (ClientError, BotoCoreError, WaiterError) as failure:
            self.report.say(
                f"RESTORE FAILED ({failure}). Restore by hand: aws elasticache modify-replication-group "
                f"--replication-group-id {self.group_id} --apply-immediately "
                f"{'--' if original['MultiAZEnabled'] else '--no-'}multi-az-enabled "
                f"{'--' if original['AutomaticFailoverEnabled'] else '--no-'}automatic-failover-enabled"
            )
            return False


def _flag(enabled: bool) -> str:
    return "enabled" if enabled else "disabled"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = FailbackOptions()
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--primary-cluster-id", help="node to promote, e.g. broker-tier-prod-001")
    target.add_argument("--preferred-az", help="promote the node in this AZ, e.g. eu-west-1a")
    parser.add_argument(
        "--timeout",
        type=positive(float),
        default=defaults.timeout_seconds,
        metavar="SECONDS",
        help="per wait for 'available' (default: %(default)s)",
    )
    parser.add_argument(
        "--poll",
        type=positive(float),
        default=defaults.poll_seconds,
        metavar="SECONDS",
        help="waiter interval (default: %(default)s)",
    )


def _run(args: argparse.Namespace, resources: TierResources, clients: dict) -> Report:
    report = Report("failback", args.env, resources.replication_group_id, args.dry_run)
    options = FailbackOptions(
        primary_cluster_id=args.primary_cluster_id,
        preferred_az=args.preferred_az,
        timeout_seconds=args.timeout,
        poll_seconds=args.poll,
    )
    return Failback(clients["elasticache"], resources.replication_group_id, options, report).run()


COMMAND = Command(
    name="failback",
    help="make a chosen node (the preferred AZ's) primary again",
    description="Fail back (runbooks/fail-back.md): makes the node of --preferred-az (or --primary-cluster-id) the "
    "primary again: Multi-AZ off, promote, wait, then restore the original Multi-AZ and automatic-failover "
    "settings, also when a step fails. The failover drill's report names the AZ the primary left.",
    add_arguments=_add_arguments,
    run=_run,
    usage="--env ENV (--preferred-az AZ | --primary-cluster-id ID)",
    replication_group_option=True,
    dry_run=True,
)

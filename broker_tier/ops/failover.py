"""The failover drill: steady state, TestFailover, the events as they arrive, and the verification.

Hypothesis: a failover of the primary to a replica in another AZ loses no task. The drill holds
it when, afterwards, the new primary is in another AZ, the worker and Beat services are steady,
no dead-letter queue grew, and no alarm of the tier fired.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from botocore.exceptions import WaiterError

from broker_tier.ops.command import Command, positive
from broker_tier.ops.readings import ECS_DESCRIBE_LIMIT, alarms_in_alarm, queue_counts
from broker_tier.ops.replication_group import (
    FAILOVER_CALLED, FAILOVER_COMPLETED, GroupState, describe_group, events_since, wait_until_available)
from broker_tier.ops.report import Check, Report, utc_now
from broker_tier.ops.resources import TierResources

# How far back the replication-lag check looks (ElastiCache publishes every 60 s).
LAG_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class FailoverOptions:
    max_replication_lag_seconds: float = 5.0
    """Refuse when a replica lagged more than this in the last 10 minutes. Default: 5."""
    failover_budget: int = 15
    """TestFailover calls allowed in a rolling 24 h (AWS: 15 node groups; older docs say 5). Default: 15."""
    timeout_seconds: float = 900
    """From the TestFailover call to "available" again; beyond it the drill stops, aborted. Default: 900."""
    poll_seconds: float = 10
    """Interval of event polling and of the waiters. Default: 10."""
    services_timeout_seconds: float = 600
    """How long the services may take to be steady afterwards. Default: 600."""


class DrillTimeout(TimeoutError):
    pass


class FailoverDrill:
    """Runs one drill against ``resources`` and fills ``report``. Never reboots a node."""

    def __init__(self, clients: dict, resources: TierResources, options: FailoverOptions, report: Report, *,
                 sleep: Callable[[float], None] | None = None, now: Callable[[], datetime] = utc_now) -> None:
        self.elasticache, self.cloudwatch = clients["elasticache"], clients["cloudwatch"]
        self.sqs, self.ecs = clients["sqs"], clients["ecs"]
        self.resources, self.options, self.report = resources, options, report
        self.sleep, self.now = sleep or time.sleep, now

    # -- steady state -------------------------------------------------------------------------
    def steady_state(self, group: GroupState) -> list[Check]:
        return [self.check_available(group), self.check_multi_az(group), self.check_replica_elsewhere(group),
                self.check_replication_lag(group), self.check_dead_letters("dead_letters_recorded"),
                self.check_alarms(), self.check_failover_budget()]

    @staticmethod
    def check_available(group: GroupState) -> Check:
        return Check("replication_group_available", group.status == "available", f"status is {group.status}")

    @staticmethod
    def check_multi_az(group: GroupState) -> Check:
        ok = group.multi_az == "enabled" and group.automatic_failover == "enabled"
        return Check("multi_az_and_automatic_failover", ok,
                     f"MultiAZ {group.multi_az}, AutomaticFailover {group.automatic_failover}")

    @staticmethod
    def check_replica_elsewhere(group: GroupState) -> Check:
        primary = group.primary
        if primary is None:
            return Check("replica_in_another_az", False, "no primary node found")
        elsewhere = [n.cluster_id for n in group.replicas if n.zone != primary.zone]
        return Check("replica_in_another_az", bool(elsewhere),
                     f"primary {primary.cluster_id} in {primary.zone}; replicas in other AZs: "
                     f"{', '.join(elsewhere) or 'none'}", elsewhere)

    def check_replication_lag(self, group: GroupState) -> Check:
        replicas = group.replicas
        if not replicas:
            return Check("replication_lag", False, "no replica to measure")
        end = self.now()
        results = self.cloudwatch.get_metric_data(
            StartTime=end - LAG_WINDOW, EndTime=end,
            MetricDataQueries=[{"Id": f"lag{i}", "Label": node.cluster_id, "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": "AWS/ElastiCache", "MetricName": "ReplicationLag",
                           "Dimensions": [{"Name": "CacheClusterId", "Value": node.cluster_id}]},
                "Period": 60, "Stat": "Maximum"}} for i, node in enumerate(replicas)])["MetricDataResults"]
        worst = {r["Label"]: max(r["Values"]) for r in results if r["Values"]}
        missing = [node.cluster_id for node in replicas if node.cluster_id not in worst]
        if missing:
            return Check("replication_lag", False, f"no ReplicationLag data in the last 10 min for "
                                                   f"{', '.join(missing)}: cannot show the replicas are current")
        highest = max(worst.values())
        return Check("replication_lag", highest <= self.options.max_replication_lag_seconds,
                     f"highest in the last 10 min: {highest:g} s (limit {self.options.max_replication_lag_seconds:g} s)",
                     worst)

    def dead_letter_depths(self) -> dict[str, int]:
        return {name: sum(queue_counts(self.sqs, pair.dead_letter_url).values())
                for name, pair in self.resources.queues.items()}

    def check_dead_letters(self, name: str) -> Check:
        if not self.resources.queues:
            return Check(name, None, "no queues known (State stack outputs missing)")
        depths = self.dead_letter_depths()
        return Check(name, True, ", ".join(f"{k}: {v}" for k, v in depths.items()), depths)

    def alarms_in_alarm(self) -> list[str]:
        return alarms_in_alarm(self.cloudwatch, self.resources.alarm_name_prefix)

    def check_alarms(self) -> Check:
        if not self.resources.alarm_name_prefix:
            return Check("no_alarm_in_alarm", None, "alarm prefix unknown (Monitoring stack not deployed)")
        firing = self.alarms_in_alarm()
        return Check("no_alarm_in_alarm", not firing, f"in ALARM: {', '.join(firing) or 'none'}", firing)

    def check_failover_budget(self) -> Check:
        end = self.now()
        calls = [e for e in events_since(self.elasticache, end - timedelta(hours=24), end,
                                         source_type="replication-group") if FAILOVER_CALLED.search(e["Message"])]
        budget = self.options.failover_budget
        return Check("test_failover_budget", len(calls) < budget,
                     f"{len(calls)} TestFailover call(s) in the last 24 h; budget {budget}", len(calls))

    # -- the drill ----------------------------------------------------------------------------
    def run(self) -> Report:
        """Run the command (or, when the report is a dry run, only plan it) and return its report."""
        report, group_id = self.report, self.resources.replication_group_id
        try:
            before = describe_group(self.elasticache, group_id)
            report.say(f"{group_id}: {before.describe()}")
            if not report.add_checks(report.steady_state, self.steady_state(before)):
                report.finish("refused", "the steady state does not hold; nothing was changed")
                return report
            dead_before = next(c.value for c in report.steady_state if c.name == "dead_letters_recorded") or {}
            if report.plan_steps([
                f"TestFailover on {group_id}, node group {before.node_group_id} "
                f"(primary {before.primary.cluster_id} in {before.primary.zone})",
                f"follow ElastiCache events until failover completed, then wait for 'available' "
                f"(at most {self.options.timeout_seconds:g} s in all)",
                "verify: new primary in another AZ, services steady, dead-letter queues not grown, no alarm fired",
            ]):
                return report
            called_at = self.failover(before)
            report.add_checks(report.verification, self.verify(before, dead_before, called_at))
            failed = [c.name for c in report.verification if c.passed is False]
            report.finish("failed" if failed else "passed",
                          f"hypothesis not held: {', '.join(failed)}" if failed else None)
        except Exception as error:  # its cause, remedy and exit code: broker_tier.ops.errors
            report.abort(error)
        return report

    def failover(self, before: GroupState) -> datetime:
        report, options, group_id = self.report, self.options, before.group_id
        called_at = self.now()
        start = report.elapsed()
        self.elasticache.test_failover(ReplicationGroupId=group_id, NodeGroupId=before.node_group_id)
        report.say(f"TestFailover called for node group {before.node_group_id}")
        members = {group_id, *(n.cluster_id for n in before.nodes)}
        seen: set[tuple] = set()

        def follow_events() -> bool:
            completed = False
            for event in events_since(self.elasticache, called_at - timedelta(minutes=1)):
                key = (event["SourceIdentifier"], event["Date"], event["Message"])
                if event["SourceIdentifier"] in members and key not in seen:
                    seen.add(key)
                    report.say(event["Message"], source=f"elasticache:{event['SourceIdentifier']}", at=event["Date"])
                    completed = completed or bool(FAILOVER_COMPLETED.search(event["Message"]))
            return completed

        while not follow_events():
            if report.elapsed() - start >= options.timeout_seconds:
                raise DrillTimeout(f"no 'failover completed' event within {options.timeout_seconds:g} s")
            status = describe_group(self.elasticache, group_id).status
            report.say(f"waiting for the failover; group status {status}")
            self.sleep(options.poll_seconds)
        report.measurements["seconds_to_failover_completed"] = round(report.elapsed() - start, 1)

        remaining = options.timeout_seconds - (report.elapsed() - start)
        report.say(f"waiting for 'available' (boto3 waiter replication_group_available, up to {remaining:.0f} s)")
        try:
            wait_until_available(self.elasticache, group_id, delay_seconds=options.poll_seconds,
                                 timeout_seconds=remaining)
        except WaiterError as error:
            raise DrillTimeout(f"not 'available' again within {options.timeout_seconds:g} s ({error})") from None
        report.measurements["seconds_to_available"] = round(report.elapsed() - start, 1)
        report.measurements["poll_interval_seconds"] = options.poll_seconds
        follow_events()
        return called_at

    # -- verification -------------------------------------------------------------------------
    def verify(self, before: GroupState, dead_before: dict[str, int], called_at: datetime) -> list[Check]:
        return [self.check_new_primary(before), self.check_services_steady(),
                self.check_dead_letters_not_grown(dead_before), self.check_no_alarm_fired(called_at)]

    def check_new_primary(self, before: GroupState) -> Check:
        after = describe_group(self.elasticache, before.group_id)
        old, new = before.primary, after.primary
        if new is None:
            return Check("new_primary_in_another_az", False, f"no primary after the failover ({after.describe()})")
        return Check("new_primary_in_another_az", new.cluster_id != old.cluster_id and new.zone != old.zone,
                     f"primary was {old.cluster_id} in {old.zone}, is {new.cluster_id} in {new.zone}",
                     {"before": old.cluster_id, "after": new.cluster_id, "zone": new.zone})

    def check_services_steady(self) -> Check:
        names = list(self.resources.service_names.values())
        if not (self.resources.cluster_name and names):
            return Check("services_steady", None, "services unknown (Compute stack not deployed)")
        delay = self.options.poll_seconds
        attempts = max(1, math.ceil(self.options.services_timeout_seconds / max(delay, 1)))
        waiter = self.ecs.get_waiter("services_stable")
        try:
            for index in range(0, len(names), ECS_DESCRIBE_LIMIT):
                waiter.wait(cluster=self.resources.cluster_name, services=names[index:index + ECS_DESCRIBE_LIMIT],
                            WaiterConfig={"Delay": delay, "MaxAttempts": attempts})
        except WaiterError as error:
            return Check("services_steady", False, f"not steady within {self.options.services_timeout_seconds:g} s: "
                                                   f"{error}")
        return Check("services_steady", True, f"{len(names)} services steady (running = desired, one deployment)")

    def check_dead_letters_not_grown(self, before: dict[str, int]) -> Check:
        if not before:
            return Check("dead_letters_not_grown", None, "no dead-letter depths recorded before")
        after = self.dead_letter_depths()
        grown = {name: (before.get(name, 0), count) for name, count in after.items() if count > before.get(name, 0)}
        return Check("dead_letters_not_grown", not grown,
                     "; ".join(f"{n}: {a} -> {b}" for n, (a, b) in grown.items()) or
                     ", ".join(f"{k}: {v}" for k, v in after.items()), after)

    def check_no_alarm_fired(self, since: datetime) -> Check:
        prefix = self.resources.alarm_name_prefix
        if not prefix:
            return Check("no_alarm_fired", None, "alarm prefix unknown (Monitoring stack not deployed)")
        pages = self.cloudwatch.get_paginator("describe_alarm_history").paginate(
            HistoryItemType="StateUpdate", StartDate=since, EndDate=self.now())
        fired = sorted({item["AlarmName"] for page in pages for item in page["AlarmHistoryItems"]
                        if item["AlarmName"].startswith(prefix) and "to ALARM" in item["HistorySummary"]})
        fired += [name for name in self.alarms_in_alarm() if name not in fired]
        return Check("no_alarm_fired", not fired, f"fired during the drill: {', '.join(fired) or 'none'}", fired)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = FailoverOptions()
    parser.add_argument("--max-replication-lag", type=positive(float), default=defaults.max_replication_lag_seconds,
                        metavar="SECONDS", help="refuse above this replica lag in the last 10 min (default: %(default)s)")
    parser.add_argument("--failover-budget", type=positive(int), default=defaults.failover_budget, metavar="N",
                        help="TestFailover calls allowed per rolling 24 h (default: %(default)s)")
    parser.add_argument("--timeout", type=positive(float), default=defaults.timeout_seconds, metavar="SECONDS",
                        help="from TestFailover to 'available' again (default: %(default)s)")
    parser.add_argument("--poll", type=positive(float), default=defaults.poll_seconds, metavar="SECONDS",
                        help="event and waiter interval (default: %(default)s)")
    parser.add_argument("--services-timeout", type=positive(float), default=defaults.services_timeout_seconds,
                        metavar="SECONDS", help="time for the ECS services to be steady afterwards (default: %(default)s)")


def _run(args: argparse.Namespace, resources: TierResources, clients: dict) -> Report:
    report = Report("failover", args.env, resources.replication_group_id, args.dry_run)
    options = FailoverOptions(max_replication_lag_seconds=args.max_replication_lag,
                              failover_budget=args.failover_budget, timeout_seconds=args.timeout,
                              poll_seconds=args.poll, services_timeout_seconds=args.services_timeout)
    return FailoverDrill(clients, resources, options, report).run()


COMMAND = Command(name="failover", help="Failover drill: check the steady state, call TestFailover, follow it, "
                                         "verify, report.", add_arguments=_add_arguments, run=_run)

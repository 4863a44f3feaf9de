"""The failover drill: steady state, the fault (``drill_faults``), the events as they arrive, canary traffic, and
the verification. Hypothesis: a failover to a replica in another AZ loses no task; it holds when the new primary
is in another AZ, the services are steady, no dead-letter queue grew, no alarm fired, and every canary ran once.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from botocore.exceptions import WaiterError

import broker_tier_contract as contract
from broker_tier.evidence.report import Check, Report, utc_now
from broker_tier.ops.canary import CanaryDrill, CanaryOptions
from broker_tier.ops.command import Command, non_negative, positive
from broker_tier.ops.drill_faults import FAULTS, FaultAborted, FaultContext, make_fault
from broker_tier.ops.readings import ECS_DESCRIBE_LIMIT, alarms_in_alarm, queue_counts
from broker_tier.ops.replication_group import (
    FAILOVER_COMPLETED,
    GroupState,
    describe_group,
    events_since,
    wait_until_available,
)
from broker_tier.ops.resources import TierResources

# How far back the replication-lag check looks (ElastiCache publishes every 60 s).
LAG_WINDOW = timedelta(minutes=10)
ROLE_POLL_SECONDS = 1.0  # how closely a fault without a "failover completed" event is followed


@dataclass(frozen=True)
class FailoverOptions:
    max_replication_lag_seconds: float | None = None
    """Refuse when a replica lagged more than this in the last 10 minutes. Default: None, the
    threshold of the environment's replication-lag alarm (``monitoring.redis_replication_lag``)."""
    failover_budget: int = 15
    """TestFailover calls allowed in a rolling 24 h (AWS: 15 node groups; older docs say 5). Default: 15."""
    timeout_seconds: float = 900
    """From the TestFailover call to "available" again; beyond it the drill stops, aborted. Default: 900."""
    poll_seconds: float = 10
    """Interval of event polling and of the waiters. Default: 10."""
    services_timeout_seconds: float = 600
    """How long the services may take to be steady afterwards. Default: 600."""
    fault: str = "test-failover"
    """``test-failover`` (ElastiCache TestFailover) or ``az-power`` (the environment's AWS FIS AZ
    power interruption experiment for the primary's AZ). Default: test-failover."""
    canary: CanaryOptions | None = CanaryOptions()
    """Canary traffic while the drill runs; None: no canary. Default: on, ``CanaryOptions()``."""


class DrillTimeout(TimeoutError):
    pass


class _Deadline:
    """The drill's time-out, on the report's clock (elapsed seconds since the fault was injected)."""

    def __init__(self, report: Report, seconds: float) -> None:
        self.report, self.seconds, self.start = report, seconds, report.elapsed()

    def elapsed(self) -> float:
        return round(self.report.elapsed() - self.start, 1)

    def remaining(self) -> float:
        return self.seconds - (self.report.elapsed() - self.start)

    def check(self, what: str) -> None:
        if self.remaining() <= 0:
            raise DrillTimeout(f"{what} within {self.seconds:g} s")


class _EventFollower:
    """The replication group's events since the fault, each said once; notes "failover completed" on the drill."""

    def __init__(self, drill: FailoverDrill, before: GroupState, *, since: datetime) -> None:
        self.drill, self.since = drill, since
        self.members = {before.group_id, *(n.cluster_id for n in before.nodes)}
        self.seen: set[tuple] = set()

    def follow(self) -> bool:
        """Say the new events; true once the failover has completed (by event or by role change)."""
        drill = self.drill
        for event in events_since(drill.elasticache, self.since - timedelta(minutes=1)):
            key = (event["SourceIdentifier"], event["Date"], event["Message"])
            if event["SourceIdentifier"] not in self.members or key in self.seen:
                continue
            self.seen.add(key)
            drill.report.say(event["Message"], source=f"elasticache:{event['SourceIdentifier']}", at=event["Date"])
            if FAILOVER_COMPLETED.search(event["Message"]) and drill.completed_at is None:
                drill.completed_at = event["Date"]
                drill.report.measurements["failover_completed_seen_in"] = "event"
        return drill.completed_at is not None


class FailoverDrill:
    """Runs one drill against ``resources`` and fills ``report``. Never reboots a node."""

    def __init__(
        self,
        clients: dict,
        resources: TierResources,
        options: FailoverOptions,
        report: Report,
        *,
        sleep: Callable[[float], None] | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.elasticache, self.cloudwatch = clients["elasticache"], clients["cloudwatch"]
        self.sqs, self.ecs = clients["sqs"], clients["ecs"]
        self.clients = clients
        self.resources, self.options, self.report = resources, options, report
        self.sleep, self.now = sleep or time.sleep, now
        self.fault = make_fault(
            options.fault,
            FaultContext(
                elasticache=self.elasticache,
                fis=clients.get("fis"),
                az_power_template_ids=tuple(resources.az_power_template_ids),
                failover_budget=options.failover_budget,
                drill_label=f"failover {report.started_at}",
                say=report.say,
                now=now,
            ),
        )
        self.canary = (
            None
            if options.canary is None
            else CanaryDrill(
                sqs=self.sqs,
                logs=clients["logs"],
                resources=resources,
                options=options.canary,
                report=report,
                sleep=self.sleep,
                poll_seconds=options.poll_seconds,
                now=now,
            )
        )
        self.completed_at: datetime | None = None
        """When the failover completed: the ElastiCache event's own time (or when the tool saw the
        primary change, for faults that detect it)."""

    # -- steady state -------------------------------------------------------------------------
    def steady_state(self, group: GroupState) -> list[Check]:
        checks = [
            self.check_available(group),
            self.check_multi_az(group),
            self.check_replica_elsewhere(group),
            self.check_replication_lag(group),
            self.check_dead_letters("dead_letters_recorded"),
            self.check_alarms(),
            *self.fault.steady_state(group),
        ]
        if self.canary is not None and all(check.passed is not False for check in checks):
            checks.append(self.canary.readiness())  # only then: it sends a probe canary
        return checks

    @staticmethod
    def check_available(group: GroupState) -> Check:
        return Check("replication_group_available", group.status == "available", f"status is {group.status}")

    @staticmethod
    def check_multi_az(group: GroupState) -> Check:
        ok = group.multi_az == "enabled" and group.automatic_failover == "enabled"
        return Check(
            "multi_az_and_automatic_failover",
            ok,
            f"MultiAZ {group.multi_az}, AutomaticFailover {group.automatic_failover}",
        )

    @staticmethod
    def check_replica_elsewhere(group: GroupState) -> Check:
        primary = group.primary
        if primary is None:
            return Check("replica_in_another_az", False, "no primary node found")
        elsewhere = [n.cluster_id for n in group.replicas if n.zone != primary.zone]
        return Check(
            "replica_in_another_az",
            bool(elsewhere),
            f"primary {primary.cluster_id} in {primary.zone}; replicas in other AZs: {', '.join(elsewhere) or 'none'}",
            elsewhere,
        )

    def check_replication_lag(self, group: GroupState) -> Check:
        replicas = group.replicas
        if not replicas:
            return Check("replication_lag", False, "no replica to measure")
        end = self.now()
        results = self.cloudwatch.get_metric_data(
            StartTime=end - LAG_WINDOW,
            EndTime=end,
            MetricDataQueries=[
                {
                    "Id": f"lag{i}",
                    "Label": node.cluster_id,
                    "ReturnData": True,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/ElastiCache",
                            "MetricName": "ReplicationLag",
                            "Dimensions": [{"Name": "CacheClusterId", "Value": node.cluster_id}],
                        },
                        "Period": 60,
                        "Stat": "Maximum",
                    },
                }
                for i, node in enumerate(replicas)
            ],
        )["MetricDataResults"]
        worst = {r["Label"]: max(r["Values"]) for r in results if r["Values"]}
        missing = [node.cluster_id for node in replicas if node.cluster_id not in worst]
        if missing:
            return Check(
                "replication_lag",
                False,
                f"no ReplicationLag data in the last 10 min for "
                f"{', '.join(missing)}: cannot show the replicas are current",
            )
        limit, source = self.replication_lag_limit()
        if limit is None:
            return Check("replication_lag", False, source)
        highest = max(worst.values())
        return Check(
            "replication_lag",
            highest <= limit,
            f"highest in the last 10 min: {highest:g} s (limit {limit:g} s, {source})",
            worst,
        )

    def replication_lag_limit(self) -> tuple[float | None, str]:
        """The lag limit and where it comes from: the option, else the lag alarm's threshold."""
        if self.options.max_replication_lag_seconds is not None:
            return self.options.max_replication_lag_seconds, "--max-replication-lag"
        name = contract.alarm_name(self.resources.environment, contract.REPLICATION_LAG_ALARM)
        alarms = self.cloudwatch.describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm"])["MetricAlarms"]
        if not alarms:
            return None, (
                f"no --max-replication-lag given and alarm {name}, whose threshold is the default, "
                f"was not found (Monitoring stack not deployed?): give the limit explicitly"
            )
        return float(alarms[0]["Threshold"]), f"the threshold of alarm {name}"

    def dead_letter_depths(self) -> dict[str, int]:
        return {
            name: sum(queue_counts(self.sqs, pair.dead_letter_url).values())
            for name, pair in self.resources.queues.items()
        }

    def check_dead_letters(self, name: str) -> Check:
        if not self.resources.queues:
            return Check(name, None, "no queues known (State stack outputs missing)")
        depths = self.dead_letter_depths()
        return Check(name, True, ", ".join(f"{k}: {v}" for k, v in depths.items()), depths)

    def alarms_in_alarm(self) -> list[str]:
        return alarms_in_alarm(self.cloudwatch, self.resources.alarm_name_prefix or "")

    def check_alarms(self) -> Check:
        if not self.resources.alarm_name_prefix:
            return Check("no_alarm_in_alarm", None, "alarm prefix unknown (Monitoring stack not deployed)")
        firing = self.alarms_in_alarm()
        return Check("no_alarm_in_alarm", not firing, f"in ALARM: {', '.join(firing) or 'none'}", firing)

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
            if report.plan_steps(self.plan(before)):
                return report
            if self.canary is not None:
                self.canary.start()
            try:
                called_at = self.failover(before)
                if self.canary is not None:
                    self.canary.finish_sending()
            finally:
                if self.canary is not None:
                    self.canary.stop()
            report.add_checks(report.verification, self.verify(before, dead_before, called_at))
            if self.canary is not None:
                report.add_checks(
                    report.verification, self.canary.verify(fault_started_at=called_at, resumed_from=self.completed_at)
                )
            failed = [c.name for c in report.verification if c.passed is False]
            report.finish(
                "failed" if failed else "passed", f"hypothesis not held: {', '.join(failed)}" if failed else None
            )
        except FaultAborted as error:  # the experiment ended badly on its own: its reason, exit 3
            report.finish("aborted", str(error))
        except Exception as error:  # its cause, remedy and exit code: broker_tier.evidence.errors
            report.abort(error)
        return report

    def plan(self, before: GroupState) -> list[str]:
        timeout = self.options.timeout_seconds + self.fault.extra_timeout_seconds
        steps = [
            self.fault.plan(before),
            f"follow ElastiCache events until failover completed, then wait for 'available' "
            f"(at most {timeout:g} s in all)",
            "verify: new primary in another AZ, services steady, dead-letter queues not grown, no alarm fired",
        ]
        if self.canary is not None and self.canary.sender is not None:
            canary = self.canary
            steps.insert(
                0,
                f"send canaries ({contract.CANARY_TASK}) to class {canary.class_name} at "
                f"{canary.options.rate_per_second:g}/s from {canary.options.lead_seconds:g} s before "
                f"the fault to {canary.options.tail_seconds:g} s after 'available'",
            )
            steps.append(
                f"count the canaries in {canary.log_group} after {canary.settle_seconds:g} s: none lost, "
                f"none run twice, no publish error, work resumed within {canary.options.resume_limit:g} s "
                f"of 'failover completed'"
            )
        return steps

    def failover(self, before: GroupState) -> datetime:
        """Inject the fault and follow it to "available" again; returns when it was injected."""
        timeout = self.options.timeout_seconds + self.fault.extra_timeout_seconds
        called_at = self.now()
        deadline = _Deadline(self.report, timeout)
        self.fault.inject(before)
        events = _EventFollower(self, before, since=called_at)
        self._await_failover_completed(before, events, deadline)
        self._await_fault_end(events, deadline)
        self._await_available(before.group_id, deadline)
        events.follow()
        return called_at

    def _progress(self) -> str:
        return self.canary.progress() if self.canary else ""

    def _await_failover_completed(self, before: GroupState, events: _EventFollower, deadline: _Deadline) -> None:
        """Until ElastiCache's "failover completed" event, or for faults without a documented event, until the
        primary moves (polled closely then, since the canaries' resumption is measured from it)."""
        poll = self.options.poll_seconds
        if self.fault.detects_role_change:
            poll = min(poll, ROLE_POLL_SECONDS)
        while not events.follow():
            deadline.check("no 'failover completed' event")
            group = describe_group(self.elasticache, before.group_id)
            if self.fault.detects_role_change and self._role_changed(before, group, events, poll):
                break
            self.report.say(
                f"waiting for the failover; group status {group.status}{self.fault.status()}{self._progress()}"
            )
            self.sleep(poll)
        self.report.measurements["seconds_to_failover_completed"] = deadline.elapsed()

    def _role_changed(self, before: GroupState, group: GroupState, events: _EventFollower, poll: float) -> bool:
        """The primary moved: that marks "failover completed" (unless the event came meanwhile)."""
        if group.primary is None or group.primary.cluster_id == before.the_primary.cluster_id:
            return False
        if events.follow():
            return True
        self.completed_at = self.now()
        self.report.measurements["failover_completed_seen_in"] = (
            f"role change (DescribeReplicationGroups, every {poll:g} s)"
        )
        self.report.say(f"primary is now {group.primary.cluster_id} in {group.primary.zone}")
        return True

    def _await_fault_end(self, events: _EventFollower, deadline: _Deadline) -> None:
        """An experiment runs on after the failover (TestFailover has ended already)."""
        while not self.fault.finished():
            deadline.check("the fault did not end")
            status = self.fault.status()
            events.follow()
            if self.fault.finished():
                self.report.say(f"the fault ended{status}")
                return
            self.report.say(f"waiting for the fault to end{status}{self._progress()}")
            self.sleep(self.options.poll_seconds)

    def _await_available(self, group_id: str, deadline: _Deadline) -> None:
        remaining = deadline.remaining()
        self.report.say(f"waiting for 'available' (boto3 waiter replication_group_available, up to {remaining:.0f} s)")
        try:
            wait_until_available(
                self.elasticache, group_id, delay_seconds=self.options.poll_seconds, timeout_seconds=remaining
            )
        except WaiterError as error:
            raise DrillTimeout(f"not 'available' again within {deadline.seconds:g} s ({error})") from None
        self.report.measurements["seconds_to_available"] = deadline.elapsed()
        self.report.measurements["poll_interval_seconds"] = self.options.poll_seconds

    # -- verification -------------------------------------------------------------------------
    def verify(self, before: GroupState, dead_before: dict[str, int], called_at: datetime) -> list[Check]:
        return [
            self.check_new_primary(before),
            self.check_services_steady(),
            self.check_dead_letters_not_grown(dead_before),
            self.check_no_alarm_fired(called_at),
            *self.fault.verification(),
        ]

    def check_new_primary(self, before: GroupState) -> Check:
        after = describe_group(self.elasticache, before.group_id)
        old, new = before.the_primary, after.primary
        if new is None:
            return Check("new_primary_in_another_az", False, f"no primary after the failover ({after.describe()})")
        return Check(
            "new_primary_in_another_az",
            new.cluster_id != old.cluster_id and new.zone != old.zone,
            f"primary was {old.cluster_id} in {old.zone}, is {new.cluster_id} in {new.zone}",
            {"before": old.cluster_id, "zone_before": old.zone, "after": new.cluster_id, "zone": new.zone},
        )

    def check_services_steady(self) -> Check:
        names = list(self.resources.service_names.values())
        if not (self.resources.cluster_name and names):
            return Check("services_steady", None, "services unknown (Compute stack not deployed)")
        delay = self.options.poll_seconds
        attempts = max(1, math.ceil(self.options.services_timeout_seconds / max(delay, 1)))
        waiter = self.ecs.get_waiter("services_stable")
        try:
            for index in range(0, len(names), ECS_DESCRIBE_LIMIT):
                waiter.wait(
                    cluster=self.resources.cluster_name,
                    services=names[index : index + ECS_DESCRIBE_LIMIT],
                    WaiterConfig={"Delay": delay, "MaxAttempts": attempts},
                )
        except WaiterError as error:
            return Check(
                "services_steady", False, f"not steady within {self.options.services_timeout_seconds:g} s: {error}"
            )
        return Check("services_steady", True, f"{len(names)} services steady (running = desired, one deployment)")

    def check_dead_letters_not_grown(self, before: dict[str, int]) -> Check:
        if not before:
            return Check("dead_letters_not_grown", None, "no dead-letter depths recorded before")
        after = self.dead_letter_depths()
        grown = {name: (before.get(name, 0), count) for name, count in after.items() if count > before.get(name, 0)}
        return Check(
            "dead_letters_not_grown",
            not grown,
            "; ".join(f"{n}: {a} -> {b}" for n, (a, b) in grown.items())
            or ", ".join(f"{k}: {v}" for k, v in after.items()),
            after,
        )

    def check_no_alarm_fired(self, since: datetime) -> Check:
        """No alarm of the tier went to ALARM during the drill, but those the fault is expected to set off
        (an AZ power interruption: replication lag and connections, ``contract.EXPECTED_DURING_AZ_POWER``)."""
        prefix = self.resources.alarm_name_prefix
        if not prefix:
            return Check("no_alarm_fired", None, "alarm prefix unknown (Monitoring stack not deployed)")
        pages = self.cloudwatch.get_paginator("describe_alarm_history").paginate(
            HistoryItemType="StateUpdate",
            AlarmTypes=["MetricAlarm", "CompositeAlarm"],
            StartDate=since,
            EndDate=self.now(),
        )
        fired = sorted(
            {
                item["AlarmName"]
                for page in pages
                for item in page["AlarmHistoryItems"]
                if item["AlarmName"].startswith(prefix) and "to ALARM" in item["HistorySummary"]
            }
        )
        fired += [name for name in self.alarms_in_alarm() if name not in fired]
        expected = [name for name in fired if name.removeprefix(prefix) in self.fault.expected_alarms]
        unexpected = [name for name in fired if name not in expected]
        detail = f"fired during the drill: {', '.join(unexpected) or 'none'}"
        if expected:
            detail += f"; expected of {self.fault.name}, not counted: {', '.join(expected)}"
        return Check("no_alarm_fired", not unexpected, detail, {"unexpected": unexpected, "expected": expected})


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults, canary = FailoverOptions(), CanaryOptions()
    parser.add_argument(
        "--fault",
        choices=sorted(FAULTS),
        default=defaults.fault,
        metavar="FAULT",
        help="test-failover: TestFailover; az-power: the FIS AZ power experiment (default: %(default)s)",
    )
    parser.add_argument(
        "--max-replication-lag",
        type=positive(float),
        metavar="SECONDS",
        help="refuse above this replica lag (default: the replication-lag alarm's threshold)",
    )
    parser.add_argument(
        "--failover-budget",
        type=positive(int),
        default=defaults.failover_budget,
        metavar="N",
        help="TestFailover calls allowed per rolling 24 h (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=positive(float),
        default=defaults.timeout_seconds,
        metavar="SECONDS",
        help="fault to 'available' again; az-power adds its duration (default: %(default)s)",
    )
    parser.add_argument(
        "--poll",
        type=positive(float),
        default=defaults.poll_seconds,
        metavar="SECONDS",
        help="events and waiters interval (default: %(default)s)",
    )
    parser.add_argument(
        "--services-timeout",
        type=positive(float),
        default=defaults.services_timeout_seconds,
        metavar="SECONDS",
        help="for the services to be steady afterwards (default: %(default)s)",
    )
    group = parser.add_argument_group("canary tasks (docs/operations.md)")
    group.add_argument("--no-canary", action="store_true", help=f"send none (an image without {contract.CANARY_TASK})")
    group.add_argument(
        "--canary-rate",
        type=positive(float, 50),
        default=canary.rate_per_second,
        metavar="N",
        help="per second (default: %(default)s)",
    )
    group.add_argument(
        "--canary-class", metavar="CLASS", help="(default: the class with the shortest visibility timeout)"
    )
    group.add_argument(
        "--canary-settle",
        type=non_negative(float),
        metavar="SECONDS",
        help="wait before counting (default: the queue's visibility timeout + 60)",
    )
    group.add_argument(
        "--canary-max-resume",
        type=positive(float),
        metavar="SECONDS",
        help="goal after 'failover completed' (default: 2 + one send interval)",
    )
    group.add_argument(
        "--canary-lead",
        type=non_negative(float),
        default=canary.lead_seconds,
        metavar="SECONDS",
        help="sent before the fault (default: %(default)s)",
    )
    group.add_argument(
        "--canary-tail",
        type=non_negative(float),
        default=canary.tail_seconds,
        metavar="SECONDS",
        help="sent after 'available' (default: %(default)s)",
    )


def _run(args: argparse.Namespace, resources: TierResources, clients: dict) -> Report:
    report = Report("failover", args.env, resources.replication_group_id, args.dry_run)
    canary = (
        None
        if args.no_canary
        else CanaryOptions(
            rate_per_second=args.canary_rate,
            class_name=args.canary_class,
            settle_seconds=args.canary_settle,
            max_resume_seconds=args.canary_max_resume,
            lead_seconds=args.canary_lead,
            tail_seconds=args.canary_tail,
        )
    )
    options = FailoverOptions(
        max_replication_lag_seconds=args.max_replication_lag,
        failover_budget=args.failover_budget,
        timeout_seconds=args.timeout,
        poll_seconds=args.poll,
        services_timeout_seconds=args.services_timeout,
        fault=args.fault,
        canary=canary,
    )
    return FailoverDrill(clients, resources, options, report).run()


COMMAND = Command(
    name="failover",
    help="failover drill: TestFailover or an AZ power cut, canary tasks counted",
    description="Failover drill (runbooks/failover-drill.md): checks the steady state, sends canary tasks through a "
    "class's queue, causes the failover (ElastiCache TestFailover, or the environment's AWS FIS AZ power "
    "experiment), follows its events, then verifies: new primary in another AZ, services steady, no dead letter "
    "and no alarm added, every canary run exactly once. --dry-run reads AWS and changes nothing.",
    add_arguments=_add_arguments,
    run=_run,
    usage="--env ENV",
    replication_group_option=True,
    dry_run=True,
)

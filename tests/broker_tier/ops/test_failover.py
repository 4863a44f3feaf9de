"""The failover drill against moto and the model-validated ElastiCache fake."""

from __future__ import annotations

import io
import json

import pytest

from broker_tier.ops.failover import FailoverDrill, FailoverOptions
from broker_tier.ops.report import Report
from broker_tier.ops.resources import discover
from fake_aws import ENV, GROUP, client_error
from tier_testing import ROOT


def drill(aws, *, dry_run: bool = False, **options) -> Report:
    report = Report("failover", ENV, GROUP, dry_run, monotonic=aws.clock.monotonic, stream=io.StringIO())
    resources = discover(aws.clients["cloudformation"], ENV)
    aws.api.calls.clear()  # only the drill's own calls count
    settings = FailoverOptions(**{"poll_seconds": 5, "timeout_seconds": 300, "services_timeout_seconds": 30,
                                  **options})
    return FailoverDrill(aws.clients, resources, settings, report, sleep=aws.clock.sleep).run()


def checks(phase) -> dict[str, bool | None]:
    return {check.name: check.passed for check in phase}


def test_successful_drill_measures_the_failover_and_verifies_the_hypothesis(aws, tmp_path):
    report = drill(aws)
    assert report.outcome == "passed" and report.exit_code == 0, report.to_markdown()
    assert all(checks(report.steady_state).values())
    assert checks(report.verification) == {"new_primary_in_another_az": True, "services_steady": True,
                                           "dead_letters_not_grown": True, "no_alarm_fired": True}
    assert aws.group.primary == f"{GROUP}-002"
    # Events as they arrived, in ElastiCache's order, with the elapsed time of each.
    messages = [e["message"] for e in report.timeline if e["source"].startswith("elasticache")]
    assert messages[0] == "Test Failover API called for node group 0001"
    assert messages[1] == f"Failover from primary node {GROUP}-001 to replica node {GROUP}-002 completed"
    assert messages[-1] == f"Finished recovery for cache nodes {GROUP}-001"
    measured = report.measurements
    assert 0 < measured["seconds_to_failover_completed"] <= measured["seconds_to_available"] <= 300
    assert ("elasticache", "TestFailover") in aws.api.mutating_calls()
    assert not any(op.startswith("Reboot") for _, op in aws.api.mutating_calls())

    json_path, markdown_path = report.write(tmp_path)
    saved = json.loads(json_path.read_text())
    assert saved["outcome"] == "passed" and saved["exit_code"] == 0
    assert saved["measurements"]["seconds_to_available"] == measured["seconds_to_available"]
    markdown = markdown_path.read_text()
    assert markdown.startswith("# broker-tier-ops failover: PASSED")
    assert "| new_primary_in_another_az | PASS |" in markdown and "## Timeline" in markdown
    # runbooks/failover-drill.md shows this report as its sample: its check rows must still match.
    runbook = (ROOT / "runbooks" / "failover-drill.md").read_text()
    for line in markdown.splitlines():
        if line.startswith("| ") and (" | PASS | " in line):
            assert line in runbook, f"runbooks/failover-drill.md's sample is out of date: {line}"


def test_dry_run_checks_and_plans_but_calls_nothing_that_changes(aws):
    report = drill(aws, dry_run=True)
    assert report.outcome == "planned" and report.exit_code == 0
    assert report.plan and "TestFailover" in report.plan[0]
    assert aws.api.mutating_calls() == [] and aws.group.primary == f"{GROUP}-001"


STEADY_STATE_FAILURES = {
    "group modifying": ("replication_group_available", lambda aws: setattr(aws.group, "status", "modifying")),
    "multi-az off": ("multi_az_and_automatic_failover", lambda aws: setattr(aws.group, "multi_az", "disabled")),
    "replica in the same az": ("replica_in_another_az", lambda aws: setattr(
        aws.group, "nodes", [(f"{GROUP}-001", "eu-west-1a"), (f"{GROUP}-002", "eu-west-1a")])),
    "replica lagging": ("replication_lag", lambda aws: aws.tier.set_lag(12.0)),
    "no lag data": ("replication_lag", lambda aws: setattr(
        aws.group, "nodes", [(f"{GROUP}-001", "eu-west-1a"), (f"{GROUP}-003", "eu-west-1b")])),
    "alarm firing": ("no_alarm_in_alarm", lambda aws: aws.tier.add_alarm("dlq-default-messages", "ALARM")),
    "budget used": ("test_failover_budget", lambda aws: [
        aws.group.event("Test Failover API called for node group 0001", source="other-group") for _ in range(15)]),
}


@pytest.mark.parametrize("check,break_it", STEADY_STATE_FAILURES.values(), ids=STEADY_STATE_FAILURES.keys())
def test_each_steady_state_failure_refuses_and_changes_nothing(aws, check, break_it):
    break_it(aws)
    report = drill(aws)
    assert report.outcome == "refused" and report.exit_code == 2
    assert checks(report.steady_state)[check] is False
    assert [name for name, ok in checks(report.steady_state).items() if ok is False] == [check]
    assert aws.api.mutating_calls() == []


def test_dead_letters_that_grow_during_the_failover_fail_the_hypothesis(aws):
    aws.group.on_failover = lambda: aws.tier.send_dead_letter("default")
    report = drill(aws)
    assert report.outcome == "failed" and report.exit_code == 1
    assert checks(report.verification)["dead_letters_not_grown"] is False
    assert "default: 0 -> 1" in report.to_markdown()


def test_an_alarm_that_fired_during_the_drill_fails_it(aws):
    aws.group.on_failover = lambda: aws.history.fired(f"broker-tier-{ENV}-redis-connections")
    report = drill(aws)
    assert report.outcome == "failed"
    assert checks(report.verification)["no_alarm_fired"] is False


def test_services_not_steady_afterwards_fail_it(aws):
    aws.tier.unsteady("beat")
    report = drill(aws)
    assert report.outcome == "failed" and checks(report.verification)["services_steady"] is False


def test_api_error_mid_drill_aborts_with_the_report_so_far(aws):
    aws.group.on_failover = lambda: aws.group.fail_on.update(
        DescribeEvents=client_error("DescribeEvents", "InvalidParameterValue", "events unavailable"))
    report = drill(aws)
    assert report.outcome == "aborted" and report.exit_code == 3
    assert "events unavailable" in report.error
    assert any("Test Failover API called" in e["message"] for e in report.timeline)
    assert report.verification == []


def test_time_out_waiting_for_the_failover_aborts(aws):
    aws.group.completes = False
    report = drill(aws, timeout_seconds=60, poll_seconds=10)
    assert report.outcome == "aborted" and "time-out" in report.error
    assert "within 60 s" in report.error
    waits = [e for e in report.timeline if e["message"].startswith("waiting for the failover")]
    assert len(waits) == 6 and waits[-1]["elapsed_s"] == 50.0  # elapsed time shown while it waits

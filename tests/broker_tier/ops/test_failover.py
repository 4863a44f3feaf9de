"""The failover drill against moto and the model-validated ElastiCache fake."""

from __future__ import annotations

import io
import json
import threading

import pytest
from fake_aws import ENV, FAST_CANARY, GROUP, client_error
from tier_testing import ROOT

import broker_tier_contract as contract
from broker_tier.evidence.report import Report
from broker_tier.ops.canary import CanaryOptions
from broker_tier.ops.failover import FailoverDrill, FailoverOptions
from broker_tier.ops.resources import discover

VERIFIED = {
    "new_primary_in_another_az": True,
    "services_steady": True,
    "dead_letters_not_grown": True,
    "no_alarm_fired": True,
    "canary_none_lost": True,
    "canary_none_duplicated": True,
    "canary_no_publish_errors": True,
    "canary_resumed": True,
}


def drill(aws, *, dry_run: bool = False, canary: CanaryOptions | None = FAST_CANARY, **options) -> Report:
    report = Report("failover", ENV, GROUP, dry_run, monotonic=aws.clock.monotonic, stream=io.StringIO())
    resources = discover(aws.clients["cloudformation"], ENV)
    aws.api.calls.clear()  # only the drill's own calls count
    settings = FailoverOptions(
        **{"poll_seconds": 5, "timeout_seconds": 300, "services_timeout_seconds": 30, "canary": canary, **options}
    )
    return FailoverDrill(aws.clients, resources, settings, report, sleep=aws.clock.sleep).run()


def checks(phase) -> dict[str, bool | None]:
    return {check.name: check.passed for check in phase}


def test_successful_drill_measures_the_failover_and_verifies_the_hypothesis(aws, tmp_path):
    report = drill(aws)
    assert report.outcome == "passed" and report.exit_code == 0, report.to_markdown()
    steady_state = checks(report.steady_state)
    assert steady_state and all(steady_state.values()), steady_state
    assert checks(report.verification) == VERIFIED
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
    assert list(saved)[0] == "verdict" and saved["verdict"].startswith(f"The failover drill on {ENV}")
    assert f"({GROUP}) held: the primary moved" in saved["verdict"]  # "on drill in <region>" when one is known
    assert f"broker-tier-ops failback --env {ENV} --preferred-az eu-west-1a" in saved["verdict"]  # where it was
    assert saved["measurements"]["seconds_to_available"] == measured["seconds_to_available"]
    markdown = markdown_path.read_text()
    assert markdown.startswith("# broker-tier-ops failover: PASSED")
    assert "| new_primary_in_another_az | PASS |" in markdown and "## Timeline" in markdown
    # runbooks/failover-drill.md shows this report as its sample: its check rows must still match
    # (the canary rows as far as they do not depend on real time: counts and probe timings vary).
    runbook = (ROOT / "runbooks" / "failover-drill.md").read_text()
    assert sum(" | PASS | " in line for line in markdown.splitlines()) >= 5
    for line in markdown.splitlines():
        if line.startswith("| ") and (" | PASS | " in line):
            stable = line if not line.startswith("| canary_") else line[: line.index(" | PASS | ") + 9]
            assert stable in runbook, f"runbooks/failover-drill.md's sample is out of date: {line}"


def test_dry_run_checks_and_plans_but_calls_nothing_that_changes(aws):
    report = drill(aws, dry_run=True)
    assert report.outcome == "planned" and report.exit_code == 0
    assert report.plan and any("TestFailover" in step for step in report.plan)
    assert "send canaries" in report.plan[0]
    assert aws.api.mutating_calls() == [] and aws.group.primary == f"{GROUP}-001"


STEADY_STATE_FAILURES = {
    "group modifying": ("replication_group_available", lambda aws: setattr(aws.group, "status", "modifying")),
    "multi-az off": ("multi_az_and_automatic_failover", lambda aws: setattr(aws.group, "multi_az", "disabled")),
    "replica in the same az": (
        "replica_in_another_az",
        lambda aws: setattr(aws.group, "nodes", [(f"{GROUP}-001", "eu-west-1a"), (f"{GROUP}-002", "eu-west-1a")]),
    ),
    "replica lagging": ("replication_lag", lambda aws: aws.tier.set_lag(12.0)),
    "no lag data": (
        "replication_lag",
        lambda aws: setattr(aws.group, "nodes", [(f"{GROUP}-001", "eu-west-1a"), (f"{GROUP}-003", "eu-west-1b")]),
    ),
    "alarm firing": ("no_alarm_in_alarm", lambda aws: aws.tier.add_alarm("dlq-default-messages", "ALARM")),
    "budget used": (
        "test_failover_budget",
        lambda aws: [
            aws.group.event("Test Failover API called for node group 0001", source="other-group") for _ in range(15)
        ],
    ),
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
    aws.group.on_failover = lambda: aws.history.fired(contract.alarm_name(ENV, contract.REDIS_CONNECTIONS_ALARM))
    report = drill(aws)
    assert report.outcome == "failed"
    assert checks(report.verification)["no_alarm_fired"] is False


def test_services_not_steady_afterwards_fail_it(aws):
    aws.tier.unsteady("beat")
    report = drill(aws)
    assert report.outcome == "failed" and checks(report.verification)["services_steady"] is False


def test_api_error_mid_drill_aborts_with_the_report_so_far(aws):
    aws.group.on_failover = lambda: aws.group.fail_on.update(
        DescribeEvents=client_error("DescribeEvents", "InvalidParameterValue", "events unavailable")
    )
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


# -- the replication-lag limit -------------------------------------------------------------------
def test_lag_limit_defaults_to_the_lag_alarms_threshold(aws):
    aws.tier.set_lag(12.0)
    aws.tier.add_alarm("redis-replication-lag", threshold=15)  # the environment tolerates more lag
    report = drill(aws, dry_run=True)
    lag = next(c for c in report.steady_state if c.name == "replication_lag")
    assert lag.passed is True
    assert lag.detail == (
        "highest in the last 10 min: 12 s (limit 15 s, the threshold of alarm broker-tier-drill-redis-replication-lag)"
    )


def test_an_explicit_lag_limit_wins_over_the_alarm(aws):
    aws.tier.set_lag(12.0)
    aws.tier.add_alarm("redis-replication-lag", threshold=15)
    report = drill(aws, dry_run=True, max_replication_lag_seconds=10)
    assert report.outcome == "refused"
    assert "limit 10 s, --max-replication-lag" in next(
        c.detail for c in report.steady_state if c.name == "replication_lag"
    )


def test_without_the_lag_alarm_or_a_limit_the_drill_refuses_and_says_how_to_go_on(aws):
    aws.clients["cloudwatch"].delete_alarms(AlarmNames=["broker-tier-drill-redis-replication-lag"])
    report = drill(aws)
    assert report.outcome == "refused"
    lag = next(c for c in report.steady_state if c.name == "replication_lag")
    assert lag.passed is False and "give the limit explicitly" in lag.detail
    assert aws.api.mutating_calls() == []


# -- canary traffic ------------------------------------------------------------------------------
def sent_messages(aws) -> int:
    return sum(1 for service, op, _ in aws.api.calls if (service, op) == ("sqs", "SendMessage"))


def test_canaries_are_counted_with_the_rehearsals_keys_next_to_failover_completed(aws):
    report = drill(aws)
    assert report.outcome == "passed", report.to_markdown()
    canary = report.measurements["canary"]
    assert canary["class"] == "default" and canary["run_id"].startswith("canary")
    assert canary["sent"] >= 4 and canary["sent"] == canary["executed"] == canary["executions"]
    assert (canary["lost"], canary["duplicated"], canary["publish_errors"]) == (0, 0, 0)
    assert 0 <= canary["resume_seconds"] <= 2.05
    assert canary["longest_stall_seconds"] < 1 and canary["ledger_delay_seconds"] is not None
    assert sent_messages(aws) == canary["sent"] + 1  # and the probe, sent before anything changed
    assert "seconds_to_failover_completed" in report.measurements
    ready = next(c for c in report.steady_state if c.name == "canary_ready")
    assert ready.passed and "probe ran after" in ready.detail
    markdown = report.to_markdown()
    assert f"  - sent: {canary['sent']}" in markdown and "| canary_none_lost | PASS |" in markdown
    picture = report.pictures["canary-timeline"]  # the canaries' timeline, beside the report and shown in it
    assert "fault started" in picture and "failover completed" in picture
    assert "![canary-timeline](canary-timeline.svg (written beside the report))" in markdown
    assert any(
        e["message"].startswith("waiting for the failover; group status modifying; canary ") for e in report.timeline
    )


def test_a_canary_that_never_runs_is_lost_and_fails_the_drill(aws):
    aws.worker.runs = lambda token: 0 if token.endswith("-000002") else 1
    report = drill(aws)
    assert report.outcome == "failed" and report.exit_code == 1
    lost = next(c for c in report.verification if c.name == "canary_none_lost")
    assert lost.passed is False and lost.value == 1 and lost.detail.endswith("-000002")
    assert report.measurements["canary"]["lost_sample"][0].endswith("-000002")


def test_a_canary_that_runs_twice_is_a_duplicate_and_fails_the_drill(aws):
    aws.worker.runs = lambda token: 2 if token.endswith("-000003") else 1
    report = drill(aws)
    assert report.outcome == "failed"
    assert checks(report.verification)["canary_none_duplicated"] is False
    canary = report.measurements["canary"]
    assert (canary["duplicated"], canary["executions"] - canary["executed"], canary["lost"]) == (1, 1, 0)


def test_publish_errors_fail_the_drill_and_are_not_counted_lost(aws):
    calls = {"n": 0}

    def send_message(**params):
        calls["n"] += 1
        if calls["n"] in (3, 4):  # the probe is the first
            raise client_error("SendMessage", "KMS.ThrottlingException", "throttled")
        return aws.api.passthrough(aws.clients["sqs"], "SendMessage", **params)

    aws.api.handlers[("sqs", "SendMessage")] = send_message
    report = drill(aws)
    assert report.outcome == "failed", report.to_markdown()
    assert checks(report.verification)["canary_no_publish_errors"] is False
    assert checks(report.verification)["canary_none_lost"] is True
    assert report.measurements["canary"]["publish_errors"] == 2


def test_work_that_resumes_too_late_after_the_failover_fails_the_drill(aws):
    aws.group.on_failover = lambda: aws.worker.block(5.0)  # the worker stalls 5 s from the failover on
    report = drill(aws)
    assert report.outcome == "failed", report.to_markdown()
    resumed = next(c for c in report.verification if c.name == "canary_resumed")
    assert resumed.passed is False and resumed.value >= 5.0
    assert "goal <= 2.05 s" in resumed.detail
    assert report.measurements["canary"]["longest_stall_seconds"] >= 4.8


def test_redis_broker_mode_sends_no_canary_and_says_why(aws):
    aws.clients["cloudformation"].delete_stack(StackName=f"BrokerTier-{ENV}-Compute")
    aws.clients["cloudformation"].create_stack(
        StackName=f"BrokerTier-{ENV}-Compute",
        TemplateBody=json.dumps(
            {"Resources": {"Marker": {"Type": "AWS::SNS::Topic"}}, "Outputs": {"Broker": {"Value": "redis"}}}
        ),
    )
    report = drill(aws)
    assert report.outcome == "passed"
    ready = next(c for c in report.steady_state if c.name == "canary_ready")
    assert ready.passed is None and "cannot reach" in ready.detail
    assert sent_messages(aws) == 0 and "canary" not in report.measurements
    verified = checks(report.verification)
    assert verified and not any(name.startswith("canary_") for name in verified)


def test_unknown_broker_mode_refuses_unless_canaries_are_off(aws):
    aws.clients["cloudformation"].delete_stack(StackName=f"BrokerTier-{ENV}-Compute")
    refused = drill(aws)
    assert refused.outcome == "refused" and "--no-canary" in refused.steady_state[-1].detail
    assert sent_messages(aws) == 0
    report = drill(aws, canary=None)
    assert "canary_ready" not in checks(report.steady_state) and sent_messages(aws) == 0


def test_a_probe_that_never_runs_refuses_before_anything_changes(aws):
    aws.worker.runs = lambda token: 0  # e.g. a team's image without the canary task
    report = drill(aws)
    assert report.outcome == "refused"
    ready = next(c for c in report.steady_state if c.name == "canary_ready")
    assert ready.passed is False and "did not run within 180 s" in ready.detail
    assert aws.api.mutating_calls() == [("sqs", "SendMessage")]  # the probe only


def test_an_unknown_canary_class_refuses_and_names_the_classes(aws):
    report = drill(aws, canary=CanaryOptions(class_name="nightly"))
    assert report.outcome == "refused" and sent_messages(aws) == 0
    assert report.steady_state[-1].detail == (
        "--canary-class nightly is not a class of this environment (default, interactive)"
    )


def test_the_sender_stops_when_the_drill_aborts(aws):
    aws.group.completes = False
    report = drill(aws, timeout_seconds=20, poll_seconds=10)
    assert report.outcome == "aborted"
    assert not [t for t in threading.enumerate() if t.name == "canary-sender"]
    assert "canary" not in report.measurements


# -- the AZ power interruption (AWS FIS) ---------------------------------------------------------
def test_az_power_drill_starts_the_primarys_az_experiment_and_follows_it_to_the_end(aws):
    report = drill(aws, fault="az-power")
    assert report.outcome == "passed", report.to_markdown()
    steady = checks(report.steady_state)
    assert steady["az_power_template"] and steady["fault_injection_tag"] and steady["no_experiment_running"]
    assert "test_failover_budget" not in steady
    assert checks(report.verification) == {**VERIFIED, "experiment_completed": True}
    assert report.plan[1].startswith(
        f"StartExperiment of template {aws.tier.az_power_templates[0]}: the power "
        f"of the cache nodes in eu-west-1a (primary {GROUP}-001) goes off for PT5M"
    )
    started = [p for s, op, p in aws.api.calls if (s, op) == ("fis", "StartExperiment")]
    assert [p["experimentTemplateId"] for p in started] == [aws.tier.az_power_templates[0]]
    assert ("elasticache", "TestFailover") not in aws.api.mutating_calls()
    assert aws.group.primary == f"{GROUP}-002"
    assert report.measurements["failover_completed_seen_in"] == "role change (DescribeReplicationGroups, every 1 s)"
    statuses = [e["message"] for e in report.timeline if "; experiment " in e["message"]]
    assert any("experiment running" in m for m in statuses) and report.measurements["canary"]["lost"] == 0


def test_az_power_sets_off_lag_and_connections_alarms_without_failing_the_drill_but_no_other(aws):
    for alarm in sorted(contract.EXPECTED_DURING_AZ_POWER):
        aws.history.fired(contract.alarm_name(ENV, alarm))
    report = drill(aws, fault="az-power")
    assert report.outcome == "passed", report.to_markdown()
    (check,) = [c for c in report.verification if c.name == "no_alarm_fired"]
    assert check.value == {
        "unexpected": [],
        "expected": sorted(contract.alarm_name(ENV, a) for a in contract.EXPECTED_DURING_AZ_POWER),
    }
    history = [p for s, op, p in aws.api.calls if (s, op) == ("cloudwatch", "DescribeAlarmHistory")]
    assert history and all(p["AlarmTypes"] == ["MetricAlarm", "CompositeAlarm"] for p in history)


def test_az_power_fails_on_any_other_alarm(aws):
    aws.history.fired(contract.alarm_name(ENV, contract.REPLICATION_LAG_ALARM))
    aws.history.fired(contract.alarm_name(ENV, "dlq-default-messages"))
    report = drill(aws, fault="az-power")
    assert report.outcome == "failed" and checks(report.verification)["no_alarm_fired"] is False
    (check,) = [c for c in report.verification if c.name == "no_alarm_fired"]
    assert check.value["unexpected"] == [contract.alarm_name(ENV, "dlq-default-messages")]


def test_test_failover_counts_every_alarm_that_fired(aws):
    aws.history.fired(contract.alarm_name(ENV, contract.REPLICATION_LAG_ALARM))
    assert checks(drill(aws).verification)["no_alarm_fired"] is False


def test_az_power_drill_takes_failover_completed_from_an_event_when_elasticache_writes_one(aws):
    aws.group.az_power_events = True
    report = drill(aws, fault="az-power")
    assert report.outcome == "passed"
    assert report.measurements["failover_completed_seen_in"] == "event"


def test_the_experiment_of_the_current_primarys_az_is_chosen(aws):
    aws.group.primary = f"{GROUP}-002"  # in eu-west-1b after an earlier failover
    report = drill(aws, fault="az-power", dry_run=True)
    assert next(c.value for c in report.steady_state if c.name == "az_power_template") == aws.tier.az_power_templates[1]


def test_an_experiment_stopped_by_its_stop_condition_fails_the_drill(aws):
    def stop(params):
        experiment_id = aws.api.passthrough(aws.clients["fis"], "ListExperiments")["experiments"][0]["id"]
        aws.api.passthrough(aws.clients["fis"], "StopExperiment", id=experiment_id)

    aws.group.on_failover = lambda: aws.api.observers.update({("fis", "GetExperiment"): stop})
    report = drill(aws, fault="az-power")
    assert report.outcome == "failed"
    completed = next(c for c in report.verification if c.name == "experiment_completed")
    assert completed.passed is False and completed.value == "stopped" and "stop condition" in completed.detail


def test_a_failed_experiment_aborts_the_drill_with_fiss_reason(aws):
    def get_experiment(id):  # noqa: A002 (the API's parameter name)
        return {
            "experiment": {"id": id, "state": {"status": "failed", "reason": "Target resolution returned empty set"}}
        }

    aws.api.handlers[("fis", "GetExperiment")] = get_experiment
    report = drill(aws, fault="az-power")
    assert report.outcome == "aborted" and report.exit_code == 3
    assert "failed: Target resolution returned empty set" in report.error
    assert not [t for t in threading.enumerate() if t.name == "canary-sender"]


AZ_POWER_REFUSALS = {
    "templates not deployed": (
        "az_power_template",
        "set fault_injection.az_power.enabled",
        lambda aws: (
            aws.clients["cloudformation"].delete_stack(StackName=f"BrokerTier-{ENV}-Monitoring"),
            aws.clients["cloudformation"].create_stack(
                StackName=f"BrokerTier-{ENV}-Monitoring",
                TemplateBody=json.dumps(
                    {
                        "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
                        "Outputs": {"AlarmNamePrefix": {"Value": f"broker-tier-{ENV}-"}},
                    }
                ),
            ),
        ),
    ),
    "no template for the primary's az": (
        "az_power_template",
        "no experiment template for the primary's AZ eu-west-1c",
        lambda aws: setattr(aws.group, "nodes", [(f"{GROUP}-001", "eu-west-1c"), (f"{GROUP}-002", "eu-west-1b")]),
    ),
    "group not tagged": ("fault_injection_tag", "= missing", lambda aws: aws.group.tags.clear()),
    "experiment running": (
        "no_experiment_running",
        "still active",
        lambda aws: aws.clients["fis"].start_experiment(
            experimentTemplateId=aws.tier.az_power_templates[0], clientToken="earlier"
        ),
    ),
}


@pytest.mark.parametrize("check,detail,break_it", AZ_POWER_REFUSALS.values(), ids=AZ_POWER_REFUSALS.keys())
def test_az_power_drill_refuses_when_its_experiment_cannot_run_cleanly(aws, check, detail, break_it):
    break_it(aws)
    aws.api.calls.clear()
    report = drill(aws, fault="az-power")
    assert report.outcome == "refused"
    failed = next(c for c in report.steady_state if c.name == check)
    assert failed.passed is False and detail in failed.detail
    assert aws.api.mutating_calls() == []

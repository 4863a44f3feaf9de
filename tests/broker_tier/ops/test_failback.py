"""Fail-back: Multi-AZ off, promote, restore the original settings even when a step fails."""

from __future__ import annotations

import io

from fake_aws import ENV, GROUP, client_error

from broker_tier.evidence.report import Report
from broker_tier.ops.failback import Failback, FailbackOptions


def failback(aws, *, dry_run: bool = False, **options) -> Report:
    report = Report("failback", ENV, GROUP, dry_run, monotonic=aws.clock.monotonic, stream=io.StringIO())
    aws.api.calls.clear()
    settings = FailbackOptions(**{"poll_seconds": 5, "timeout_seconds": 120, **options})
    return Failback(aws.clients["elasticache"], GROUP, settings, report).run()


def after_a_failover(aws) -> None:
    aws.group.primary = f"{GROUP}-002"


def test_promotes_the_preferred_az_and_restores_multi_az_and_failover(aws):
    after_a_failover(aws)
    report = failback(aws, preferred_az="eu-west-1a")
    assert report.outcome == "passed", report.to_markdown()
    assert aws.group.modify_calls == [
        {"MultiAZEnabled": False},
        {"PrimaryClusterId": f"{GROUP}-001"},
        {"MultiAZEnabled": True, "AutomaticFailoverEnabled": True},
    ]
    assert (aws.group.primary, aws.group.multi_az, aws.group.automatic_failover) == (
        f"{GROUP}-001",
        "enabled",
        "enabled",
    )
    assert {c.name: c.passed for c in report.verification} == {"target_is_primary": True, "settings_restored": True}


def test_settings_are_restored_when_the_promotion_fails(aws):
    after_a_failover(aws)
    original = aws.group.ModifyReplicationGroup

    def promote_fails(**params):
        if "PrimaryClusterId" in params:
            raise client_error("ModifyReplicationGroup", "InvalidReplicationGroupState", "node is rebalancing")
        return original(**params)

    aws.api.handlers[("elasticache", "ModifyReplicationGroup")] = promote_fails
    report = failback(aws, primary_cluster_id=f"{GROUP}-001")
    assert report.outcome == "aborted" and report.exit_code == 3 and "node is rebalancing" in report.error
    assert aws.group.modify_calls == [
        {"MultiAZEnabled": False},
        {"MultiAZEnabled": True, "AutomaticFailoverEnabled": True},
    ]
    assert (aws.group.primary, aws.group.multi_az) == (f"{GROUP}-002", "enabled")
    assert {c.name: c.passed for c in report.verification} == {"target_is_primary": False, "settings_restored": True}


def test_dry_run_plans_three_steps_and_changes_nothing(aws):
    after_a_failover(aws)
    report = failback(aws, dry_run=True, primary_cluster_id=f"{GROUP}-001")
    assert report.outcome == "planned" and len(report.plan) == 3
    assert aws.api.mutating_calls() == [] and aws.group.multi_az == "enabled"


def test_nothing_to_do_when_the_target_is_already_primary(aws):
    report = failback(aws, preferred_az="eu-west-1a")
    assert report.outcome == "passed" and "already the primary" in report.error
    assert aws.api.mutating_calls() == []


def test_unknown_target_is_refused_with_the_nodes_listed(aws):
    report = failback(aws, primary_cluster_id=f"{GROUP}-009")
    assert report.outcome == "refused" and f"{GROUP}-001 primary in eu-west-1a" in report.error
    assert aws.api.mutating_calls() == []

"""memory-full, short, in both broker modes: real redis-servers filled to their maxmemory (noeviction), moto, real
prefork workers; and how the memory alarms are played from the samples.

The series with more runs at two rates is ``scripts/rehearse-all.sh`` (docs/rehearsal.md).
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import pytest

from broker_tier.evidence.report import Report
from broker_tier.rehearsal.definition import CDK_JSON
from broker_tier.rehearsal.faults import BROKERS, goals_for
from broker_tier.rehearsal.goals import check_goals
from broker_tier.rehearsal.memory import AlarmRule, alarm_transitions, memory_alarm_rules
from broker_tier.rehearsal.runner import RehearsalOptions, rehearse

SHORT = dict(
    fault="memory-full",
    rate=10,
    before_seconds=3,
    after_seconds=3,
    full_seconds=4,  # the critical alarm needs 3 breaching periods of 1 s (a minute played as a second)
    visibility_timeout_seconds=10,
    drain_timeout_seconds=20,
    workers=1,
)


@pytest.fixture(scope="module")
def reports(synthesized, redis_broker_dev) -> dict[str, Report]:
    """Both brokers side by side (independent loopback tiers)."""
    templates = {
        "sqs": (synthesized.json("dev", "Compute"), synthesized.json("dev", "State")),
        "redis": (redis_broker_dev["Compute"], redis_broker_dev["State"]),
    }

    def run(broker: str) -> Report:
        options = RehearsalOptions(broker=broker, **SHORT)  # type: ignore[arg-type]
        return rehearse(options, templates=templates[broker], stream=io.StringIO())

    with ThreadPoolExecutor(max_workers=len(BROKERS)) as pool:
        return dict(zip(BROKERS, pool.map(run, BROKERS), strict=True))


@pytest.mark.parametrize("broker", BROKERS)
def test_a_full_redis_loses_no_task_silently_and_the_critical_alarm_fires(reports, broker):
    report = reports[broker]
    assert report.outcome == "passed" and report.exit_code == 0, report.to_markdown()
    figures = report.measurements
    assert figures["published"] > 0 and figures["lost"] == 0 and figures["worker_restarts"] == 0
    assert (
        figures["executed"] + figures["publish_errors"] - figures["executed_despite_publish_error"]
        == (figures["published"])
    )
    assert figures["memory_fill_keys"] > 0 and figures["memory_refusal"].startswith("OutOfMemoryError")
    assert figures["memory_percent_max"] >= 100 > figures["memory_percent_before_fault"]
    assert figures["memory_full_measured_seconds"] >= SHORT["full_seconds"]
    critical = figures["memory_critical_alarm_after_full_seconds"]
    assert critical is not None and critical <= SHORT["full_seconds"]
    assert figures["memory_critical_alarm_ok_after_freed_seconds"] is not None  # and back to OK once freed
    assert figures["results_checked_after_memory_back"] > 0 and figures["results_lost_after_memory_back"] == 0
    picture = report.pictures["timeline"]
    assert "Redis full (noeviction)" in picture and "redis-memory-critical ALARM" in picture


def test_with_the_redis_broker_callers_are_told_redis_is_full_and_with_sqs_they_are_not_refused(reports):
    redis_figures, sqs_figures = reports["redis"].measurements, reports["sqs"].measurements
    errors = redis_figures["publish_errors"]
    assert errors > 0 and redis_figures["publish_errors_not_naming_memory"] == 0
    assert all("maxmemory" in message for message in redis_figures["publish_error_messages"])
    assert redis_figures["restored_from_unacked"] == 0 and redis_figures["stranded_until_visibility_timeout"] == 0
    assert sqs_figures["publish_errors"] == 0 and sqs_figures["unacked_at_end"] == 0
    # sqs: a task that ran while full could not store its result; its message stayed un-acked and it ran again
    # once the visibility timeout passed (and stored it then): every duplicate is one of those
    assert sqs_figures["ran_while_full"] > 0
    assert sqs_figures["duplicated"] == sqs_figures["duplicated_ran_while_full"] > 0


@pytest.mark.parametrize("broker", BROKERS)
def test_a_lost_task_fails_the_rehearsal(reports, broker):
    figures = {**reports[broker].measurements, "lost": 1}
    failed = [check.name for check in check_goals(goals_for(broker, "memory-full"), figures) if not check.passed]
    assert failed == ["lost <= 0"]


RULE = AlarmRule(
    name="redis-memory-critical", threshold_percent=85, period_seconds=1, evaluation_periods=3, datapoints_to_alarm=3
)


def samples(*percent_per_period: float) -> list[tuple[float, float]]:
    """Two samples per 1-s period from time 0."""
    return [(index + offset, percent) for index, percent in enumerate(percent_per_period) for offset in (0.2, 0.7)]


def test_the_alarm_fires_at_the_end_of_the_third_breaching_period_and_clears_with_the_first_that_is_not():
    assert alarm_transitions(samples(50, 90, 90, 90, 90, 40, 40), RULE, origin=0) == [(4, "ALARM"), (6, "OK")]


def test_two_breaching_periods_of_three_do_not_fire_it_and_the_threshold_itself_does_not_breach():
    assert alarm_transitions(samples(90, 90, 50, 90, 90, 85, 85), RULE, origin=0) == []
    assert alarm_transitions([], RULE, origin=0) == []


def test_the_rules_are_the_environment_s_memory_alarms_with_a_minute_played_as_a_second():
    warning, critical = memory_alarm_rules("dev", CDK_JSON)
    assert (warning.name, critical.name) == ("redis-memory-warning", "redis-memory-critical")
    assert (warning.threshold_percent, critical.threshold_percent) == (70, 85)  # cdk.json's dev block
    assert critical.period_seconds == 1 and critical.evaluation_periods == critical.datapoints_to_alarm == 3

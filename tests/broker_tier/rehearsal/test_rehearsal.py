"""A short failover rehearsal in both broker modes: real redis-servers, moto, real prefork workers.

The figures are the goals of issue #16 (broker_tier/rehearsal/goals.py); the full rehearsal with
its benchmark figures is ``scripts/rehearse-all.sh`` (README, "Failover rehearsal").
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import pytest

from broker_tier.evidence.report import Report
from broker_tier.rehearsal.goals import MAX_DELAY_MARGIN_SECONDS
from broker_tier.rehearsal.runner import RehearsalOptions, rehearse

# Short phases: a 1.5 s DNS delay, 3 s of publishing on each side of the fault. The visibility timeout
# (the stack's is over an hour) must outlast what a task may hold its message through the fault, or a
# duplicate would be the test's doing: its result write retries with Celery's backoff (10 ms doubling,
# full jitter, up to 10 s) until the endpoint moves, and the retry after the move can come seconds later
# (3.6 s seen: a 3 s timeout made one duplicate in about ten runs). With 10 s one such stall in about
# 4,000 (a simulation of that backoff) outlasts it.
SHORT = dict(
    rate=10,
    before_seconds=3,
    after_seconds=3,
    dns_delay_seconds=1.5,
    visibility_timeout_seconds=10,
    drain_timeout_seconds=20,
    workers=1,
)


@pytest.fixture(scope="module")
def templates(synthesized, redis_broker_dev) -> dict[str, tuple[dict, dict]]:
    """The dev environment's (Compute, State) templates per broker mode: sqs is cdk.json's, redis is
    the same configuration with ``compute.broker: redis`` (both synthesized once per session)."""
    return {
        "sqs": (synthesized.json("dev", "Compute"), synthesized.json("dev", "State")),
        "redis": (redis_broker_dev["Compute"], redis_broker_dev["State"]),
    }


CASES = [(broker, fault) for broker in ("sqs", "redis") for fault in ("promote", "power-loss")]
# the same redis promote with the publish retry off: proves the rehearsal can fail
WITHOUT_PUBLISH_RETRY = ("redis", "promote", (("task_publish_retry", False),))


@pytest.fixture(scope="module")
def reports(templates) -> dict[tuple, Report]:
    """Every case, run side by side (independent loopback tiers, each with its own ports)."""

    def run(case) -> Report:
        broker, fault, *overrides = case
        options = RehearsalOptions(broker=broker, fault=fault, overrides=dict(*overrides), **SHORT)
        return rehearse(options, templates=templates[broker], stream=io.StringIO())

    cases = [*CASES, WITHOUT_PUBLISH_RETRY]
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        return dict(zip(cases, pool.map(run, cases), strict=True))


@pytest.mark.parametrize("broker,fault", CASES)
def test_short_rehearsal_meets_the_goals(reports, broker, fault):
    report = reports[(broker, fault)]
    assert report.outcome == "passed" and report.exit_code == 0, report.to_markdown()
    figures = report.measurements
    assert figures["executed"] == figures["published"] > 0
    assert figures["worker_restarts"] == 0
    # no task waited in flight for a visibility timeout (which lost, duplicated and unacked_at_end all miss)
    assert figures["max_delay_seconds"] <= SHORT["dns_delay_seconds"] + MAX_DELAY_MARGIN_SECONDS
    assert f"max_delay_seconds <= {SHORT['dns_delay_seconds'] + MAX_DELAY_MARGIN_SECONDS:g}" in [
        check.name for check in report.verification if check.passed
    ]
    if broker == "sqs":
        assert figures["resume_seconds"] <= 2 and figures["duplicated"] == 0 and figures["unacked_at_end"] == 0
    else:
        assert figures["stranded_until_visibility_timeout"] == 0


def test_the_rehearsal_fails_when_the_publish_retry_is_off(reports):
    report = reports[WITHOUT_PUBLISH_RETRY]
    assert report.outcome == "failed" and report.exit_code == 1, report.to_markdown()
    errors = report.measurements["publish_errors"]
    assert errors > 0 and report.measurements["publish_error_kinds"] == {"OperationalError": errors}
    failed = [check.name for check in report.verification if check.passed is False]
    assert failed == ["publish_errors <= 0"], report.to_markdown()

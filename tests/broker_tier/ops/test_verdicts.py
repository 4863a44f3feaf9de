"""Verdicts that no AWS-backed test reaches: the dead-letter listing of a tier in redis broker mode."""

from __future__ import annotations

import pytest

import broker_tier.ops  # noqa: F401  (importing the package registers the verdicts)
from broker_tier.evidence.report import Report

REDIS_NOTE = "Celery's Redis transport has no dead-letter queue"


@pytest.mark.parametrize("broker", ["redis", "sqs"])
def test_an_empty_dead_letter_listing_says_why_in_redis_mode(broker):
    report = Report("dead-letters", "dev", "broker-tier-dev-default-dlq", dry_run=False)
    report.measurements.update(broker=broker, read=0, by_task_name={}, hold_seconds=120)
    report.finish("passed")
    assert report.verdict.startswith("0 dead letters of broker-tier-dev-default-dlq (dev")  # region: the invocation's
    assert "by task: none." in report.verdict
    assert (REDIS_NOTE in report.verdict) is (broker == "redis")

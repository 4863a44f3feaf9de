"""Differences by line: against another synthesis (every line) and against baseline/ (stateful lines only)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cost_testing import environment_templates

from broker_tier.cost import compare, templates
from broker_tier.cost.baseline import FOOTPRINT_TYPES
from broker_tier.cost.estimate import Assumptions, estimate_all
from broker_tier.cost.prices import load_prices
from broker_tier.stateful_resources import STATEFUL_TYPES

PRICES = load_prices()
BASELINE = Path(__file__).resolve().parents[3] / "baseline"


def estimates(found):
    return estimate_all(found, prices=PRICES, assumptions=Assumptions())


def test_against_another_synthesis_only_the_changed_lines_move(shipped, prod_variant):
    (change,) = compare.compare(
        estimates({"prod": shipped["prod"]}), estimates({"prod": prod_variant}), base_holds_only=None
    )
    moved = {line.name: line.delta.typical for line in change.lines if line.changed}
    assert set(moved) == {"ElastiCache nodes", "Fargate worker-interactive", "SQS requests"}
    assert moved["ElastiCache nodes"] == pytest.approx(3 * (0.437 - 0.219) * 730)
    assert change.delta.typical == pytest.approx(sum(moved.values()))
    assert change.not_compared == []
    nodes = next(line for line in change.lines if line.name == "ElastiCache nodes")
    assert "cache.r7g.large" in nodes.base_counted and "cache.r7g.xlarge" in nodes.current_counted


BASELINE_TYPES = frozenset(STATEFUL_TYPES) | FOOTPRINT_TYPES


def test_baseline_answers_for_the_stateful_lines_and_the_fargate_and_sqs_lines(shipped):
    base = templates.load(BASELINE)
    assert set(base) == set(shipped) and all(found.holds_only == BASELINE_TYPES for found in base.values())
    changes = compare.compare(estimates(base), estimates(shipped), base_holds_only=BASELINE_TYPES)
    for change in changes:
        compared = {line.name for line in change.lines}
        assert compared == {
            "ElastiCache nodes",
            "ElastiCache snapshots",
            "Fargate beat",
            "Fargate worker-interactive",
            "Fargate worker-default",
            "Fargate worker-batch",
            "KMS keys",
            "Secrets Manager secrets",
            "CloudWatch Logs ingestion",
            "CloudWatch Logs storage",
            "SQS requests",
        }, change.environment
        assert {"NAT gateways", "CloudWatch alarms", "Public IPv4 addresses"} <= set(change.not_compared)
        assert change.delta.typical == pytest.approx(0), change.environment  # the baseline is up to date


def test_baseline_shows_a_node_type_change_and_more_workers(prod_variant):
    base = templates.load(BASELINE)
    (change,) = compare.compare(
        estimates({"prod": base["prod"]}), estimates({"prod": prod_variant}), base_holds_only=BASELINE_TYPES
    )
    moved = [line.name for line in change.lines if line.changed]
    assert moved == ["ElastiCache nodes", "Fargate worker-interactive", "SQS requests"]
    nodes = next(line for line in change.lines if line.name == "ElastiCache nodes")
    assert nodes.delta.typical == pytest.approx(3 * (0.437 - 0.219) * 730)


def test_baseline_shows_classes_moved_to_spot_and_tasks_moved_to_arm64(spot_prod):
    """What the cost step of scripts/test.sh prints for SPOT_CHANGES: every Fargate line moves (ARM64), and the
    Spot classes' lines say so; ARM64 on Spot has no price in the table yet, so those two lines are listed as not
    compared, never as a zero."""
    base = templates.load(BASELINE)
    (change,) = compare.compare(
        estimates({"prod": base["prod"]}),
        estimates({"prod": environment_templates("prod", spot_prod.templates)}),
        base_holds_only=BASELINE_TYPES,
    )
    moved = {line.name: line for line in change.lines if line.changed}
    assert {"Fargate beat", "Fargate worker-default"} <= set(moved)
    for name in ("Fargate beat", "Fargate worker-default"):
        assert "X86_64" in moved[name].base_counted and "ARM64" in moved[name].current_counted
        assert moved[name].delta.typical < 0  # ARM64 is cheaper
    # the Spot classes: not priced (the table has no ARM64 Spot rate), so they are listed, never counted as zero
    assert not {"Fargate worker-interactive", "Fargate worker-batch"} & {line.name for line in change.lines}
    listed = {f"Fargate worker-{name} (not priced on one side)" for name in ("interactive", "batch")}
    assert listed <= set(change.not_compared)
    assert change.delta.typical == pytest.approx(sum(line.delta.typical for line in moved.values()))


def test_an_environment_on_one_side_only_is_all_added(shipped):
    (change,) = compare.compare({}, estimates({"dev": shipped["dev"]}), base_holds_only=None)
    assert change.base_total.typical == 0
    assert change.delta.typical == pytest.approx(estimates({"dev": shipped["dev"]})["dev"].total.typical)


def test_a_directory_that_is_neither_an_assembly_nor_a_baseline_is_refused(tmp_path):
    with pytest.raises(templates.CostError, match="holds no BrokerTier-<env>-<part> stack"):
        templates.load(tmp_path)
    with pytest.raises(templates.CostError, match="no such directory"):
        templates.load(tmp_path / "missing")

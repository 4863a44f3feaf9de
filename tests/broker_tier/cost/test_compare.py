"""Differences by line: against another synthesis (every line) and against baseline/ (stateful lines only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker_tier.cost import compare, templates
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


def test_baseline_answers_only_for_lines_computed_from_stateful_resources(shipped):
    base = templates.load(BASELINE)
    assert set(base) == set(shipped) and all(found.holds_only == frozenset(STATEFUL_TYPES) for found in base.values())
    changes = compare.compare(estimates(base), estimates(shipped), base_holds_only=frozenset(STATEFUL_TYPES))
    for change in changes:
        compared = {line.name for line in change.lines}
        assert compared == {
            "ElastiCache nodes",
            "ElastiCache snapshots",
            "KMS keys",
            "Secrets Manager secrets",
            "CloudWatch Logs ingestion",
            "CloudWatch Logs storage",
        }, change.environment
        assert {"NAT gateways", "CloudWatch alarms", "SQS requests", "Fargate beat"} <= set(change.not_compared)
        assert change.delta.typical == pytest.approx(0), change.environment  # the baseline is up to date


def test_baseline_shows_a_node_type_change(prod_variant):
    base = templates.load(BASELINE)
    (change,) = compare.compare(
        estimates({"prod": base["prod"]}), estimates({"prod": prod_variant}), base_holds_only=frozenset(STATEFUL_TYPES)
    )
    assert [(line.name, round(line.delta.typical, 2)) for line in change.lines if line.changed] == [
        ("ElastiCache nodes", round(3 * (0.437 - 0.219) * 730, 2))
    ]


def test_an_environment_on_one_side_only_is_all_added(shipped):
    (change,) = compare.compare({}, estimates({"dev": shipped["dev"]}), base_holds_only=None)
    assert change.base_total.typical == 0
    assert change.delta.typical == pytest.approx(estimates({"dev": shipped["dev"]})["dev"].total.typical)


def test_a_directory_that_is_neither_an_assembly_nor_a_baseline_is_refused(tmp_path):
    with pytest.raises(templates.CostError, match="holds no BrokerTier-<env>-<part> stack"):
        templates.load(tmp_path)
    with pytest.raises(templates.CostError, match="no such directory"):
        templates.load(tmp_path / "missing")

"""Fargate Spot per class: ``queues.<class>.worker.capacity`` and ``queues.<class>.idempotent``. Opting in is one
setting; each rule that refuses Spot names the key, the value and what is allowed
(docs/decisions/fargate-spot-per-class.md)."""

from __future__ import annotations

import pytest
from tier_testing import tier_context

import broker_tier_contract as contract
from broker_tier.config import ConfigError, deep_merge, load_environments


def load_with(env: str, override: dict):
    context = tier_context()
    block = {key: value for key, value in context["environments"][env].items() if key not in ("account", "region")}
    context["environments"][env] = deep_merge(block, override)
    return load_environments(context)[env]


def refusal(env: str, override: dict) -> str:
    with pytest.raises(ConfigError) as raised:
        load_with(env, override)
    return str(raised.value)


def spot(percent: int, **capacity) -> dict:
    return {"worker": {"capacity": {"spot_percent": percent, **capacity}}}


def test_every_class_is_on_demand_only_unless_it_opts_in():
    config = load_with("prod", {})
    assert {name: q.worker.capacity.strategy() for name, q in config.queues.items()} == {
        name: [("FARGATE", 0, 1)] for name in ("interactive", "default", "batch")
    }
    assert not any(q.idempotent for q in config.queues.values())


def test_opting_a_class_into_spot_is_one_setting_with_an_on_demand_floor_of_one():
    config = load_with("prod", {"queues": {"interactive": spot(75)}})
    capacity = config.queues["interactive"].worker.capacity
    assert capacity.on_demand_base == 1
    assert capacity.strategy() == [("FARGATE", 1, 25), ("FARGATE_SPOT", 0, 75)]
    assert config.queues["default"].worker.capacity.strategy() == [("FARGATE", 0, 1)]


def test_all_spot_needs_no_floor_and_is_outside_production_only():
    config = load_with("dev", {"queues": {"interactive": spot(100, on_demand_base=0)}})
    assert config.queues["interactive"].worker.capacity.strategy() == [("FARGATE_SPOT", 0, 1)]
    message = refusal("prod", {"queues": {"interactive": spot(100, on_demand_base=0)}})
    assert "environment 'prod': queues.interactive.worker.capacity.on_demand_base = 0 is not allowed" in message
    assert "at least 1 in a production environment" in message


WINDOW = contract.soft_shutdown_seconds(contract.DEFAULT_STOP_TIMEOUT_SECONDS)

REFUSED = {
    "a class that is not idempotent and whose time limit exceeds the window": (
        "dev",
        {"queues": {"batch": spot(50)}},
        [
            "environment 'dev': queues.batch.worker.capacity.spot_percent = 50 is not allowed",
            "0 (on-demand only) while class 'batch' is not idempotent",
            "task_time_limit_seconds 3600",
            f"soft-shutdown window ({WINDOW} s",
            "Set queues.batch.idempotent to true",
        ],
    ),
    "a floor that takes every task": (
        "dev",
        {"queues": {"interactive": {"worker": {"max_tasks": 1, "capacity": {"spot_percent": 50}}}}},
        ["queues.interactive.worker.capacity.on_demand_base = 1 is not allowed", "less than max_tasks (1)"],
    ),
    "a floor with every task on Spot": (
        "dev",
        {"queues": {"interactive": spot(100)}},
        ["queues.interactive.worker.capacity.spot_percent = 100 is not allowed", "at most 99 with an on-demand floor"],
    ),
    "one receive before the dead-letter queue": (
        "dev",
        {"queues": {"interactive": {"max_receive_count": 1, **spot(50)}}},
        ["queues.interactive.worker.capacity.spot_percent = 50 is not allowed", "max_receive_count 1"],
    ),
    "a share above 100": (
        "dev",
        {"queues": {"interactive": spot(150)}},
        ["queues.interactive.worker.capacity.spot_percent = 150 is not allowed; allowed: 0 to 100"],
    ),
    "a string for the share": (
        "dev",
        {"queues": {"interactive": {"worker": {"capacity": {"spot_percent": "75"}}}}},
        ["queues.interactive.worker.capacity.spot_percent", "a JSON integer"],
    ),
    "Beat on Spot": (
        "prod",
        {"compute": {"beat": {"capacity": {"spot_percent": 50}}}},
        ["unknown key 'compute.beat.capacity'", "allowed keys here: cpu, desired_count"],
    ),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_each_rule_refuses_spot_naming_key_value_and_what_is_allowed(case):
    env, override, expected = REFUSED[case]
    message = refusal(env, override)
    assert expected
    for text in expected:
        assert text in message, message


def test_a_long_class_may_use_spot_once_marked_idempotent_or_once_its_time_limit_fits_the_window():
    idempotent = load_with("dev", {"queues": {"batch": {"idempotent": True, **spot(50)}}})
    assert idempotent.queues["batch"].worker.capacity.strategy() == [("FARGATE", 1, 50), ("FARGATE_SPOT", 0, 50)]
    # interactive's 60 s time limit ends any of its tasks within the 105 s window: nothing to run twice
    assert load_with("prod", {"queues": {"interactive": spot(75)}}).queues["interactive"].idempotent is False
    shorter = {
        "task_time_limit_seconds": WINDOW,
        "max_eta_seconds": 0,
        "visibility_timeout_seconds": 600,
        "latency_objective_seconds": 900,
        **spot(50),
    }
    assert load_with("dev", {"queues": {"batch": shorter}}).queues["batch"].worker.capacity.uses_spot
    # a shorter stop timeout narrows the window: the same class is refused again
    message = refusal("dev", {"compute": {"stop_timeout_seconds": 60}, "queues": {"batch": shorter}})
    assert f"task_time_limit_seconds {WINDOW}" in message and "soft-shutdown window (45 s" in message

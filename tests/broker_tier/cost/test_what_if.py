"""``cost --what-if``: each option's saving is what the estimate itself moves by once the setting it names is applied
to the templates; options that do not apply are left out; a price the table lacks leaves the figure "not priced"."""

from __future__ import annotations

import copy
import json

import pytest
from cost_testing import edited
from tier_testing import ENVIRONMENTS

from broker_tier.cost.estimate import Assumptions, Estimator
from broker_tier.cost.prices import PriceTable, load_prices
from broker_tier.cost.templates import EnvironmentTemplates
from broker_tier.cost.what_if import savings, savings_all

PRICES = load_prices()
REGION = "us-east-1"
DEFAULTS = Assumptions()


def estimator(prices: PriceTable = PRICES) -> Estimator:
    return Estimator(prices=prices, assumptions=DEFAULTS, region=REGION)


def by_option(found: EnvironmentTemplates, prices: PriceTable = PRICES) -> dict:
    return {saving.option: saving for saving in savings(estimator(prices), found, spot_percent=75)}


def moved(found: EnvironmentTemplates, edit) -> float:
    """How much the typical total falls once ``edit`` is applied to the templates."""
    before, after = estimator().estimate(found), estimator().estimate(edited(found, edit))
    return (before.total - after.total).typical


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_lists_the_options_that_apply_each_naming_its_setting(shipped, env):
    found = by_option(shipped[env])
    nat = {"dev": [], "staging": ["fewer NAT gateways"], "prod": ["fewer NAT gateways"]}[env]
    # every class can move tasks above a floor of one (dev's batch scales 0-2: its second task)
    spot_classes = [f"class {name} on Fargate Spot" for name in ("batch", "default", "interactive")]
    assert list(found) == [
        "workers and Beat on ARM64 (Graviton)",
        *spot_classes,
        "the cache on Valkey instead of Redis OSS",
        "one-year reserved cache nodes",
        *nat,
    ]
    assert found["workers and Beat on ARM64 (Graviton)"].setting == 'compute.cpu_architecture: "ARM64"'
    assert found["class interactive on Fargate Spot"].setting == "queues.interactive.worker.capacity.spot_percent: 75"
    # a class whose time limit exceeds the soft-shutdown window needs the idempotent mark as well
    assert found["class batch on Fargate Spot"].setting.endswith("and queues.batch.idempotent: true")
    assert "3600 s time limit exceeds the 105 s soft-shutdown window" in found["class batch on Fargate Spot"].caveat
    assert found["the cache on Valkey instead of Redis OSS"].setting.startswith('cache.engine: "valkey"')
    for saving in found.values():
        assert saving.assumption and (saving.monthly is not None or saving.not_priced.startswith("not priced: "))


def test_arm64_saves_what_the_estimate_loses_once_every_task_is_arm64(shipped):
    def to_arm(_, __, resource):
        if resource["Type"] == "AWS::ECS::TaskDefinition":
            resource["Properties"]["RuntimePlatform"]["CpuArchitecture"] = "ARM64"

    saving = by_option(shipped["prod"])["workers and Beat on ARM64 (Graviton)"]
    # the toolbox's task definition runs no service: it is in neither figure
    assert saving.monthly.typical == pytest.approx(moved(shipped["prod"], to_arm)) and saving.monthly.typical > 0


def test_a_class_on_spot_saves_what_the_estimate_loses_with_that_strategy(shipped):
    strategy = [
        {"Base": 1, "CapacityProvider": "FARGATE", "Weight": 25},
        {"CapacityProvider": "FARGATE_SPOT", "Weight": 75},
    ]

    def interactive_on_spot(_, __, resource):
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::ECS::Service" and "Workerinteractive" in json.dumps(props["TaskDefinition"]):
            props["CapacityProviderStrategy"] = strategy

    saving = by_option(shipped["prod"])["class interactive on Fargate Spot"]
    alarm = 2 * PRICES.price(REGION, "alarm_metric_month", "standard")  # the class's Spot capacity warning
    assert saving.monthly.typical == pytest.approx(moved(shipped["prod"], interactive_on_spot) - alarm)
    assert "less its Spot capacity warning (2 alarm metrics, 0.20/month)" in saving.assumption
    # min_tasks 1: nothing above the floor at the minimum, only the warning's cost
    assert saving.monthly.minimum == pytest.approx(-alarm) and saving.monthly.maximum > saving.monthly.typical > 0


def test_valkey_saves_the_node_price_difference(shipped):
    def to_valkey(_, __, resource):
        if resource["Type"] == "AWS::ElastiCache::ReplicationGroup":
            resource["Properties"]["Engine"] = "valkey"

    saving = by_option(shipped["prod"])["the cache on Valkey instead of Redis OSS"]
    assert saving.monthly.typical == pytest.approx(moved(shipped["prod"], to_valkey)) and saving.monthly.typical > 0


def test_fewer_nat_gateways_saves_the_gateways_and_their_addresses_and_says_what_it_costs(shipped):
    gateways = sorted(
        logical_id for _, logical_id, r in shipped["prod"].resources() if r["Type"] == "AWS::EC2::NatGateway"
    )
    addresses = sorted(logical_id for _, logical_id, r in shipped["prod"].resources() if r["Type"] == "AWS::EC2::EIP")
    assert len(gateways) == len(addresses) == 3

    def keep_one(resources, logical_id, _):
        if logical_id in gateways[1:] + addresses[1:]:
            del resources[logical_id]

    saving = by_option(shipped["prod"])["fewer NAT gateways"]
    assert saving.monthly.typical == pytest.approx(moved(shipped["prod"], keep_one)) and saving.monthly.typical > 0
    assert saving.setting == "network.nat_gateways: 1" and "when that AZ fails" in saving.caveat


def test_a_price_the_table_lacks_leaves_the_option_not_priced(shipped):
    data = copy.deepcopy(PRICES.data)
    del data["regions"][REGION]["prices"]["fargate_vcpu_hour"]["usd"]["ARM64"]
    found = by_option(shipped["dev"], PriceTable(data))
    arm = found["workers and Beat on ARM64 (Graviton)"]
    assert arm.monthly is None and "no price for ARM64" in arm.not_priced
    assert found["the cache on Valkey instead of Redis OSS"].monthly is not None


def test_options_already_taken_are_left_out(shipped):
    def all_taken(resources, logical_id, resource):
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::ECS::TaskDefinition":
            props["RuntimePlatform"]["CpuArchitecture"] = "ARM64"
        if resource["Type"] == "AWS::ElastiCache::ReplicationGroup":
            props["Engine"] = "valkey"
        if resource["Type"] == "AWS::ECS::Service" and "LaunchType" not in props:
            props["CapacityProviderStrategy"] = [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]

    found = by_option(edited(shipped["dev"], all_taken))
    assert list(found) == ["one-year reserved cache nodes"]  # dev has one NAT gateway already


def test_savings_all_prices_each_environment_in_its_region(shipped):
    result = savings_all(shipped, prices=PRICES, assumptions=DEFAULTS)
    assert list(result) == ENVIRONMENTS and all(result.values())


def test_the_documented_what_if_tables_are_what_the_command_prints(shipped):
    from tier_testing import ROOT

    from broker_tier.cost.render import what_if_markdown

    text = (ROOT / "docs" / "cost.md").read_text()
    begin, end = "<!-- what-if-tables:", "<!-- /what-if-tables -->"
    start = text.index(begin)
    documented = text[text.index("\n", start) + 1 : text.index(end, start)]
    printed = what_if_markdown(savings_all(shipped, prices=PRICES, assumptions=DEFAULTS, region=REGION))
    assert "| fewer NAT gateways |" in documented
    assert documented.strip() == printed.strip(), (
        "docs/cost.md's what-if tables differ from the command's; paste what "
        "`broker-tier-ops --region us-east-1 cost --cdk-out cdk.out --what-if --markdown` prints after the estimate"
    )

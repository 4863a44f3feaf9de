"""The dated price table: every price has a unit and a known source, and lookups fail loudly."""

from __future__ import annotations

import datetime
import json

import pytest

from broker_tier.cost.prices import PRICE_FILE, CostError, NotPriced, PriceTable, UnknownPrice, load_prices

TABLE = json.loads(PRICE_FILE.read_text())


def test_the_table_is_dated_and_every_price_names_its_unit_and_a_source_with_a_reading_date():
    assert datetime.date.fromisoformat(TABLE["as_of"])
    assert TABLE["default_region"] in TABLE["regions"]
    for region, entry in TABLE["regions"].items():
        for name, price in entry["prices"].items():
            assert price["per"] and price["source"] in TABLE["sources"], (region, name)
    for name, source in TABLE["sources"].items():
        assert source["title"] and datetime.date.fromisoformat(source["read"]), name
        assert source["url"].startswith("https://"), name  # every figure can be traced to a public page
    for name, allowance in TABLE["free_tier"].items():
        assert name == "about" or allowance["source"] in TABLE["sources"]


def test_every_price_is_a_positive_number():
    def leaves(value):
        if isinstance(value, dict):
            for inner in value.values():
                yield from leaves(inner)
        else:
            yield value

    prices = [
        (region, name, value)
        for region, entry in TABLE["regions"].items()
        for name, price in entry["prices"].items()
        for value in leaves(price["usd"])
    ]
    assert len(prices) > 10
    assert [price for price in prices if not (isinstance(price[2], (int, float)) and price[2] > 0)] == []


def test_lookups_by_variant_and_their_errors():
    prices = load_prices()
    assert prices.price("us-east-1", "elasticache_node_hour", "redis", "cache.r7g.large") == 0.219
    assert prices.price("us-east-1", "fargate_vcpu_hour", "ARM64") == 0.03238
    with pytest.raises(UnknownPrice, match=r"no price for valkey cache\.x9\.large"):
        prices.price("us-east-1", "elasticache_node_hour", "valkey", "cache.x9.large")
    with pytest.raises(UnknownPrice, match=r"no price for memcached "):
        prices.price("us-east-1", "elasticache_node_hour", "memcached", "cache.r7g.large")
    with pytest.raises(UnknownPrice, match="needs a variant"):
        prices.price("us-east-1", "fargate_gb_hour")
    with pytest.raises(NotPriced, match="no price 'glacier' for region us-east-1"):
        prices.price("us-east-1", "glacier")
    with pytest.raises(UnknownPrice, match="region 'ap-south-1' has no prices"):
        prices.price("ap-south-1", "kms_key_month")


def test_valkey_nodes_cost_four_fifths_of_redis_nodes_as_the_source_says():
    by_engine = TABLE["regions"]["us-east-1"]["prices"]["elasticache_node_hour"]["usd"]
    assert set(by_engine["redis"]) == set(by_engine["valkey"])
    for node_type, redis in by_engine["redis"].items():
        assert by_engine["valkey"][node_type] == pytest.approx(0.8 * redis, abs=5e-5), node_type


def test_an_unreadable_table_is_a_clear_error(tmp_path):
    broken = tmp_path / "prices.json"
    broken.write_text("{not json")
    with pytest.raises(CostError, match=f"price table {broken} could not be read"):
        load_prices(broken)
    assert isinstance(load_prices(), PriceTable)


ISSUE_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-northeast-1")


def test_the_table_covers_the_regions_teams_use_most_and_says_what_it_leaves_out():
    assert set(ISSUE_REGIONS) <= set(TABLE["regions"])
    for region in ISSUE_REGIONS:
        entry = TABLE["regions"][region]
        assert entry["name"] and entry["not_priced"], region
        # the Fargate Linux/x86 rates, on-demand and Spot, are published for every one of them
        for name in ("fargate_vcpu_hour", "fargate_gb_hour", "fargate_spot_vcpu_hour", "fargate_spot_gb_hour"):
            assert load_prices().price(region, name, "X86_64") > 0, (region, name)


def test_a_spot_rate_is_below_the_on_demand_rate_of_its_region():
    prices = load_prices()
    assert len(ISSUE_REGIONS) == 6
    for region in ISSUE_REGIONS:
        for unit in ("vcpu_hour", "gb_hour"):
            spot, on_demand = (prices.price(region, f"fargate{kind}_{unit}", "X86_64") for kind in ("_spot", ""))
            assert 0.2 * on_demand < spot < 0.5 * on_demand, (region, unit)  # AWS: up to 70 % off


def test_a_price_the_table_leaves_out_is_not_priced_and_a_region_it_lacks_is_an_error():
    prices = load_prices()
    with pytest.raises(NotPriced, match="no price for ARM64"):
        prices.price("eu-central-1", "fargate_vcpu_hour", "ARM64")
    with pytest.raises(NotPriced, match="no price 'nat_gateway_hour' for region eu-west-1"):
        prices.price("eu-west-1", "nat_gateway_hour")
    assert prices.price("eu-west-1", "elasticache_node_hour", "redis", "cache.r7g.large") == 0.243
    with pytest.raises(UnknownPrice) as raised:
        prices.price("af-south-1", "kms_key_month")
    assert not isinstance(raised.value, NotPriced) and "region 'af-south-1' has no prices" in str(raised.value)

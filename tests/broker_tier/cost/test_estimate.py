"""The estimate of each shipped environment, recomputed here from the validated configuration, the
resource counts of its templates and the price table; changes move it by the expected amount; a
missing price stops it."""

from __future__ import annotations

import re

import pytest
from cost_testing import PROD_VARIANT_CHANGES, edited, environment_templates
from tier_testing import ENVIRONMENTS, tier_context

import broker_tier_contract as contract
from broker_tier.config import load_environments
from broker_tier.cost.estimate import Assumptions, Estimator, estimate_all, split_tasks
from broker_tier.cost.prices import UnknownPrice, load_prices
from broker_tier.cost.templates import EnvironmentTemplates
from broker_tier_celery import settings_from_environment

PRICES = load_prices()
REGION = PRICES.default_region
HOURS = 730
SECONDS = HOURS * 3600
DEFAULTS = Assumptions()


def price(name: str, *variant: str) -> float:
    return PRICES.price(REGION, name, *variant)


def fargate_month(cpu: int, memory_mib: int, architecture: str = "X86_64") -> float:
    return (
        cpu / 1024 * price("fargate_vcpu_hour", architecture)
        + memory_mib / 1024 * price("fargate_gb_hour", architecture)
    ) * HOURS


def typical(low: int, high: int) -> float:
    return low + DEFAULTS.typical_load_percent / 100 * (high - low)


def count(found: EnvironmentTemplates, resource_type: str) -> list[dict]:
    return [resource for _, _, resource in found.resources() if resource["Type"] == resource_type]


def alarm_metrics(found: EnvironmentTemplates) -> int:
    """Metrics billed for the templates' alarms and for the two alarms of each target-tracking policy."""
    in_alarms = sum(
        1
        if "MetricName" in alarm["Properties"]
        else sum("MetricStat" in query for query in alarm["Properties"]["Metrics"])
        for alarm in count(found, "AWS::CloudWatch::Alarm")
    )
    tracking = [
        policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]
        for policy in count(found, "AWS::ApplicationAutoScaling::ScalingPolicy")
        if "TargetTrackingScalingPolicyConfiguration" in policy["Properties"]
    ]
    return in_alarms + sum(2 * sum("MetricStat" in query for query in spec["Metrics"]) for spec in tracking)


def expected_lines(env: str, found: EnvironmentTemplates) -> dict[str, tuple[float, float, float]]:
    """Each line's (min, typical, max), by arithmetic on the configuration, the counts and the prices."""
    config = load_environments(tier_context())[env]
    fixed = lambda value: (value, value, value)  # noqa: E731
    lines = {
        "ElastiCache nodes": fixed(
            (config.cache.replicas + 1)
            * price("elasticache_node_hour", config.cache.engine, config.cache.node_type)
            * HOURS
        ),
        "ElastiCache snapshots": fixed(
            max(config.cache.snapshot_retention_days - 1, 0)
            * DEFAULTS.snapshot_gb
            * price("elasticache_backup_gb_month")
        ),
        "Fargate beat": fixed(fargate_month(config.compute.beat.cpu, config.compute.beat.memory_mib)),
        "NAT gateways": fixed(config.network.nat_gateways * price("nat_gateway_hour") * HOURS),
        "NAT data processed": fixed(DEFAULTS.nat_gb * price("nat_gateway_gb")),
        "Public IPv4 addresses": fixed(config.network.nat_gateways * price("public_ipv4_hour") * HOURS),
        "KMS keys": fixed(len(count(found, "AWS::KMS::Key")) * price("kms_key_month")),
        "Secrets Manager secrets": fixed(len(count(found, "AWS::SecretsManager::Secret")) * price("secret_month")),
        "CloudWatch alarms": fixed(
            alarm_metrics(found) * price("alarm_metric_month", "standard")
            + len(count(found, "AWS::CloudWatch::CompositeAlarm")) * price("composite_alarm_month")
        ),
        "CloudWatch dashboards": fixed(len(count(found, "AWS::CloudWatch::Dashboard")) * price("dashboard_month")),
    }
    groups = count(found, "AWS::Logs::LogGroup")
    lines["CloudWatch Logs ingestion"] = fixed(len(groups) * DEFAULTS.log_gb_per_group * price("log_ingestion_gb"))
    lines["CloudWatch Logs storage"] = fixed(
        sum(group["Properties"]["RetentionInDays"] / (365 / 12) for group in groups)
        * DEFAULTS.log_gb_per_group
        * price("log_storage_gb_month")
    )
    worker_tasks = [0.0, 0.0, 0.0]
    for class_name, queue in config.queues.items():
        worker = queue.worker
        tasks = (worker.min_tasks, typical(worker.min_tasks, worker.max_tasks), worker.max_tasks)
        month = fargate_month(worker.cpu, worker.memory_mib)
        lines[f"Fargate worker-{class_name}"] = tuple(n * month for n in tasks)
        worker_tasks = [total + n for total, n in zip(worker_tasks, tasks, strict=True)]
    messages = DEFAULTS.messages_per_second * SECONDS * 3
    lines["SQS requests"] = tuple(
        (messages + n * SECONDS / contract.SQS_LONG_POLL_SECONDS) / 1e6 * price("sqs_million_requests")
        for n in worker_tasks
    )
    return lines


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_line_and_the_total_match_arithmetic_on_configuration_counts_and_prices(shipped, env):
    found = shipped[env]
    estimate = Estimator(prices=PRICES, assumptions=DEFAULTS, region=REGION).estimate(found)
    expected = expected_lines(env, found)
    priced = {line.name: line.monthly for line in estimate.lines if line.monthly is not None}
    assert set(priced) == set(expected)
    for name, (low, mid, high) in expected.items():
        got = priced[name]
        assert (got.minimum, got.typical, got.maximum) == pytest.approx((low, mid, high), abs=1e-9), name
    assert estimate.total.typical == pytest.approx(sum(mid for _, mid, _ in expected.values()))
    assert [line.name for line in estimate.lines if line.monthly is None] == ["Container Insights"]
    assert estimate.region == "us-east-1" and estimate.as_of == PRICES.as_of


def test_a_bigger_node_type_and_more_workers_move_prod_by_exactly_their_price(shipped, prod_variant):
    estimator = Estimator(prices=PRICES, assumptions=DEFAULTS, region=REGION)
    before, after = estimator.estimate(shipped["prod"]), estimator.estimate(prod_variant)
    moved = {
        line.name: after.line(line.name).monthly - line.monthly for line in before.lines if line.monthly is not None
    }
    nodes = (
        3
        * (
            price("elasticache_node_hour", "redis", PROD_VARIANT_CHANGES["cache"]["node_type"])
            - price("elasticache_node_hour", "redis", "cache.r7g.large")
        )
        * HOURS
    )
    assert nodes == pytest.approx(3 * (0.437 - 0.219) * 730)  # the table's r7g.xlarge and r7g.large, 477.42
    assert moved.pop("ElastiCache nodes").typical == pytest.approx(nodes)
    extra_workers = 10 - 6
    interactive = moved.pop("Fargate worker-interactive")
    assert (interactive.minimum, interactive.typical, interactive.maximum) == pytest.approx(
        (0, 0.25 * extra_workers * fargate_month(512, 1024), extra_workers * fargate_month(512, 1024))
    )
    polls = moved.pop("SQS requests")  # each extra worker task long-polls its queue
    assert polls.maximum == pytest.approx(
        extra_workers * SECONDS / contract.SQS_LONG_POLL_SECONDS / 1e6 * price("sqs_million_requests")
    )
    assert all(change.minimum == change.typical == change.maximum == pytest.approx(0) for change in moved.values())
    assert (after.total - before.total).typical == pytest.approx(nodes + interactive.typical + polls.typical)


def test_arm64_tasks_are_priced_at_the_arm_rates(shipped):
    def to_arm(_, __, resource):
        if resource["Type"] == "AWS::ECS::TaskDefinition":
            resource["Properties"]["RuntimePlatform"]["CpuArchitecture"] = "ARM64"

    estimate = Estimator(prices=PRICES, assumptions=DEFAULTS, region=REGION).estimate(
        edited(shipped["staging"], to_arm)
    )
    assert estimate.line("Fargate beat").monthly.typical == pytest.approx(fargate_month(256, 512, "ARM64"))
    assert fargate_month(256, 512, "ARM64") < fargate_month(256, 512)


def test_valkey_nodes_are_priced_at_the_valkey_rate(shipped):
    def to_valkey(_, __, resource):
        if resource["Type"] == "AWS::ElastiCache::ReplicationGroup":
            resource["Properties"]["Engine"] = "valkey"

    estimate = Estimator(prices=PRICES, assumptions=DEFAULTS, region=REGION).estimate(
        edited(shipped["staging"], to_valkey)
    )
    assert estimate.line("ElastiCache nodes").monthly.typical == pytest.approx(
        2 * price("elasticache_node_hour", "valkey", "cache.m7g.large") * HOURS
    )


def test_a_node_type_without_a_price_is_not_priced_naming_it_never_a_zero(shipped):
    def unpriced(_, __, resource):
        if resource["Type"] == "AWS::ElastiCache::ReplicationGroup":
            resource["Properties"]["CacheNodeType"] = "cache.r7g.16xlarge"

    estimator = Estimator(prices=PRICES, assumptions=DEFAULTS, region=REGION)
    priced, unpriced_prod = estimator.estimate(shipped["prod"]), estimator.estimate(edited(shipped["prod"], unpriced))
    line = unpriced_prod.line("ElastiCache nodes")
    assert line.monthly is None and line.counted == "not priced"
    assert re.search(
        r"not priced: no price for redis cache\.r7g\.16xlarge .* us-east-1 in prices\.json "
        r"\(prices as of \d{4}-\d\d-\d\d\); priced: cache\.m5\.2xlarge",
        line.not_estimated,
    )
    assert any(note.startswith("not estimated: ElastiCache nodes: not priced") for note in unpriced_prod.notes)
    nodes = priced.line("ElastiCache nodes").monthly.typical
    assert unpriced_prod.total.typical == pytest.approx(priced.total.typical - nodes)  # left out, and said so


def test_a_resource_type_neither_priced_nor_free_stops_the_estimate_naming_the_resource(shipped):
    def add_database(resources, logical_id, resource):
        if resource["Type"] == "AWS::ElastiCache::ReplicationGroup":
            resources["Database"] = {"Type": "AWS::RDS::DBInstance", "Properties": {}}

    with pytest.raises(
        UnknownPrice,
        match=r"environment 'dev', stack BrokerTier-dev-State, resource Database: "
        r"resource type AWS::RDS::DBInstance has no price and is not listed",
    ):
        Estimator(prices=PRICES, assumptions=DEFAULTS, region=REGION).estimate(edited(shipped["dev"], add_database))


def test_a_region_without_prices_is_refused_naming_the_regions_the_table_has(shipped):
    with pytest.raises(UnknownPrice, match=r"region 'af-south-1' has no prices in prices\.json .*: ap-northeast-1, "):
        estimate_all(shipped, prices=PRICES, assumptions=DEFAULTS, region="af-south-1")


def test_in_a_region_the_table_has_in_part_every_line_without_a_source_says_it_is_not_priced(shipped):
    estimate = Estimator(prices=PRICES, assumptions=DEFAULTS, region="eu-west-1").estimate(shipped["prod"])
    unpriced = {line.name for line in estimate.lines if (line.not_estimated or "").startswith("not priced")}
    assert {"NAT gateways", "KMS keys", "CloudWatch alarms", "SQS requests"} <= unpriced
    priced = {line.name: line.monthly for line in estimate.lines if line.monthly is not None}
    assert {"Fargate beat", "Fargate worker-batch", "ElastiCache nodes", "Public IPv4 addresses"} <= set(priced)
    assert estimate.total.typical == pytest.approx(sum(value.typical for value in priced.values()))
    assert all(f"not estimated: {name}: not priced" in " ".join(estimate.notes) for name in unpriced)


def test_assumptions_change_only_their_own_lines(shipped):
    busy = Assumptions(messages_per_second=10, log_gb_per_group=2)
    quiet, loud = (
        Estimator(prices=PRICES, assumptions=assumptions, region=REGION).estimate(shipped["dev"])
        for assumptions in (DEFAULTS, busy)
    )
    extra_requests = 9 * SECONDS * 3 / 1e6 * price("sqs_million_requests")
    assert (loud.line("SQS requests").monthly - quiet.line("SQS requests").monthly).typical == pytest.approx(
        extra_requests
    )
    ingestion = loud.line("CloudWatch Logs ingestion").monthly.typical
    assert ingestion == pytest.approx(2 * quiet.line("CloudWatch Logs ingestion").monthly.typical)
    assert loud.line("ElastiCache nodes") == quiet.line("ElastiCache nodes")


def test_free_tier_subtracts_the_account_allowances_only_when_asked(shipped):
    full, free = (
        Estimator(prices=PRICES, assumptions=Assumptions(free_tier=flag), region=REGION).estimate(shipped["prod"])
        for flag in (False, True)
    )
    saved = full.total.typical - free.total.typical
    # 10 alarm metrics, prod's one dashboard (3 are free), 5 GB of log ingestion, 1 million SQS requests
    assert saved == pytest.approx(
        10 * price("alarm_metric_month", "standard")
        + 1 * price("dashboard_month")
        + 5 * price("log_ingestion_gb")
        + 1 * price("sqs_million_requests")
    )


def test_the_idle_poll_assumption_is_the_settings_packages_long_poll_wait():
    environ = {
        "BROKER_TIER_BROKER": "sqs",
        "BROKER_TIER_QUEUE_URLS": '{"default": "https://sqs.example/q"}',
        "BROKER_TIER_REDIS_HOST": "redis.example",
        "BROKER_TIER_REDIS_PORT": "6380",
    }
    options = settings_from_environment(environ)["broker_transport_options"]
    assert options["wait_time_seconds"] == DEFAULTS.sqs_long_poll_seconds and options["polling_interval"] == 0


def test_redis_broker_mode_has_no_task_traffic_on_sqs(redis_mode_dev):

    estimate = Estimator(prices=PRICES, assumptions=DEFAULTS, region=REGION).estimate(
        environment_templates("dev", redis_mode_dev)
    )
    assert estimate.line("SQS requests").monthly.maximum == 0
    assert "redis broker" in estimate.line("SQS requests").counted


def test_composite_and_high_resolution_alarms_are_priced_at_their_own_rates(shipped):
    def add_alarms(resources, _, resource):
        if resource["Type"] == "AWS::CloudWatch::Dashboard":
            resources["Paging"] = {"Type": "AWS::CloudWatch::CompositeAlarm", "Properties": {"AlarmRule": "TRUE"}}
            resources["Fast"] = {"Type": "AWS::CloudWatch::Alarm", "Properties": {"MetricName": "Errors", "Period": 10}}

    estimator = Estimator(prices=PRICES, assumptions=DEFAULTS, region=REGION)
    before = estimator.estimate(shipped["staging"]).line("CloudWatch alarms")
    after = estimator.estimate(edited(shipped["staging"], add_alarms)).line("CloudWatch alarms")
    assert (after.monthly - before.monthly).typical == pytest.approx(
        price("composite_alarm_month") + price("alarm_metric_month", "high_resolution")
    )
    assert "1 high-resolution; 1 composite alarm(s)" in after.counted


def _on_spot(strategy: list[dict]):
    """An edit putting the interactive workers on ``strategy`` (as ``capacity.spot_percent`` does)."""

    def edit(resources, _, resource):
        if (
            resource["Type"] == "AWS::ECS::Service"
            and "Workerinteractive" in resource["Properties"]["TaskDefinition"]["Ref"]
        ):
            resource["Properties"]["CapacityProviderStrategy"] = strategy

    return edit


SPOT_75 = [{"Base": 1, "CapacityProvider": "FARGATE", "Weight": 25}, {"CapacityProvider": "FARGATE_SPOT", "Weight": 75}]


def test_split_tasks_places_the_base_first_then_by_weight():
    strategy = (("FARGATE", 1, 25), ("FARGATE_SPOT", 0, 75))
    assert split_tasks(0, strategy) == {"FARGATE": 0, "FARGATE_SPOT": 0}
    assert split_tasks(0.5, strategy) == {"FARGATE": 0.5, "FARGATE_SPOT": 0}
    assert split_tasks(5, strategy) == {"FARGATE": 2, "FARGATE_SPOT": 3}
    assert split_tasks(3, (("FARGATE_SPOT", 0, 1),)) == {"FARGATE_SPOT": 3}


def test_tasks_on_spot_are_priced_at_the_spot_rates_above_the_on_demand_base(shipped):
    estimator = Estimator(prices=PRICES, assumptions=DEFAULTS, region=REGION)
    before = estimator.estimate(shipped["prod"])
    after = estimator.estimate(edited(shipped["prod"], _on_spot(SPOT_75)))
    worker = load_environments(tier_context())["prod"].queues["interactive"].worker
    on_demand, on_spot = (
        fargate_month(worker.cpu, worker.memory_mib),
        (
            worker.cpu / 1024 * price("fargate_spot_vcpu_hour", "X86_64")
            + worker.memory_mib / 1024 * price("fargate_spot_gb_hour", "X86_64")
        )
        * HOURS,
    )
    line = after.line("Fargate worker-interactive")
    for tasks, got in zip(
        (worker.min_tasks, typical(worker.min_tasks, worker.max_tasks), worker.max_tasks),
        (line.monthly.minimum, line.monthly.typical, line.monthly.maximum),
        strict=True,
    ):
        spot_tasks = max(tasks - 1, 0) * 0.75
        assert got == pytest.approx((tasks - spot_tasks) * on_demand + spot_tasks * on_spot)
    assert "on Spot 0 / 0.94 / 3.75" in line.counted and "FARGATE_SPOT weight 75" in line.counted
    saved = (before.total - after.total).typical
    assert saved == pytest.approx(0.75 * (typical(worker.min_tasks, worker.max_tasks) - 1) * (on_demand - on_spot))
    assert saved > 0 and on_spot < on_demand / 2  # the table's Spot rate is about 69 % off in us-east-1


def test_arm64_tasks_on_spot_are_not_priced_while_the_table_has_no_arm_spot_rate(shipped):
    def to_arm(_, __, resource):
        if resource["Type"] == "AWS::ECS::TaskDefinition":
            resource["Properties"]["RuntimePlatform"]["CpuArchitecture"] = "ARM64"

    arm_on_spot = edited(edited(shipped["prod"], _on_spot(SPOT_75)), to_arm)
    estimate = Estimator(prices=PRICES, assumptions=DEFAULTS, region=REGION).estimate(arm_on_spot)
    line = estimate.line("Fargate worker-interactive")
    assert line.monthly is None and "no price for ARM64" in line.not_estimated
    assert estimate.line("Fargate worker-default").monthly is not None  # on-demand ARM64 is priced

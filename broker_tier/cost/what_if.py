"""What each choice AWS offers for this tier would save an environment a month, one line per option that applies.

Computed from the same templates and price table as the estimate (``Estimator``), each line naming the
setting to change and the assumption behind its figure: workers on ARM64, a class on Fargate Spot, the cache
on Valkey, one-year reserved cache nodes, fewer NAT gateways. A figure whose price the table leaves out for
the region is "not priced"; an option that does not apply (already chosen, or nothing to save) is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from broker_tier.cost.estimate import (
    ELASTIC_IP,
    FARGATE,
    FARGATE_SPOT,
    NAT_GATEWAY,
    REPLICATION_GROUP,
    Assumptions,
    Estimator,
    Range,
    _Environment,
    _properties,
    _Service,
    estimator_for,
)
from broker_tier.cost.prices import CostError, NotPriced, PriceTable
from broker_tier.cost.templates import EnvironmentTemplates

WHAT_IF_ON_DEMAND_BASE = 1
"""The on-demand floor the Spot line assumes: the default of ``capacity.on_demand_base``."""
RESERVED_TERM = "1-year, no upfront"
SPOT_ALARM_METRICS = 2
"""The Spot capacity warning reads DesiredTaskCount and RunningTaskCount (``alarm_catalog.spot_capacity_specs``)."""


@dataclass(frozen=True, kw_only=True)
class Saving:
    """One option's monthly saving for one environment."""

    option: str
    """What changes, e.g. ``class batch on Fargate Spot``."""
    setting: str
    """The setting to change (a cdk.json key and value, or the purchase to make)."""
    assumption: str
    """What the figure assumes."""
    monthly: Range | None
    """Saving per month at minimum, typical and maximum task counts; None: not priced (``not_priced`` says why)."""
    caveat: str = ""
    """What the option costs besides money (availability, a commitment, a condition to meet)."""
    not_priced: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "option": self.option,
            "setting": self.setting,
            "assumption": self.assumption,
            "caveat": self.caveat,
            "monthly_saving": self.monthly.rounded() if self.monthly else None,
            "not_priced": self.not_priced,
        }


def _saving(option: str, setting: str, assumption: str, caveat: str, compute: Callable[[], Range]) -> Saving:
    try:
        monthly, missing = compute(), None
    except NotPriced as error:
        monthly, missing = None, f"not priced: {error}"
    return Saving(
        option=option, setting=setting, assumption=assumption, caveat=caveat, monthly=monthly, not_priced=missing
    )


def arm64(estimator: Estimator, services: list[_Service]) -> list[Saving]:
    x86 = [service for service in services if service.architecture == "X86_64"]
    if not x86:
        return []

    def compute() -> Range:
        saved = Range.fixed(0.0)
        for service in x86:
            saved = saved + estimator.fargate_month(service) - estimator.fargate_month(service, architecture="ARM64")
        return saved

    return [
        _saving(
            "workers and Beat on ARM64 (Graviton)",
            'compute.cpu_architecture: "ARM64"',
            f"every Fargate task of the environment ({len(x86)} service(s)) at the Linux/ARM rates, with the same "
            f"task counts and Spot shares",
            "the image must run on linux/arm64: the reference worker is built for the configured architecture; a "
            "team's image must be built for arm64 (or multi-arch)",
            compute,
        )
    ]


def spot(estimator: Estimator, services: list[_Service], spot_percent: float) -> list[Saving]:
    savings = []
    alarm, alarm_text = _spot_alarm(estimator)
    share = round(spot_percent)
    strategy = ((FARGATE, WHAT_IF_ON_DEMAND_BASE, 100 - share), (FARGATE_SPOT, 0, share))
    for service in services:
        if service.class_name is None or service.uses_spot or service.tasks.maximum <= WHAT_IF_ON_DEMAND_BASE:
            continue  # Beat never runs on Spot; a class whose floor takes every task has nothing to move
        name = service.class_name
        setting = f"queues.{name}.worker.capacity.spot_percent: {share}"
        caveat = "a Spot task is stopped with two minutes' notice when AWS needs the capacity back"
        limit, window = service.task_time_limit, service.soft_shutdown
        if limit is not None and window is not None and limit > window:
            setting += f" and queues.{name}.idempotent: true"
            caveat += (
                f"; its {limit} s time limit exceeds the {window} s soft-shutdown window, so an interrupted task is "
                f"handed back and runs again (the configuration refuses Spot until the class is marked idempotent)"
            )

        def compute(service: _Service = service) -> Range:
            return estimator.fargate_month(service) - estimator.fargate_month(service, strategy=strategy) - alarm

        savings.append(
            _saving(
                f"class {name} on Fargate Spot",
                setting,
                f"{share} % of the tasks above an on-demand floor of {WHAT_IF_ON_DEMAND_BASE} on Spot, at the price "
                f"table's Spot rates (Spot prices move with supply and demand); {alarm_text}",
                caveat,
                compute,
            )
        )
    return savings


def _spot_alarm(estimator: Estimator) -> tuple[Range, str]:
    """What the Spot capacity warning a class on Spot gets costs a month (two alarm metrics), and how it is counted."""
    try:
        monthly = SPOT_ALARM_METRICS * estimator.price("alarm_metric_month", "standard")
    except NotPriced:
        return Range.fixed(0.0), "its Spot capacity warning (2 alarm metrics) is not subtracted: no alarm price here"
    return Range.fixed(monthly), f"less its Spot capacity warning (2 alarm metrics, {monthly:.2f}/month)"


def _groups(environment: _Environment) -> list[tuple[str, str, int]]:
    """(engine, node type, node count) of each replication group."""
    groups = []
    for _, _, resource in environment.of_type(REPLICATION_GROUP):
        props = _properties(resource)
        nodes = int(props.get("NumCacheClusters") or 0) or int(props.get("NumNodeGroups", 1)) * (
            int(props.get("ReplicasPerNodeGroup", 0)) + 1
        )
        groups.append((str(props.get("Engine", "redis")).lower(), str(props.get("CacheNodeType")), nodes))
    return groups


def valkey(estimator: Estimator, environment: _Environment) -> list[Saving]:
    savings = []
    for engine, node_type, nodes in _groups(environment):
        if engine != "redis":
            continue

        def compute(node_type: str = node_type, nodes: int = nodes) -> Range:
            redis = estimator.price("elasticache_node_hour", "redis", node_type)
            valkey = estimator.price("elasticache_node_hour", "valkey", node_type)
            return Range.fixed(nodes * (redis - valkey) * estimator.hours)

        savings.append(
            _saving(
                "the cache on Valkey instead of Redis OSS",
                'cache.engine: "valkey" with cache.engine_version: "8.0"',
                f"{nodes} x {node_type} at the published Valkey node price instead of the Redis OSS one",
                "an engine change of the replication group: ElastiCache upgrades Redis OSS to Valkey in place; "
                "scripts/test.sh runs the replacement guard on the change before it is deployed",
                compute,
            )
        )
    return savings


def reserved(estimator: Estimator, environment: _Environment) -> list[Saving]:
    savings = []
    for engine, node_type, nodes in _groups(environment):

        def compute(engine: str = engine, node_type: str = node_type, nodes: int = nodes) -> Range:
            on_demand = estimator.price("elasticache_node_hour", engine, node_type)
            committed = estimator.price("elasticache_reserved_node_hour", engine, node_type)
            return Range.fixed(nodes * (on_demand - committed) * estimator.hours)

        savings.append(
            _saving(
                "one-year reserved cache nodes",
                f"no cdk.json key: buy reserved nodes ({RESERVED_TERM}) of the cache's node type in its region",
                f"{nodes} x {node_type} ({engine}) in {estimator.region} at the {RESERVED_TERM} reserved rate instead "
                f"of on-demand",
                "a one-year commitment: paid whether the nodes run or not (a later node-type change must stay in "
                "the family for the reservation to keep applying)",
                compute,
            )
        )
    return savings


def fewer_nat_gateways(estimator: Estimator, environment: _Environment) -> list[Saving]:
    gateways = len(environment.of_type(NAT_GATEWAY))
    if gateways <= 1:
        return []
    fewer = gateways - 1

    def compute() -> Range:
        hourly = estimator.price("nat_gateway_hour")
        if environment.of_type(ELASTIC_IP):
            hourly += estimator.price("public_ipv4_hour")  # each gateway's Elastic IP goes with it
        return Range.fixed(fewer * hourly * estimator.hours)

    return [
        _saving(
            "fewer NAT gateways",
            "network.nat_gateways: 1",
            f"{fewer} NAT gateway(s) and their Elastic IP(s) fewer; the data processed stays the same",
            "one NAT gateway lives in one AZ: when that AZ fails, tasks in the other AZs lose SQS, ECR, CloudWatch "
            "Logs and Secrets Manager (workers stop consuming, no new task starts) until it recovers; their "
            "traffic to it also pays cross-AZ data transfer (not estimated)",
            compute,
        )
    ]


def savings(estimator: Estimator, templates: EnvironmentTemplates, *, spot_percent: float) -> list[Saving]:
    """Every option that applies to one environment, in the order of the issue: compute, then the cache, then
    the network."""
    environment = _Environment(templates)
    services = estimator.services(environment)
    return [
        *arm64(estimator, services),
        *spot(estimator, services, spot_percent),
        *valkey(estimator, environment),
        *reserved(estimator, environment),
        *fewer_nat_gateways(estimator, environment),
    ]


def savings_all(
    found: dict[str, EnvironmentTemplates],
    *,
    prices: PriceTable,
    assumptions: Assumptions,
    region: str | None = None,
    environments: Iterable[str] | None = None,
) -> dict[str, list[Saving]]:
    """The savings of ``environments`` (default: all found), priced as ``estimate_all`` prices them."""
    names = list(environments) if environments is not None else list(found)
    missing = [name for name in names if name not in found]
    if missing:
        raise CostError(f"environment(s) {', '.join(missing)} not found; found: {', '.join(found)}")
    return {
        name: savings(
            estimator_for(found[name], prices=prices, assumptions=assumptions, region=region),
            found[name],
            spot_percent=assumptions.what_if_spot_percent,
        )
        for name in names
    }


def describe(saving: Saving) -> str:
    """One saving as a line of text (typical figure; the min and max are in --json)."""
    monthly = saving.monthly
    figure = (
        f"saves {monthly.typical:,.2f}/month (min {monthly.minimum:,.2f}, max {monthly.maximum:,.2f})"
        if monthly
        else saving.not_priced
    )
    return f"{saving.option}: {figure}; set {saving.setting}; assumes {saving.assumption}" + (
        f"; {saving.caveat}" if saving.caveat else ""
    )

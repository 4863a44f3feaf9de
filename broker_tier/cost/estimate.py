"""A monthly cost estimate of one environment, by line, from what its templates contain.

Every resource of every template is either priced by a line below or listed in the price table
as carrying no charge of its own (with the reason); anything else stops the estimate with an
error naming the resource. Each line has three figures: with every scaled service at its minimum
task count, at a typical load, and at its maximum. What the templates cannot say (load, log
volume, message rate, snapshot size) comes from ``Assumptions``, printed with every estimate.
A price the table leaves out for the region (no public source was found for it) makes its line
"not priced", shown without a figure and named in the notes; a region the table lacks is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import broker_tier_contract as contract
from broker_tier.cost.prices import CostError, NotPriced, PriceTable, UnknownPrice
from broker_tier.cost.templates import EnvironmentTemplates

SECONDS_PER_HOUR = 3600
DAYS_PER_MONTH = 365 / 12
FARGATE_INCLUDED_EPHEMERAL_GB = 20
"""Every Fargate task gets 20 GB of ephemeral storage at no charge (AWS Fargate pricing)."""
TARGET_TRACKING_ALARMS = 2
"""Application Auto Scaling creates and manages the alarms of a target-tracking policy: one to
scale out and one to scale in (only the first with scale-in disabled). They are billed like any
alarm (Application Auto Scaling user guide, "Target tracking scaling policies")."""
ECS_DEFAULT_DESIRED_COUNT = 1
"""A service without DesiredCount and without a scalable target runs one task (AWS::ECS::Service)."""

REPLICATION_GROUP = "AWS::ElastiCache::ReplicationGroup"
SERVICE, TASK_DEFINITION, CLUSTER = "AWS::ECS::Service", "AWS::ECS::TaskDefinition", "AWS::ECS::Cluster"
SCALABLE_TARGET, SCALING_POLICY = (
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
)
NAT_GATEWAY, ELASTIC_IP, VPC_ENDPOINT = "AWS::EC2::NatGateway", "AWS::EC2::EIP", "AWS::EC2::VPCEndpoint"
KMS_KEY, SECRET = "AWS::KMS::Key", "AWS::SecretsManager::Secret"
ALARM, COMPOSITE_ALARM = "AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"
DASHBOARD, LOG_GROUP = "AWS::CloudWatch::Dashboard", "AWS::Logs::LogGroup"
QUEUE = "AWS::SQS::Queue"
PRICED_TYPES = frozenset(
    {
        REPLICATION_GROUP,
        SERVICE,
        NAT_GATEWAY,
        ELASTIC_IP,
        VPC_ENDPOINT,
        KMS_KEY,
        SECRET,
        ALARM,
        COMPOSITE_ALARM,
        DASHBOARD,
        LOG_GROUP,
    }
)


@dataclass(frozen=True, kw_only=True)
class Assumptions:
    """What the templates cannot say. Every field is a command-line option of ``broker-tier-ops cost``."""

    typical_load_percent: float = 25.0
    """Typical tasks of a scaled service: its minimum plus this share of the way to its maximum,
    as a monthly average (so it may be fractional). Default 25 %."""
    messages_per_second: float = 1.0
    """Tasks published per second, averaged over the month, across the environment's queues. Default 1."""
    sqs_requests_per_message: int = 3
    """SQS requests per task message: send, receive, delete (payloads up to 64 KB). Default 3."""
    sqs_long_poll_seconds: float = float(contract.SQS_LONG_POLL_SECONDS)
    """An idle worker task makes one empty long-poll receive per this many seconds: the settings
    package's ``wait_time_seconds`` (``broker_tier_contract.SQS_LONG_POLL_SECONDS``, 5). Default 5."""
    log_gb_per_group: float = 1.0
    """Log data ingested per log group per month, in GB. Default 1."""
    log_months_kept_without_retention: float = 12.0
    """A log group that never expires is priced as holding this many months of data. Default 12."""
    nat_gb: float = 10.0
    """Data through the environment's NAT gateways per month, in GB (SQS, ECR API, Secrets
    Manager, CloudWatch traffic of the tasks; S3 layers use the gateway endpoint). Default 10."""
    snapshot_gb: float = 1.0
    """Size of one snapshot of the cache (its dataset), in GB. Default 1."""
    free_tier: bool = False
    """Subtract the account-wide free allowances from this environment, as if it had the account to
    itself. Default off: the allowances are shared by every environment and workload of an account."""
    what_if_spot_percent: float = 75.0
    """``--what-if``: the share, in percent, of a class's tasks above an on-demand floor of one task that the
    Spot line puts on Fargate Spot. Default 75."""

    def describe(self) -> list[str]:
        return [
            f"typical load: scaled services run their minimum plus {self.typical_load_percent:g} % of the way "
            f"to their maximum task count (monthly average)",
            f"SQS: {self.messages_per_second:g} task message(s)/s x {self.sqs_requests_per_message} requests "
            f"(send, receive, delete), plus one empty long poll per worker task per "
            f"{self.sqs_long_poll_seconds:g} s",
            f"logs: {self.log_gb_per_group:g} GB ingested per log group per month, kept for the group's "
            f"retention ({self.log_months_kept_without_retention:g} months if it never expires)",
            f"NAT gateways: {self.nat_gb:g} GB processed per month",
            f"ElastiCache snapshots: {self.snapshot_gb:g} GB each, one a day for the retention period",
            "free tier: "
            + (
                "subtracted as if the environment had the account to itself"
                if self.free_tier
                else "not subtracted (account-wide allowances, shared by every environment)"
            ),
        ]


@dataclass(frozen=True)
class Range:
    """Monthly cost with scaled services at their minimum, typical and maximum task counts."""

    minimum: float
    typical: float
    maximum: float

    @classmethod
    def fixed(cls, value: float) -> Range:
        return cls(value, value, value)

    def map(self, function: Callable[[float], float]) -> Range:
        return Range(function(self.minimum), function(self.typical), function(self.maximum))

    def __add__(self, other: Range) -> Range:
        return Range(self.minimum + other.minimum, self.typical + other.typical, self.maximum + other.maximum)

    def __sub__(self, other: Range) -> Range:
        return Range(self.minimum - other.minimum, self.typical - other.typical, self.maximum - other.maximum)

    def __mul__(self, factor: float) -> Range:
        return self.map(lambda value: value * factor)

    def rounded(self) -> dict[str, float]:
        return {name: round(value, 2) for name, value in asdict(self).items()}


ZERO = Range.fixed(0.0)


@dataclass(frozen=True, kw_only=True)
class Line:
    """One line of an estimate."""

    name: str
    """Stable across estimates (the comparison matches lines by it), e.g. ``Fargate Worker-interactive``."""
    counted: str
    """What was counted and how, e.g. ``3 x cache.r7g.large (redis) x 730 h``."""
    monthly: Range | None
    """None: the line is shown but not estimated (``not_estimated`` says why)."""
    reads: frozenset[str]
    """The resource types the line is computed from."""
    not_estimated: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "counted": self.counted,
            "monthly": self.monthly.rounded() if self.monthly else None,
            "not_estimated": self.not_estimated,
            "reads": sorted(self.reads),
        }


@dataclass(frozen=True, kw_only=True)
class Estimate:
    environment: str
    region: str
    as_of: str
    currency: str
    lines: list[Line]
    assumptions: Assumptions
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> Range:
        total = ZERO
        for line in self.lines:
            if line.monthly is not None:
                total = total + line.monthly
        return total

    def line(self, name: str) -> Line:
        for line in self.lines:
            if line.name == name:
                return line
        raise KeyError(f"{self.environment}: no line {name!r}; lines: {[line.name for line in self.lines]}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "region": self.region,
            "prices_as_of": self.as_of,
            "currency": self.currency,
            "total": self.total.rounded(),
            "lines": [line.as_dict() for line in self.lines],
            "notes": self.notes,
        }


def _price(value: float) -> str:
    """A unit price: at least two decimals, no trailing zeros beyond them ($0.40, $0.04048)."""
    text = f"{value:.6f}".rstrip("0")
    return "$" + (text + "0" * (2 - len(text.partition(".")[2])))


def _number(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _referenced_ids(value: Any) -> set[str]:
    """Logical ids a property value refers to through Ref or Fn::GetAtt."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt" and isinstance(inner, list) and inner:
                found.add(inner[0])
            else:
                found |= _referenced_ids(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _referenced_ids(inner)
    return found


class _Environment:
    """One environment's resources with what the lines need to read them."""

    def __init__(self, templates: EnvironmentTemplates) -> None:
        self.name = templates.environment
        self.resources = templates.resources()

    def of_type(self, resource_type: str) -> list[tuple[str, str, dict]]:
        return [entry for entry in self.resources if entry[2].get("Type") == resource_type]

    def get(self, stack: str, logical_id: str) -> dict | None:
        for entry in self.resources:
            if entry[0] == stack and entry[1] == logical_id:
                return entry[2]
        return None

    def where(self, stack: str, logical_id: str) -> str:
        return f"environment {self.name!r}, stack {stack}, resource {logical_id}"


def _properties(resource: dict) -> dict:
    return resource.get("Properties", {})


FARGATE, FARGATE_SPOT = "FARGATE", "FARGATE_SPOT"
ON_DEMAND_ONLY: tuple[tuple[str, int, int], ...] = ((FARGATE, 0, 1),)
"""The strategy of a service with the FARGATE launch type: every task on on-demand Fargate."""


def split_tasks(tasks: float, strategy: tuple[tuple[str, int, int], ...]) -> dict[str, float]:
    """How ECS places ``tasks`` by a capacity-provider strategy of ``(provider, base, weight)`` items: the base
    first on its provider, the rest by weight (ECS API reference, CapacityProviderStrategyItem). A monthly
    average may be fractional; so is its split."""
    placed = {provider: 0.0 for provider, _, _ in strategy}
    rest = tasks
    for provider, base, _ in strategy:
        on_base = min(rest, float(base))
        placed[provider] += on_base
        rest -= on_base
    weights = sum(weight for _, _, weight in strategy)
    for provider, _, weight in strategy:
        placed[provider] += rest * weight / weights if weights else 0.0
    return placed


@dataclass(frozen=True)
class _Service:
    label: str
    tasks: Range
    """Task counts (not money): minimum, typical, maximum."""
    vcpu: float
    memory_gb: float
    architecture: str
    ephemeral_gb: float
    public_ip: bool
    consumes_queue: bool
    broker: str
    strategy: tuple[tuple[str, int, int], ...] = ON_DEMAND_ONLY
    """Capacity-provider strategy, ``(provider, base, weight)`` items (the launch type: on-demand only)."""
    class_name: str | None = None
    """The latency class a worker consumes (None: Beat)."""
    task_time_limit: int | None = None
    soft_shutdown: int | None = None

    def on(self, provider: str) -> Range:
        """Task counts on ``provider`` (FARGATE or FARGATE_SPOT), by the strategy."""
        return self.tasks.map(lambda tasks: split_tasks(tasks, self.strategy).get(provider, 0.0))

    @property
    def uses_spot(self) -> bool:
        return any(provider == FARGATE_SPOT for provider, _, _ in self.strategy)


class Estimator:
    """Prices one environment's templates in one region."""

    def __init__(self, *, prices: PriceTable, assumptions: Assumptions, region: str) -> None:
        prices.check_region(region)
        self.prices, self.assumptions, self.region = prices, assumptions, region
        self.hours = prices.hours_per_month

    def price(self, name: str, *variant: str) -> float:
        return self.prices.price(self.region, name, *variant)

    def line(self, name: str, reads: frozenset[str], build: Callable[[], tuple[str, Range]]) -> Line:
        """A line whose ``build`` looks its prices up and returns (counted, monthly); a price the table leaves
        out for the region makes it a "not priced" line instead."""
        try:
            counted, monthly = build()
        except NotPriced as missing:
            reason = f"not priced: {missing}"
            return Line(name=name, counted="not priced", monthly=None, reads=reads, not_estimated=reason)
        return Line(name=name, counted=counted, monthly=monthly, reads=reads)

    def task_hour(self, service: _Service, provider: str = FARGATE, architecture: str | None = None) -> float:
        """What one task of ``service`` costs an hour on ``provider`` (and ``architecture``, default its own)."""
        architecture = architecture or service.architecture
        spot = "fargate_spot_" if provider == FARGATE_SPOT else "fargate_"
        hourly = service.vcpu * self.price(f"{spot}vcpu_hour", architecture) + service.memory_gb * self.price(
            f"{spot}gb_hour", architecture
        )
        extra_storage = max(service.ephemeral_gb - FARGATE_INCLUDED_EPHEMERAL_GB, 0)
        if extra_storage:
            hourly += extra_storage * self.price("fargate_ephemeral_gb_hour")
        return hourly

    def fargate_month(
        self,
        service: _Service,
        *,
        strategy: tuple[tuple[str, int, int], ...] | None = None,
        architecture: str | None = None,
    ) -> Range:
        """A service's monthly Fargate cost, by its strategy and architecture or those given instead."""
        if strategy is not None:
            service = _Service(**{**service.__dict__, "strategy": strategy})
        total = ZERO
        for provider in dict.fromkeys(provider for provider, _, _ in service.strategy):
            tasks = service.on(provider)
            if tasks == ZERO:
                continue
            total = total + tasks * (self.task_hour(service, provider, architecture) * self.hours)
        return total

    # -- the lines -------------------------------------------------------------------------------
    def estimate(self, templates: EnvironmentTemplates) -> Estimate:
        environment = _Environment(templates)
        self._check_every_resource_is_priced(environment)
        services = self.services(environment)
        lines = [
            *self._cache_lines(environment),
            *self._fargate_lines(services),
            *self._network_lines(environment),
            *self._public_ipv4_lines(environment, services),
            *self._security_lines(environment),
            *self._alarm_lines(environment),
            *self._dashboard_lines(environment),
            *self._log_lines(environment),
            *self._sqs_lines(environment, services),
            *self._container_insights_lines(environment),
        ]
        notes = [f"not estimated: {line.name}: {line.not_estimated}" for line in lines if line.not_estimated]
        notes += [
            "not estimated: data transfer (internet egress, cross-AZ), KMS and Secrets Manager API "
            "requests, SNS deliveries, ECR image storage, data through interface endpoints"
        ]
        if templates.holds_only is not None:
            lines = [line for line in lines if line.reads <= templates.holds_only]
        return Estimate(
            environment=templates.environment,
            region=self.region,
            as_of=self.prices.as_of,
            currency=self.prices.currency,
            lines=lines,
            assumptions=self.assumptions,
            notes=notes,
        )

    def _check_every_resource_is_priced(self, environment: _Environment) -> None:
        for stack, logical_id, resource in environment.resources:
            resource_type = resource.get("Type", "")
            if resource_type in PRICED_TYPES or self.prices.no_charge_reason(resource_type):
                continue
            raise UnknownPrice(
                f"{environment.where(stack, logical_id)}: resource type {resource_type} has no price "
                f"and is not listed as free of charge in {self.prices.path.name} (prices as of "
                f"{self.prices.as_of}); add its price and source, or its reason under "
                f"no_charge_resource_types, before estimating"
            )

    def _cache_lines(self, environment: _Environment) -> list[Line]:
        lines = []
        groups = environment.of_type(REPLICATION_GROUP)
        for stack, logical_id, resource in groups:
            props = _properties(resource)
            suffix = "" if len(groups) == 1 else f" {logical_id}"
            node_type, engine = props.get("CacheNodeType"), str(props.get("Engine", "redis")).lower()
            if "NumCacheClusters" in props:
                nodes = int(props["NumCacheClusters"])
            elif "NumNodeGroups" in props:
                nodes = int(props["NumNodeGroups"]) * (int(props.get("ReplicasPerNodeGroup", 0)) + 1)
            else:
                raise CostError(
                    f"{environment.where(stack, logical_id)}: the node count cannot be read "
                    f"(neither NumCacheClusters nor NumNodeGroups)"
                )
            if not isinstance(node_type, str):
                raise CostError(
                    f"{environment.where(stack, logical_id)}: CacheNodeType is not a literal: {node_type!r}"
                )

            def nodes_line(nodes=nodes, node_type=node_type, engine=engine) -> tuple[str, Range]:
                hourly = self.price("elasticache_node_hour", engine, node_type)
                return (
                    f"{nodes} x {node_type} ({engine}) x {self.hours:g} h at {_price(hourly)}/h",
                    Range.fixed(nodes * hourly * self.hours),
                )

            retention = int(props.get("SnapshotRetentionLimit", 0))
            billable_gb = self.assumptions.snapshot_gb * max(retention - 1, 0)

            def snapshots_line(retention=retention, billable_gb=billable_gb) -> tuple[str, Range]:
                per_gb = self.price("elasticache_backup_gb_month")
                return (
                    f"{retention} daily snapshot(s) x {_number(self.assumptions.snapshot_gb)} GB, "
                    f"one free: {_number(billable_gb)} GB-month at {_price(per_gb)}",
                    Range.fixed(billable_gb * per_gb),
                )

            reads = frozenset({REPLICATION_GROUP})
            lines.append(self.line(f"ElastiCache nodes{suffix}", reads, nodes_line))
            lines.append(self.line(f"ElastiCache snapshots{suffix}", reads, snapshots_line))
        return lines

    def services(self, environment: _Environment) -> list[_Service]:
        targets = environment.of_type(SCALABLE_TARGET)
        services = []
        for stack, logical_id, resource in environment.of_type(SERVICE):
            props = _properties(resource)
            where = environment.where(stack, logical_id)
            strategy = _strategy(props, where)
            task_ids = _referenced_ids(props.get("TaskDefinition"))
            task = environment.get(stack, next(iter(task_ids))) if len(task_ids) == 1 else None
            if task is None or task.get("Type") != TASK_DEFINITION:
                raise CostError(f"{where}: its task definition is not a resource of the same stack")
            task_props = _properties(task)
            platform = task_props.get("RuntimePlatform", {})
            if platform.get("OperatingSystemFamily", "LINUX") != "LINUX":
                raise UnknownPrice(f"{where}: only Linux tasks are priced, not {platform['OperatingSystemFamily']}")
            scaling = [
                _properties(target)
                for target_stack, _, target in targets
                if target_stack == stack and logical_id in _referenced_ids(_properties(target).get("ResourceId"))
            ]
            if scaling:
                low, high = int(scaling[0]["MinCapacity"]), int(scaling[0]["MaxCapacity"])
                tasks = Range(low, low + self.assumptions.typical_load_percent / 100 * (high - low), high)
            else:
                tasks = Range.fixed(int(props.get("DesiredCount", ECS_DEFAULT_DESIRED_COUNT)))
            environment_variables = {
                entry["Name"]: entry.get("Value")
                for container in task_props.get("ContainerDefinitions", [])
                for entry in container.get("Environment", [])
            }
            network = props.get("NetworkConfiguration", {}).get("AwsvpcConfiguration", {})
            variables = contract.ContainerEnvironment
            services.append(
                _Service(
                    label=_process_name(environment, stack, task_props) or logical_id,
                    tasks=tasks,
                    vcpu=int(task_props["Cpu"]) / 1024,
                    memory_gb=int(task_props["Memory"]) / 1024,
                    architecture=platform.get("CpuArchitecture", "X86_64"),
                    ephemeral_gb=float(
                        task_props.get("EphemeralStorage", {}).get("SizeInGiB", FARGATE_INCLUDED_EPHEMERAL_GB)
                    ),
                    public_ip=network.get("AssignPublicIp") == "ENABLED",
                    consumes_queue=variables.QUEUE.name in environment_variables,
                    broker=str(environment_variables.get(variables.BROKER.name) or variables.BROKER.default),
                    strategy=strategy,
                    class_name=environment_variables.get(variables.QUEUE.name),
                    task_time_limit=_int_or_none(environment_variables.get(variables.TASK_TIME_LIMIT.name)),
                    soft_shutdown=_int_or_none(environment_variables.get(variables.SOFT_SHUTDOWN_TIMEOUT.name)),
                )
            )
        return services

    def _fargate_lines(self, services: list[_Service]) -> list[Line]:
        reads = frozenset({SERVICE, TASK_DEFINITION, SCALABLE_TARGET})
        return [self.line(f"Fargate {service.label}", reads, self._fargate_line(service)) for service in services]

    def _fargate_line(self, service: _Service) -> Callable[[], tuple[str, Range]]:
        def build() -> tuple[str, Range]:
            tasks = service.tasks
            counted = (
                f"{_number(tasks.minimum)} / {_number(tasks.typical)} / {_number(tasks.maximum)} tasks x "
                f"{_number(service.vcpu)} vCPU, {_number(service.memory_gb)} GB, {service.architecture} "
                f"x {self.hours:g} h ({_price(self.task_hour(service))}/task-hour"
            )
            if service.uses_spot:
                spot = service.on(FARGATE_SPOT)
                counted += (
                    f"; on Spot {_number(spot.minimum)} / {_number(spot.typical)} / {_number(spot.maximum)} "
                    f"at {_price(self.task_hour(service, FARGATE_SPOT))}/task-hour, strategy "
                    f"{_strategy_text(service.strategy)}"
                )
            return counted + ")", self.fargate_month(service)

        return build

    def _network_lines(self, environment: _Environment) -> list[Line]:
        lines = []
        gateways = len(environment.of_type(NAT_GATEWAY))
        if gateways:

            def gateways_line() -> tuple[str, Range]:
                hourly = self.price("nat_gateway_hour")
                monthly = Range.fixed(gateways * hourly * self.hours)
                return f"{gateways} x {self.hours:g} h at {_price(hourly)}/h", monthly

            def data_line() -> tuple[str, Range]:
                per_gb = self.price("nat_gateway_gb")
                return (
                    f"{_number(self.assumptions.nat_gb)} GB at {_price(per_gb)}/GB (assumed volume)",
                    Range.fixed(self.assumptions.nat_gb * per_gb),
                )

            lines.append(self.line("NAT gateways", frozenset({NAT_GATEWAY}), gateways_line))
            lines.append(self.line("NAT data processed", frozenset({NAT_GATEWAY}), data_line))
        interface_az_hours, interface_endpoints = 0.0, 0
        for stack, logical_id, resource in environment.of_type(VPC_ENDPOINT):
            props = _properties(resource)
            kind = props.get("VpcEndpointType", "Gateway")
            if kind == "Gateway":
                continue  # S3 and DynamoDB gateway endpoints have no charge (AWS PrivateLink pricing)
            if kind != "Interface":
                raise UnknownPrice(f"{environment.where(stack, logical_id)}: no price for a {kind} VPC endpoint")
            subnets = props.get("SubnetIds")
            if not isinstance(subnets, list):
                raise CostError(
                    f"{environment.where(stack, logical_id)}: the endpoint's Availability Zones cannot "
                    f"be counted (SubnetIds is not a list)"
                )
            interface_endpoints += 1
            interface_az_hours += len(subnets) * self.hours
        if interface_endpoints:

            def endpoints_line() -> tuple[str, Range]:
                hourly = self.price("interface_endpoint_az_hour")
                return (
                    f"{interface_endpoints} endpoint(s), {interface_az_hours:g} AZ-hours at {_price(hourly)}",
                    Range.fixed(interface_az_hours * hourly),
                )

            lines.append(self.line("Interface VPC endpoints", frozenset({VPC_ENDPOINT}), endpoints_line))
        return lines

    def _public_ipv4_lines(self, environment: _Environment, services: list[_Service]) -> list[Line]:
        addresses = len(environment.of_type(ELASTIC_IP))
        task_addresses = ZERO
        for service in services:
            if service.public_ip:
                task_addresses = task_addresses + service.tasks
        if not addresses and task_addresses == ZERO:
            return []
        reads = frozenset(
            {ELASTIC_IP} | ({SERVICE, TASK_DEFINITION, SCALABLE_TARGET} if task_addresses != ZERO else set())
        )
        counted = f"{addresses} Elastic IP(s)" + (
            f" + {_number(task_addresses.typical)} task(s) with a public IP" if task_addresses != ZERO else ""
        )

        def build() -> tuple[str, Range]:
            hourly = self.price("public_ipv4_hour")
            return (
                f"{counted} x {self.hours:g} h at {_price(hourly)}/h",
                (task_addresses + Range.fixed(addresses)) * (hourly * self.hours),
            )

        return [self.line("Public IPv4 addresses", reads, build)]

    def _count_line(
        self,
        environment: _Environment,
        *,
        name: str,
        resource_type: str,
        price: str,
        free: float = 0.0,
        remark: Callable[[], str] = str,
    ) -> list[Line]:
        count = len(environment.of_type(resource_type))
        if not count:
            return []
        billable = max(count - free, 0)
        free_text = f", {free:g} free" if free else ""

        def build() -> tuple[str, Range]:
            unit = self.price(price)
            return f"{count}{free_text} x {_price(unit)}/month{remark()}", Range.fixed(billable * unit)

        return [self.line(name, frozenset({resource_type}), build)]

    def _security_lines(self, environment: _Environment) -> list[Line]:
        rotating = sum(bool(_properties(key).get("EnableKeyRotation")) for _, _, key in environment.of_type(KMS_KEY))

        def remark() -> str:
            if not rotating:
                return ""
            return (
                f" (first-year price; {rotating} with yearly rotation: each of a key's first two rotations adds "
                f"{_price(self.price('kms_key_month'))}/month)"
            )

        return self._count_line(
            environment, name="KMS keys", resource_type=KMS_KEY, price="kms_key_month", remark=remark
        ) + self._count_line(environment, name="Secrets Manager secrets", resource_type=SECRET, price="secret_month")

    def _dashboard_lines(self, environment: _Environment) -> list[Line]:
        free = self.prices.free_tier("dashboards") if self.assumptions.free_tier else 0.0
        return self._count_line(
            environment, name="CloudWatch dashboards", resource_type=DASHBOARD, price="dashboard_month", free=free
        )

    def _alarm_lines(self, environment: _Environment) -> list[Line]:
        standard = high_resolution = 0
        template_alarms = template_metrics = 0
        for stack, logical_id, resource in environment.of_type(ALARM):
            props = _properties(resource)
            metrics, period = _alarm_metrics(props)
            if not metrics:
                raise CostError(f"{environment.where(stack, logical_id)}: the alarm's metrics cannot be counted")
            template_alarms += 1
            template_metrics += metrics
            if period is not None and period < 60:
                high_resolution += metrics
            else:
                standard += metrics
        tracking_alarms = tracking_metrics = 0
        for _, _, resource in environment.of_type(SCALING_POLICY):
            config = _properties(resource).get("TargetTrackingScalingPolicyConfiguration")
            if config is None:
                continue
            alarms = 1 if config.get("DisableScaleIn") else TARGET_TRACKING_ALARMS
            custom = config.get("CustomizedMetricSpecification")
            metrics = (_alarm_metrics(custom)[0] or 1) if custom else 1
            tracking_alarms += alarms
            tracking_metrics += alarms * metrics
        standard += tracking_metrics
        composites = len(environment.of_type(COMPOSITE_ALARM))
        if not standard + high_resolution + composites:
            return []
        free = min(self.prices.free_tier("alarm_metrics"), standard) if self.assumptions.free_tier else 0.0

        def monthly() -> float:
            return (
                (standard - free) * self.price("alarm_metric_month", "standard")
                + (high_resolution * self.price("alarm_metric_month", "high_resolution") if high_resolution else 0)
                + (composites * self.price("composite_alarm_month") if composites else 0)
            )

        counted = (
            f"{template_metrics} alarm metric(s) in {template_alarms} alarm(s) of the templates"
            + (
                f", {tracking_metrics} in the {tracking_alarms} alarm(s) target tracking creates"
                if tracking_alarms
                else ""
            )
            + (f"; {high_resolution} high-resolution" if high_resolution else "")
            + (f"; {composites} composite alarm(s)" if composites else "")
            + (f"; {free:g} free" if free else "")
        )
        reads = frozenset({ALARM, COMPOSITE_ALARM, SCALING_POLICY})
        return [self.line("CloudWatch alarms", reads, lambda: (counted, Range.fixed(monthly())))]

    def _log_lines(self, environment: _Environment) -> list[Line]:
        groups = environment.of_type(LOG_GROUP)
        if not groups:
            return []
        per_group = self.assumptions.log_gb_per_group
        ingested = per_group * len(groups)
        stored = 0.0
        for _, _, resource in groups:
            days = _properties(resource).get("RetentionInDays")
            months = (
                int(days) / DAYS_PER_MONTH if days is not None else self.assumptions.log_months_kept_without_retention
            )
            stored += per_group * months
        free = min(self.prices.free_tier("log_gb"), ingested) if self.assumptions.free_tier else 0.0
        reads = frozenset({LOG_GROUP})

        def ingestion() -> tuple[str, Range]:
            per_gb = self.price("log_ingestion_gb")
            return (
                f"{len(groups)} log group(s) x {_number(per_group)} GB{f', {free:g} GB free' if free else ''} "
                f"at {_price(per_gb)}/GB",
                Range.fixed((ingested - free) * per_gb),
            )

        def storage() -> tuple[str, Range]:
            per_gb = self.price("log_storage_gb_month")
            return (
                f"{_number(stored)} GB kept (each group's retention) at {_price(per_gb)}/GB-month",
                Range.fixed(stored * per_gb),
            )

        return [
            self.line("CloudWatch Logs ingestion", reads, ingestion),
            self.line("CloudWatch Logs storage", reads, storage),
        ]

    def _sqs_lines(self, environment: _Environment, services: list[_Service]) -> list[Line]:
        if not environment.of_type(QUEUE):
            return []
        reads = frozenset({QUEUE, SERVICE, TASK_DEFINITION, SCALABLE_TARGET})
        consumers = [service for service in services if service.consumes_queue and service.broker == "sqs"]
        if not consumers:
            return [
                Line(
                    name="SQS requests",
                    counted="no worker consumes SQS (redis broker): no task traffic on SQS",
                    monthly=ZERO,
                    reads=reads,
                )
            ]
        seconds = self.hours * SECONDS_PER_HOUR
        message_requests = self.assumptions.messages_per_second * seconds * self.assumptions.sqs_requests_per_message
        worker_tasks = ZERO
        for service in consumers:
            worker_tasks = worker_tasks + service.tasks
        requests = worker_tasks.map(
            lambda tasks: message_requests + tasks * seconds / self.assumptions.sqs_long_poll_seconds
        )
        free = self.prices.free_tier("sqs_requests") if self.assumptions.free_tier else 0.0

        def build() -> tuple[str, Range]:
            per_million = self.price("sqs_million_requests")
            return (
                f"{_number(requests.minimum / 1e6)} / {_number(requests.typical / 1e6)} / "
                f"{_number(requests.maximum / 1e6)} million requests"
                f"{f' ({free / 1e6:g} million free)' if free else ''} at {_price(per_million)}/million",
                requests.map(lambda count: max(count - free, 0) / 1e6 * per_million),
            )

        return [self.line("SQS requests", reads, build)]

    def _container_insights_lines(self, environment: _Environment) -> list[Line]:
        lines = []
        for _, _, resource in environment.of_type(CLUSTER):
            settings = {
                setting.get("Name"): setting.get("Value")
                for setting in _properties(resource).get("ClusterSettings", [])
            }
            mode = settings.get("containerInsights")
            if mode in ("enabled", "enhanced"):
                lines.append(
                    Line(
                        name="Container Insights",
                        counted=f"cluster setting containerInsights={mode}",
                        monthly=None,
                        reads=frozenset({CLUSTER}),
                        not_estimated=(
                            "billed as CloudWatch custom metrics and performance-log ingestion that grow with "
                            "the number of services and tasks; the price table has no per-cluster figure"
                        ),
                    )
                )
        return lines


def _process_name(environment: _Environment, stack: str, task_props: dict) -> str | None:
    """The Celery process a task definition runs (``worker-<class>``, ``beat``), from the name of the
    log group its container writes to (``contract.service_log_group_name``)."""
    prefix = contract.service_log_group_name(environment.name, "")
    for container in task_props.get("ContainerDefinitions", []):
        group = container.get("LogConfiguration", {}).get("Options", {}).get("awslogs-group")
        group_ids = _referenced_ids(group)
        if len(group_ids) == 1:
            group = _properties(environment.get(stack, next(iter(group_ids))) or {}).get("LogGroupName")
        if isinstance(group, str) and group.startswith(prefix):
            return group[len(prefix) :]
    return None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _strategy(props: dict, where: str) -> tuple[tuple[str, int, int], ...]:
    """A Fargate service's capacity-provider strategy as ``(provider, base, weight)`` items; the FARGATE launch
    type is on-demand only. Anything else (EC2, a provider of an Auto Scaling group) has no price here."""
    items = props.get("CapacityProviderStrategy")
    if not items:
        if props.get("LaunchType", FARGATE) != FARGATE:
            raise UnknownPrice(f"{where}: only Fargate services (FARGATE, FARGATE_SPOT) are priced")
        return ON_DEMAND_ONLY
    strategy = tuple(
        (str(item.get("CapacityProvider")), int(item.get("Base", 0)), int(item.get("Weight", 0))) for item in items
    )
    unknown = sorted({provider for provider, _, _ in strategy} - {FARGATE, FARGATE_SPOT})
    if unknown:
        raise UnknownPrice(f"{where}: capacity provider(s) {', '.join(unknown)} have no price (FARGATE, FARGATE_SPOT)")
    return strategy


def _strategy_text(strategy: tuple[tuple[str, int, int], ...]) -> str:
    return ", ".join(
        f"{provider}{f' base {base}' if base else ''} weight {weight}" for provider, base, weight in strategy
    )


def _alarm_metrics(props: dict) -> tuple[int, int | None]:
    """How many metrics an alarm (or a target-tracking metric specification) reads, and its period."""
    if "MetricName" in props:
        return 1, props.get("Period")
    stats = [query["MetricStat"] for query in props.get("Metrics", []) if "MetricStat" in query]
    periods = [stat["Period"] for stat in stats if "Period" in stat]
    return len(stats), (min(periods) if periods else props.get("Period"))


def estimate_all(
    found: dict[str, EnvironmentTemplates],
    *,
    prices: PriceTable,
    assumptions: Assumptions,
    region: str | None = None,
    environments: Iterable[str] | None = None,
) -> dict[str, Estimate]:
    """Estimates of ``environments`` (default: all found), in ``region`` (default: each environment's own
    region, else the price table's default region)."""
    names = list(environments) if environments is not None else list(found)
    missing = [name for name in names if name not in found]
    if missing:
        raise CostError(f"environment(s) {', '.join(missing)} not found; found: {', '.join(found)}")
    return {
        name: estimator_for(found[name], prices=prices, assumptions=assumptions, region=region).estimate(found[name])
        for name in names
    }


def estimator_for(
    templates: EnvironmentTemplates, *, prices: PriceTable, assumptions: Assumptions, region: str | None
) -> Estimator:
    """The estimator of one environment: in ``region``, else the environment's own, else the table's default."""
    return Estimator(prices=prices, assumptions=assumptions, region=region or templates.region or prices.default_region)


def assumption_fields() -> dict[str, Any]:
    """Each assumption's default, by field name."""
    return {item.name: item.default for item in fields(Assumptions)}

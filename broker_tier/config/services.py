"""The ECS Fargate services: one worker service per latency class, exactly one Beat, and the image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field

from broker_tier.config.base import Allowed, ConfigModel, InvalidValue, LogRetentionDays, cross_key_check
from broker_tier_contract import COLD_SHUTDOWN_SECONDS, DEFAULT_STOP_TIMEOUT_SECONDS, MAX_STOP_TIMEOUT_SECONDS

# Fargate CPU units -> the memory sizes (MiB) a task of that size may have.
FARGATE_MEMORY: dict[int, Sequence[int]] = {
    256: (512, 1024, 2048),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}
FargateCpu = Annotated[int, Allowed("one of " + ", ".join(str(cpu) for cpu in FARGATE_MEMORY))]
FargateMemory = Annotated[
    int,
    Allowed(
        "a size Fargate offers for cpu: "
        + "; ".join(f"{cpu}: {sizes[0]}-{sizes[-1]}" for cpu, sizes in FARGATE_MEMORY.items())
    ),
]
Fixed = Annotated[int, Allowed("only this default (exactly one Beat, never two during a deployment)")]


class FargateSize(ConfigModel):
    """The size of one Fargate task: CPU units and memory, in a combination Fargate offers."""

    cpu: FargateCpu = 512
    """Fargate CPU units of one task. Default: 512 (256 for Beat)."""
    memory_mib: FargateMemory = 1024
    """Memory of one task; must be a size Fargate offers for ``cpu``. Default: 1024 (512 for Beat)."""

    @cross_key_check
    def _fargate_combination(self) -> None:
        if self.cpu not in FARGATE_MEMORY:
            raise InvalidValue("cpu", self.cpu, f"one of Fargate's CPU sizes {sorted(FARGATE_MEMORY)}")
        sizes = FARGATE_MEMORY[self.cpu]
        if self.memory_mib not in sizes:
            raise InvalidValue(
                "memory_mib",
                self.memory_mib,
                f"a memory size Fargate offers with cpu {self.cpu}: {list(sizes)[0]} to "
                f"{list(sizes)[-1]} MiB in steps of {list(sizes)[1] - list(sizes)[0]}",
            )


FARGATE, FARGATE_SPOT = "FARGATE", "FARGATE_SPOT"
"""ECS's two Fargate capacity providers (every cluster has them once associated)."""


class CapacityConfig(ConfigModel):
    """Where a class's worker tasks run: on-demand Fargate only, or Fargate Spot above an on-demand floor
    (docs/decisions/fargate-spot-per-class.md). Spot is allowed only for a class whose running tasks an
    interruption cannot run twice, or whose tasks may run twice (``idempotent``)."""

    spot_percent: int = Field(0, ge=0, le=100)
    """Share, in percent, of the tasks above ``on_demand_base`` that run on Fargate Spot (ECS weights
    ``100 - spot_percent`` on-demand to ``spot_percent`` Spot); 0 runs every task on on-demand Fargate.
    100 only with ``on_demand_base`` 0 (ECS places no task on a provider of weight 0, floor included).
    Default: 0."""
    on_demand_base: int = Field(1, ge=0, le=100)
    """Tasks that run on on-demand Fargate before any runs on Spot: the floor that carries the class while
    Spot capacity is short. Less than the class's ``max_tasks``; at least 1 in a production environment.
    Used only with ``spot_percent`` above 0. Default: 1."""

    @property
    def uses_spot(self) -> bool:
        return self.spot_percent > 0

    def strategy(self) -> list[tuple[str, int, int]]:
        """The ECS capacity-provider strategy, as ``(provider, base, weight)`` items. Every class has one,
        on-demand only included, so that opting in or out of Spot later changes the strategy in place
        (docs/decisions/fargate-spot-per-class.md)."""
        if not self.uses_spot:
            return [(FARGATE, 0, 1)]
        if self.spot_percent == 100:
            return [(FARGATE_SPOT, 0, 1)]
        return [(FARGATE, self.on_demand_base, 100 - self.spot_percent), (FARGATE_SPOT, 0, self.spot_percent)]

    @cross_key_check
    def _floor_with_all_spot(self) -> None:
        if self.spot_percent == 100 and self.on_demand_base > 0:
            raise InvalidValue(
                "spot_percent",
                self.spot_percent,
                f"at most 99 with an on-demand floor (on_demand_base {self.on_demand_base}): ECS places no "
                f"task on a capacity provider of weight 0, its base included (ECS API reference, "
                f"CapacityProviderStrategyItem); 100 only with on_demand_base 0",
            )


class WorkerConfig(FargateSize):
    """The Fargate service of Celery workers that consumes one latency class's queue."""

    concurrency: int = Field(2, ge=1, le=64)
    """Celery worker processes per task (``--concurrency``). Default: 2."""
    min_tasks: int = Field(1, ge=0, le=100)
    """Fewest running tasks; 0 lets the class scale to zero (it scales out on one message). Default: 1."""
    max_tasks: int = Field(4, ge=1, le=100)
    """Most running tasks. Default: 4."""
    backlog_per_task_target: int = Field(20, ge=1, le=10_000)
    """Target of visible messages per running task: acceptable latency / average task time.
    Default: 20."""
    capacity: CapacityConfig = Field(default_factory=CapacityConfig)
    """On-demand Fargate, or Fargate Spot above an on-demand floor. Default: on-demand only."""

    @cross_key_check
    def _bounds(self) -> None:
        if self.max_tasks < self.min_tasks:
            raise InvalidValue("max_tasks", self.max_tasks, f"at least min_tasks ({self.min_tasks})")
        capacity = self.capacity
        if capacity.uses_spot and capacity.on_demand_base >= self.max_tasks:
            raise InvalidValue(
                "capacity.on_demand_base",
                capacity.on_demand_base,
                f"less than max_tasks ({self.max_tasks}) with spot_percent {capacity.spot_percent}: the first "
                f"{capacity.on_demand_base} task(s) run on-demand, so no task of this class would ever run on Spot",
            )


class BeatConfig(FargateSize):
    """The one Celery Beat. Its count and deployment limits are fixed: two Beats send every periodic
    task twice, and a rolling deployment with maximum 200 % briefly runs two. It has no ``capacity``: Beat
    runs on on-demand Fargate only (a Spot interruption would stop the schedule until ECS places a new Beat)."""

    cpu: FargateCpu = 256
    memory_mib: FargateMemory = 512
    desired_count: Fixed = 1
    """Fixed to 1."""
    maximum_percent: Fixed = 100
    """Fixed to 100: the new Beat starts only after the old one stopped."""
    minimum_healthy_percent: Fixed = 0
    """Fixed to 0: the old Beat stops before the new one starts."""

    @cross_key_check
    def _exactly_one(self) -> None:
        for key, fixed in (("desired_count", 1), ("maximum_percent", 100), ("minimum_healthy_percent", 0)):
            if getattr(self, key) != fixed:
                raise InvalidValue(
                    key,
                    getattr(self, key),
                    f"only {fixed}: exactly one Celery Beat may run, and never two during a "
                    f"deployment, or every periodic task is sent twice",
                )


class ImageConfig(ConfigModel):
    """An existing image in an ECR repository of the same account, instead of the reference worker."""

    repository_name: str = Field(pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$")
    """ECR repository name."""
    tag: str | None = Field(None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    """Image tag. Default: None (give ``tag`` or ``digest``)."""
    digest: str | None = Field(None, pattern=r"^sha256:[0-9a-f]{64}$")
    """Image digest (preferred: immutable). Default: None."""

    @cross_key_check
    def _one_reference(self) -> None:
        if (self.tag is None) == (self.digest is None):
            raise InvalidValue("tag", self.tag, "exactly one of 'tag' or 'digest'")


class ComputeConfig(ConfigModel):
    """ECS Fargate services: one worker service per queue class, and one Beat."""

    broker: Literal["sqs", "redis"] = "sqs"
    """Celery broker: ``sqs`` (durable, dead-letter redrive) or ``redis`` (the layout's broker DB).
    Redis is the result backend either way. Default: sqs."""
    cpu_architecture: Literal["X86_64", "ARM64"] = "X86_64"
    """CPU architecture of the tasks (and of the reference image build). Default: X86_64."""
    image: ImageConfig | None = None
    """A team's own image. Default: None (the reference worker in ``worker/`` is built)."""
    celery_app: str = Field("broker_tier_worker.app", pattern=r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$")
    """The Celery app given to ``celery -A``. Default: broker_tier_worker.app (the reference worker)."""
    stop_timeout_seconds: int = Field(
        DEFAULT_STOP_TIMEOUT_SECONDS, ge=COLD_SHUTDOWN_SECONDS + 5, le=MAX_STOP_TIMEOUT_SECONDS
    )
    """Seconds between SIGTERM and SIGKILL (Fargate: at most 120). Celery's soft shutdown gets all but
    the last 15 s, which are left to its cold shutdown. Default: 120."""
    log_retention_days: LogRetentionDays = 30
    """Retention of the services' log groups. Default: 30."""
    result_expires_seconds: int = Field(86_400, ge=60, le=30 * 86_400)
    """Lifetime of task results in Redis (results without a TTL fill a noeviction Redis until it
    refuses writes). Default: 86400."""
    beat: BeatConfig = Field(default_factory=BeatConfig)

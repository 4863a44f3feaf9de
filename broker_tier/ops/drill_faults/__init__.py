"""The failover drill's faults: each one module, all behind ``DrillFault`` (``interface``)."""

from __future__ import annotations

from collections.abc import Callable

from broker_tier.ops.drill_faults.az_power import AzPowerFault
from broker_tier.ops.drill_faults.elasticache_failover import ElastiCacheTestFailover
from broker_tier.ops.drill_faults.interface import DrillFault, FaultAborted, FaultContext

FAULTS: dict[str, Callable[[FaultContext], DrillFault]] = {
    ElastiCacheTestFailover.name: ElastiCacheTestFailover,
    AzPowerFault.name: AzPowerFault,
}


def make_fault(name: str, context: FaultContext) -> DrillFault:
    if name not in FAULTS:
        raise ValueError(f"fault {name!r} is not one of {', '.join(sorted(FAULTS))}")
    return FAULTS[name](context)


__all__ = ["FAULTS", "DrillFault", "FaultAborted", "FaultContext", "make_fault"]

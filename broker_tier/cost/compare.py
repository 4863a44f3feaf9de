"""The cost difference between a base and the current templates, by line.

The base is another cloud assembly (every line compares) or the replacement guard's
``baseline/``, which holds only the stateful resources of each stack (replication group, queues,
secret, KMS key, log groups, VPC): against it only the lines computed from those resources
compare (cache nodes and snapshots, KMS keys, secrets, logs); every other line is listed as not
compared, never counted as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broker_tier.cost.estimate import ZERO, Estimate, Range


@dataclass(frozen=True, kw_only=True)
class LineChange:
    name: str
    base: Range | None
    current: Range | None
    base_counted: str = ""
    current_counted: str = ""

    @property
    def delta(self) -> Range:
        return (self.current or ZERO) - (self.base or ZERO)

    @property
    def changed(self) -> bool:
        return (
            any(abs(value) >= 0.005 for value in (self.delta.minimum, self.delta.typical, self.delta.maximum))
            or self.base_counted != self.current_counted
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base": self.base.rounded() if self.base else None,
            "current": self.current.rounded() if self.current else None,
            "delta": self.delta.rounded(),
            "base_counted": self.base_counted,
            "current_counted": self.current_counted,
        }


@dataclass(frozen=True, kw_only=True)
class EnvironmentChange:
    environment: str
    lines: list[LineChange]
    not_compared: list[str] = field(default_factory=list)
    """Lines of the current estimate the base cannot answer for."""

    @property
    def base_total(self) -> Range:
        return _sum(change.base for change in self.lines)

    @property
    def current_total(self) -> Range:
        return _sum(change.current for change in self.lines)

    @property
    def delta(self) -> Range:
        return self.current_total - self.base_total

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "base_total": self.base_total.rounded(),
            "current_total": self.current_total.rounded(),
            "delta": self.delta.rounded(),
            "lines": [change.as_dict() for change in self.lines],
            "not_compared": self.not_compared,
        }


def _sum(values) -> Range:
    total = ZERO
    for value in values:
        if value is not None:
            total = total + value
    return total


def compare(
    base: dict[str, Estimate], current: dict[str, Estimate], *, base_holds_only: frozenset[str] | None
) -> list[EnvironmentChange]:
    """Per environment in either side, the change of every line the base can answer for."""
    changes = []
    for environment in sorted(set(base) | set(current)):
        base_all = base[environment].lines if environment in base else []
        current_all = current[environment].lines if environment in current else []
        # a line without a figure on either side (not estimated, or not priced) compares with nothing: never a zero
        unpriced = {line.name for line in [*base_all, *current_all] if line.monthly is None}
        base_lines = {line.name: line for line in base_all if line.name not in unpriced}
        current_lines, not_compared = {}, []
        for line in current_all:
            if line.name in unpriced:
                if line.monthly is not None or (line.not_estimated or "").startswith("not priced"):
                    not_compared.append(f"{line.name} (not priced on one side)")
                continue
            if base_holds_only is not None and not line.reads <= base_holds_only:
                not_compared.append(line.name)
            else:
                current_lines[line.name] = line
        names = list(dict.fromkeys([*current_lines, *base_lines]))
        changes.append(
            EnvironmentChange(
                environment=environment,
                not_compared=not_compared,
                lines=[
                    LineChange(
                        name=name,
                        base=base_lines[name].monthly if name in base_lines else None,
                        current=current_lines[name].monthly if name in current_lines else None,
                        base_counted=base_lines[name].counted if name in base_lines else "",
                        current_counted=current_lines[name].counted if name in current_lines else "",
                    )
                    for name in names
                ],
            )
        )
    return changes

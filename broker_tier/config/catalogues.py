"""The dated catalogues the configuration is checked against, kept as data in ``broker_tier/config/data/``:
ElastiCache node types, ElastiCache engine parameters per parameter-group family, and AWS Region names.

Each file names its public source and the date it was read (``retrieved``). Something newer than that
date (a node type, a parameter, a region) is refused until the file is updated from the same source.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"
NODE_TYPES_FILE = DATA_DIR / "elasticache_node_types.json"
PARAMETERS_FILE = DATA_DIR / "elasticache_parameters.json"
REGIONS_FILE = DATA_DIR / "aws_regions.json"


@functools.cache
def _load(path: Path) -> dict[str, Any]:
    catalogue: dict[str, Any] = json.loads(path.read_text())
    return catalogue


def retrieved(path: Path) -> str:
    """The date the catalogue in ``path`` was read from its source."""
    date: str = _load(path)["retrieved"]
    return date


def did_you_mean(value: str, candidates: Iterable[str]) -> str:
    """``; did you mean "x"?`` for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(value, sorted(candidates), n=1, cutoff=0.75)
    return f"; did you mean {json.dumps(close[0])}?" if close else ""


# -- node types -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeType:
    """One current ElastiCache node type, ``cache.<family>.<size>``."""

    name: str
    family: str
    node_class: str
    """The class letter: m (general purpose), r (memory optimized), t (burstable), c (network optimized)."""
    generation: int
    size: str
    category: str
    engines: tuple[str, ...]

    @property
    def data_tiering(self) -> bool:
        return self.family.endswith("d")


@functools.cache
def node_types() -> dict[str, NodeType]:
    """Every current node type by name."""
    return {
        f"cache.{family}.{size}": NodeType(
            f"cache.{family}.{size}",
            family,
            spec["class"],
            spec["generation"],
            size,
            spec["category"],
            tuple(spec["engines"]),
        )
        for family, spec in _load(NODE_TYPES_FILE)["families"].items()
        for size in spec["sizes"]
    }


def previous_generation_node_types() -> frozenset[str]:
    """Node types ElastiCache no longer creates clusters on."""
    return frozenset(_load(NODE_TYPES_FILE)["previous_generation"])


# -- engine parameters ----------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineParameter:
    """One Valkey/Redis OSS parameter of a custom parameter group."""

    name: str
    families: tuple[str, ...]
    type: str
    """boolean (``yes``/``no``), integer, enum or string."""
    minimum: int | None = None
    maximum: int | None = None
    also: tuple[int, ...] = ()
    """Integers allowed outside ``minimum``..``maximum`` (``timeout``: 0, or 20 and more)."""
    values: tuple[str, ...] = ()
    since: str | None = None
    """The engine version of its family the parameter needs (e.g. valkey8 parameters of 8.1)."""
    modifiable: bool = True
    note: str | None = None

    def allowed(self) -> str:
        """What the parameter accepts, in words."""
        if self.type == "boolean":
            return '"yes" or "no"'
        if self.type == "enum":
            return "one of " + ", ".join(json.dumps(v) for v in self.values)
        if self.type == "integer":
            low = f"{self.minimum}" if self.minimum is not None else None
            high = f"{self.maximum}" if self.maximum is not None else None
            span = (
                f"from {low} to {high}"
                if low and high
                else f"{low} or more"
                if low
                else f"up to {high}"
                if high
                else ""
            )
            also = " or ".join(str(v) for v in self.also)
            return "an integer" + (f" {span}" if span else "") + (f", or {also}" if also else "")
        return "a string"

    def accepts(self, value: str | int) -> bool:
        """Whether ``value`` (a JSON string or integer from cdk.json) has the parameter's type."""
        if self.type == "boolean":
            return value in ("yes", "no")
        if self.type == "enum":
            return value in self.values
        if self.type == "integer":
            try:
                number = value if isinstance(value, int) else int(str(value), 10)
            except ValueError:
                return False
            if number in self.also:
                return True
            return (self.minimum is None or number >= self.minimum) and (self.maximum is None or number <= self.maximum)
        return isinstance(value, str)


@functools.cache
def engine_parameters() -> dict[str, EngineParameter]:
    """Every parameter of the supported families, by name."""
    parameters = {}
    for name, spec in _load(PARAMETERS_FILE)["parameters"].items():
        parameters[name] = EngineParameter(
            name=name,
            families=tuple(spec["families"]),
            type=spec["type"],
            minimum=spec.get("minimum"),
            maximum=spec.get("maximum"),
            also=tuple(spec.get("also", ())),
            values=tuple(spec.get("values", ())),
            since=spec.get("since"),
            modifiable=spec.get("modifiable", True),
            note=spec.get("note"),
        )
    return parameters


# -- regions --------------------------------------------------------------------------------------
@functools.cache
def aws_regions() -> dict[str, str]:
    """Region name -> partition."""
    return {region: partition for partition, regions in _load(REGIONS_FILE)["partitions"].items() for region in regions}

"""The dated price table (``prices.json`` beside this module): lookups that fail loudly.

Every price names its unit and its source (a URL and the date it was read); a region that is not in the
table raises ``UnknownPrice``, a price or a variant (node type, CPU architecture, ...) that is not in it for a
region that is raises ``NotPriced``, which the estimator shows as a "not priced" line: it never treats a missing
price as zero (docs/decisions/prices-traced-to-a-public-source.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

PRICE_FILE = Path(__file__).with_name("prices.json")


class CostError(Exception):
    """An estimate cannot be made (a missing price, an unreadable template, ...); the message says why.
    ``problems``: each of several findings behind it (every invalid value of cdk.json), one line each, so that
    a report can list them all instead of running them together."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


class UnknownPrice(CostError):
    """The price table has no price for what the templates contain."""


class NotPriced(UnknownPrice):
    """The region is in the price table, but this price (or this variant of it) is not: no public source was
    found for it. The estimate shows the line it prices as "not priced" instead of stopping."""


@dataclass(frozen=True)
class PriceTable:
    """The parsed ``prices.json``."""

    data: dict[str, Any]
    path: Path = PRICE_FILE

    @property
    def as_of(self) -> str:
        return self.data["as_of"]

    @property
    def currency(self) -> str:
        return self.data["currency"]

    @property
    def hours_per_month(self) -> float:
        return float(self.data["hours_per_month"])

    @property
    def default_region(self) -> str:
        return self.data["default_region"]

    @property
    def regions(self) -> list[str]:
        return sorted(self.data["regions"])

    def _where(self) -> str:
        return f"{self.path.name} (prices as of {self.as_of})"

    def check_region(self, region: str) -> None:
        if region not in self.data["regions"]:
            raise UnknownPrice(
                f"region {region!r} has no prices in {self._where()}; regions in the table: "
                f"{', '.join(self.regions)} (add the region's prices with their sources, "
                f"or choose one with --region)"
            )

    def price(self, region: str, name: str, *variant: str) -> float:
        """The price ``name`` in ``region``, for ``variant`` when it varies (e.g. engine, node type)."""
        self.check_region(region)
        entry = self.data["regions"][region]["prices"].get(name)
        if entry is None:
            raise NotPriced(f"no price {name!r} for region {region} in {self._where()}")
        value: Any = entry["usd"]
        path = [name]
        for key in variant:
            if not isinstance(value, dict) or key not in value:
                known = ", ".join(sorted(value)) if isinstance(value, dict) else "none"
                raise NotPriced(
                    f"no price for {' '.join([*path[1:], key]) or key} ({entry['per']}) in region "
                    f"{region} in {self._where()}; priced: {known}"
                )
            value = value[key]
            path.append(key)
        if isinstance(value, dict):
            raise UnknownPrice(f"price {name!r} needs a variant ({', '.join(sorted(value))})")
        return float(value)

    def unit(self, region: str, name: str) -> str:
        return self.data["regions"][region]["prices"][name]["per"]

    def free_tier(self, allowance: str) -> float:
        return float(self.data["free_tier"][allowance]["amount"])

    def no_charge_reason(self, resource_type: str) -> str | None:
        """Why a resource type carries no charge of its own, or None when the table does not say so."""
        if resource_type == "about":
            return None
        return self.data["no_charge_resource_types"].get(resource_type)

    def sources(self) -> dict[str, dict[str, str]]:
        return self.data["sources"]


@cache
def load_prices(path: Path = PRICE_FILE) -> PriceTable:
    """The price table at ``path`` (default: the one shipped with the package)."""
    try:
        return PriceTable(json.loads(path.read_text()), path)
    except (OSError, ValueError, KeyError) as error:
        raise CostError(f"price table {path} could not be read: {error}") from None

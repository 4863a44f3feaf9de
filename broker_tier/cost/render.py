"""Estimates and comparisons as text tables, Markdown, or JSON-ready dicts."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from broker_tier.cost.compare import EnvironmentChange
from broker_tier.cost.estimate import Assumptions, Estimate
from broker_tier.cost.prices import PriceTable
from broker_tier.cost.what_if import Saving

NOT_ESTIMATED = "n/e"


def _money(value: float | None) -> str:
    return NOT_ESTIMATED if value is None else f"{value:,.2f}"


def _signed(value: float) -> str:
    return f"{value:+,.2f}"


def heading(prices: PriceTable, assumptions: Assumptions) -> list[str]:
    return [
        f"Monthly cost estimate in {prices.currency}: on-demand list prices as of {prices.as_of} "
        f"(broker_tier/cost/{prices.path.name}); {prices.hours_per_month:g} hours a month.",
        "Assumptions (options of `broker-tier-ops cost`):",
    ] + [f"  - {text}" for text in assumptions.describe()]


def estimate_table(estimate: Estimate) -> list[str]:
    rows = [
        (
            line.name,
            _money(line.monthly.minimum if line.monthly else None),
            _money(line.monthly.typical if line.monthly else None),
            _money(line.monthly.maximum if line.monthly else None),
            line.counted,
        )
        for line in estimate.lines
    ]
    total = estimate.total
    rows.append(("total", _money(total.minimum), _money(total.typical), _money(total.maximum), ""))
    widths = [max(len(row[column]) for row in [*rows, ("line", "min", "typical", "max", "")]) for column in range(4)]
    header = f"  {'line':<{widths[0]}}  {'min':>{widths[1]}}  {'typical':>{widths[2]}}  {'max':>{widths[3]}}  counted"
    lines = [f"{estimate.environment} ({estimate.region}):", header]
    for name, low, typical, high, counted in rows:
        lines.append(
            f"  {name:<{widths[0]}}  {low:>{widths[1]}}  {typical:>{widths[2]}}  {high:>{widths[3]}}  "
            f"{counted}".rstrip()
        )
    return lines


def notes(estimates: dict[str, Estimate]) -> list[str]:
    seen = list(dict.fromkeys(note for estimate in estimates.values() for note in estimate.notes))
    return [f"  - {note}" for note in seen]


def text(estimates: dict[str, Estimate], prices: PriceTable, assumptions: Assumptions) -> str:
    lines = heading(prices, assumptions)
    for estimate in estimates.values():
        lines += [""] + estimate_table(estimate)
    lines += ["", "Notes:"] + notes(estimates)
    return "\n".join(lines) + "\n"


def markdown(estimates: dict[str, Estimate], prices: PriceTable, savings: dict[str, list[Saving]] | None = None) -> str:
    """A totals table, then one table of lines per environment (typical load); with ``savings``, the what-if
    tables after them."""
    lines = [
        f"Monthly, {prices.currency}, on-demand list prices as of {prices.as_of}:",
        "",
        "| environment | region | at minimum tasks | typical | at maximum tasks |",
        "|---|---|---:|---:|---:|",
    ]
    for estimate in estimates.values():
        total = estimate.total
        lines.append(
            f"| {estimate.environment} | {estimate.region} | {_money(total.minimum)} | "
            f"{_money(total.typical)} | {_money(total.maximum)} |"
        )
    names = list(dict.fromkeys(line.name for estimate in estimates.values() for line in estimate.lines))
    lines += ["", "| line (typical) | " + " | ".join(estimates) + " |", "|---|" + "---:|" * len(estimates)]
    for name in names:
        cells = []
        for estimate in estimates.values():
            found = [line for line in estimate.lines if line.name == name]
            cells.append(_money(found[0].monthly.typical if found[0].monthly else None) if found else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(
        "| **total** | " + " | ".join(f"**{_money(estimate.total.typical)}**" for estimate in estimates.values()) + " |"
    )
    text = "\n".join(lines) + "\n"
    return text if savings is None else f"{text}\n{what_if_markdown(savings)}"


def comparison_text(changes: list[EnvironmentChange], *, base_label: str, base_note: str | None) -> str:
    lines = [f"Cost difference against {base_label} (per month, typical load; min and max in --json):"]
    if base_note:
        lines.append(f"  ({base_note})")
    for change in changes:
        delta = change.delta.typical
        lines.append(
            f"{change.environment}: {_signed(delta)} ({_money(change.base_total.typical)} -> "
            f"{_money(change.current_total.typical)} over the compared lines)"
        )
        changed = [line for line in change.lines if line.changed]
        width = max([len(line.name) for line in changed] + [4])
        for line in changed:
            base = _money(line.base.typical) if line.base else "-"
            current = _money(line.current.typical) if line.current else "-"
            counted = (
                f"{line.base_counted} -> {line.current_counted}"
                if line.base_counted != line.current_counted
                else line.current_counted
            )
            lines.append(
                f"  {line.name:<{width}}  {base:>10} -> {current:>10}  {_signed(line.delta.typical):>10}  {counted}"
            )
        unchanged = len(change.lines) - len(changed)
        if unchanged:
            lines.append(f"  ({unchanged} line(s) unchanged)")
        if change.not_compared:
            lines.append(f"  not compared ({base_label} cannot answer for them): {', '.join(change.not_compared)}")
    return "\n".join(lines) + "\n"


WHAT_IF_HEADING = "What each option would save a month (typical load; min and max in --json), and what it costs"


def _saving_figure(saving: Saving) -> str:
    return _money(saving.monthly.typical) if saving.monthly else "not priced"


def what_if_text(savings: dict[str, list[Saving]], estimates: dict[str, Estimate]) -> str:
    """Per environment, one block per option: the saving, the setting to change, the assumption, the cost."""
    lines = [f"{WHAT_IF_HEADING}:"]
    for environment, found in savings.items():
        estimate = estimates.get(environment)
        where = f" ({estimate.region}, now {_money(estimate.total.typical)}/month)" if estimate else ""
        lines.append(f"{environment}{where}:")
        if not found:
            lines.append("  (no option applies)")
        for saving in found:
            lines.append(f"  - {saving.option}: {_saving_figure(saving)}")
            lines.append(f"      set: {saving.setting}")
            lines.append(f"      assumes: {saving.assumption}")
            if saving.caveat:
                lines.append(f"      costs: {saving.caveat}")
            if saving.not_priced:
                lines.append(f"      {saving.not_priced}")
    return "\n".join(lines) + "\n"


def what_if_markdown(savings: dict[str, list[Saving]]) -> str:
    """One table per environment: option, saving (typical), setting to change, assumption and cost."""
    lines = [f"{WHAT_IF_HEADING}:"]
    for environment, found in savings.items():
        lines += ["", f"**{environment}**", "", "| option | saves (typical) | setting | assumes | costs |"]
        lines.append("|---|---:|---|---|---|")
        for saving in found:
            lines.append(
                f"| {saving.option} | {_saving_figure(saving)} | `{saving.setting}` | {saving.assumption} | "
                f"{saving.caveat or ''}{'; ' + saving.not_priced if saving.not_priced else ''} |"
            )
    return "\n".join(lines) + "\n"


def what_if_measurements(savings: dict[str, list[Saving]]) -> dict[str, Any]:
    """The savings as a report's measurements (its Markdown lists them): typical figure, by option and setting."""
    return {
        f"{environment} what-if: {saving.option} (set {saving.setting})": (
            round(saving.monthly.typical, 2) if saving.monthly else "not priced"
        )
        for environment, found in savings.items()
        for saving in found
    }


def as_json(
    estimates: dict[str, Estimate],
    prices: PriceTable,
    assumptions: Assumptions,
    changes: list[EnvironmentChange] | None = None,
    base_label: str | None = None,
    savings: dict[str, list[Saving]] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "prices_as_of": prices.as_of,
        "currency": prices.currency,
        "hours_per_month": prices.hours_per_month,
        "price_file": f"broker_tier/cost/{prices.path.name}",
        "assumptions": asdict(assumptions),
        "environments": {name: estimate.as_dict() for name, estimate in estimates.items()},
    }
    if changes is not None:
        data["comparison"] = {"base": base_label, "environments": [change.as_dict() for change in changes]}
    if savings is not None:
        data["what_if"] = {name: [saving.as_dict() for saving in found] for name, found in savings.items()}
    return data

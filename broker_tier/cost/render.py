"""Estimates and comparisons as text tables, Markdown, or JSON-ready dicts."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from broker_tier.cost.compare import EnvironmentChange
from broker_tier.cost.estimate import Assumptions, Estimate, Line
from broker_tier.cost.prices import PriceTable
from broker_tier.cost.what_if import Saving

NOT_ESTIMATED = "n/e"


def _money(value: float | None) -> str:
    return NOT_ESTIMATED if value is None else f"{value:,.2f}"


def _signed(value: float) -> str:
    return f"{value:+,.2f}"


def heading(prices: PriceTable, assumptions: Assumptions) -> list[str]:
    return [
        f"Monthly cost estimate in {prices.currency}: list prices as of {prices.as_of} (Fargate Spot: a dated "
        f"snapshot) from broker_tier/cost/{prices.path.name}; {prices.hours_per_month:g} hours a month.",
        "Assumptions (options of `broker-tier-ops cost`):",
    ] + [f"  - {text}" for text in assumptions.describe()]


NOT_PRICED = "not priced"


def _figure(line: Line, which: str) -> str:
    """A line's figure: the money, or why there is none (not estimated, or no sourced price in the region)."""
    if line.monthly is not None:
        return _money(getattr(line.monthly, which))
    return NOT_PRICED if (line.not_estimated or "").startswith(NOT_PRICED) else NOT_ESTIMATED


def _total_label(estimate: Estimate) -> str:
    unpriced = sum(_figure(line, "typical") == NOT_PRICED for line in estimate.lines)
    return f"total of the priced lines ({unpriced} not priced)" if unpriced else "total"


def estimate_table(estimate: Estimate) -> list[str]:
    rows = [
        (
            line.name,
            _figure(line, "minimum"),
            _figure(line, "typical"),
            _figure(line, "maximum"),
            "" if line.counted == NOT_PRICED else line.counted,
        )
        for line in estimate.lines
    ]
    total = estimate.total
    rows.append((_total_label(estimate), _money(total.minimum), _money(total.typical), _money(total.maximum), ""))
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
        f"Monthly, {prices.currency}, list prices as of {prices.as_of} (Fargate Spot: a dated snapshot):",
        "",
        "| environment | region | at minimum tasks | typical | at maximum tasks |",
        "|---|---|---:|---:|---:|",
    ]
    for estimate in estimates.values():
        total = estimate.total
        partial = "" if _total_label(estimate) == "total" else f" ({_total_label(estimate).removeprefix('total of ')})"
        lines.append(
            f"| {estimate.environment} | {estimate.region}{partial} | {_money(total.minimum)} | "
            f"{_money(total.typical)} | {_money(total.maximum)} |"
        )
    names = list(dict.fromkeys(line.name for estimate in estimates.values() for line in estimate.lines))
    lines += ["", "| line (typical) | " + " | ".join(estimates) + " |", "|---|" + "---:|" * len(estimates)]
    for name in names:
        cells = []
        for estimate in estimates.values():
            found = [line for line in estimate.lines if line.name == name]
            cells.append(_figure(found[0], "typical") if found else "")
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
        now = f"now {_money(estimate.total.typical)}/month" if estimate else ""
        if estimate and _total_label(estimate) != "total":
            now += " for the priced lines"
        where = f" ({estimate.region}, {now})" if estimate else ""
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
    """One table, an option a row and an environment a column (the typical saving), then what each option assumes
    and costs, once per option (per environment where that differs)."""
    environments = list(savings)
    options: dict[str, dict[str, Saving]] = {}
    for environment, found in savings.items():
        for saving in found:
            options.setdefault(saving.option, {})[environment] = saving
    lines = [
        f"{WHAT_IF_HEADING}:",
        "",
        "| option | setting | " + " | ".join(environments) + " |",
        "|---|---|" + "---:|" * len(environments),
    ]
    for option, by_environment in options.items():
        setting = next(iter(by_environment.values())).setting
        cells = [_saving_figure(by_environment[name]) if name in by_environment else "" for name in environments]
        lines.append(f"| {option} | {setting} | " + " | ".join(cells) + " |")
    lines += ["", "What each option assumes and costs:", ""]
    for option, by_environment in options.items():
        assumptions = list(dict.fromkeys(saving.assumption for saving in by_environment.values()))
        if len(assumptions) > 1:
            assumptions = [f"{name}: {saving.assumption}" for name, saving in by_environment.items()]
        caveat = next(iter(by_environment.values())).caveat
        lines.append(f"- **{option}**: assumes {'; '.join(assumptions)}." + (f" Costs: {caveat}." if caveat else ""))
    unpriced = list(dict.fromkeys(s.not_priced for found in savings.values() for s in found if s.not_priced))
    lines += [f"- {text}" for text in unpriced]
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

"""Summarizes a cloud assembly: templates per stack, the validation plugins' findings (cdk-nag AwsSolutions,
CloudFormation Validate) with the acknowledgments in force, and each environment's typical monthly cost.

Exit status 1 only for an unacknowledged violation: a construct's warning is printed (``cdk synth`` fails on
warnings only with ``--strict``), and so is an environment that cannot be priced.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from broker_tier.cloud_assembly import stack_templates
from broker_tier.cost import estimate, templates
from broker_tier.cost.prices import CostError, load_prices


def summarize(outdir: Path) -> tuple[list[str], int]:
    lines, violations = [], 0
    stacks = stack_templates(outdir)
    for name, found in sorted(stacks.items()):
        lines.append(f"  {name}: {len(found.template.get('Resources', {}))} resources")
    report_file = outdir / "validation-report.json"
    plugins = json.loads(report_file.read_text()).get("pluginReports", []) if report_file.exists() else []
    for plugin in plugins:
        findings = plugin.get("violations", [])
        warnings = [v for v in findings if _is_construct_warning(v)]
        count = len(findings) - len(warnings)
        violations += count
        if count:
            lines.append(f"  {plugin['pluginName']}: {count} unacknowledged finding(s)")
        lines += [f"  WARNING {warning['ruleName']}: {warning['description']}" for warning in warnings]
    if not violations:
        lines.append("  validation plugins (cdk-nag AwsSolutions, CloudFormation Validate): 0 unacknowledged findings")
    acknowledged: Counter[str] = Counter()
    for metadata_file in outdir.glob("*.metadata.json"):
        for entries in json.loads(metadata_file.read_text()).values():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    acknowledged.update(rule.partition("::")[2] for rule in entry["data"])
    lines.append(
        f"  acknowledged (each with a reason in the code): "
        f"{', '.join(f'{rule} x{n}' for rule, n in sorted(acknowledged.items())) or 'none'}"
    )
    return [f"{len(stacks)} stack template(s) in {outdir}:"] + lines, violations


def _is_construct_warning(violation: dict) -> bool:
    return violation.get("severity") == "warning" and violation.get("ruleMetadata", {}).get("cdk:annotation") == "true"


def main(argv: list[str]) -> int:
    outdir = Path(argv[0] if argv else "cdk.out")
    lines, violations = summarize(outdir)
    print("\n".join(lines + typical_costs(outdir)))
    return 1 if violations else 0


def typical_costs(outdir: Path) -> list[str]:
    """One line per environment with its typical monthly total at the default assumptions
    (``broker-tier-ops cost`` prints it by line), or why it has none, such as a region without prices.
    A missing price never fails synthesis: the templates are what synthesis makes, the estimate is a summary."""
    prices = load_prices()
    lines = [
        f"  monthly cost, typical load ({prices.currency}, on-demand prices as of {prices.as_of}; "
        f"`broker-tier-ops cost` for the lines and assumptions):"
    ]
    try:
        found = templates.load(outdir)
    except CostError as error:
        return [*lines, f"    no estimate: {error}"]
    for name, environment in found.items():
        region = environment.region or prices.default_region
        if region not in prices.regions:
            lines.append(
                f"    {name} ({region}): not priced: the price table ({prices.path.name}) has "
                f"{', '.join(prices.regions)} only"
            )
            continue
        try:
            (found_estimate,) = estimate.estimate_all(
                found, prices=prices, assumptions=estimate.Assumptions(), environments=[name]
            ).values()
        except CostError as error:
            lines.append(f"    {name} ({region}): no estimate: {error}")
            continue
        lines.append(f"    {name} ({region}): {found_estimate.total.typical:,.2f}")
    return lines


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

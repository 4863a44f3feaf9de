"""Summarizes a cloud assembly: templates per stack, and the findings of the validation plugins
(cdk-nag's AwsSolutions pack, CDK's CloudFormation Validate) with the acknowledgments in force.

Exit status 1 when any plugin reported an unacknowledged violation. A construct's own warning
(``Annotations.add_warning_v2``, which CDK reports as a "Construct Annotations" finding of severity
warning, such as a production environment without an alarm subscription) is printed, not failed:
``cdk synth`` itself fails on warnings only with ``--strict``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from broker_tier.cost import estimate, templates
from broker_tier.cost.prices import CostError, load_prices


def summarize(outdir: Path) -> tuple[list[str], int]:
    manifest = json.loads((outdir / "manifest.json").read_text())
    lines, violations = [], 0
    stacks = {name: a for name, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"}
    for name, artifact in sorted(stacks.items()):
        template = json.loads((outdir / artifact["properties"]["templateFile"]).read_text())
        lines.append(f"  {name}: {len(template.get('Resources', {}))} resources")
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
    cost_lines, priced = typical_costs(outdir)
    print("\n".join(lines + cost_lines))
    return 1 if violations or not priced else 0


def typical_costs(outdir: Path) -> tuple[list[str], bool]:
    """One line per environment with its typical monthly total at the default assumptions
    (``broker-tier-ops cost`` prints it by line); false when an estimate could not be made, e.g. a
    resource or region without a price (the line says why; ``main`` then exits 1)."""
    prices = load_prices()
    try:
        estimates = estimate.estimate_all(templates.load(outdir), prices=prices, assumptions=estimate.Assumptions())
    except CostError as error:
        return [f"  monthly cost estimate failed: {error}"], False
    lines = [
        f"  monthly cost, typical load ({prices.currency}, on-demand prices as of {prices.as_of}; "
        f"`broker-tier-ops cost` for the lines and assumptions):"
    ]
    lines += [f"    {name} ({found.region}): {found.total.typical:,.2f}" for name, found in estimates.items()]
    return lines, True


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

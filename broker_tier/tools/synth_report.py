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
        lines.append("  validation plugins (cdk-nag AwsSolutions, CloudFormation Validate): "
                     "0 unacknowledged findings")
    acknowledged: Counter[str] = Counter()
    for metadata_file in outdir.glob("*.metadata.json"):
        for entries in json.loads(metadata_file.read_text()).values():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    acknowledged.update(rule.partition("::")[2] for rule in entry["data"])
    lines.append(f"  acknowledged (each with a reason in the code): "
                 f"{', '.join(f'{rule} x{n}' for rule, n in sorted(acknowledged.items())) or 'none'}")
    return [f"{len(stacks)} stack template(s) in {outdir}:"] + lines, violations


def _is_construct_warning(violation: dict) -> bool:
    return (violation.get("severity") == "warning"
            and violation.get("ruleMetadata", {}).get("cdk:annotation") == "true")


def main(argv: list[str]) -> int:
    lines, violations = summarize(Path(argv[0] if argv else "cdk.out"))
    print("\n".join(lines))
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Replacement guard: fails when a change would replace or endanger a stateful resource of the tier.

Compares the stateful resources of freshly synthesized templates (``cdk.out``) with the reviewed
baseline in ``baseline/`` and reports, per environment, stack, resource and property:

- a stateful resource whose logical id disappeared (or whose type changed);
- a change to a create-only property (from the CloudFormation resource schemas cfn-lint ships),
  which makes CloudFormation replace the resource;
- a weakened ``DeletionPolicy`` or ``UpdateReplacePolicy``.

Harmless changes (node type, parameters, thresholds, scaling limits) pass. An intentional change
is accepted only by regenerating the baseline (``scripts/update-baseline.sh``) and committing it
for review.

Usage: ``python -m broker_tier.tools.replacement_guard [--update] [--cdk-out cdk.out] [--baseline baseline]``
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import broker_tier_contract as contract

# What is lost when CloudFormation replaces a resource of each stateful type.
CONSEQUENCES = {
    "AWS::ElastiCache::ReplicationGroup": "replaces the replication group: every key is lost (task results, "
                                          "and queued tasks in redis broker mode)",
    "AWS::ElastiCache::SubnetGroup": "replaces the cache subnet group, and with it the replication group "
                                     "(its CacheSubnetGroupName is create-only): every key is lost",
    "AWS::SQS::Queue": "replaces the queue: every message in it is lost",
    "AWS::SecretsManager::Secret": "replaces the secret: the AUTH token changes and clients lose access",
    "AWS::KMS::Key": "replaces the KMS key: data encrypted with the old key can no longer be read once it "
                     "is deleted",
    "AWS::Logs::LogGroup": "replaces the log group: its log history is lost",
    "AWS::EC2::VPC": "replaces the VPC: the cache and services in it must be rebuilt",
}
STATEFUL_TYPES = tuple(CONSEQUENCES)
_POLICY_STRENGTH = {"Delete": 0, None: 0, "Snapshot": 1, "Retain": 2, "RetainExceptOnCreate": 2}
_SCHEMA_REGION = "us-east-1"


def create_only_properties(resource_type: str) -> list[str]:
    """Top-level create-only properties of ``resource_type``, from cfn-lint's provider schemas."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(_SCHEMA_REGION, resource_type).schema
    return sorted({path.split("/")[2] for path in schema.get("createOnlyProperties", [])})


@dataclass(frozen=True)
class Finding:
    environment: str
    stack: str
    resource: str
    resource_type: str
    what: str
    old: Any
    new: Any
    consequence: str

    def __str__(self) -> str:
        return (f"environment '{self.environment}', stack {self.stack}, resource {self.resource} "
                f"({self.resource_type}): {self.what}: {json.dumps(self.old)} -> {json.dumps(self.new)}; "
                f"{self.consequence}")


def stateful_resources(template: dict) -> dict[str, dict]:
    """The stateful resources of a template, reduced to what the guard compares."""
    return {
        logical_id: {key: resource[key] for key in ("Type", "Properties", "DeletionPolicy", "UpdateReplacePolicy")
                     if key in resource}
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") in STATEFUL_TYPES
    }


def compare(environment: str, stack: str, baseline: dict[str, dict], current: dict[str, dict]) -> list[Finding]:
    """Findings for one stack: ``baseline`` and ``current`` are ``stateful_resources`` outputs."""
    findings = []
    for logical_id, old in sorted(baseline.items()):
        resource_type = old["Type"]
        consequence = CONSEQUENCES[resource_type]
        new = current.get(logical_id)

        def finding(what: str, old_value: Any, new_value: Any, why: str = consequence) -> Finding:
            return Finding(environment, stack, logical_id, resource_type, what, old_value, new_value, why)

        if new is None:
            findings.append(finding("resource removed or its logical id changed", logical_id, None,
                                    f"CloudFormation deletes it ({_policy_outcome(old)}) and creates any renamed "
                                    f"copy empty; {consequence}"))
            continue
        if new["Type"] != resource_type:
            findings.append(finding("type changed", resource_type, new["Type"]))
            continue
        old_props, new_props = old.get("Properties", {}), new.get("Properties", {})
        for prop in create_only_properties(resource_type):
            if old_props.get(prop) != new_props.get(prop):
                findings.append(finding(f"create-only property {prop} changed", old_props.get(prop),
                                        new_props.get(prop)))
        for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
            if _POLICY_STRENGTH[new.get(policy)] < _POLICY_STRENGTH[old.get(policy)]:
                findings.append(finding(f"{policy} weakened", old.get(policy), new.get(policy),
                                        f"a later deletion or replacement would no longer keep the data; {consequence}"))
    return findings


def _policy_outcome(resource: dict) -> str:
    policy = resource.get("DeletionPolicy") or "Delete"
    return {"Delete": "DeletionPolicy Delete: the data is deleted", "Snapshot": "a final snapshot is kept",
            "Retain": "the old resource is retained, orphaned"}.get(policy, policy)


def _stacks(cdk_out: Path) -> dict[str, dict]:
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    return {name: json.loads((cdk_out / artifact["properties"]["templateFile"]).read_text())
            for name, artifact in manifest["artifacts"].items() if artifact["type"] == "aws:cloudformation:stack"}


def _environment_of(stack_name: str) -> str:
    parsed = contract.parse_stack_name(stack_name)
    return parsed[0] if parsed else stack_name


def check(cdk_out: Path, baseline_dir: Path) -> tuple[list[Finding], list[str]]:
    """All findings across the stacks in ``cdk_out``, and notes (stacks without a baseline)."""
    findings, notes = [], []
    for stack, template in sorted(_stacks(cdk_out).items()):
        baseline_file = baseline_dir / f"{stack}.json"
        current = stateful_resources(template)
        if not baseline_file.exists():
            if current:
                notes.append(f"{stack}: no baseline yet ({len(current)} stateful resources); "
                             f"run scripts/update-baseline.sh and commit it")
            continue
        findings += compare(_environment_of(stack), stack, json.loads(baseline_file.read_text()), current)
    return findings, notes


def update(cdk_out: Path, baseline_dir: Path) -> list[Path]:
    """Write the stateful resources of every stack in ``cdk_out`` as the new baseline."""
    baseline_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stack, template in sorted(_stacks(cdk_out).items()):
        resources = stateful_resources(template)
        if resources:
            path = baseline_dir / f"{stack}.json"
            path.write_text(json.dumps(resources, indent=1, sort_keys=True) + "\n")
            written.append(path)
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"))
    parser.add_argument("--baseline", type=Path, default=Path("baseline"))
    parser.add_argument("--update", action="store_true",
                        help="accept the current templates as the reviewed baseline (commit the result)")
    args = parser.parse_args(argv)
    if args.update:
        for path in update(args.cdk_out, args.baseline):
            print(f"baseline written: {path}")
        return 0
    findings, notes = check(args.cdk_out, args.baseline)
    for note in notes:
        print(f"note: {note}")
    if findings:
        print(f"replacement guard: {len(findings)} change(s) would replace or endanger stateful resources:")
        for found in findings:
            print(f"  - {found}")
        print("If this is intended, follow runbooks/intentional-replacement.md (scripts/update-baseline.sh, "
              "then review and commit baseline/).")
        return 1
    print("replacement guard: no stateful resource would be replaced or lose its protection")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

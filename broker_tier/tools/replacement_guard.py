"""Replacement guard: fails when a change would replace, delete or endanger a stateful resource of the tier,
judged against the reviewed ``baseline/`` (docs/decisions/replacement-guard.md).

Exit status: 0 nothing endangered; 1 a change would replace, delete or endanger a stateful resource;
2 the guard cannot judge (nothing synthesized, one environment only, or a cdk.out older than cdk.json).

Usage: ``python -m broker_tier.tools.replacement_guard [--update] [--cdk-out cdk.out] [--baseline baseline]
[--cdk-json cdk.json]``
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import broker_tier_contract as contract
from broker_tier.cloud_assembly import stack_templates
from broker_tier.stateful_resources import CONSEQUENCES, STATEFUL_TYPES

CACHE_SUBNET_CONSEQUENCE = (
    "the cache subnet group lists this subnet, so a node of the replication group can run in it (the nodes "
    "spread over the group's AZs): ElastiCache refuses to take a subnet in use out of the subnet group, so the "
    "deployment fails, and moving the node off it means replacing that node (the primary, if it is the one there)"
)
_POLICY_STRENGTH = {"Delete": 0, None: 0, "Snapshot": 1, "Retain": 2, "RetainExceptOnCreate": 2}
_SCHEMA_REGION = "us-east-1"


def create_only_properties(resource_type: str) -> list[str]:
    """Top-level create-only properties of ``resource_type``, from cfn-lint's provider schemas."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(_SCHEMA_REGION, resource_type).schema
    return sorted({path.split("/")[2] for path in schema.get("createOnlyProperties", [])})


@dataclass(frozen=True)
class Finding:
    """One change that would replace, delete or endanger stateful resources."""

    environment: str
    stack: str
    subject: str
    """What is affected: ``resource <logical id> (<type>)``, or ``the whole stack``."""
    change: str
    consequence: str

    def __str__(self) -> str:
        return (
            f"environment '{self.environment}', stack {self.stack}, {self.subject}: {self.change}; {self.consequence}"
        )


def stateful_resources(template: dict) -> dict[str, dict]:
    """The stateful resources of a template, reduced to what the guard compares."""
    return {
        logical_id: {
            key: resource[key]
            for key in ("Type", "Properties", "DeletionPolicy", "UpdateReplacePolicy")
            if key in resource
        }
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") in STATEFUL_TYPES
    }


def _refs(values: Any) -> list[str]:
    """The logical ids a list of ``{"Ref": id}`` values names."""
    return [value["Ref"] for value in values or [] if isinstance(value, dict) and "Ref" in value]


def cache_subnets(resources: dict[str, dict]) -> list[str]:
    """The subnets (logical ids) the cache subnet groups among ``resources`` list, in order."""
    return [
        ref
        for resource in resources.values()
        if resource["Type"] == "AWS::ElastiCache::SubnetGroup"
        for ref in _refs(resource.get("Properties", {}).get("SubnetIds"))
    ]


def _where(resources: dict[str, dict], subnet: str) -> str:
    """A subnet's AZ and CIDR block, as far as the template says them."""
    props = resources.get(subnet, {}).get("Properties", {})
    zone = props.get("AvailabilityZone")
    if isinstance(zone, dict) and "Fn::Select" in zone:
        zone = f"AZ #{zone['Fn::Select'][0] + 1} of the region"
    return ", ".join(str(part) for part in (zone, props.get("CidrBlock")) if part) or "AZ unknown"


def _policy_outcome(resource: dict) -> str:
    """What deleting the resource does, by its DeletionPolicy."""
    policy = resource.get("DeletionPolicy") or "Delete"
    return {
        "Delete": "DeletionPolicy Delete: deleted with its data",
        "Snapshot": "DeletionPolicy Snapshot: deleted after a final snapshot",
        "Retain": "DeletionPolicy Retain: kept, orphaned",
    }.get(policy, f"DeletionPolicy {policy}")


def compare(environment: str, stack: str, baseline: dict[str, dict], current: dict[str, dict]) -> list[Finding]:
    """Findings for one stack: ``baseline`` and ``current`` are ``stateful_resources`` outputs."""
    findings = []
    holding_cache_nodes = set(cache_subnets(baseline))
    for logical_id, old in sorted(baseline.items()):
        resource_type = old["Type"]
        consequence = CONSEQUENCES[resource_type]
        if logical_id in holding_cache_nodes:
            consequence = f"{consequence}; {CACHE_SUBNET_CONSEQUENCE}"
        new = current.get(logical_id)

        def finding(
            change: str, why: str = consequence, resource: str = f"resource {logical_id} ({resource_type})"
        ) -> Finding:
            return Finding(environment, stack, resource, change, why)

        if new is None:
            findings.append(
                finding(
                    "resource removed or its logical id changed",
                    f"CloudFormation deletes it ({_policy_outcome(old)}) and creates any renamed "
                    f"copy empty; {consequence}",
                )
            )
            continue
        if new["Type"] != resource_type:
            findings.append(finding(f"type changed: {resource_type} -> {new['Type']}"))
            continue
        old_props, new_props = old.get("Properties", {}), new.get("Properties", {})
        for prop in create_only_properties(resource_type):
            if old_props.get(prop) != new_props.get(prop):
                findings.append(
                    finding(
                        f"create-only property {prop} changed: {json.dumps(old_props.get(prop))} "
                        f"-> {json.dumps(new_props.get(prop))}"
                    )
                )
        for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
            if _POLICY_STRENGTH[new.get(policy)] < _POLICY_STRENGTH[old.get(policy)]:
                findings.append(
                    finding(
                        f"{policy} weakened: {json.dumps(old.get(policy))} -> {json.dumps(new.get(policy))}",
                        f"a later deletion or replacement would no longer keep the data; {consequence}",
                    )
                )
    findings += _cache_subnets_dropped(environment, stack, baseline, current)
    return findings


def _cache_subnets_dropped(
    environment: str, stack: str, baseline: dict[str, dict], current: dict[str, dict]
) -> list[Finding]:
    """A subnet the cache subnet group listed and no longer lists (fewer AZs, or a subnet swapped)."""
    findings = []
    for logical_id, old in sorted(baseline.items()):
        new = current.get(logical_id)
        if old["Type"] != "AWS::ElastiCache::SubnetGroup" or new is None or new["Type"] != old["Type"]:
            continue
        kept = set(cache_subnets({logical_id: new}))
        for subnet in cache_subnets({logical_id: old}):
            if subnet not in kept:
                findings.append(
                    Finding(
                        environment,
                        stack,
                        f"resource {logical_id} (AWS::ElastiCache::SubnetGroup)",
                        f"subnet {subnet} ({_where(baseline, subnet)}) dropped from the cache subnet group",
                        CACHE_SUBNET_CONSEQUENCE,
                    )
                )
    return findings


def removed_stack(environment: str, stack: str, baseline: dict[str, dict], declared: bool) -> Finding:
    """A baseline stack the app no longer synthesizes, with the stateful resources it holds."""
    groups: dict[tuple[str, str], list[str]] = {}
    for logical_id, resource in sorted(baseline.items()):
        groups.setdefault((resource["Type"], _policy_outcome(resource)), []).append(logical_id)
    held = "; ".join(
        f"{kind} x{len(ids)} ({outcome}): {', '.join(ids)}" for (kind, outcome), ids in sorted(groups.items())
    )
    why = (
        f"environment '{environment}' no longer has this stack"
        if declared
        else f"environment '{environment}' is no longer declared in cdk.json: removed or renamed"
    )
    return Finding(
        environment,
        stack,
        "the whole stack",
        f"no longer synthesized ({why})",
        f"its stateful resources are no longer managed by the app, and destroying the stack (cdk "
        f"destroy, or a pipeline that removes stacks it no longer has) treats each by its DeletionPolicy: {held}; "
        f"a renamed environment starts with new, empty ones",
    )


class CannotJudge(Exception):
    """``cdk.out`` cannot be judged against the baseline (nothing synthesized, an environment missing, or an
    assembly older than ``cdk.json``): the guard refuses, exit status 2, rather than pass or fail on it.
    ``str()`` is the operator's one line: what is wrong and what to run."""


SYNTHESIZE = "run `cdk synth` (or scripts/synth.sh) without -c env, then the guard"


def _stacks(cdk_out: Path, declared: set[str] | None) -> dict[str, dict]:
    """The templates of ``cdk_out`` by stack name, once it is sure they were synthesized from ``cdk.json`` as
    it declares the environments now (``declared``: None when cdk.json cannot be read, then not compared).

    :raises CannotJudge: nothing is synthesized, the assembly is damaged, or it holds an undeclared environment.
    """
    manifest_file = cdk_out / "manifest.json"
    if not manifest_file.is_file():
        why = "no manifest.json: a synthesis failed or did not finish" if cdk_out.is_dir() else "no such directory"
        raise CannotJudge(f"nothing is synthesized in {cdk_out} ({why}): {SYNTHESIZE}")
    try:
        stacks = {name: found.template for name, found in stack_templates(cdk_out).items()}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CannotJudge(
            f"{cdk_out} is incomplete or damaged ({type(error).__name__}: {error}): {SYNTHESIZE}"
        ) from None
    synthesized = {parsed[0] for parsed in map(contract.parse_stack_name, stacks) if parsed}
    undeclared = sorted(synthesized - declared) if declared is not None else []
    if undeclared:
        raise CannotJudge(
            f"{cdk_out} holds stacks of environment(s) {', '.join(undeclared)}, which cdk.json does not "
            f"declare: it was synthesized before cdk.json changed (or from another cdk.json); "
            f"{SYNTHESIZE}"
        )
    return stacks


def _environment_of(stack_name: str) -> str:
    parsed = contract.parse_stack_name(stack_name)
    return parsed[0] if parsed else stack_name


def declared_environments(cdk_json: Path) -> set[str] | None:
    """The environments ``cdk.json`` declares, or None when it cannot be read (then none is excused)."""
    from broker_tier.config import CONTEXT_KEY

    try:
        return set(json.loads(cdk_json.read_text())["context"][CONTEXT_KEY]["environments"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class Result:
    findings: list[Finding]
    notes: list[str]
    """Stacks without a baseline yet."""
    unsynthesized: list[str]
    """Declared environments with no stack in cdk.out: the guard cannot judge them."""


def check(cdk_out: Path, baseline_dir: Path, declared: set[str] | None) -> Result:
    """Compare every stack of ``cdk_out`` and every baseline stack with each other.

    :param declared: the environments cdk.json declares (``declared_environments``).
    :raises CannotJudge: see ``_stacks``.
    """
    stacks = _stacks(cdk_out, declared)
    synthesized = {_environment_of(stack) for stack in stacks}
    findings, notes = [], []
    unsynthesized = sorted((declared or set()) - synthesized)
    for stack, template in sorted(stacks.items()):
        baseline_file = baseline_dir / f"{stack}.json"
        current = stateful_resources(template)
        if not baseline_file.exists():
            if current:
                notes.append(
                    f"{stack}: no baseline yet ({len(current)} stateful resources); "
                    f"run scripts/update-baseline.sh and commit it"
                )
            continue
        findings += compare(_environment_of(stack), stack, json.loads(baseline_file.read_text()), current)
    for baseline_file in sorted(baseline_dir.glob("*.json")):
        stack, environment = baseline_file.stem, _environment_of(baseline_file.stem)
        if stack in stacks or environment in unsynthesized:
            continue
        findings.append(
            removed_stack(
                environment,
                stack,
                json.loads(baseline_file.read_text()),
                declared is not None and environment in declared,
            )
        )
    return Result(findings, notes, unsynthesized)


def update(cdk_out: Path, baseline_dir: Path, declared: set[str] | None) -> tuple[list[Path], list[Path]]:
    """Write the stateful resources of every stack in ``cdk_out`` as the new baseline, and remove the
    baseline of every stack no longer synthesized. Returns (written, removed).

    :raises CannotJudge: a declared environment was not synthesized (its baseline cannot be judged), or see
        ``_stacks``.
    """
    stacks = _stacks(cdk_out, declared)
    missing = sorted((declared or set()) - {_environment_of(stack) for stack in stacks})
    if missing:
        raise CannotJudge(
            f"cdk.out holds no stack of environment(s) {', '.join(missing)}: synthesize every "
            f"environment (cdk synth, without -c env=) before updating the baseline"
        )
    baseline_dir.mkdir(parents=True, exist_ok=True)
    written, removed = [], []
    for stack, template in sorted(stacks.items()):
        resources = stateful_resources(template)
        if resources:
            path = baseline_dir / f"{stack}.json"
            path.write_text(json.dumps(resources, indent=1, sort_keys=True) + "\n")
            written.append(path)
    for path in sorted(baseline_dir.glob("*.json")):
        if path not in written:
            path.unlink()
            removed.append(path)
    return written, removed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"))
    parser.add_argument("--baseline", type=Path, default=Path("baseline"))
    parser.add_argument(
        "--cdk-json",
        type=Path,
        default=Path("cdk.json"),
        help="where the declared environments are read (default: cdk.json)",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="accept the current templates as the reviewed baseline (commit the result)",
    )
    args = parser.parse_args(argv)
    declared = declared_environments(args.cdk_json)
    try:
        if args.update:
            written, removed = update(args.cdk_out, args.baseline, declared)
            for path in written:
                print(f"baseline written: {path}")
            for path in removed:
                print(f"baseline removed (stack no longer synthesized): {path}")
            return 0
        result = check(args.cdk_out, args.baseline, declared)
    except CannotJudge as error:
        print(f"replacement guard: {error}")
        return 2
    for note in result.notes:
        print(f"note: {note}")
    if result.findings:
        print(
            f"replacement guard: {len(result.findings)} change(s) would replace, delete or endanger stateful resources:"
        )
        for found in result.findings:
            print(f"  - {found}")
        print(
            "If this is intended, follow runbooks/intentional-replacement.md (scripts/update-baseline.sh, "
            "then review and commit baseline/)."
        )
    if result.unsynthesized:
        print(
            f"replacement guard: cannot judge environment(s) {', '.join(result.unsynthesized)}: cdk.out holds "
            f"none of their stacks (synthesized with -c env=, or before cdk.json declared them?); {SYNTHESIZE}"
        )
    if result.findings or result.unsynthesized:
        return 1 if result.findings else 2
    print("replacement guard: no stateful resource would be replaced, deleted or lose its protection")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The reviewed compute footprint beside the replacement guard's ``baseline/``: per stack, the properties of its ECS
services, task definitions and scalable targets that the Fargate and SQS lines of the estimate read (size,
architecture, capacity-provider strategy, task counts), in ``baseline/services/``.

The guard's baseline holds stateful resources only, so a cost difference against it could not show what a
change to the workers costs; with this footprint, ``broker-tier-ops cost --compare baseline`` (the cost step of
``scripts/test.sh``) prices a class moved to Fargate Spot or the tasks moved to ARM64 against the reviewed state.
``scripts/update-baseline.sh`` writes it with the guard's baseline (``--update``);
docs/decisions/cost-baseline-holds-the-compute-footprint.md.

Usage: ``python -m broker_tier.cost.baseline --update [--cdk-out cdk.out] [--baseline baseline]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import broker_tier_contract as contract
from broker_tier.cloud_assembly import stack_templates

SERVICES_DIR = "services"
"""Subdirectory of ``baseline/`` (the guard reads only ``baseline/*.json``, so the two never mix)."""
SERVICE, TASK_DEFINITION, SCALABLE_TARGET = (
    "AWS::ECS::Service",
    "AWS::ECS::TaskDefinition",
    "AWS::ApplicationAutoScaling::ScalableTarget",
)
FOOTPRINT_TYPES = frozenset({SERVICE, TASK_DEFINITION, SCALABLE_TARGET})
"""The resource types this footprint holds."""
_KEPT = {
    SERVICE: ("TaskDefinition", "LaunchType", "CapacityProviderStrategy", "DesiredCount", "NetworkConfiguration"),
    TASK_DEFINITION: ("Cpu", "Memory", "RuntimePlatform", "EphemeralStorage"),
    SCALABLE_TARGET: ("ResourceId", "MinCapacity", "MaxCapacity"),
}
_VARIABLES = {
    variable.name
    for variable in (
        contract.ContainerEnvironment.QUEUE,
        contract.ContainerEnvironment.BROKER,
        contract.ContainerEnvironment.TASK_TIME_LIMIT,
        contract.ContainerEnvironment.SOFT_SHUTDOWN_TIMEOUT,
    )
}
"""The container variables the estimate reads (which class a worker consumes, the broker, the Spot rule's limits)."""


def _container(container: dict) -> dict:
    """What the estimate reads of a container: its variables above, and the log group that names its process."""
    kept: dict[str, Any] = {"Name": container.get("Name")}
    variables = [entry for entry in container.get("Environment", []) if entry.get("Name") in _VARIABLES]
    if variables:
        kept["Environment"] = sorted(variables, key=lambda entry: entry["Name"])
    group = container.get("LogConfiguration", {}).get("Options", {}).get("awslogs-group")
    if group is not None:
        kept["LogConfiguration"] = {"Options": {"awslogs-group": group}}
    return kept


def footprint(template: dict) -> dict[str, dict]:
    """The resources of ``template`` the Fargate and SQS lines read, reduced to the properties they read (an image
    tag or a policy change is no cost change)."""
    found = {}
    for logical_id, resource in template.get("Resources", {}).items():
        kind = resource.get("Type")
        if kind not in FOOTPRINT_TYPES:
            continue
        props = resource.get("Properties", {})
        kept = {key: props[key] for key in _KEPT[kind] if key in props}
        if kind == TASK_DEFINITION:
            kept["ContainerDefinitions"] = [_container(c) for c in props.get("ContainerDefinitions", [])]
        if "NetworkConfiguration" in kept:  # a public IP is priced; subnets and security groups are not
            public_ip = kept.pop("NetworkConfiguration").get("AwsvpcConfiguration", {}).get("AssignPublicIp")
            if public_ip is not None:
                kept["NetworkConfiguration"] = {"AwsvpcConfiguration": {"AssignPublicIp": public_ip}}
        found[logical_id] = {"Type": kind, "Properties": kept}
    return found


def read(baseline_dir: Path, stack: str) -> dict[str, dict]:
    """The reviewed footprint of ``stack`` (empty when it has none)."""
    path = baseline_dir / SERVICES_DIR / f"{stack}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def update(cdk_out: Path, baseline_dir: Path) -> list[Path]:
    """Write the footprint of every stack of ``cdk_out`` that has one, and remove those of stacks that have none."""
    directory = baseline_dir / SERVICES_DIR
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for stack, found in sorted(stack_templates(cdk_out).items()):
        resources = footprint(found.template)
        if resources and contract.parse_stack_name(stack):
            path = directory / f"{stack}.json"
            path.write_text(json.dumps(resources, indent=1, sort_keys=True) + "\n")
            written.append(path)
    for path in sorted(directory.glob("*.json")):
        if path not in written:
            path.unlink()
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"))
    parser.add_argument("--baseline", type=Path, default=Path("baseline"))
    parser.add_argument("--update", action="store_true", required=True, help="write baseline/services/ from cdk.out")
    args = parser.parse_args(argv)
    if not (args.cdk_out / "manifest.json").is_file():
        print(f"cost baseline: nothing is synthesized in {args.cdk_out}: run scripts/synth.sh first")
        return 2
    for path in update(args.cdk_out, args.baseline):
        print(f"cost baseline written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

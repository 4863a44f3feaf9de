"""A cloud assembly (``cdk.out``) read back: its stacks' templates and target regions, in the app's order."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

UNKNOWN_REGION = "unknown-region"
"""The region CDK writes into an environment-agnostic stack's artifact."""


@dataclass(frozen=True)
class StackTemplate:
    template: dict
    region: str | None
    """The region the stack targets; None: environment-agnostic."""


def stack_templates(directory: Path) -> dict[str, StackTemplate]:
    """Every CloudFormation stack of the assembly in ``directory``, by stack name.

    :raises OSError, ValueError, KeyError, TypeError: no ``manifest.json``, or a damaged assembly.
    """
    manifest = json.loads((directory / "manifest.json").read_text())
    found = {}
    for name, artifact in manifest["artifacts"].items():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        region = artifact.get("environment", "").rpartition("/")[2]
        found[name] = StackTemplate(
            template=json.loads((directory / artifact["properties"]["templateFile"]).read_text()),
            region=None if region in ("", UNKNOWN_REGION) else region,
        )
    return found

"""cdk-nag wiring: the AwsSolutions pack as a policy-validation plugin, and acknowledgments.

Every acknowledgment carries its reason next to it, at the place that causes the finding.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def add_aws_solutions_checks(app: cdk.App) -> None:
    """Run the AwsSolutions pack at synthesis; any unacknowledged finding fails synth."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge AwsSolutions finding ``rule`` (e.g. ``"IAM5"``) on ``construct`` and below."""
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=f"AwsSolutions-{rule}", reason=reason))


def logical_id_token(construct: IConstruct) -> str:
    """How cdk-nag writes a reference to ``construct``'s resource in a finding id: ``<LogicalId>``."""
    return f"<{cdk.Stack.of(construct).get_logical_id(construct.node.default_child)}>"

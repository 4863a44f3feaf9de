"""cdk-nag wiring: the AwsSolutions pack as a policy-validation plugin, and acknowledgments with their reasons."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def add_aws_solutions_checks(app: cdk.App) -> None:
    """Run the AwsSolutions pack at synthesis; any unacknowledged finding fails synth."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge AwsSolutions finding ``rule`` (e.g. ``"SQS3"``) on ``construct`` and below."""
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=f"AwsSolutions-{rule}", reason=reason))


def acknowledge_wildcard_resource(construct: IConstruct, resource: str, reason: str) -> None:
    """Acknowledge IAM5 for the wildcard ARN ``resource``, exactly as the statement names it.

    The finding id is derived from the ARN the stack renders, so it holds for a pinned stack (literal
    region, account, partition) and an agnostic one (pseudo parameters) alike:
    docs/decisions/nag-acknowledgments-follow-the-stack.md.
    """
    finding = flatten_cfn_reference(cdk.Stack.of(construct).resolve(resource))
    acknowledge(construct, f"IAM5[Resource::{finding}]", reason)


def flatten_cfn_reference(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag 3 writes it in a finding (its ``flattenCfnReference``)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Fn::Join":
            delimiter, items = argument
            return delimiter.join(flatten_cfn_reference(item) for item in items)
        if function in ("Fn::Sub", "Fn::ImportValue"):
            return flatten_cfn_reference(argument)
        if function == "Fn::GetAtt":
            resource, attribute = argument
            return f"<{flatten_cfn_reference(resource)}.{flatten_cfn_reference(attribute)}>"
        if function == "Ref":
            return f"<{flatten_cfn_reference(argument)}>"
    return json.dumps(value, separators=(",", ":"))

"""Constructs on bare stacks: a test module builds its stacks in one app, synthesizes it once (a module
fixture named ``bare``: tests/conftest.py runs the tests that use one in a single pytest-xdist worker), and
reads the templates as JSON."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct
from deployment import Deployment
from tier_testing import project_context


def feature_flags() -> dict[str, Any]:
    """The CDK feature flags of the project's cdk.json, which the tier's app synthesizes with."""
    return {key: value for key, value in project_context().items() if key.startswith("@aws-cdk")}


class BareApp:
    """An app of bare ``cdk.Stack``s (environment-agnostic unless given ``env``) with the project's feature flags
    and ``context``, without cdk-nag or CDK's built-in CloudFormation validation."""

    def __init__(self, context: dict[str, Any] | None = None) -> None:
        # a construct's own template: the checks of a synthesis run on the tier's
        # (docs/decisions/cdk-validation-where-a-team-synthesizes.md)
        self.app = cdk.App(context={**feature_flags(), **(context or {})}, builtin_cloud_formation_validation=False)
        self.templates: dict[str, dict[str, Any]] = {}
        self.built: dict[str, Any] = {}
        """What a fixture built, by stack name (the construct under test), for the tests to read its attributes."""

    def stack(self, name: str, **kwargs: Any) -> cdk.Stack:
        return cdk.Stack(self.app, name, **kwargs)

    @staticmethod
    def logical_id(construct: Construct) -> str:
        """The logical id of ``construct``'s CloudFormation resource (its default child, for an L2)."""
        resource = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
        assert isinstance(resource, cdk.CfnElement), construct.node.path
        stack = cdk.Stack.of(resource)
        logical_id: str = stack.resolve(stack.get_logical_id(resource))
        return logical_id

    def synthesize(self) -> BareApp:
        """Synthesize every stack built so far (once)."""
        assembly = self.app.synth()
        self.templates = {stack.stack_name: stack.template for stack in assembly.stacks}
        return self

    def resources(self, stack: str, resource_type: str) -> dict[str, dict[str, Any]]:
        """Logical id -> resource of every ``resource_type`` in ``stack``; asserts there is at least one."""
        found = {
            logical_id: resource
            for logical_id, resource in self.templates[stack]["Resources"].items()
            if resource["Type"] == resource_type
        }
        assert found, f"no {resource_type} in {stack}"
        return found

    def count(self, stack: str, resource_type: str) -> int:
        return sum(r["Type"] == resource_type for r in self.templates[stack]["Resources"].values())

    def only(self, stack: str, resource_type: str) -> tuple[str, dict[str, Any]]:
        """The logical id and resource of the one ``resource_type`` in ``stack``."""
        ((logical_id, resource),) = self.resources(stack, resource_type).items()
        return logical_id, resource

    def deployment(self) -> Deployment:
        """The stacks as deployed to ``deployment.ACCOUNT``/``REGION`` (intrinsic functions resolved)."""
        return Deployment(self.templates)

    def resolve(self, stack: str, value: Any) -> Any:
        return self.deployment().resolve(stack, value)

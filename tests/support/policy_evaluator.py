"""A small evaluator of resource policies (SNS topic policies, KMS key policies) in synthesized templates.

It follows the IAM evaluation logic for one resource policy: an explicit Deny that matches wins; else an
Allow that matches allows; else the request is implicitly denied. A statement matches when its
principal, action, resource and every condition match the request. What it does not know (NotPrincipal,
an unknown condition operator or intrinsic function) raises, so a policy it cannot judge never passes.

``Resolver`` deploys the templates to one account and region (a pinned template names its own; an agnostic
one gets them as pseudo parameters) and follows ``Ref``, ``Fn::GetAtt``, ``Fn::Join`` and the weak
cross-stack ``Fn::GetStackOutput``. A statement without a principal is an identity policy's: it applies to
the principal the policy is attached to, whoever the request names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from deployment import ACCOUNT, REGION

PARTITION = "aws"


@dataclass(frozen=True)
class Request:
    """Who asks to do what to which resource, and the request context its conditions see."""

    principal: dict[str, str]
    """``{"Service": "cloudwatch.amazonaws.com"}`` or ``{"AWS": "arn:aws:iam::ACCOUNT:role/x"}``."""
    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)
    """Condition keys (case-insensitive, as in IAM) and their values."""


@dataclass(frozen=True)
class Decision:
    outcome: str
    """"allowed", "explicit deny" or "implicit deny"."""
    statements: tuple[str, ...]
    """The Sids (or indexes) of the statements that decided it."""

    @property
    def allowed(self) -> bool:
        return self.outcome == "allowed"


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _principal_matches(statement: dict, principal: dict[str, str]) -> bool:
    if "NotPrincipal" in statement:
        raise NotImplementedError("NotPrincipal")
    if "Principal" not in statement:  # an identity policy's statement
        return True
    given = statement["Principal"]
    if given == "*":
        return True
    for kind, values in given.items():
        for value in _listed(values):
            if kind == "AWS" and value == "*":
                return True  # everyone, AWS services included
            account = value.removeprefix(f"arn:{PARTITION}:iam::").removesuffix(":root") if kind == "AWS" else None
            if kind in principal and (
                value == principal[kind]
                or (
                    account is not None
                    and value in (f"arn:{PARTITION}:iam::{account}:root", account)
                    and principal[kind].startswith(f"arn:{PARTITION}:iam::{account}:")
                )
            ):
                return True
    return False


def _action_matches(statement: dict, action: str) -> bool:
    def any_of(patterns) -> bool:
        return any(fnmatchcase(action.lower(), pattern.lower()) for pattern in _listed(patterns))

    if "NotAction" in statement:
        return not any_of(statement["NotAction"])
    return any_of(statement["Action"])


def _resource_matches(statement: dict, resource: str) -> bool:
    def any_of(patterns) -> bool:
        return any(fnmatchcase(resource, pattern) for pattern in _listed(patterns))

    if "NotResource" in statement:
        return not any_of(statement["NotResource"])
    return any_of(statement["Resource"])


_POSITIVE = {
    "StringEquals": lambda actual, wanted: actual == wanted,
    "StringEqualsIgnoreCase": lambda actual, wanted: actual.lower() == wanted.lower(),
    "StringLike": lambda actual, wanted: fnmatchcase(actual, wanted),
    "ArnEquals": lambda actual, wanted: actual == wanted,
    "ArnLike": lambda actual, wanted: fnmatchcase(actual, wanted),
    "Bool": lambda actual, wanted: actual.lower() == str(wanted).lower(),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition_holds(operator: str, key: str, wanted: Any, context: dict[str, str]) -> bool:
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    lowered = {k.lower(): v for k, v in context.items()}
    if key.lower() not in lowered:  # IAM: a missing key fails a positive test and passes a negated one
        return if_exists or base in _NEGATED
    actual = lowered[key.lower()]
    if base in _NEGATED:
        return not any(_POSITIVE[_NEGATED[base]](actual, value) for value in _listed(wanted))
    if base not in _POSITIVE:
        raise NotImplementedError(f"condition operator {operator}")
    return any(_POSITIVE[base](actual, value) for value in _listed(wanted))


def _conditions_hold(statement: dict, context: dict[str, str]) -> bool:
    return all(
        _condition_holds(operator, key, wanted, context)
        for operator, tests in statement.get("Condition", {}).items()
        for key, wanted in tests.items()
    )


def evaluate(policy: dict, request: Request) -> Decision:
    """The decision of resource policy ``policy`` (resolved: no intrinsic functions left) on ``request``."""
    matching: dict[str, list[str]] = {"Allow": [], "Deny": []}
    for index, statement in enumerate(_listed(policy["Statement"])):
        if (
            _principal_matches(statement, request.principal)
            and _action_matches(statement, request.action)
            and _resource_matches(statement, request.resource)
            and _conditions_hold(statement, request.context)
        ):
            matching[statement["Effect"]].append(statement.get("Sid", str(index)))
    if matching["Deny"]:
        return Decision("explicit deny", tuple(matching["Deny"]))
    if matching["Allow"]:
        return Decision("allowed", tuple(matching["Allow"]))
    return Decision("implicit deny", ())


class Resolver:
    """Resolves intrinsic functions across the templates of one app (stack name -> template)."""

    def __init__(self, templates: dict[str, dict], *, account: str = ACCOUNT, region: str = REGION) -> None:
        self.templates, self.account, self.region = templates, account, region
        self.pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
        }

    def resource(self, stack: str, logical_id: str) -> dict:
        return self.templates[stack]["Resources"][logical_id]

    def resolve(self, value: Any, stack: str) -> Any:
        if isinstance(value, list):
            return [self.resolve(item, stack) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Ref", "Fn::")):
            return {key: self.resolve(item, stack) for key, item in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self.pseudo.get(argument) or self._ref(stack, argument)
        if function == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self._get_att(stack, logical_id, attribute)
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(part) for part in self.resolve(parts, stack))
        if function == "Fn::GetStackOutput":
            other = self.resolve(argument["StackName"], stack)
            output = self.templates[other]["Outputs"][self.resolve(argument["OutputName"], stack)]
            return self.resolve(output["Value"], other)
        raise NotImplementedError(f"{function} in {stack}")

    def _ref(self, stack: str, logical_id: str) -> str:
        resource = self.resource(stack, logical_id)
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::SNS::Topic":  # Ref of a topic is its ARN
            return f"arn:{PARTITION}:sns:{self.region}:{self.account}:{self.resolve(properties['TopicName'], stack)}"
        if kind == "AWS::KMS::Key":
            return f"{stack}-{logical_id}"  # a key id
        raise NotImplementedError(f"Ref of {kind} {logical_id}")

    def _get_att(self, stack: str, logical_id: str, attribute: str) -> str:
        kind = self.resource(stack, logical_id)["Type"]
        if (kind, attribute) == ("AWS::KMS::Key", "Arn"):
            return f"arn:{PARTITION}:kms:{self.region}:{self.account}:key/{self._ref(stack, logical_id)}"
        if (kind, attribute) == ("AWS::SNS::Topic", "TopicArn"):
            return self._ref(stack, logical_id)
        raise NotImplementedError(f"Fn::GetAtt {logical_id}.{attribute} ({kind})")

    def resources_of_type(self, kind: str) -> list[tuple[str, str, dict]]:
        """``(stack, logical id, resource)`` of every resource of ``kind``."""
        return [
            (stack, logical_id, resource)
            for stack, template in self.templates.items()
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == kind
        ]

    def topic(self, arn: str) -> tuple[str, str, dict]:
        (found,) = [
            (stack, logical_id, resource)
            for stack, logical_id, resource in self.resources_of_type("AWS::SNS::Topic")
            if self._ref(stack, logical_id) == arn
        ]
        return found

    def topic_policies(self, arn: str) -> list[dict]:
        """The resolved policy documents attached to the topic ``arn``."""
        return [
            self.resolve(resource["Properties"]["PolicyDocument"], stack)
            for stack, _, resource in self.resources_of_type("AWS::SNS::TopicPolicy")
            if arn in self.resolve(resource["Properties"]["Topics"], stack)
        ]

    def key_policy(self, key: str) -> tuple[str, dict]:
        """``(key ARN, resolved key policy)`` of the key given by ARN or id."""
        for stack, logical_id, resource in self.resources_of_type("AWS::KMS::Key"):
            arn = self._get_att(stack, logical_id, "Arn")
            if key in (arn, self._ref(stack, logical_id)):
                return arn, self.resolve(resource["Properties"]["KeyPolicy"], stack)
        raise KeyError(f"no KMS key {key}")

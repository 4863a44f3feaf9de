"""What CloudFormation would make of a synthesized environment: physical names and attribute values
for its resources, and its templates' intrinsic functions resolved with them.

Tests use it to feed what the stacks really output (and really hand a container) into the tools and
the settings package, so that a name changed on one side and not the other fails a test. Physical
values follow each service's documented formats (queue URLs, ARNs, the primary endpoint's DNS name);
a value given in ``overrides`` (e.g. a moto queue URL) wins.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
REGION = "eu-west-1"


@dataclass
class Deployment:
    """The stacks of one cloud assembly as if deployed to ``account``/``region``."""

    templates: dict[str, dict]
    """Stack name -> synthesized template."""
    account: str = ACCOUNT
    region: str = REGION
    overrides: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """(stack, logical id, attribute or "Ref") -> value, for resources a test created for real."""

    # -- physical values ----------------------------------------------------------------------
    def attribute(self, stack: str, logical_id: str, attribute: str) -> str:
        if (stack, logical_id, attribute) in self.overrides:
            return self.overrides[(stack, logical_id, attribute)]
        resource = self.templates[stack]["Resources"][logical_id]
        kind, props = resource["Type"], resource.get("Properties", {})
        arn = f"arn:aws:{{}}:{self.region}:{self.account}:{{}}"
        if kind == "AWS::SQS::Queue":
            name = self.resolve(stack, props["QueueName"])
            return {
                "Ref": f"https://sqs.{self.region}.amazonaws.com/{self.account}/{name}",
                "Arn": arn.format("sqs", name),
                "QueueName": name,
            }[attribute]
        if kind == "AWS::ElastiCache::ReplicationGroup":
            group = self.resolve(stack, props["ReplicationGroupId"])
            return {
                "Ref": group,
                "PrimaryEndPoint.Address": f"master.{group}.abc123.euw1.cache.amazonaws.com",
                "ReaderEndPoint.Address": f"replica.{group}.abc123.euw1.cache.amazonaws.com",
                "PrimaryEndPoint.Port": str(props.get("Port")),
            }[attribute]
        if kind == "AWS::SecretsManager::Secret":
            return arn.format("secretsmanager", f"secret:{self.resolve(stack, props['Name'])}-AbCdEf")
        if kind == "AWS::SNS::Topic":
            name = self.resolve(stack, props["TopicName"]) if "TopicName" in props else f"{stack}-{logical_id}"
            return {"Ref": arn.format("sns", name), "TopicName": name, "TopicArn": arn.format("sns", name)}[attribute]
        if kind == "AWS::KMS::Key":  # one id per key, so that two keys never pass for each other
            key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{stack}/{logical_id}"))
            return {"Ref": key_id, "Arn": arn.format("kms", f"key/{key_id}"), "KeyId": key_id}[attribute]
        if kind == "AWS::ECS::Cluster":
            return props.get("ClusterName") or f"{stack}-{logical_id}-AbCdEf"
        if kind == "AWS::ECS::Service":
            name = props.get("ServiceName") or f"{stack}-{logical_id}-AbCdEf"
            return {"Name": name, "Ref": arn.format("ecs", f"service/{name}")}[attribute]
        if kind == "AWS::Logs::LogGroup":
            name = self.resolve(stack, props["LogGroupName"]) if "LogGroupName" in props else f"{stack}-{logical_id}"
            return {"Ref": name, "Arn": arn.format("logs", f"log-group:{name}:*")}[attribute]
        if kind == "AWS::ECS::TaskDefinition":
            return arn.format("ecs", f"task-definition/{props.get('Family', logical_id)}:1")
        if kind in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard"):
            name = self.resolve(stack, props.get("AlarmName") or props.get("DashboardName"))
            return {"Ref": name, "Arn": arn.format("cloudwatch", f"alarm:{name}")}[attribute]
        return f"{logical_id.lower()}-{attribute.lower().replace('.', '-')}"  # ids of networking resources

    def outputs(self, stack: str) -> dict[str, str]:
        """The stack's outputs as ``DescribeStacks`` would list them."""
        return {
            key: self.resolve(stack, output["Value"])
            for key, output in self.templates[stack].get("Outputs", {}).items()
        }

    # -- intrinsic functions -----------------------------------------------------------------
    def resolve(self, stack: str, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(stack, item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {key: self.resolve(stack, item) for key, item in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            pseudo = {
                "AWS::Region": self.region,
                "AWS::AccountId": self.account,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::StackName": stack,
            }
            return pseudo[argument] if argument in pseudo else self.attribute(stack, argument, "Ref")
        if function == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.attribute(stack, logical_id, attribute)
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(self.resolve(stack, part)) for part in parts)
        if function == "Fn::GetStackOutput":  # CDK's weak cross-stack reference
            other = self.resolve(stack, argument["StackName"])
            return self.outputs(other)[argument["OutputName"]]
        if function == "Fn::Select":
            index, items = argument
            return self.resolve(stack, items)[int(index)]
        if function == "Fn::GetAZs":
            return [f"{self.region}{letter}" for letter in "abc"]
        if function == "Fn::Sub":
            text = argument if isinstance(argument, str) else argument[0]
            for name, replacement in (argument[1] if isinstance(argument, list) else {}).items():
                text = text.replace("${" + name + "}", str(self.resolve(stack, replacement)))
            for pseudo in ("AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix"):
                text = text.replace("${" + pseudo + "}", self.resolve(stack, {"Ref": pseudo}))
            return text
        raise NotImplementedError(f"{stack}: intrinsic function {function} ({json.dumps(argument)[:120]})")


def container_definitions(template: dict) -> dict[str, dict]:
    """Task definition logical id -> its (single) container definition."""
    return {
        logical_id: resource["Properties"]["ContainerDefinitions"][0]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::ECS::TaskDefinition"
    }

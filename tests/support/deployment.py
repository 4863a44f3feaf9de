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
        physical = _PHYSICAL.get(resource["Type"])
        if physical is None:  # ids of networking resources
            return f"{logical_id.lower()}-{attribute.lower().replace('.', '-')}"
        return physical(self, stack, logical_id, resource.get("Properties", {}), attribute)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def _queue(self, stack: str, logical_id: str, props: dict, attribute: str) -> str:
        name = self.resolve(stack, props["QueueName"])
        url = f"https://sqs.{self.region}.amazonaws.com/{self.account}/{name}"
        return {"Ref": url, "Arn": self.arn("sqs", name), "QueueName": name}[attribute]

    def _replication_group(self, stack: str, logical_id: str, props: dict, attribute: str) -> str:
        group = self.resolve(stack, props["ReplicationGroupId"])
        return {
            "Ref": group,
            "PrimaryEndPoint.Address": f"master.{group}.abc123.euw1.cache.amazonaws.com",
            "ReaderEndPoint.Address": f"replica.{group}.abc123.euw1.cache.amazonaws.com",
            "PrimaryEndPoint.Port": str(props.get("Port")),
        }[attribute]

    def _secret(self, stack: str, logical_id: str, props: dict, attribute: str) -> str:
        return self.arn("secretsmanager", f"secret:{self.resolve(stack, props['Name'])}-AbCdEf")

    def _topic(self, stack: str, logical_id: str, props: dict, attribute: str) -> str:
        name = self.resolve(stack, props["TopicName"]) if "TopicName" in props else f"{stack}-{logical_id}"
        return {"Ref": self.arn("sns", name), "TopicName": name, "TopicArn": self.arn("sns", name)}[attribute]

    def _key(self, stack: str, logical_id: str, props: dict, attribute: str) -> str:
        key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{stack}/{logical_id}"))  # two keys never pass for each other
        return {"Ref": key_id, "Arn": self.arn("kms", f"key/{key_id}"), "KeyId": key_id}[attribute]

    def _cluster(self, stack: str, logical_id: str, props: dict, attribute: str) -> str:
        return props.get("ClusterName") or f"{stack}-{logical_id}-AbCdEf"

    def _service(self, stack: str, logical_id: str, props: dict, attribute: str) -> str:
        name = props.get("ServiceName") or f"{stack}-{logical_id}-AbCdEf"
        return {"Name": name, "Ref": self.arn("ecs", f"service/{name}")}[attribute]

    def _log_group(self, stack: str, logical_id: str, props: dict, attribute: str) -> str:
        name = self.resolve(stack, props["LogGroupName"]) if "LogGroupName" in props else f"{stack}-{logical_id}"
        return {"Ref": name, "Arn": self.arn("logs", f"log-group:{name}:*")}[attribute]

    def _task_definition(self, stack: str, logical_id: str, props: dict, attribute: str) -> str:
        return self.arn("ecs", f"task-definition/{props.get('Family', logical_id)}:1")

    def _alarm_or_dashboard(self, stack: str, logical_id: str, props: dict, attribute: str) -> str:
        name = self.resolve(stack, props.get("AlarmName") or props.get("DashboardName"))
        return {"Ref": name, "Arn": self.arn("cloudwatch", f"alarm:{name}")}[attribute]

    def _bucket(self, stack: str, logical_id: str, props: dict, attribute: str) -> str:
        name = self.resolve(stack, props["BucketName"]) if "BucketName" in props else f"{stack}-{logical_id}".lower()
        return {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}[attribute]

    def _managed_policy(self, stack: str, logical_id: str, props: dict, attribute: str) -> str:
        name = self.resolve(stack, props.get("ManagedPolicyName")) or f"{stack}-{logical_id}-AbCdEf"
        return f"arn:aws:iam::{self.account}:policy/{name}"  # Ref and PolicyArn

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
        function = next(iter(value)) if len(value) == 1 else None
        if function != "Ref" and not (function or "").startswith("Fn::"):  # an object, such as a condition
            return {key: self.resolve(stack, item) for key, item in value.items()}
        argument = value[function]
        if function not in _INTRINSICS:
            raise NotImplementedError(f"{stack}: intrinsic function {function} ({json.dumps(argument)[:120]})")
        return _INTRINSICS[function](self, stack, argument)

    def pseudo_parameters(self, stack: str) -> dict[str, str]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack,
        }

    def _ref(self, stack: str, argument: str) -> Any:
        pseudo = self.pseudo_parameters(stack)
        return pseudo[argument] if argument in pseudo else self.attribute(stack, argument, "Ref")

    def _get_att(self, stack: str, argument: Any) -> Any:
        logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
        return self.attribute(stack, logical_id, attribute)

    def _join(self, stack: str, argument: list) -> str:
        separator, parts = argument
        return separator.join(str(self.resolve(stack, part)) for part in parts)

    def _get_stack_output(self, stack: str, argument: dict) -> Any:  # CDK's weak cross-stack reference
        other = self.resolve(stack, argument["StackName"])
        return self.outputs(other)[argument["OutputName"]]

    def _select(self, stack: str, argument: list) -> Any:
        index, items = argument
        return self.resolve(stack, items)[int(index)]

    def _get_azs(self, stack: str, argument: Any) -> list[str]:
        return [f"{self.region}{letter}" for letter in "abc"]

    def _sub(self, stack: str, argument: Any) -> str:
        text = argument if isinstance(argument, str) else argument[0]
        for name, replacement in (argument[1] if isinstance(argument, list) else {}).items():
            text = text.replace("${" + name + "}", str(self.resolve(stack, replacement)))
        for pseudo, value in self.pseudo_parameters(stack).items():
            if pseudo != "AWS::StackName":
                text = text.replace("${" + pseudo + "}", value)
        return text


_PHYSICAL = {
    "AWS::SQS::Queue": Deployment._queue,
    "AWS::S3::Bucket": Deployment._bucket,
    "AWS::ElastiCache::ReplicationGroup": Deployment._replication_group,
    "AWS::SecretsManager::Secret": Deployment._secret,
    "AWS::SNS::Topic": Deployment._topic,
    "AWS::KMS::Key": Deployment._key,
    "AWS::ECS::Cluster": Deployment._cluster,
    "AWS::ECS::Service": Deployment._service,
    "AWS::Logs::LogGroup": Deployment._log_group,
    "AWS::ECS::TaskDefinition": Deployment._task_definition,
    "AWS::CloudWatch::Alarm": Deployment._alarm_or_dashboard,
    "AWS::CloudWatch::Dashboard": Deployment._alarm_or_dashboard,
    "AWS::IAM::ManagedPolicy": Deployment._managed_policy,
}
"""Resource type -> its physical values, in each service's documented formats."""

_INTRINSICS = {
    "Ref": Deployment._ref,
    "Fn::GetAtt": Deployment._get_att,
    "Fn::Join": Deployment._join,
    "Fn::GetStackOutput": Deployment._get_stack_output,
    "Fn::Select": Deployment._select,
    "Fn::GetAZs": Deployment._get_azs,
    "Fn::Sub": Deployment._sub,
}


def container_definitions(template: dict) -> dict[str, dict]:
    """Task definition logical id -> its (single) container definition."""
    return {
        logical_id: resource["Properties"]["ContainerDefinitions"][0]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::ECS::TaskDefinition"
    }

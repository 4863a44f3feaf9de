"""AWS for the ops tool's tests: moto for what it implements, and a model-validated fake for the rest.

moto 5.2 lacks ElastiCache TestFailover, DescribeEvents and SQS message move tasks and CloudWatch
alarm history, and its replication groups have one member whatever NumCacheClusters says. Those
operations are answered here by patching ``botocore.client.BaseClient._make_api_call`` (moto's
documented way); each fake request and response is validated against botocore's service model,
as ``botocore.stub.Stubber`` does, so a fake that drifts from the real API fails the test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from unittest import mock

import boto3
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

REGION = "eu-west-1"
ENV = "drill"
GROUP = "broker-tier-drill"
CLASSES = ("interactive", "default")
MUTATING_PREFIXES = ("Describe", "Get", "List")


def client_error(operation: str, code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class ApiPatch:
    """Routes (service, operation) pairs to fakes, everything else to moto; records every call."""

    def __init__(self) -> None:
        self.handlers: dict[tuple[str, str], Callable[..., dict]] = {}
        self.calls: list[tuple[str, str, dict]] = []
        self._original = BaseClient._make_api_call
        api = self

        def make_api_call(client: BaseClient, operation: str, params: dict) -> dict:
            return api._route(client, operation, params)

        self._patch = mock.patch.object(BaseClient, "_make_api_call", make_api_call)

    def _route(self, client: BaseClient, operation: str, params: dict) -> dict:
        service = client.meta.service_model.service_name
        self.calls.append((service, operation, params))
        handler = self.handlers.get((service, operation))
        if handler is None:
            return self._original(client, operation, params)
        model = client.meta.service_model.operation_model(operation)
        validate_parameters(params, model.input_shape)
        response = handler(**params)
        validate_parameters(response, model.output_shape)
        return response

    def __enter__(self) -> "ApiPatch":
        self._patch.start()
        return self

    def __exit__(self, *exc) -> None:
        self._patch.stop()

    def mutating_calls(self) -> list[tuple[str, str]]:
        return [(s, op) for s, op, _ in self.calls if not op.startswith(MUTATING_PREFIXES)]


@dataclass
class FakeReplicationGroup:
    """One cluster-mode-disabled replication group whose failover unfolds over describe calls.

    Each Describe* call is one tick. After TestFailover, ElastiCache's events appear in their
    documented order, the primary moves to the first replica in another AZ, and the group is
    ``modifying`` until recovery finished.
    """

    nodes: list[tuple[str, str]] = field(default_factory=lambda: [(f"{GROUP}-001", "eu-west-1a"),
                                                                  (f"{GROUP}-002", "eu-west-1b")])
    primary: str = f"{GROUP}-001"
    status: str = "available"
    multi_az: str = "enabled"
    automatic_failover: str = "enabled"
    events: list[dict] = field(default_factory=list)
    completes: bool = True  # False: the failover never finishes (time-out tests)
    ticks_per_event: int = 2
    fail_on: dict[str, ClientError] = field(default_factory=dict)  # operation -> error to raise
    on_failover: Callable[[], None] | None = None
    modify_calls: list[dict] = field(default_factory=list)
    _pending: list[tuple[int, Callable[[], None]]] = field(default_factory=list)
    _tick: int = 0

    def install(self, api: ApiPatch) -> None:
        for operation in ("DescribeReplicationGroups", "TestFailover", "DescribeEvents", "ModifyReplicationGroup"):
            api.handlers[("elasticache", operation)] = self._guarded(operation, getattr(self, operation))

    def _guarded(self, operation: str, handler: Callable[..., dict]) -> Callable[..., dict]:
        def call(**params) -> dict:
            if operation in self.fail_on:
                raise self.fail_on[operation]
            return handler(**params)
        return call

    def _advance(self) -> None:
        self._tick += 1
        for due, action in [p for p in self._pending if p[0] <= self._tick]:
            self._pending.remove((due, action))
            action()

    def event(self, message: str, source: str = GROUP, source_type: str = "replication-group",
              at: datetime | None = None) -> None:
        self.events.append({"SourceIdentifier": source, "SourceType": source_type, "Message": message,
                            "Date": at or datetime.now(timezone.utc)})

    # -- the API ------------------------------------------------------------------------------
    def DescribeReplicationGroups(self, ReplicationGroupId: str) -> dict:  # noqa: N802, N803
        self._advance()
        if ReplicationGroupId != GROUP:
            raise client_error("DescribeReplicationGroups", "ReplicationGroupNotFoundFault",
                               f"ReplicationGroup {ReplicationGroupId} not found.")
        return {"ReplicationGroups": [self._group()]}

    def _group(self) -> dict:
        members = [{"CacheClusterId": cid, "CacheNodeId": "0001", "PreferredAvailabilityZone": zone,
                    "CurrentRole": "primary" if cid == self.primary else "replica"} for cid, zone in self.nodes]
        return {"ReplicationGroupId": GROUP, "Status": self.status, "MultiAZ": self.multi_az,
                "AutomaticFailover": self.automatic_failover, "MemberClusters": [cid for cid, _ in self.nodes],
                "ClusterEnabled": False,
                "NodeGroups": [{"NodeGroupId": "0001", "Status": self.status, "NodeGroupMembers": members}]}

    def TestFailover(self, ReplicationGroupId: str, NodeGroupId: str) -> dict:  # noqa: N802, N803
        if self.multi_az != "enabled":
            raise client_error("TestFailover", "InvalidReplicationGroupState", "Multi-AZ is disabled")
        old = self.primary
        zone = dict(self.nodes)[old]
        new = next(cid for cid, z in self.nodes if z != zone)
        self.status = "modifying"
        self.event(f"Test Failover API called for node group {NodeGroupId}")
        if self.completes:
            step = self.ticks_per_event

            def completed() -> None:
                self.primary = new
                self.event(f"Failover from primary node {old} to replica node {new} completed")
                if self.on_failover:
                    self.on_failover()

            def recovered() -> None:
                self.event(f"Finished recovery for cache nodes {old}", source=old, source_type="cache-cluster")
                self.status = "available"

            self._pending += [(self._tick + step, completed),
                              (self._tick + 2 * step, lambda: self.event(f"Recovering cache nodes {old}", source=old,
                                                                         source_type="cache-cluster")),
                              (self._tick + 3 * step, recovered)]
        return {"ReplicationGroup": self._group()}

    def DescribeEvents(self, StartTime: datetime | None = None, EndTime: datetime | None = None,  # noqa: N802, N803
                       SourceType: str | None = None, **_: Any) -> dict:
        self._advance()
        found = [e for e in self.events
                 if (StartTime is None or e["Date"] >= StartTime) and (EndTime is None or e["Date"] <= EndTime)
                 and (SourceType is None or e["SourceType"] == SourceType)]
        return {"Events": [dict(e) for e in reversed(found)]}  # newest first, as ElastiCache returns them

    def ModifyReplicationGroup(self, ReplicationGroupId: str, ApplyImmediately: bool = False,  # noqa: N802, N803
                               **changes: Any) -> dict:
        self.modify_calls.append(dict(changes))
        if "PrimaryClusterId" in changes:
            if self.multi_az == "enabled":
                raise client_error("ModifyReplicationGroup", "InvalidParameterCombination",
                                   "Cannot promote a replica while Multi-AZ is enabled")
            self.primary = changes["PrimaryClusterId"]
        if "MultiAZEnabled" in changes:
            self.multi_az = "enabled" if changes["MultiAZEnabled"] else "disabled"
        if "AutomaticFailoverEnabled" in changes:
            self.automatic_failover = "enabled" if changes["AutomaticFailoverEnabled"] else "disabled"
        self.status = "modifying"
        self._pending.append((self._tick + 1, lambda: setattr(self, "status", "available")))
        return {"ReplicationGroup": self._group()}


@dataclass
class FakeAlarmHistory:
    """CloudWatch DescribeAlarmHistory (moto lacks it): state changes to report."""

    items: list[dict] = field(default_factory=list)

    def install(self, api: ApiPatch) -> None:
        api.handlers[("cloudwatch", "DescribeAlarmHistory")] = self.DescribeAlarmHistory

    def fired(self, name: str) -> None:
        self.items.append({"AlarmName": name, "AlarmType": "MetricAlarm", "HistoryItemType": "StateUpdate",
                           "Timestamp": datetime.now(timezone.utc),
                           "HistorySummary": "Alarm updated from OK to ALARM", "HistoryData": "{}"})

    def DescribeAlarmHistory(self, **_: Any) -> dict:  # noqa: N802
        return {"AlarmHistoryItems": list(self.items)}


@dataclass
class FakeMoveTasks:
    """SQS StartMessageMoveTask / ListMessageMoveTasks (moto lacks them), moving real moto messages."""

    sqs: Any
    urls_by_arn: dict[str, str]
    tasks: list[dict] = field(default_factory=list)
    polls_until_done: int = 2
    final_status: str = "COMPLETED"

    def install(self, api: ApiPatch) -> None:
        api.handlers[("sqs", "StartMessageMoveTask")] = self.StartMessageMoveTask
        api.handlers[("sqs", "ListMessageMoveTasks")] = self.ListMessageMoveTasks

    def StartMessageMoveTask(self, SourceArn: str, DestinationArn: str | None = None,  # noqa: N802, N803
                             MaxNumberOfMessagesPerSecond: int | None = None) -> dict:
        handle = f"handle-{len(self.tasks) + 1}"
        self.tasks.insert(0, {"TaskHandle": handle, "Status": "RUNNING", "SourceArn": SourceArn,
                              "DestinationArn": DestinationArn, "ApproximateNumberOfMessagesMoved": 0,
                              "ApproximateNumberOfMessagesToMove": self._visible(SourceArn),
                              "MaxNumberOfMessagesPerSecond": MaxNumberOfMessagesPerSecond,
                              "StartedTimestamp": 1_700_000_000_000, "_polls": 0})
        return {"TaskHandle": handle}

    def ListMessageMoveTasks(self, SourceArn: str, MaxResults: int = 1) -> dict:  # noqa: N802, N803
        results = []
        for task in [t for t in self.tasks if t["SourceArn"] == SourceArn][:MaxResults]:
            if task["Status"] == "RUNNING":
                task["_polls"] += 1
                if task["_polls"] >= self.polls_until_done:
                    task["ApproximateNumberOfMessagesMoved"] = self._move(task["SourceArn"], task["DestinationArn"]) \
                        if self.final_status == "COMPLETED" else 0
                    task["Status"] = self.final_status
                    if self.final_status == "FAILED":
                        task["FailureReason"] = "AWS.SimpleQueueService.NonExistentQueue"
            visible = {k: v for k, v in task.items() if not k.startswith("_") and v is not None}
            if visible["Status"] != "RUNNING":
                visible.pop("TaskHandle")  # SQS returns the handle of running tasks only
            results.append(visible)
        return {"Results": results}

    def _visible(self, arn: str) -> int:
        return int(self.sqs.get_queue_attributes(QueueUrl=self.urls_by_arn[arn], AttributeNames=[
            "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])

    def _move(self, source: str, destination: str) -> int:
        moved = 0
        while messages := self.sqs.receive_message(QueueUrl=self.urls_by_arn[source], MaxNumberOfMessages=10,
                                                   VisibilityTimeout=0).get("Messages"):
            for message in messages:
                self.sqs.send_message(QueueUrl=self.urls_by_arn[destination], MessageBody=message["Body"])
                self.sqs.delete_message(QueueUrl=self.urls_by_arn[source], ReceiptHandle=message["ReceiptHandle"])
                moved += 1
        return moved


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class DeployedTier:
    """The tier's stacks and resources in moto: what ``discover`` reads and the checks look at."""

    clients: dict
    queues: dict[str, dict[str, str]]
    cluster: str = f"{GROUP}-cluster"
    services: tuple[str, ...] = ("worker-interactive", "worker-default", "beat")
    compute_outputs: dict[str, str] = field(default_factory=dict)

    def send_dead_letter(self, class_name: str, body: str = "failed task") -> None:
        self.clients["sqs"].send_message(QueueUrl=self.queues[class_name]["dlq_url"], MessageBody=body)

    def set_lag(self, seconds: float, cluster_id: str = f"{GROUP}-002") -> None:
        self.clients["cloudwatch"].put_metric_data(Namespace="AWS/ElastiCache", MetricData=[{
            "MetricName": "ReplicationLag", "Dimensions": [{"Name": "CacheClusterId", "Value": cluster_id}],
            "Value": seconds, "Timestamp": datetime.now(timezone.utc) - timedelta(minutes=1)}])

    def add_alarm(self, suffix: str, state: str = "OK") -> str:
        name = f"broker-tier-{ENV}-{suffix}"
        cloudwatch = self.clients["cloudwatch"]
        cloudwatch.put_metric_alarm(AlarmName=name, Namespace="AWS/SQS", MetricName="x", Statistic="Maximum",
                                    Period=60, EvaluationPeriods=1, Threshold=0,
                                    ComparisonOperator="GreaterThanThreshold")
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")
        return name

    def add_toolbox_network(self) -> None:
        """A VPC, two subnets and a security group in moto (RunTask checks them), named in the Compute outputs."""
        ec2 = boto3.client("ec2", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        vpc = ec2.create_vpc(CidrBlock="10.64.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # as the tier's VPC (moto needs it)
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.64.{n}.0/24")["Subnet"]["SubnetId"] for n in (1, 2)]
        group = ec2.create_security_group(GroupName="toolbox", Description="toolbox", VpcId=vpc)["GroupId"]
        self.compute_outputs.update({"ToolboxSecurityGroupId": group, "ToolboxSubnetIds": ",".join(subnets)})
        self.clients["cloudformation"].update_stack(StackName=f"BrokerTier-{ENV}-Compute",
                                                    TemplateBody=stack_body(self.compute_outputs))

    def unsteady(self, service: str) -> None:
        """Recreate ``service`` wanting a task moto never starts: services_stable never holds.
        (moto's UpdateService reports the new desired count as running at once.)"""
        ecs = self.clients["ecs"]
        ecs.delete_service(cluster=self.cluster, service=service, force=True)
        ecs.create_service(cluster=self.cluster, serviceName=service, taskDefinition="celery", desiredCount=1)


def stack_body(outputs: dict[str, str]) -> str:
    return json.dumps({"Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
                       "Outputs": {key: {"Value": value} for key, value in outputs.items()}})


def make_clients() -> dict:
    """boto3 clients for the ops tool; moto intercepts them whenever a ``mock_aws`` is active, so a
    test session can create them once (creating clients costs more than the calls)."""
    return {name: boto3.client(name, region_name=REGION, aws_access_key_id="testing",
                               aws_secret_access_key="testing")
            for name in ("cloudformation", "elasticache", "cloudwatch", "sqs", "ecs")}


def deploy_tier(clients: dict) -> DeployedTier:
    """Inside ``mock_aws``: queues, ECS services (desired 0: steady in moto), and the three stacks' outputs."""
    sqs, ecs = clients["sqs"], clients["ecs"]
    queues, state_outputs = {}, {"ReplicationGroupId": GROUP}
    for name in CLASSES:
        urls = {kind: sqs.create_queue(QueueName=f"broker-tier-{ENV}-{name}{suffix}")["QueueUrl"]
                for kind, suffix in (("url", ""), ("dlq_url", "-dlq"))}
        arns = {kind: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                for kind, url in urls.items()}
        queues[name] = {**urls, "arn": arns["url"], "dlq_arn": arns["dlq_url"]}
        title = name.title()
        state_outputs.update({f"Queue{title}Url": urls["url"], f"Queue{title}Arn": arns["url"],
                              f"Queue{title}Name": f"broker-tier-{ENV}-{name}",
                              f"DeadLetterQueue{title}Url": urls["dlq_url"], f"DeadLetterQueue{title}Arn": arns["dlq_url"]})
    tier = DeployedTier(clients, queues)
    ecs.create_cluster(clusterName=tier.cluster)
    ecs.register_task_definition(family="celery", containerDefinitions=[{"name": "celery", "image": "x", "memory": 512}])
    for service in tier.services:
        ecs.create_service(cluster=tier.cluster, serviceName=service, taskDefinition="celery", desiredCount=0)
    toolbox = ecs.register_task_definition(
        family="toolbox", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "toolbox", "image": "redis", "command": ["sleep", "3600"], "memory": 512}])
    compute_outputs = {"ClusterName": tier.cluster, "BeatServiceName": "beat",
                       **{f"WorkerService{n.title()}Name": f"worker-{n}" for n in CLASSES},
                       "ToolboxTaskDefinitionArn": toolbox["taskDefinition"]["taskDefinitionArn"],
                       # no such network in moto until add_toolbox_network (EC2 in moto costs ~0.5 s a test)
                       "ToolboxSecurityGroupId": "sg-0123456789abcdef0",
                       "ToolboxSubnetIds": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
                       "OperatorLogGroupName": f"/broker-tier-{ENV}/operator"}
    state_outputs.update({"PrimaryEndpointAddress": f"master.{GROUP}.abc123.euw1.cache.amazonaws.com",
                          "RedisPort": "6380"})
    tier.compute_outputs = compute_outputs
    for part, outputs in (("State", state_outputs), ("Compute", compute_outputs),
                          ("Monitoring", {"AlarmNamePrefix": f"broker-tier-{ENV}-"})):
        clients["cloudformation"].create_stack(StackName=f"BrokerTier-{ENV}-{part}", TemplateBody=stack_body(outputs))
    tier.set_lag(0.2)
    tier.add_alarm("redis-memory-warning")
    return tier

"""AWS for the ops tool's tests: moto for what it implements, and a model-validated fake for the rest.

moto 5.2 lacks ElastiCache TestFailover, DescribeEvents and SQS message move tasks and CloudWatch
alarm history, and its replication groups have one member whatever NumCacheClusters says. Those
operations are answered here by patching ``botocore.client.BaseClient._make_api_call`` (moto's
documented way); each fake request and response is validated against botocore's service model,
as ``botocore.stub.Stubber`` does, so a fake that drifts from the real API fails the test.

moto serves SQS, CloudWatch Logs and AWS FIS (templates, experiments and their states) itself;
what has no AWS API here, a worker running canaries and ElastiCache reacting to an AZ power
interruption, is played by ``FakeCanaryWorker`` and ``FakeReplicationGroup.interrupt_az`` on top.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import boto3
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

import broker_tier_contract as contract
from broker_tier.ops.canary import CanaryOptions

REGION = "eu-west-1"
ENV = "drill"
GROUP = contract.default_replication_group_id(ENV)
CLASSES = ("interactive", "default")
MUTATING_PREFIXES = ("Describe", "Get", "List", "Filter")
ACCOUNT = "123456789012"
ZONES = ("eu-west-1a", "eu-west-1b")
# Canaries in real time (the sender's thread), briefly and fast: 20/s for 0.2 s around the fault, not the
# drill's default 10 s before and 30 s after, which would only make a test wait.
FAST_CANARY = CanaryOptions(rate_per_second=20, lead_seconds=0.2, tail_seconds=0.2)
FAST_CANARY_ARGS = [
    "--canary-rate",
    f"{FAST_CANARY.rate_per_second:g}",
    "--canary-lead",
    f"{FAST_CANARY.lead_seconds:g}",
    "--canary-tail",
    f"{FAST_CANARY.tail_seconds:g}",
]
"""The same, as ``broker-tier-ops failover`` options."""


def client_error(operation: str, code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class ApiPatch:
    """Routes (service, operation) pairs to fakes, everything else to moto; records every call."""

    def __init__(self) -> None:
        self.handlers: dict[tuple[str, str], Callable[..., dict]] = {}
        self.observers: dict[tuple[str, str], Callable[[dict], None]] = {}
        """Called with the request before it is answered (fakes that act on what the code does)."""
        self.calls: list[tuple[str, str, dict]] = []
        self._original = BaseClient._make_api_call
        api = self

        def make_api_call(client: BaseClient, operation: str, params: dict) -> dict:
            return api._route(client, operation, params)

        self._patch = mock.patch.object(BaseClient, "_make_api_call", make_api_call)

    def _route(self, client: BaseClient, operation: str, params: dict) -> dict:
        service = client.meta.service_model.service_name
        self.calls.append((service, operation, params))
        if (service, operation) in self.observers:
            self.observers[(service, operation)](params)
        handler = self.handlers.get((service, operation))
        if handler is None:
            return self._original(client, operation, params)
        model = client.meta.service_model.operation_model(operation)
        validate_parameters(params, model.input_shape)
        response = handler(**params)
        # (ResponseMetadata is botocore's own, not the model's: a handler that defers to moto returns it)
        validate_parameters({k: v for k, v in response.items() if k != "ResponseMetadata"}, model.output_shape)
        return response

    def __enter__(self) -> ApiPatch:
        self._patch.start()
        return self

    def __exit__(self, *exc) -> None:
        self._patch.stop()

    def mutating_calls(self) -> list[tuple[str, str]]:
        return [(s, op) for s, op, _ in self.calls if not op.startswith(MUTATING_PREFIXES)]

    def passthrough(self, client: BaseClient, operation: str, **params) -> dict:
        """Call moto directly: what a fake does itself is not a call of the code under test."""
        return self._original(client, operation, params)


@dataclass
class FakeReplicationGroup:
    """One cluster-mode-disabled replication group whose failover unfolds over describe calls.

    Each Describe* call is one tick. After TestFailover, ElastiCache's events appear in their
    documented order, the primary moves to the first replica in another AZ, and the group is
    ``modifying`` until recovery finished.
    """

    nodes: list[tuple[str, str]] = field(
        default_factory=lambda: [(f"{GROUP}-001", "eu-west-1a"), (f"{GROUP}-002", "eu-west-1b")]
    )
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
    tags: dict[str, str] = field(default_factory=lambda: {"broker-tier:fault-injection-target": GROUP})
    az_power_events: bool = False
    """Whether an AZ power interruption also writes a "failover completed" event (its text is not
    documented): False leaves the drill only the role change to notice."""
    _pending: list[tuple[int, Callable[[], None]]] = field(default_factory=list)
    _tick: int = 0

    @property
    def arn(self) -> str:
        return f"arn:aws:elasticache:{REGION}:{ACCOUNT}:replicationgroup:{GROUP}"

    def install(self, api: ApiPatch) -> None:
        for operation in (
            "DescribeReplicationGroups",
            "TestFailover",
            "DescribeEvents",
            "ModifyReplicationGroup",
            "ListTagsForResource",
        ):
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

    def event(
        self, message: str, source: str = GROUP, source_type: str = "replication-group", at: datetime | None = None
    ) -> None:
        self.events.append(
            {
                "SourceIdentifier": source,
                "SourceType": source_type,
                "Message": message,
                "Date": at or datetime.now(UTC),
            }
        )

    # -- the API ------------------------------------------------------------------------------
    def DescribeReplicationGroups(self, ReplicationGroupId: str) -> dict:  # noqa: N802, N803
        self._advance()
        if ReplicationGroupId != GROUP:
            raise client_error(
                "DescribeReplicationGroups",
                "ReplicationGroupNotFoundFault",
                f"ReplicationGroup {ReplicationGroupId} not found.",
            )
        return {"ReplicationGroups": [self._group()]}

    def _group(self) -> dict:
        members = [
            {
                "CacheClusterId": cid,
                "CacheNodeId": "0001",
                "PreferredAvailabilityZone": zone,
                "CurrentRole": "primary" if cid == self.primary else "replica",
            }
            for cid, zone in self.nodes
        ]
        return {
            "ReplicationGroupId": GROUP,
            "ARN": self.arn,
            "Status": self.status,
            "MultiAZ": self.multi_az,
            "AutomaticFailover": self.automatic_failover,
            "MemberClusters": [cid for cid, _ in self.nodes],
            "ClusterEnabled": False,
            "NodeGroups": [{"NodeGroupId": "0001", "Status": self.status, "NodeGroupMembers": members}],
        }

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

            self._pending += [
                (self._tick + step, completed),
                (
                    self._tick + 2 * step,
                    lambda: self.event(f"Recovering cache nodes {old}", source=old, source_type="cache-cluster"),
                ),
                (self._tick + 3 * step, recovered),
            ]
        return {"ReplicationGroup": self._group()}

    def interrupt_az(self, zone: str) -> None:
        """AWS FIS cut the power of ``zone``: a primary there fails over to a replica elsewhere."""
        old = self.primary
        if dict(self.nodes)[old] != zone:
            return
        new = next(cid for cid, z in self.nodes if z != zone)

        def failed_over() -> None:
            self.primary = new
            if self.az_power_events:
                self.event(f"Failover from primary node {old} to replica node {new} completed")
            if self.on_failover:
                self.on_failover()

        self._pending.append((self._tick + self.ticks_per_event, failed_over))

    def ListTagsForResource(self, ResourceName: str) -> dict:  # noqa: N802, N803
        if ResourceName != self.arn:
            raise client_error("ListTagsForResource", "InvalidARN", f"{ResourceName} is not a known resource")
        return {"TagList": [{"Key": key, "Value": value} for key, value in self.tags.items()]}

    def DescribeEvents(
        self,
        StartTime: datetime | None = None,
        EndTime: datetime | None = None,  # noqa: N802, N803
        SourceType: str | None = None,
        **_: Any,
    ) -> dict:
        self._advance()
        found = [
            e
            for e in self.events
            if (StartTime is None or e["Date"] >= StartTime)
            and (EndTime is None or e["Date"] <= EndTime)
            and (SourceType is None or e["SourceType"] == SourceType)
        ]
        return {"Events": [dict(e) for e in reversed(found)]}  # newest first, as ElastiCache returns them

    def ModifyReplicationGroup(
        self,
        ReplicationGroupId: str,
        ApplyImmediately: bool = False,  # noqa: N802, N803
        **changes: Any,
    ) -> dict:
        self.modify_calls.append(dict(changes))
        if "PrimaryClusterId" in changes:
            if self.multi_az == "enabled":
                raise client_error(
                    "ModifyReplicationGroup",
                    "InvalidParameterCombination",
                    "Cannot promote a replica while Multi-AZ is enabled",
                )
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
        self.items.append(
            {
                "AlarmName": name,
                "AlarmType": "MetricAlarm",
                "HistoryItemType": "StateUpdate",
                "Timestamp": datetime.now(UTC),
                "HistorySummary": "Alarm updated from OK to ALARM",
                "HistoryData": "{}",
            }
        )

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

    def StartMessageMoveTask(
        self,
        SourceArn: str,
        DestinationArn: str | None = None,  # noqa: N802, N803
        MaxNumberOfMessagesPerSecond: int | None = None,
    ) -> dict:
        handle = f"handle-{len(self.tasks) + 1}"
        self.tasks.insert(
            0,
            {
                "TaskHandle": handle,
                "Status": "RUNNING",
                "SourceArn": SourceArn,
                "DestinationArn": DestinationArn,
                "ApproximateNumberOfMessagesMoved": 0,
                "ApproximateNumberOfMessagesToMove": self._visible(SourceArn),
                "MaxNumberOfMessagesPerSecond": MaxNumberOfMessagesPerSecond,
                "StartedTimestamp": 1_700_000_000_000,
                "_polls": 0,
            },
        )
        return {"TaskHandle": handle}

    def ListMessageMoveTasks(self, SourceArn: str, MaxResults: int = 1) -> dict:  # noqa: N802, N803
        results = []
        for task in [t for t in self.tasks if t["SourceArn"] == SourceArn][:MaxResults]:
            if task["Status"] == "RUNNING":
                task["_polls"] += 1
                if task["_polls"] >= self.polls_until_done:
                    task["ApproximateNumberOfMessagesMoved"] = (
                        self._move(task["SourceArn"], task["DestinationArn"]) if self.final_status == "COMPLETED" else 0
                    )
                    task["Status"] = self.final_status
                    if self.final_status == "FAILED":
                        task["FailureReason"] = "AWS.SimpleQueueService.NonExistentQueue"
            visible = {k: v for k, v in task.items() if not k.startswith("_") and v is not None}
            if visible["Status"] != "RUNNING":
                visible.pop("TaskHandle")  # SQS returns the handle of running tasks only
            results.append(visible)
        return {"Results": results}

    def _visible(self, arn: str) -> int:
        return int(
            self.sqs.get_queue_attributes(
                QueueUrl=self.urls_by_arn[arn], AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )

    def _move(self, source: str, destination: str) -> int:
        moved = 0
        while messages := self.sqs.receive_message(
            QueueUrl=self.urls_by_arn[source], MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages"):
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
    services: tuple[str, ...] = (*(contract.worker_process(name) for name in CLASSES), contract.BEAT_PROCESS)
    az_power_templates: list[str] = field(default_factory=list)
    compute_outputs: dict[str, str] = field(default_factory=dict)

    def send_dead_letter(self, class_name: str, body: str = "failed task") -> None:
        self.clients["sqs"].send_message(QueueUrl=self.queues[class_name]["dlq_url"], MessageBody=body)

    def set_lag(self, seconds: float, cluster_id: str = f"{GROUP}-002") -> None:
        self.clients["cloudwatch"].put_metric_data(
            Namespace="AWS/ElastiCache",
            MetricData=[
                {
                    "MetricName": "ReplicationLag",
                    "Dimensions": [{"Name": "CacheClusterId", "Value": cluster_id}],
                    "Value": seconds,
                    "Timestamp": datetime.now(UTC) - timedelta(minutes=1),
                }
            ],
        )

    def add_alarm(self, suffix: str, state: str = "OK", threshold: float = 0) -> str:
        name = contract.alarm_name(ENV, suffix)
        cloudwatch = self.clients["cloudwatch"]
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/SQS",
            MetricName="x",
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=threshold,
            ComparisonOperator="GreaterThanThreshold",
        )
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")
        return name

    def add_toolbox_network(self) -> None:
        """A VPC, two subnets and a security group in moto (RunTask checks them), named in the Compute outputs."""
        ec2 = boto3.client("ec2", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        vpc = ec2.create_vpc(CidrBlock="10.64.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # as the tier's VPC (moto needs it)
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.64.{n}.0/24")["Subnet"]["SubnetId"] for n in (1, 2)]
        group = ec2.create_security_group(GroupName="toolbox", Description="toolbox", VpcId=vpc)["GroupId"]
        names = contract.ComputeOutputs
        self.compute_outputs.update(
            {names.TOOLBOX_SECURITY_GROUP_ID: group, names.TOOLBOX_SUBNET_IDS: ",".join(subnets)}
        )
        self.clients["cloudformation"].update_stack(
            StackName=contract.stack_name(ENV, contract.COMPUTE), TemplateBody=stack_body(self.compute_outputs)
        )

    def unsteady(self, service: str) -> None:
        """Recreate ``service`` wanting a task moto never starts: services_stable never holds.
        (moto's UpdateService reports the new desired count as running at once.)"""
        ecs = self.clients["ecs"]
        ecs.delete_service(cluster=self.cluster, service=service, force=True)
        ecs.create_service(cluster=self.cluster, serviceName=service, taskDefinition="celery", desiredCount=1)


def stack_body(outputs: dict[str, str]) -> str:
    """A template with ``outputs`` (moto needs one resource to create a stack)."""
    return json.dumps(
        {
            "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
    )


def make_clients() -> dict:
    """boto3 clients for the ops tool; moto intercepts them whenever a ``mock_aws`` is active, so a
    test session can create them once (creating clients costs more than the calls)."""
    return {
        name: boto3.client(name, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        for name in ("cloudformation", "elasticache", "cloudwatch", "sqs", "ecs", "logs", "fis")
    }


@dataclass
class FakeCanaryWorker:
    """The reference worker's canary, as the drill sees it. Whenever the drill reads the ledger
    (FilterLogEvents), the canaries waiting in each class's queue (moto) are received, decoded from
    kombu's envelope and "run": one ledger line per run goes to the class's worker log group (moto),
    at the message's SQS SentTimestamp plus ``latency_seconds``, and the message is deleted.

    ``runs(token)`` says how often a canary runs (0: lost, 2: run twice); ``block(seconds)`` makes
    canaries that would run in the next ``seconds`` run only at their end, like a worker stuck on a
    Redis write."""

    api: ApiPatch
    clients: dict
    queue_urls: dict[str, str]
    runs: Callable[[str], int] = lambda token: 1
    latency_seconds: float = 0.05
    blocked: tuple[float, float] | None = None
    """(from, until), Unix times: canaries that would run in between run only at ``until``."""
    received: list[dict] = field(default_factory=list)
    _streams: set[str] = field(default_factory=set)

    def install(self) -> None:
        self.api.observers[("logs", "FilterLogEvents")] = lambda params: self.drain()

    def block(self, seconds: float) -> None:
        """From now on, for ``seconds``, the worker is stuck (e.g. on a Redis write)."""
        now = time.time()
        self.blocked = (now, now + seconds)

    def drain(self) -> None:
        sqs, logs = self.clients["sqs"], self.clients["logs"]
        for class_name, url in self.queue_urls.items():
            events = []
            while messages := self.api.passthrough(
                sqs,
                "ReceiveMessage",
                QueueUrl=url,
                MaxNumberOfMessages=10,
                MessageSystemAttributeNames=["SentTimestamp"],
            ).get("Messages"):
                for message in messages:
                    events += self._run(message, class_name)
                    self.api.passthrough(sqs, "DeleteMessage", QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if events:
                group = contract.service_log_group_name(ENV, contract.worker_process(class_name))
                if group not in self._streams:
                    self.api.passthrough(logs, "CreateLogStream", logGroupName=group, logStreamName="celery/worker")
                    self._streams.add(group)
                self.api.passthrough(
                    logs,
                    "PutLogEvents",
                    logGroupName=group,
                    logStreamName="celery/worker",
                    logEvents=sorted(events, key=lambda e: e["timestamp"]),
                )

    def _run(self, message: dict, class_name: str) -> list[dict]:
        envelope = json.loads(base64.b64decode(message["Body"]))
        self.received.append(envelope)
        if envelope["headers"]["task"] != contract.CANARY_TASK:
            return []
        (token,), _, _ = json.loads(base64.b64decode(envelope["body"]))
        sent = int(message["Attributes"]["SentTimestamp"]) / 1000
        at = min(sent + self.latency_seconds, time.time())  # it ran before anyone could read its line
        if self.blocked is not None and self.blocked[0] <= at < self.blocked[1]:
            at = self.blocked[1]
        line = contract.canary_ledger_line(
            {
                "token": token,
                "task_id": envelope["headers"]["id"],
                "queue": class_name,
                "hostname": "ip-10-64-1-1",
                "pid": 7,
                "at": round(at, 3),
            }
        )
        return [
            {"timestamp": int(at * 1000), "message": f"[WARNING/ForkPoolWorker-{run}] {line}"}
            for run in range(1, self.runs(token) + 1)
        ]


def create_az_power_templates(fis) -> list[str]:
    """The experiment templates the Monitoring stack creates with ``fault_injection.az_power``, one per zone."""
    ids = []
    for zone in ZONES:
        ids.append(
            fis.create_experiment_template(
                clientToken=f"template-{zone}",
                description=f"broker-tier {ENV}: interrupt the power of {zone}",
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/fis",
                stopConditions=[
                    {
                        "source": "aws:cloudwatch:alarm",
                        "value": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:"
                        f"{contract.alarm_name(ENV, contract.FAULT_INJECTION_STOP_ALARM)}",
                    }
                ],
                targets={
                    contract.AZ_POWER_TARGET: {
                        "resourceType": "aws:elasticache:replicationgroup",
                        "selectionMode": "ALL",
                        "resourceTags": {contract.FAULT_INJECTION_TARGET_TAG: GROUP},
                        "parameters": {contract.AZ_POWER_ZONE_PARAMETER: zone},
                    }
                },
                actions={
                    "InterruptAzPower": {
                        "actionId": contract.AZ_POWER_ACTION,
                        "parameters": {"duration": "PT5M"},
                        "targets": {contract.AZ_POWER_TARGET: contract.AZ_POWER_TARGET},
                    }
                },
            )["experimentTemplate"]["id"]
        )
    return ids


def deploy_tier(clients: dict, *, broker: str = "sqs", az_power: bool = True) -> DeployedTier:
    """Inside ``mock_aws``: queues, worker log groups, ECS services (desired 0: steady in moto), the
    replication-lag alarm, the AZ power experiment templates, and the three stacks' outputs, named as the
    stacks name them (``broker_tier_contract``)."""
    sqs, ecs = clients["sqs"], clients["ecs"]
    queues, state_outputs = {}, {contract.StateOutputs.REPLICATION_GROUP_ID: GROUP}
    for name in CLASSES:
        names = {"url": contract.queue_name(ENV, name), "dlq_url": contract.dead_letter_queue_name(ENV, name)}
        urls = {kind: sqs.create_queue(QueueName=queue)["QueueUrl"] for kind, queue in names.items()}
        arns = {
            kind: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            for kind, url in urls.items()
        }
        queues[name] = {**urls, "arn": arns["url"], "dlq_arn": arns["dlq_url"]}
        for kind, key in (("Queue", "url"), ("DeadLetterQueue", "dlq_url")):
            state_outputs.update(
                {
                    contract.queue_output_id(kind, name, "Url"): urls[key],
                    contract.queue_output_id(kind, name, "Arn"): arns[key],
                    contract.queue_output_id(kind, name, "Name"): names[key],
                }
            )
    tier = DeployedTier(clients, queues)
    ecs.create_cluster(clusterName=tier.cluster)
    ecs.register_task_definition(
        family="celery", containerDefinitions=[{"name": "celery", "image": "x", "memory": 512}]
    )
    for service in tier.services:
        ecs.create_service(cluster=tier.cluster, serviceName=service, taskDefinition="celery", desiredCount=0)
    toolbox = ecs.register_task_definition(
        family="toolbox",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "toolbox", "image": "redis", "command": ["sleep", "3600"], "memory": 512}],
    )
    names = contract.ComputeOutputs
    compute_outputs = {
        names.CLUSTER_NAME: tier.cluster,
        names.BEAT_SERVICE_NAME: contract.BEAT_PROCESS,
        names.BROKER: broker,
        **{contract.worker_service_output_id(n): contract.worker_process(n) for n in CLASSES},
        names.TOOLBOX_TASK_DEFINITION_ARN: toolbox["taskDefinition"]["taskDefinitionArn"],
        # no such network in moto until add_toolbox_network (EC2 in moto costs ~0.5 s a test)
        names.TOOLBOX_SECURITY_GROUP_ID: "sg-0123456789abcdef0",
        names.TOOLBOX_SUBNET_IDS: "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
        names.OPERATOR_LOG_GROUP_NAME: contract.operator_log_group_name(ENV),
    }
    state_outputs.update(
        {
            contract.StateOutputs.PRIMARY_ENDPOINT_ADDRESS: f"master.{GROUP}.abc123.euw1.cache.amazonaws.com",
            contract.StateOutputs.REDIS_PORT: "6380",
        }
    )
    tier.compute_outputs = compute_outputs
    for name in CLASSES:
        clients["logs"].create_log_group(
            logGroupName=contract.service_log_group_name(ENV, contract.worker_process(name))
        )
    monitoring_outputs = {contract.MonitoringOutputs.ALARM_NAME_PREFIX: contract.alarm_name_prefix(ENV)}
    if az_power:
        tier.az_power_templates = create_az_power_templates(clients["fis"])
        monitoring_outputs[contract.MonitoringOutputs.AZ_POWER_EXPERIMENT_TEMPLATE_IDS] = ",".join(
            tier.az_power_templates
        )
    for part, outputs in (
        (contract.STATE, state_outputs),
        (contract.COMPUTE, compute_outputs),
        (contract.MONITORING, monitoring_outputs),
    ):
        create_stack_with_outputs(clients["cloudformation"], contract.stack_name(ENV, part), outputs)
    tier.set_lag(0.2)
    tier.add_alarm("redis-memory-warning")
    tier.add_alarm(contract.REPLICATION_LAG_ALARM, threshold=5)
    return tier


def create_stack_with_outputs(cloudformation, stack_name: str, outputs: dict[str, str]) -> None:
    """A moto stack whose DescribeStacks lists ``outputs``."""
    cloudformation.create_stack(StackName=stack_name, TemplateBody=stack_body(outputs))

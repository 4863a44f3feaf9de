"""Where the tier's resources are: read from the deployed stacks' outputs, or given explicitly."""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

import broker_tier_contract as contract
from broker_tier.evidence.errors import OpsError

__all__ = [
    "QueuePair",
    "TierResources",
    "discover",
    "discover_from_options",
    "class_pair",
    "explicit_queue_pair",
    "queue_url_or_arn",
    "stack_outputs",
    "tier_queue_names",
]
TIER_QUEUE_NAME = re.compile(
    rf"^{contract.PROJECT}-(?P<environment>[a-z][a-z0-9]*)-(?P<class_name>[a-z0-9][a-z0-9-]*)$"
)
QUEUE_URL = re.compile(r"^https?://[^/\s]+/(?P<account>\d{12})/(?P<name>[\w-]{1,80})$")
QUEUE_ARN = re.compile(
    r"^arn:(?P<partition>aws[\w-]*):sqs:(?P<region>[\w-]+):(?P<account>\d{12}):(?P<name>[\w-]{1,80})$"
)


@dataclass(frozen=True)
class QueuePair:
    """A latency class's work queue and its dead-letter queue."""

    class_name: str
    queue_url: str
    queue_arn: str
    dead_letter_url: str
    dead_letter_arn: str


@dataclass(frozen=True)
class ToolboxTask:
    """The operators' toolbox task definition and where to run it (Compute stack outputs)."""

    task_definition_arn: str
    security_group_id: str
    subnet_ids: list[str]
    log_group_name: str | None = None


@dataclass(frozen=True)
class TierResources:
    """What the commands act on and check. Empty values mean "not known" (that check is skipped
    and the report says so)."""

    environment: str
    replication_group_id: str
    queues: dict[str, QueuePair] = field(default_factory=dict)
    cluster_name: str | None = None
    service_names: dict[str, str] = field(default_factory=dict)
    alarm_name_prefix: str | None = None
    broker: str | None = None
    """``sqs`` or ``redis``, from the Compute stack's ``Broker`` output; None when unknown."""
    az_power_template_ids: tuple[str, ...] = ()
    """AWS FIS AZ power experiment templates (Monitoring stack), one per AZ; empty when not enabled."""
    redis_endpoint: str | None = None
    redis_port: str | None = None
    toolbox: ToolboxTask | None = None


def stack_outputs(cloudformation, name: str, *, required: bool) -> dict[str, str]:
    """The outputs of stack ``name``; {} for a missing stack that is not ``required``.

    A missing required stack is refused (OpsError); any other error (credentials, access, network)
    propagates, so that it is reported as what it is.
    """
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationError" and "does not exist" in str(error):
            if not required:
                return {}
            raise OpsError(
                f"stack {name} does not exist in {cloudformation.meta.region_name}: check --env and --region"
            ) from None
        raise
    if not stacks:
        raise KeyError(f"Stacks (DescribeStacks of {name} returned none)")
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def _queues_from(outputs: dict[str, str]) -> dict[str, QueuePair]:
    found: dict[str, dict[tuple[str, str], str]] = {}
    for key, value in outputs.items():
        parsed = contract.parse_queue_output_id(key)
        if parsed:
            kind, class_name, attribute = parsed
            found.setdefault(class_name, {})[(kind, attribute)] = value
    pairs = {}
    for name, values in found.items():
        try:
            pairs[name] = QueuePair(
                name,
                values[("Queue", "Url")],
                values[("Queue", "Arn")],
                values[("DeadLetterQueue", "Url")],
                values[("DeadLetterQueue", "Arn")],
            )
        except KeyError:
            continue  # an incomplete class is not one the commands can act on
    return pairs


def discover(cloudformation, environment: str, *, replication_group_id: str | None = None) -> TierResources:
    """The environment's resources from the outputs of ``BrokerTier-<env>-{State,Compute,Monitoring}``.

    State is required (unless ``replication_group_id`` is given); Compute and Monitoring are optional:
    without them the service and alarm checks are reported as skipped.
    """
    state_stack = contract.stack_name(environment, contract.STATE)
    state = stack_outputs(cloudformation, state_stack, required=replication_group_id is None)
    compute = stack_outputs(cloudformation, contract.stack_name(environment, contract.COMPUTE), required=False)
    monitoring = stack_outputs(cloudformation, contract.stack_name(environment, contract.MONITORING), required=False)
    services = {
        class_name: value
        for key, value in compute.items()
        if (class_name := contract.parse_worker_service_output_id(key))
    }
    if contract.ComputeOutputs.BEAT_SERVICE_NAME in compute:
        services[contract.BEAT_PROCESS] = compute[contract.ComputeOutputs.BEAT_SERVICE_NAME]
    group = replication_group_id or state.get(contract.StateOutputs.REPLICATION_GROUP_ID)
    if not group:
        raise OpsError(
            f"stack {state_stack} has no {contract.StateOutputs.REPLICATION_GROUP_ID} output: is it "
            f"this tool's stack, fully deployed? (--replication-group-id names the cache instead)"
        )
    return TierResources(
        environment=environment,
        replication_group_id=group,
        queues=_queues_from(state),
        cluster_name=compute.get(contract.ComputeOutputs.CLUSTER_NAME),
        service_names=services,
        alarm_name_prefix=monitoring.get(contract.MonitoringOutputs.ALARM_NAME_PREFIX),
        broker=compute.get(contract.ComputeOutputs.BROKER),
        az_power_template_ids=tuple(
            filter(None, monitoring.get(contract.MonitoringOutputs.AZ_POWER_EXPERIMENT_TEMPLATE_IDS, "").split(","))
        ),
        redis_endpoint=state.get(contract.StateOutputs.PRIMARY_ENDPOINT_ADDRESS),
        redis_port=state.get(contract.StateOutputs.REDIS_PORT),
        toolbox=_toolbox_from(compute),
    )


def discover_from_options(args, clients: dict) -> TierResources:
    """``discover`` with the shared options: ``--env``, and ``--replication-group-id`` for a command that has it."""
    return discover(
        clients["cloudformation"], args.env, replication_group_id=getattr(args, "replication_group_id", None)
    )


def class_pair(resources: TierResources, class_name: str) -> QueuePair:
    """The queues of latency class ``class_name``; refused (naming the classes) when the stacks have no such class."""
    if class_name in resources.queues:
        return resources.queues[class_name]
    raise OpsError(
        f"--queue-class {class_name!r}: not a class of {resources.environment}; classes: "
        f"{', '.join(sorted(resources.queues)) or 'none found in the State stack outputs'}"
    )


def queue_url_or_arn(text: str) -> str:
    """An argparse type: a queue URL or a queue ARN."""
    if QUEUE_ARN.match(text) is None and QUEUE_URL.match(text) is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a queue URL (https://sqs.REGION.amazonaws.com/"
            f"ACCOUNT/NAME) nor a queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME)"
        )
    return text


def _queue_url_and_arn(sqs, given: str) -> tuple[str, str]:
    """The URL and ARN of the queue ``given`` as either (read from SQS, which also shows that it exists)."""
    if (arn := QUEUE_ARN.match(queue_url_or_arn(given))) is not None:
        url = sqs.get_queue_url(QueueName=arn["name"], QueueOwnerAWSAccountId=arn["account"])["QueueUrl"]
        return url, given
    attributes = sqs.get_queue_attributes(QueueUrl=given, AttributeNames=["QueueArn"])["Attributes"]
    return given, attributes["QueueArn"]


def tier_queue_names(queue_name: str) -> tuple[str, str] | None:
    """``(environment, class)`` of a work queue the tier named (``broker_tier_contract.queue_name``), or None."""
    match = TIER_QUEUE_NAME.match(queue_name)
    if match is None or match["class_name"].endswith("-dlq"):
        return None
    return match["environment"], match["class_name"]


def explicit_queue_pair(sqs, *, queue: str, dead_letter_queue: str) -> QueuePair:
    """A work queue and its dead-letter queue given by URL or ARN, for a tier whose stacks can't be read.

    Refused unless the work queue's RedrivePolicy names that dead-letter queue (a typo would otherwise move
    one class's dead letters into another class's queue).
    """
    queue_url, queue_arn = _queue_url_and_arn(sqs, queue)
    dead_url, dead_arn = _queue_url_and_arn(sqs, dead_letter_queue)
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]
    target = json.loads(attributes.get("RedrivePolicy", "{}")).get("deadLetterTargetArn")
    if target != dead_arn:
        raise OpsError(
            f"--source-queue {queue_arn} sends its dead letters to {target or 'no queue (no RedrivePolicy)'}, "
            f"not to --dead-letter-queue {dead_arn}: give the pair that belongs together"
        )
    named = tier_queue_names(queue_arn.rsplit(":", 1)[-1])
    return QueuePair(named[1] if named else queue_arn.rsplit(":", 1)[-1], queue_url, queue_arn, dead_url, dead_arn)


def _toolbox_from(outputs: dict[str, str]) -> ToolboxTask | None:
    names = contract.ComputeOutputs
    if names.TOOLBOX_TASK_DEFINITION_ARN not in outputs:
        return None
    return ToolboxTask(
        task_definition_arn=outputs[names.TOOLBOX_TASK_DEFINITION_ARN],
        security_group_id=outputs[names.TOOLBOX_SECURITY_GROUP_ID],
        subnet_ids=[s for s in outputs[names.TOOLBOX_SUBNET_IDS].split(",") if s],
        log_group_name=outputs.get(names.OPERATOR_LOG_GROUP_NAME),
    )

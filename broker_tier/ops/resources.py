"""Where the tier's resources are: read from the deployed stacks' outputs, or given explicitly."""

from __future__ import annotations

from dataclasses import dataclass, field

import broker_tier_contract as contract
from botocore.exceptions import ClientError


class OpsError(Exception):
    """A problem the operator must fix before the command can run; ``str()`` says what and how."""


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
    redis_endpoint: str | None = None
    redis_port: str | None = None
    toolbox: ToolboxTask | None = None


def stack_outputs(cloudformation, name: str, *, required: bool) -> dict[str, str]:
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if not required and "does not exist" in str(error):
            return {}
        raise OpsError(f"stack {name} could not be read ({error}); deploy it, or give the resources "
                       f"explicitly (see --help)") from None
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
            pairs[name] = QueuePair(name, values[("Queue", "Url")], values[("Queue", "Arn")],
                                    values[("DeadLetterQueue", "Url")], values[("DeadLetterQueue", "Arn")])
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
    services = {class_name: value for key, value in compute.items()
                if (class_name := contract.parse_worker_service_output_id(key))}
    if contract.ComputeOutputs.BEAT_SERVICE_NAME in compute:
        services[contract.BEAT_PROCESS] = compute[contract.ComputeOutputs.BEAT_SERVICE_NAME]
    group = replication_group_id or state.get(contract.StateOutputs.REPLICATION_GROUP_ID)
    if not group:
        raise OpsError(f"stack {state_stack} has no {contract.StateOutputs.REPLICATION_GROUP_ID} output")
    return TierResources(environment=environment, replication_group_id=group, queues=_queues_from(state),
                         cluster_name=compute.get(contract.ComputeOutputs.CLUSTER_NAME), service_names=services,
                         alarm_name_prefix=monitoring.get(contract.MonitoringOutputs.ALARM_NAME_PREFIX),
                         redis_endpoint=state.get(contract.StateOutputs.PRIMARY_ENDPOINT_ADDRESS),
                         redis_port=state.get(contract.StateOutputs.REDIS_PORT), toolbox=_toolbox_from(compute))


def _toolbox_from(outputs: dict[str, str]) -> ToolboxTask | None:
    names = contract.ComputeOutputs
    if names.TOOLBOX_TASK_DEFINITION_ARN not in outputs:
        return None
    return ToolboxTask(task_definition_arn=outputs[names.TOOLBOX_TASK_DEFINITION_ARN],
                       security_group_id=outputs[names.TOOLBOX_SECURITY_GROUP_ID],
                       subnet_ids=[s for s in outputs[names.TOOLBOX_SUBNET_IDS].split(",") if s],
                       log_group_name=outputs.get(names.OPERATOR_LOG_GROUP_NAME))

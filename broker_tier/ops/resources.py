"""Where the tier's resources are: read from the deployed stacks' outputs, or given explicitly."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
class TierResources:
    """What the commands act on and check. Empty values mean "not known" (that check is skipped
    and the report says so)."""

    environment: str
    replication_group_id: str
    queues: dict[str, QueuePair] = field(default_factory=dict)
    cluster_name: str | None = None
    service_names: dict[str, str] = field(default_factory=dict)
    alarm_name_prefix: str | None = None


def stack_name(environment: str, part: str) -> str:
    return f"BrokerTier-{environment}-{part}"


def stack_outputs(cloudformation, name: str, *, required: bool) -> dict[str, str]:
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if not required and "does not exist" in str(error):
            return {}
        raise OpsError(f"stack {name} could not be read ({error}); deploy it, or give the resources "
                       f"explicitly (see --help)") from None
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


_QUEUE_OUTPUT = re.compile(r"^(Queue|DeadLetterQueue)(?P<cls>[A-Z][a-z0-9]*)(?P<kind>Url|Arn)$")


def _queues_from(outputs: dict[str, str]) -> dict[str, QueuePair]:
    found: dict[str, dict[str, str]] = {}
    for key, value in outputs.items():
        match = _QUEUE_OUTPUT.match(key)
        if match:
            prefix = "queue" if key.startswith("Queue") else "dead_letter"
            found.setdefault(match["cls"].lower(), {})[f"{prefix}_{match['kind'].lower()}"] = value
    return {name: QueuePair(name, v["queue_url"], v["queue_arn"], v["dead_letter_url"], v["dead_letter_arn"])
            for name, v in found.items() if len(v) == 4}


def discover(cloudformation, environment: str, *, replication_group_id: str | None = None) -> TierResources:
    """The environment's resources from the outputs of ``BrokerTier-<env>-{State,Compute,Monitoring}``.

    State is required (unless ``replication_group_id`` is given); Compute and Monitoring are optional:
    without them the service and alarm checks are reported as skipped.
    """
    state = stack_outputs(cloudformation, stack_name(environment, "State"), required=replication_group_id is None)
    compute = stack_outputs(cloudformation, stack_name(environment, "Compute"), required=False)
    monitoring = stack_outputs(cloudformation, stack_name(environment, "Monitoring"), required=False)
    services = {key.removeprefix("WorkerService").removesuffix("Name").lower(): value
                for key, value in compute.items() if key.startswith("WorkerService") and key.endswith("Name")}
    if "BeatServiceName" in compute:
        services["beat"] = compute["BeatServiceName"]
    group = replication_group_id or state.get("ReplicationGroupId")
    if not group:
        raise OpsError(f"stack {stack_name(environment, 'State')} has no ReplicationGroupId output")
    return TierResources(environment=environment, replication_group_id=group, queues=_queues_from(state),
                         cluster_name=compute.get("ClusterName"), service_names=services,
                         alarm_name_prefix=monitoring.get("AlarmNamePrefix"))

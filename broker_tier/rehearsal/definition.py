"""What the synthesized templates give one worker container, mirrored onto loopback: the same command, variables
and secret, with only the resources CloudFormation would fill in (queue URLs, the primary endpoint, the region,
the AUTH token) replaced by their loopback stand-ins. A value it cannot trace stops it, so none slips by.
"""

from __future__ import annotations

import json
import secrets
import string
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import broker_tier_contract as contract
from broker_tier.rehearsal.util import RehearsalError

Variables = contract.ContainerEnvironment
CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"
REHEARSAL_REGION = "eu-west-1"
"""The region the loopback stands in for (any name works on moto)."""


@dataclass(frozen=True, kw_only=True)
class QueueDefinition:
    """A class's work queue and its redrive settings, from the State template."""

    class_name: str
    name: str
    dead_letter_name: str
    visibility_timeout_seconds: int
    max_receive_count: int


@dataclass(frozen=True, kw_only=True)
class WorkerDefinition:
    """One class's worker container as synthesized, plus the templates its values point into."""

    environment_name: str
    class_name: str
    command: tuple[str, ...]
    environment: dict[str, Any]
    """Variable name -> template value (a string, or an intrinsic function CloudFormation resolves)."""
    secrets: dict[str, Any]
    """Secret name -> its ``ValueFrom`` (an intrinsic pointing at the secret)."""
    queues: dict[str, QueueDefinition]
    """Every class's queue (the settings package declares them all)."""
    compute_template: dict
    state_template: dict

    @property
    def broker(self) -> str:
        return str(self.environment.get(Variables.BROKER.name, Variables.BROKER.default))

    @property
    def queue(self) -> QueueDefinition:
        return self.queues[self.class_name]


@dataclass(frozen=True, kw_only=True)
class LoopbackBindings:
    """The loopback stand-ins for the resources a worker container's values name."""

    endpoint_host: str
    """The primary endpoint's name (the rehearsal's endpoint listens on loopback under it)."""
    endpoint_port: int
    queue_url: Callable[[str], str]
    """Queue name -> its URL on the local SQS (moto); in redis mode an unused placeholder URL."""
    auth_token: str
    """The value of the AUTH token secret."""
    region: str = REHEARSAL_REGION


def synthesize(environment_name: str, *, broker: str) -> tuple[dict, dict]:
    """The Compute and State templates of ``environment_name`` from the repository's cdk.json, with
    ``compute.broker`` set to ``broker`` (the rest of the configuration as it is). cdk-nag is not run
    (the test command does that)."""
    from broker_tier.app_builder import synthesize as synthesize_app  # the CDK only when synthesizing
    from broker_tier.config import ConfigError

    with tempfile.TemporaryDirectory(prefix="broker-tier-rehearsal-cdk-") as outdir:  # removed once read
        try:
            assembly = synthesize_app(
                json.loads(CDK_JSON.read_text())["context"],
                environment=environment_name,
                changes={"compute": {"broker": broker}},
                outdir=outdir,
            )
        except ConfigError as error:
            raise RehearsalError(f"--env {environment_name!r}: {error}") from None
        return (
            assembly.get_stack_by_name(contract.stack_name(environment_name, contract.COMPUTE)).template,
            assembly.get_stack_by_name(contract.stack_name(environment_name, contract.STATE)).template,
        )


def _resources(template: dict, resource_type: str) -> dict[str, dict]:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource["Type"] == resource_type
    }


def read_worker_definition(
    compute_template: dict, state_template: dict, *, environment_name: str, class_name: str
) -> WorkerDefinition:
    """The worker container of ``class_name`` in the synthesized templates of ``environment_name``."""
    queues: dict[str, QueueDefinition] = {}
    state_queues = _resources(state_template, "AWS::SQS::Queue")
    for queue in state_queues.values():
        properties = queue["Properties"]
        redrive = properties.get("RedrivePolicy")
        if not redrive:
            continue  # a dead-letter queue
        name = properties["QueueName"]
        queue_class = name.removeprefix(contract.resource_prefix(environment_name) + "-")
        dead_letter_id = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
        queues[queue_class] = QueueDefinition(
            class_name=queue_class,
            name=name,
            dead_letter_name=state_queues[dead_letter_id]["Properties"]["QueueName"],
            visibility_timeout_seconds=int(properties.get("VisibilityTimeout", 30)),
            max_receive_count=int(redrive["maxReceiveCount"]),
        )
    if class_name not in queues:
        raise RehearsalError(
            f"--queue-class {class_name!r} is not a class of environment "
            f"{environment_name!r}; classes: {', '.join(sorted(queues))}"
        )
    for task_definition in _resources(compute_template, "AWS::ECS::TaskDefinition").values():
        (container,) = task_definition["Properties"]["ContainerDefinitions"]
        command = container.get("Command", [])
        if "worker" in command and command[command.index("--queues") + 1] == class_name:
            return WorkerDefinition(
                environment_name=environment_name,
                class_name=class_name,
                command=tuple(command),
                environment={item["Name"]: item["Value"] for item in container.get("Environment", [])},
                secrets={item["Name"]: item["ValueFrom"] for item in container.get("Secrets", [])},
                queues=queues,
                compute_template=compute_template,
                state_template=state_template,
            )
    raise RehearsalError(f"no worker task definition for class {class_name!r} in the Compute template")


class _Resolver:
    """Resolves a template value to what it would be on loopback."""

    def __init__(self, definition: WorkerDefinition, bindings: LoopbackBindings) -> None:
        self.definition, self.bindings = definition, bindings
        self.state_outputs = definition.state_template.get("Outputs", {})

    def resolve(self, value: Any, template: dict, where: str) -> str:
        if isinstance(value, (str, int)):
            return str(value)
        if isinstance(value, dict) and len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Fn::Join":
                separator, parts = argument
                return separator.join(self.resolve(part, template, where) for part in parts)
            if function == "Ref":
                return self._ref(argument, template, where)
            if function == "Fn::GetAtt":
                return self._get_att(*argument, template=template, where=where)
            if function == "Fn::GetStackOutput" and argument.get("StackName", "").endswith(contract.STATE):
                return self._state_output(argument["OutputName"], where)
            if function == "Fn::ImportValue":
                return self._state_export(self.resolve(argument, template, where), where)
        raise RehearsalError(f"{where}: cannot mirror the template value {json.dumps(value)} on loopback")

    def _state_output(self, output_name: str, where: str) -> str:
        if output_name not in self.state_outputs:
            raise RehearsalError(f"{where}: the State template has no output {output_name!r}")
        return self.resolve(self.state_outputs[output_name]["Value"], self.definition.state_template, where)

    def _state_export(self, export_name: str, where: str) -> str:
        for output in self.state_outputs.values():
            export = output.get("Export", {}).get("Name")
            if export is not None and self.resolve(export, self.definition.state_template, where) == export_name:
                return self.resolve(output["Value"], self.definition.state_template, where)
        raise RehearsalError(f"{where}: the State template exports no {export_name!r}")

    def _ref(self, name: str, template: dict, where: str) -> str:
        if name == "AWS::Region":
            return self.bindings.region
        resource = template.get("Resources", {}).get(name)
        if resource is None:
            raise RehearsalError(f"{where}: Ref {name!r} names no resource of its template")
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::SQS::Queue":
            return self.bindings.queue_url(properties["QueueName"])
        if resource["Type"] == "AWS::SecretsManager::Secret" and "GenerateSecretString" in properties:
            return self.bindings.auth_token
        raise RehearsalError(f"{where}: cannot mirror a Ref to {resource['Type']} on loopback")

    def _get_att(self, name: str, attribute: str, *, template: dict, where: str) -> str:
        resource = template.get("Resources", {}).get(name, {})
        if resource.get("Type") == "AWS::ElastiCache::ReplicationGroup":
            if attribute == "PrimaryEndPoint.Address":
                return self.bindings.endpoint_host
            if attribute == "PrimaryEndPoint.Port":
                return str(self.bindings.endpoint_port)
        raise RehearsalError(f"{where}: cannot mirror Fn::GetAtt {name}.{attribute} on loopback")


# Literal values that are endpoints too: the replication group's port is written into the
# environment as a number, and the rehearsal's endpoint listens on another one.
_LITERAL_ENDPOINTS: dict[str, Callable[[LoopbackBindings], str]] = {
    Variables.REDIS_PORT.name: lambda bindings: str(bindings.endpoint_port),
}


def container_environment(definition: WorkerDefinition, bindings: LoopbackBindings) -> dict[str, str]:
    """The variables and secrets the worker container gets, with its endpoints on loopback."""
    resolver = _Resolver(definition, bindings)
    environment: dict[str, str] = {}
    for name, value in definition.environment.items():
        if name in _LITERAL_ENDPOINTS:
            environment[name] = _LITERAL_ENDPOINTS[name](bindings)
        else:
            environment[name] = resolver.resolve(value, definition.compute_template, f"variable {name}")
    for name, value_from in definition.secrets.items():
        environment[name] = resolver.resolve(value_from, definition.compute_template, f"secret {name}")
    return environment


def generate_auth_token(state_template: dict) -> str:
    """A token shaped as Secrets Manager would generate the AUTH token secret of ``state_template``
    (its ``GenerateSecretString``: length, punctuation, excluded characters)."""
    secrets_found = [
        resource["Properties"]["GenerateSecretString"]
        for resource in _resources(state_template, "AWS::SecretsManager::Secret").values()
        if "GenerateSecretString" in resource.get("Properties", {})
    ]
    if len(secrets_found) != 1:
        raise RehearsalError(
            f"expected one generated secret (the AUTH token) in the State template, found {len(secrets_found)}"
        )
    (rules,) = secrets_found
    alphabet = string.ascii_letters + string.digits
    if not rules.get("ExcludePunctuation"):
        alphabet += string.punctuation
    alphabet = "".join(c for c in alphabet if c not in rules.get("ExcludeCharacters", ""))
    length = int(rules.get("PasswordLength", 32))
    while True:  # Secrets Manager includes every included character type by default
        token = "".join(secrets.choice(alphabet) for _ in range(length))
        if any(c.isdigit() for c in token) and any(c.islower() for c in token) and any(c.isupper() for c in token):
            return token

"""The rehearsal's workers get exactly what the synthesized worker task definition gives a container."""

from __future__ import annotations

import copy
import json
import string
from pathlib import Path
from types import SimpleNamespace

import pytest
from tier_testing import tier_context

import broker_tier_contract as contract
from broker_tier.rehearsal.definition import (
    LoopbackBindings,
    container_environment,
    generate_auth_token,
    read_worker_definition,
)
from broker_tier.rehearsal.util import RehearsalError

Variables = contract.ContainerEnvironment


def bindings(token: str = "t0ken") -> LoopbackBindings:
    return LoopbackBindings(
        endpoint_host="localhost",
        endpoint_port=40001,
        auth_token=token,
        queue_url=lambda name: f"http://127.0.0.1:5000/000000000000/{name}",
    )


def definition_of(synthesized, class_name="default", compute=None):
    return read_worker_definition(
        compute or synthesized.json("dev", "Compute"),
        synthesized.json("dev", "State"),
        environment_name="dev",
        class_name=class_name,
    )


def test_every_variable_and_secret_is_mirrored_with_only_the_endpoints_replaced(synthesized):
    definition = definition_of(synthesized)
    (container,) = [
        task["Properties"]["ContainerDefinitions"][0]
        for task in synthesized.resources("dev", "Compute", "AWS::ECS::TaskDefinition").values()
        if task["Properties"]["ContainerDefinitions"][0]["Command"][3:6] == ["worker", "--queues", "default"]
    ]
    environment = container_environment(definition, bindings())
    template_names = {item["Name"] for item in container["Environment"] + container["Secrets"]}
    assert set(environment) == template_names  # nothing added, nothing left out
    endpoints = {
        Variables.REDIS_HOST.name: "localhost",
        Variables.REDIS_PORT.name: "40001",
        Variables.REGION.name: "eu-west-1",
        Variables.REDIS_AUTH_TOKEN.name: "t0ken",
    }
    assert any(isinstance(item["Value"], str) and item["Name"] not in endpoints for item in container["Environment"])
    for item in container["Environment"]:
        if isinstance(item["Value"], str) and item["Name"] not in endpoints:
            assert environment[item["Name"]] == item["Value"], item["Name"]  # literal values as synthesized
    for name, value in endpoints.items():
        assert environment[name] == value
    classes = tier_context()["defaults"]["queues"]
    assert json.loads(environment[Variables.QUEUE_URLS.name]) == {
        name: f"http://127.0.0.1:5000/000000000000/{contract.queue_name('dev', name)}" for name in classes
    }
    assert environment[Variables.REDIS_TLS.name] == "true"
    assert definition.command[:3] == ("celery", "-A", "broker_tier_worker.app")


def test_the_class_queue_keeps_its_redrive_settings(synthesized):
    queue = definition_of(synthesized, "batch").queue
    batch = tier_context()["defaults"]["queues"]["batch"]
    assert (queue.name, queue.dead_letter_name) == ("broker-tier-dev-batch", "broker-tier-dev-batch-dlq")
    assert queue.max_receive_count == batch["max_receive_count"]
    assert queue.visibility_timeout_seconds == batch["visibility_timeout_seconds"]


def test_a_value_it_cannot_trace_to_a_loopback_stand_in_stops_the_rehearsal(synthesized):
    compute = copy.deepcopy(synthesized.json("dev", "Compute"))
    for task in compute["Resources"].values():
        if task["Type"] == "AWS::ECS::TaskDefinition":
            task["Properties"]["ContainerDefinitions"][0]["Environment"].append(
                {"Name": "BROKER_TIER_NEW_THING", "Value": {"Fn::GetAtt": ["SomeTable", "Arn"]}}
            )
    with pytest.raises(RehearsalError, match="variable BROKER_TIER_NEW_THING: cannot mirror"):
        container_environment(definition_of(synthesized, compute=compute), bindings())


def test_an_unknown_class_is_a_clear_error(synthesized):
    with pytest.raises(
        RehearsalError,
        match="--queue-class 'nope' is not a class of environment 'dev'; classes: batch, default, interactive",
    ):
        definition_of(synthesized, "nope")


def test_the_auth_token_follows_the_secret_generation_rules(synthesized):
    state = synthesized.json("dev", "State")
    (rules,) = [
        r["Properties"]["GenerateSecretString"]
        for r in synthesized.resources("dev", "State", "AWS::SecretsManager::Secret").values()
        if "GenerateSecretString" in r["Properties"]
    ]
    token = generate_auth_token(state)
    assert len(token) == rules["PasswordLength"]
    assert set(token) <= set(string.ascii_letters + string.digits)  # ExcludePunctuation


def test_the_synthesis_leaves_no_directory_behind(monkeypatch):
    """The templates are read into memory; the cloud assembly they came from is removed at once."""
    import broker_tier.app_builder
    from broker_tier.rehearsal import definition

    outdirs: list[Path] = []

    class Assembly:
        def get_stack_by_name(self, name):
            return SimpleNamespace(template={"name": name})

    def synthesize_app(context, *, outdir, environment, changes):
        outdirs.append(Path(outdir))
        (Path(outdir) / "manifest.json").write_text("{}")  # the CDK writes the assembly there
        return Assembly()

    monkeypatch.setattr(broker_tier.app_builder, "synthesize", synthesize_app)
    compute, state = definition.synthesize("dev", broker="sqs")
    assert (compute, state) == ({"name": "BrokerTier-dev-Compute"}, {"name": "BrokerTier-dev-State"})
    assert outdirs and not outdirs[0].exists()

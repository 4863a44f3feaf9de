"""BrokerStateStack: outputs for tools outside the app, and stack-level protection."""

from __future__ import annotations

import json

import pytest
from tier_testing import ENVIRONMENTS, tier_context

from broker_tier.config import load_environments

CONFIGS = load_environments(tier_context())


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_outputs_have_stable_names(synthesized, env):
    outputs = synthesized.json(env, "State")["Outputs"]
    expected = {
        "ReplicationGroupId",
        "PrimaryEndpointAddress",
        "ReaderEndpointAddress",
        "RedisPort",
        "AuthTokenSecretArn",
        "EventsTopicArn",
        "RedisDatabases",
    }
    for cls in CONFIGS[env].queues:
        cap = cls.capitalize()
        expected |= {f"{kind}{cap}{attr}" for kind in ("Queue", "DeadLetterQueue") for attr in ("Name", "Url", "Arn")}
    assert expected <= set(outputs)
    assert outputs["ReplicationGroupId"]["Value"] == f"broker-tier-{env}"
    assert outputs["RedisPort"]["Value"] == str(CONFIGS[env].cache.port)
    assert outputs["RedisDatabases"]["Value"] == "cache=0,broker=1,results=2"
    assert outputs["PrimaryEndpointAddress"]["Value"]["Fn::GetAtt"][1] == "PrimaryEndPoint.Address"
    assert outputs["ReaderEndpointAddress"]["Value"]["Fn::GetAtt"][1] == "ReaderEndPoint.Address"


@pytest.mark.parametrize("env,protected", [("dev", False), ("staging", False), ("prod", True)])
def test_termination_protection_only_in_production(synthesized, env, protected):
    for part in ("State", "Compute", "Monitoring"):
        stack = synthesized.assembly.get_stack_by_name(f"BrokerTier-{env}-{part}")
        assert bool(stack.termination_protection) is protected, part


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_stacks_target_the_environment_cdk_json_gives_and_are_agnostic_without_one(synthesized, env):
    expected = (
        (synthesized.account, synthesized.region) if synthesized.pinned else ("unknown-account", "unknown-region")
    )
    for part in ("State", "Compute", "Monitoring"):
        stack = synthesized.assembly.get_stack_by_name(f"BrokerTier-{env}-{part}")
        assert (stack.environment.account, stack.environment.region) == expected, part


def cross_stack_references(template: dict) -> dict[str, int]:
    """How often ``template`` uses each way of reading another stack's value."""
    text = json.dumps(template)
    return {function: text.count(f'"{function}"') for function in ("Fn::GetStackOutput", "Fn::ImportValue")}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_stacks_read_each_other_through_weak_references_that_block_no_change(synthesized, env):
    # docs/decisions/weak-cross-stack-references.md: no export, so a State output can change in one deployment
    for part in ("State", "Compute", "Monitoring"):
        outputs = synthesized.json(env, part).get("Outputs", {})
        assert outputs and not any("Export" in output for output in outputs.values())
    assert cross_stack_references(synthesized.json(env, "State")) == {"Fn::GetStackOutput": 0, "Fn::ImportValue": 0}
    for consumer in ("Compute", "Monitoring"):
        references = cross_stack_references(synthesized.json(env, consumer))
        assert references["Fn::GetStackOutput"] > 0 and references["Fn::ImportValue"] == 0, (consumer, references)

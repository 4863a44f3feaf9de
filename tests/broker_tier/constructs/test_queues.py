"""LatencyClassQueues: on bare stacks (its own behaviour, from its properties), and as synthesized in every
environment of cdk.json."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from bare_stack import BareApp
from policy_evaluator import Request, evaluate
from tier_testing import ENVIRONMENTS, tier_context

import broker_tier_contract as contract
from broker_tier.config import QueueClassConfig, load_environments
from broker_tier.constructs.queues import LatencyClassQueues

CONFIGS = load_environments(tier_context())
CLASSES = [(env, name) for env in ENVIRONMENTS for name in CONFIGS[env].queues]

# -- on a bare stack ------------------------------------------------------------------------------------------
BARE_CLASSES = {
    "fast": QueueClassConfig(
        task_time_limit_seconds=30,
        visibility_timeout_seconds=120,
        max_receive_count=3,
        retention_seconds=3600,
        dead_letter_retention_seconds=7200,
        latency_objective_seconds=600,
    ),
    "slow": QueueClassConfig(),
}
"""Class name -> configuration, each with its LatencyClassQueues in the stack "Retained"."""
ANYONE = {"AWS": "arn:aws:iam::123456789012:role/team-web-app"}


@pytest.fixture(scope="module")
def bare() -> BareApp:
    app = BareApp()
    for stack_name, removal, classes in (
        ("Retained", cdk.RemovalPolicy.RETAIN, BARE_CLASSES),
        ("Destroyed", cdk.RemovalPolicy.DESTROY, {"slow": BARE_CLASSES["slow"]}),
    ):
        stack = app.stack(stack_name)
        key = kms.Key(stack, "Key")
        app.built[stack_name] = {
            name: LatencyClassQueues(
                stack,
                f"Queues-{name}",
                class_name=name,
                config=config,
                queue_name=f"team-{name}",
                dead_letter_queue_name=f"team-{name}-dlq",
                encryption_key=key,
                removal_policy=removal,
            )
            for name, config in classes.items()
        }
    return app.synthesize()


def bare_queues(bare: BareApp, stack: str) -> dict[str, tuple[str, dict]]:
    """Queue name -> (logical id, properties) of every queue in ``stack``."""
    return {
        queue["Properties"]["QueueName"]: (logical_id, queue["Properties"])
        for logical_id, queue in bare.resources(stack, "AWS::SQS::Queue").items()
    }


@pytest.mark.parametrize("name", BARE_CLASSES)
def test_bare_queue_redrives_to_its_dead_letter_queue_which_keeps_messages_longer(bare, name):
    config = BARE_CLASSES[name]
    queues = bare_queues(bare, "Retained")
    dlq_id, dlq = queues[f"team-{name}-dlq"]
    _, queue = queues[f"team-{name}"]
    (key,) = bare.resources("Retained", "AWS::KMS::Key")
    assert queue == {
        "QueueName": f"team-{name}",
        "VisibilityTimeout": config.visibility_timeout_seconds,
        "MessageRetentionPeriod": config.retention_seconds,
        "RedrivePolicy": {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
            "maxReceiveCount": config.max_receive_count,
        },
        "KmsMasterKeyId": {"Fn::GetAtt": [key, "Arn"]},
        # explicit, whatever SQS's default was when the queue was made: the settings package checks this limit
        "MaximumMessageSize": contract.SQS_MAX_MESSAGE_BYTES,
    }
    assert dlq["MaximumMessageSize"] == contract.SQS_MAX_MESSAGE_BYTES
    assert dlq["MessageRetentionPeriod"] == config.dead_letter_retention_seconds > config.retention_seconds
    assert dlq["KmsMasterKeyId"] == {"Fn::GetAtt": [key, "Arn"]} and "RedrivePolicy" not in dlq
    construct = bare.built["Retained"][name]
    assert (construct.queue_name, construct.dead_letter_queue_name) == (f"team-{name}", f"team-{name}-dlq")


def test_bare_dead_letter_queue_takes_redrive_from_its_own_queue_only(bare):
    queues = bare_queues(bare, "Retained")
    allowed = {
        name: bare.resolve("Retained", queues[f"team-{name}-dlq"][1]["RedriveAllowPolicy"]) for name in BARE_CLASSES
    }
    assert allowed == {
        name: {"redrivePermission": "byQueue", "sourceQueueArns": [f"arn:aws:sqs:eu-west-1:123456789012:team-{name}"]}
        for name in BARE_CLASSES
    }  # "fast"'s dead-letter queue refuses "slow"'s messages, and the other way round


@pytest.mark.parametrize("stack", ["Retained", "Destroyed"])
def test_bare_queues_refuse_requests_without_tls(bare, stack):
    deployment = bare.deployment()
    queues = bare_queues(bare, stack)
    assert len(queues) == 2 * len(bare.built[stack])
    policies = bare.resources(stack, "AWS::SQS::QueuePolicy").values()
    for queue_name, (logical_id, _) in queues.items():
        arn = deployment.attribute(stack, logical_id, "Arn")
        (policy,) = [p["Properties"] for p in policies if {"Ref": logical_id} in p["Properties"]["Queues"]]
        document = deployment.resolve(stack, policy["PolicyDocument"])
        for action in ("sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"):
            plain = Request(ANYONE, action, arn, {"aws:SecureTransport": "false"})
            assert evaluate(document, plain).outcome == "explicit deny", (queue_name, action)
            tls = Request(ANYONE, action, arn, {"aws:SecureTransport": "true"})
            assert evaluate(document, tls).outcome == "implicit deny", (queue_name, action)  # left to IAM


@pytest.mark.parametrize("stack,policy", [("Retained", "Retain"), ("Destroyed", "Delete")])
def test_bare_queues_follow_the_removal_policy(bare, stack, policy):
    queues = bare.resources(stack, "AWS::SQS::Queue").values()
    assert [(q["DeletionPolicy"], q["UpdateReplacePolicy"]) for q in queues] == [(policy, policy)] * len(queues)


def queue_by_name(synthesized, env, name):
    for logical_id, queue in synthesized.resources(env, "State", "AWS::SQS::Queue").items():
        if queue["Properties"]["QueueName"] == name:
            return logical_id, queue
    raise AssertionError(f"no queue {name} in {env}")


@pytest.mark.parametrize("env,cls", CLASSES)
def test_work_queue_has_limits_and_redrive_to_its_own_dead_letter_queue(synthesized, env, cls):
    config = CONFIGS[env].queues[cls]
    dlq_id, dlq = queue_by_name(synthesized, env, f"broker-tier-{env}-{cls}-dlq")
    _, queue = queue_by_name(synthesized, env, f"broker-tier-{env}-{cls}")
    props = queue["Properties"]
    assert props["VisibilityTimeout"] == config.visibility_timeout_seconds
    assert props["MessageRetentionPeriod"] == config.retention_seconds
    assert props["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": config.max_receive_count,
    }
    assert props["KmsMasterKeyId"]["Fn::GetAtt"][1] == "Arn"
    dlq_props = dlq["Properties"]
    assert dlq_props["MessageRetentionPeriod"] == 1_209_600 >= config.retention_seconds
    allow = dlq_props["RedriveAllowPolicy"]
    assert allow["redrivePermission"] == "byQueue"
    sources = synthesized.deployment(env).resolve(contract.stack_name(env, "State"), allow["sourceQueueArns"])
    assert sources == [f"arn:aws:sqs:{synthesized.region}:{synthesized.account}:broker-tier-{env}-{cls}"]
    assert "KmsMasterKeyId" in dlq_props


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_queue_refuses_requests_without_tls(synthesized, env):
    queues = synthesized.resources(env, "State", "AWS::SQS::Queue")
    assert len(queues) == 2 * len(CONFIGS[env].queues)
    protected = set()
    for policy in synthesized.resources(env, "State", "AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        if any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        ):
            protected.update(ref["Ref"] for ref in policy["Properties"]["Queues"])
    assert protected == set(queues)


@pytest.mark.parametrize("env,policy", [("dev", "Delete"), ("staging", "Retain"), ("prod", "Retain")])
def test_queues_follow_the_removal_policy(synthesized, env, policy):
    queues = synthesized.resources(env, "State", "AWS::SQS::Queue")
    assert len(queues) == 2 * len(CONFIGS[env].queues) > 0
    for queue in queues.values():
        assert (queue["DeletionPolicy"], queue["UpdateReplacePolicy"]) == (policy, policy)

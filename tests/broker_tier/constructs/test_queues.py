"""LatencyClassQueues, as synthesized in every environment of cdk.json."""

from __future__ import annotations

import pytest
from tier_testing import ENVIRONMENTS, tier_context

import broker_tier_contract as contract
from broker_tier.config import load_environments

CONFIGS = load_environments(tier_context())
CLASSES = [(env, name) for env in ENVIRONMENTS for name in CONFIGS[env].queues]


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
    for queue in synthesized.resources(env, "State", "AWS::SQS::Queue").values():
        assert (queue["DeletionPolicy"], queue["UpdateReplacePolicy"]) == (policy, policy)

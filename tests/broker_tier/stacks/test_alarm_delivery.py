"""Alarms that arrive: every alarm action and the ElastiCache notifications, evaluated against the topic
policy and the topic's key policy in the synthesized templates (tests/support/policy_evaluator.py), so a
policy change that would silence them fails here. And a production environment without a subscriber
warns at synthesis."""

from __future__ import annotations

import copy

import pytest
from policy_evaluator import PARTITION, Request, Resolver, evaluate
from tier_testing import ENVIRONMENTS, tier_context

from broker_tier.config import Subscription, load_environments
from broker_tier.stacks.monitoring_stack import NO_SUBSCRIPTION_WARNING, no_subscription_warning

PARTS = ("State", "Compute", "Monitoring")
# What SNS needs from the topic's key to take a message for an encrypted topic (Amazon SNS Developer Guide,
# "Enable compatibility between event sources from AWS services and encrypted topics").
KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
CLOUDWATCH = {"Service": "cloudwatch.amazonaws.com"}
# ElastiCache's documentation does not name the principal it publishes as; it requires a statement for any
# principal with aws:SourceOwner. Modelled as its service name, which an account's own principals do not match.
ELASTICACHE = {"Service": "elasticache.amazonaws.com"}


def templates_of(synthesized, env: str) -> dict[str, dict]:
    return {f"BrokerTier-{env}-{part}": copy.deepcopy(synthesized.json(env, part)) for part in PARTS}


def resolver_of(synthesized, templates: dict[str, dict]) -> Resolver:
    """``templates`` deployed where ``synthesized`` deploys (its pinned account and region, or the stand-ins)."""
    return Resolver(templates, account=synthesized.account, region=synthesized.region)


def notifying_alarms(resolver: Resolver) -> list[tuple[str, dict]]:
    """``(stack, alarm)`` of every alarm meant for people: the ones that notify a topic. (The Compute stack's
    scale-from-zero alarm acts on a scaling policy instead.) Each of them must name a topic on ALARM."""
    found = []
    for stack, logical_id, alarm in resolver.resources_of_type("AWS::CloudWatch::Alarm"):
        targets = [
            resolver.resource(stack, action["Ref"])["Type"] if "Ref" in action else action
            for action in alarm["Properties"].get("AlarmActions", [])
        ]
        if targets == ["AWS::ApplicationAutoScaling::ScalingPolicy"]:
            continue
        assert targets and set(targets) == {"AWS::SNS::Topic"}, f"{logical_id} notifies {targets}"
        found.append((stack, alarm))
    return found


def alarm_delivery_failures(resolver: Resolver) -> list[str]:
    """Every alarm action the topic policy or the key policy would refuse, with the reason."""
    failures: list[str] = []
    account, region = resolver.account, resolver.region
    alarms = notifying_alarms(resolver)
    assert alarms, "no alarm to check"
    for stack, alarm in alarms:
        properties = alarm["Properties"]
        name = properties["AlarmName"]
        context = {
            "aws:SourceAccount": account,
            "aws:SecureTransport": "true",  # AWS services call SNS over TLS
            "aws:SourceArn": f"arn:{PARTITION}:cloudwatch:{region}:{account}:alarm:{name}",
        }
        actions = resolver.resolve(properties["AlarmActions"] + properties.get("OKActions", []), stack)
        for topic_arn in set(actions):
            policies = resolver.topic_policies(topic_arn)
            decisions = [
                evaluate(policy, Request(CLOUDWATCH, "sns:Publish", topic_arn, context)) for policy in policies
            ]
            if not any(d.allowed for d in decisions) or any(d.outcome == "explicit deny" for d in decisions):
                failures.append(f"{name} -> {topic_arn}: topic policy: {[d.outcome for d in decisions] or 'none'}")
            topic_stack, _, topic = resolver.topic(topic_arn)
            key = topic["Properties"].get("KmsMasterKeyId")
            if key is None:
                continue
            key_arn, key_policy = resolver.key_policy(resolver.resolve(key, topic_stack))
            for action in KEY_ACTIONS:
                decision = evaluate(key_policy, Request(CLOUDWATCH, action, key_arn, context))
                if not decision.allowed:
                    failures.append(f"{name} -> {topic_arn}: key policy refuses {action}: {decision.outcome}")
    return failures


def cache_event_failures(resolver: Resolver) -> list[str]:
    """Every replication group whose notification topic would refuse ElastiCache's events."""
    failures: list[str] = []
    groups = resolver.resources_of_type("AWS::ElastiCache::ReplicationGroup")
    assert groups
    for stack, logical_id, group in groups:
        topic_arn = resolver.resolve(group["Properties"]["NotificationTopicArn"], stack)
        _, _, topic = resolver.topic(topic_arn)
        if "KmsMasterKeyId" in topic["Properties"]:
            failures.append(f"{logical_id}: {topic_arn} is encrypted; ElastiCache cannot publish to it")
        context = {"aws:SourceOwner": resolver.account, "aws:SecureTransport": "true"}
        decisions = [
            evaluate(policy, Request(ELASTICACHE, "SNS:Publish", topic_arn, context))
            for policy in resolver.topic_policies(topic_arn)
        ]
        if not any(d.allowed for d in decisions) or any(d.outcome == "explicit deny" for d in decisions):
            failures.append(f"{logical_id} -> {topic_arn}: topic policy: {[d.outcome for d in decisions]}")
    return failures


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_alarm_may_publish_to_its_topic_through_topic_and_key_policy(synthesized, env):
    assert alarm_delivery_failures(resolver_of(synthesized, templates_of(synthesized, env))) == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_elasticache_may_publish_its_events(synthesized, env):
    assert cache_event_failures(resolver_of(synthesized, templates_of(synthesized, env))) == []


def statements(templates: dict, stack: str, kind: str) -> list[dict]:
    """The statements (to change in place) of the stack's topic policy, or of the key the alarm topic uses."""
    if kind == "AWS::KMS::Key":
        return alarm_topic_key(templates)["Properties"]["KeyPolicy"]["Statement"]
    (resource,) = [r for r in templates[stack]["Resources"].values() if r["Type"] == kind]
    return resource["Properties"]["PolicyDocument"]["Statement"]


def alarm_topic_key(templates: dict) -> dict:
    """The KMS key resource that encrypts the alarm topic (the State stack also holds the logs key)."""
    resolver = Resolver(templates)  # any account: the key is found by the ARN the same resolver renders
    ((topic_stack, _, topic),) = [
        found for found in resolver.resources_of_type("AWS::SNS::Topic") if "KmsMasterKeyId" in found[2]["Properties"]
    ]
    key_arn = resolver.resolve(topic["Properties"]["KmsMasterKeyId"], topic_stack)
    (key,) = [
        resource
        for stack, logical_id, resource in resolver.resources_of_type("AWS::KMS::Key")
        if resolver._get_att(stack, logical_id, "Arn") == key_arn
    ]
    return key


def without_sid(sid: str):
    return lambda found: found.__setitem__(slice(None), [s for s in found if s.get("Sid") != sid])


# Each change below would silence the alarms; the check must catch every one.
SILENCING_CHANGES = {
    "topic policy loses the CloudWatch statement": (
        "Monitoring",
        "AWS::SNS::TopicPolicy",
        without_sid("CloudWatchAlarmsOfThisAccountPublish"),
    ),
    "topic policy names another account's alarms": (
        "Monitoring",
        "AWS::SNS::TopicPolicy",
        lambda found: [
            s["Condition"]["StringEquals"].__setitem__("aws:SourceAccount", "999999999999")
            for s in found
            if s.get("Sid") == "CloudWatchAlarmsOfThisAccountPublish"
        ],
    ),
    "topic policy allows another service": (
        "Monitoring",
        "AWS::SNS::TopicPolicy",
        lambda found: [
            s.__setitem__("Principal", {"Service": "events.amazonaws.com"})
            for s in found
            if s.get("Sid") == "CloudWatchAlarmsOfThisAccountPublish"
        ],
    ),
    "an explicit deny of every publish": (
        "Monitoring",
        "AWS::SNS::TopicPolicy",
        lambda found: found.append(
            {"Sid": "Lockdown", "Effect": "Deny", "Principal": "*", "Action": "sns:*", "Resource": "*"}
        ),
    ),
    "key policy loses the CloudWatch statement": (
        "State",
        "AWS::KMS::Key",
        without_sid("CloudWatchAlarmsToEncryptedTopic"),
    ),
    "key policy grants only decryption": (
        "State",
        "AWS::KMS::Key",
        lambda found: [
            s.__setitem__("Action", "kms:Decrypt") for s in found if s.get("Sid") == "CloudWatchAlarmsToEncryptedTopic"
        ],
    ),
}


@pytest.mark.parametrize("part,kind,change", SILENCING_CHANGES.values(), ids=SILENCING_CHANGES.keys())
def test_a_policy_change_that_silences_the_alarms_is_caught(synthesized, part, kind, change):
    templates = templates_of(synthesized, "dev")
    change(statements(templates, f"BrokerTier-dev-{part}", kind))
    resolver = resolver_of(synthesized, templates)
    failures = alarm_delivery_failures(resolver)
    assert len(failures) >= len(notifying_alarms(resolver)), failures


def test_a_request_without_tls_is_denied_explicitly(synthesized):
    resolver = resolver_of(synthesized, templates_of(synthesized, "dev"))
    account, region = synthesized.account, synthesized.region
    topic_arn = f"arn:{PARTITION}:sns:{region}:{account}:broker-tier-dev-alarms"
    (policy,) = resolver.topic_policies(topic_arn)
    context = {
        "aws:SourceAccount": account,
        "aws:SourceArn": f"arn:aws:cloudwatch:{region}:{account}:alarm:x",
        "aws:SecureTransport": "false",
    }
    decision = evaluate(policy, Request(CLOUDWATCH, "sns:Publish", topic_arn, context))
    assert (decision.outcome, decision.statements) == ("explicit deny", ("AllowPublishThroughSSLOnly",))


def test_the_account_root_as_principal_would_not_let_elasticache_publish(synthesized):
    """The events topic's earlier statement (principal: the account root) is refused by the same check."""
    templates = templates_of(synthesized, "dev")
    for statement in statements(templates, "BrokerTier-dev-State", "AWS::SNS::TopicPolicy"):
        if statement.get("Sid") == "ElastiCacheEvents":
            statement["Principal"] = {"AWS": f"arn:{PARTITION}:iam::{synthesized.account}:root"}
    failures = cache_event_failures(resolver_of(synthesized, templates))
    assert failures and "implicit deny" in failures[0]


def test_the_key_statement_for_cloudwatch_is_exactly_the_documented_one(synthesized):
    statements_ = statements(templates_of(synthesized, "prod"), "BrokerTier-prod-State", "AWS::KMS::Key")
    (statement,) = [s for s in statements_ if s.get("Sid") == "CloudWatchAlarmsToEncryptedTopic"]
    assert statement == {
        "Sid": "CloudWatchAlarmsToEncryptedTopic",
        "Effect": "Allow",
        "Principal": CLOUDWATCH,
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
    }


def messages_of(synthesized, env: str) -> list[str]:
    artifact = synthesized.assembly.get_stack_by_name(f"BrokerTier-{env}-Monitoring")
    return [str(message.entry.data) for message in artifact.messages if message.entry.type == "aws:cdk:warning"]


def test_production_without_a_subscription_warns_how_to_add_one(synthesized):
    (warning,) = messages_of(synthesized, "prod")
    assert (
        "environment 'prod' is production, but its alarm topic broker-tier-prod-alarms has no subscription" in warning
    )
    assert "context.broker-tier.environments.prod.monitoring.subscriptions" in warning
    assert '{"protocol": "email", "endpoint": "oncall@example.com"}' in warning
    assert NO_SUBSCRIPTION_WARNING in warning
    assert messages_of(synthesized, "dev") == [] and messages_of(synthesized, "staging") == []  # not production


def test_only_production_without_a_subscription_warns():
    configs = load_environments(tier_context())
    subscribed = configs["prod"].model_copy(
        update={
            "monitoring": configs["prod"].monitoring.model_copy(
                update={"subscriptions": [Subscription(protocol="email", endpoint="oncall@example.com")]}
            )
        }
    )
    assert no_subscription_warning(configs["prod"]) is not None
    assert no_subscription_warning(subscribed) is None
    assert no_subscription_warning(configs["staging"]) is None and not configs["staging"].monitoring.subscriptions
